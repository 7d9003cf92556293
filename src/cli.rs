//! The command line: `serve`, `migrate`, `user`, `openapi`. Every command reads the same
//! configuration as the server (file, environment, flags).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::audit::Ctx;
use crate::auth::{check_password_policy, NewUser, Role};
use crate::config::{Config, Secret};
use crate::ops::accounts::{self, Target};
use crate::store::{self, Db};

#[derive(Debug, Parser)]
#[command(
    name = "foodcheck",
    version,
    about = "Food-safety inspections, sampling and publication for a district bureau"
)]
pub struct Cli {
    /// Configuration file (default ./foodcheck.toml, or FOODCHECK_CONFIG).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (overrides FOODCHECK_DATA_DIR).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL (overrides FOODCHECK_DATABASE_URL).
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (applies migrations first).
    Serve {
        /// Listen address (overrides FOODCHECK_LISTEN; default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Fill an empty database with a demo district (users of every role with printed
    /// passwords, a few thousand establishments, the default checklist).
    DemoData {
        /// Number of establishments.
        #[arg(long, default_value_t = 3000)]
        establishments: usize,
        /// Seed of the generator (the same seed gives the same district).
        #[arg(long, default_value_t = 2024)]
        seed: u64,
    },
    /// Sync housekeeping.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Follow-ups (整改 → 复查).
    #[command(subcommand)]
    Followup(FollowupCommand),
    /// Export published data (一公开) to a file.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Print the sync protocol document (or write it with --write api-spec/sync.md).
    SyncDoc {
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// Run the benchmarks (figures for BENCHMARKS.md). Build with --release.
    Bench {
        /// Admin URL of a PostgreSQL server to benchmark as well (a throwaway database is
        /// created and dropped).
        #[arg(long, env = "FOODCHECK_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Only benchmarks whose name contains this (e.g. search_100k, import_xlsx_10k).
        #[arg(long)]
        only: Option<String>,
    },
    /// Draw records.
    #[command(subcommand)]
    Draw(DrawCommand),
    /// Bulk-import data from a file.
    #[command(subcommand)]
    Import(ImportCommand),
    /// The tamper-evident audit log: verify it, sign a checkpoint, print the verifier key,
    /// and check published checkpoints and proofs offline (no database needed).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print the OpenAPI document (or write it with --write).
    Openapi {
        #[arg(long)]
        write: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Drop sync tombstones deleted more than N days ago, now (the server does it hourly with
    /// `tombstone_retention_days`). Devices whose cursor is older then get a full replacement.
    PurgeTombstones {
        #[arg(long)]
        older_than_days: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// A published red/black list issue, streamed from the database with a progress bar.
    List {
        /// The issue's id.
        issue: String,
        /// csv (UTF-8 with BOM), xlsx, json, geojson (WGS-84) or lives (a LIVES ZIP).
        #[arg(long)]
        format: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum FollowupCommand {
    /// Create the recheck tasks (复查) of follow-ups whose deadline has come, as the server's
    /// sweep does (`recheck_sweep_interval_secs`). Idempotent; safe beside running servers.
    CreateDueRechecks {
        /// Count "today" as this day (`YYYY-MM-DD`) instead of the bureau's date.
        #[arg(long, value_parser = parse_date)]
        today: Option<chrono::NaiveDate>,
    },
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date YYYY-MM-DD"))
}

#[derive(Debug, Subcommand)]
pub enum DrawCommand {
    /// Re-run a draw and compare with what was recorded. Exit code 1 when it differs.
    Verify {
        /// The plan whose current draw is checked (reads the database).
        #[arg(long, conflicts_with = "record", required_unless_present = "record")]
        plan: Option<String>,
        /// A record file: the internal record (GET /api/v1/plans/{id}/draw/record) or the
        /// public one (GET /public/v1/plans/{id}/draw/record). Needs no database.
        #[arg(long)]
        record: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify every entry (fields, chain, order), the Merkle tree and the latest signed
    /// checkpoint. Exit code 1 naming the first broken entry.
    Verify {
        /// Verifier key (string or file) to check the checkpoint with; default: this
        /// installation's own key.
        #[arg(long)]
        key: Option<String>,
        /// An older checkpoint note to check as well (e.g. one published or printed earlier);
        /// repeatable. The log's first N entries must give its root.
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
    },
    /// Integrate pending entries now and sign a checkpoint if the log grew.
    Checkpoint,
    /// Print the verifier key of the checkpoints (`name+keyid+key`).
    Key {
        /// Instead, write a new signing key file at this path (mode 0600) for
        /// `audit_signing_key_file`, and print its verifier key.
        #[arg(long)]
        generate: Option<PathBuf>,
    },
    /// Check a checkpoint note's signature (offline).
    VerifyCheckpoint {
        /// The note, as served by GET /public/v1/audit/checkpoint.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The verifier key (string or file), from GET /public/v1/audit/key.
        #[arg(long)]
        key: String,
    },
    /// Check that an entry is in a signed checkpoint (offline): recomputes the entry's hash
    /// from its fields and follows the proof to the checkpoint's root.
    VerifyInclusion {
        /// The answer of GET /api/v1/audit/proof?entry=N (JSON).
        #[arg(long)]
        proof: PathBuf,
        /// The checkpoint note; default: the one inside the proof file.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The verifier key (string or file).
        #[arg(long)]
        key: String,
    },
    /// Check that a newer checkpoint extends an older one without rewriting it (offline).
    VerifyConsistency {
        /// The older checkpoint note (e.g. one published earlier).
        #[arg(long)]
        old: PathBuf,
        /// The newer checkpoint note.
        #[arg(long)]
        new: PathBuf,
        /// The answer of GET /api/v1/audit/consistency?from=OLD&to=NEW (JSON).
        #[arg(long)]
        proof: PathBuf,
        /// The verifier key (string or file).
        #[arg(long)]
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Establishments from CSV (UTF-8 or GB18030) or XLSX; same rules as
    /// POST /api/v1/establishments/import.
    Establishments {
        file: PathBuf,
        /// Validate and report only; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from standard input (one line).
    Add {
        #[arg(long)]
        username: String,
        /// admin, reviewer, inspector or lab
        #[arg(long)]
        role: String,
        /// Full name.
        #[arg(long)]
        name: String,
        /// 执法证号 (required for inspectors).
        #[arg(long)]
        badge_no: Option<String>,
        #[arg(long)]
        phone: Option<String>,
    },
    /// Disable an account and revoke all its tokens.
    Disable {
        #[arg(long)]
        username: String,
    },
    /// Re-enable a disabled account.
    Enable {
        #[arg(long)]
        username: String,
    },
    /// List accounts.
    List,
}

impl Cli {
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(u) = &self.database_url {
            config.database_url = Some(Secret::new(u.clone()));
        }
        if let Command::Serve { listen: Some(l) } = &self.command {
            config.listen = l.clone();
        }
        config.validate()?;
        Ok(config)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Openapi { write } = &cli.command {
        let json = crate::http::openapi_json();
        match write {
            Some(path) => {
                std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?
            }
            None => print!("{json}"),
        }
        return Ok(());
    }
    if let Command::SyncDoc { write } = &cli.command {
        let doc = crate::sync::doc::markdown();
        match write {
            Some(path) => {
                std::fs::write(path, doc).with_context(|| format!("writing {}", path.display()))?
            }
            None => print!("{doc}"),
        }
        return Ok(());
    }
    if let Command::Draw(DrawCommand::Verify {
        record: Some(file), ..
    }) = &cli.command
    {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        return report_verification(verify_record_text(&text)?);
    }
    if let Command::Audit(cmd) = &cli.command {
        if let Some(outcome) = audit_offline(cmd) {
            return outcome;
        }
    }
    if let Command::Bench { postgres_url, only } = &cli.command {
        crate::telemetry::init(crate::config::LogFormat::Text, "warn,sqlx=error");
        let rows = crate::bench::run(crate::bench::Options {
            postgres_url: postgres_url.clone(),
            filter: only.clone(),
        })
        .await?;
        print!("{}", crate::bench::render(&rows));
        return Ok(());
    }
    let config = cli.load_config()?;
    crate::telemetry::init(config.log_format, &config.log_level);
    match cli.command {
        Command::Serve { .. } => {
            tracing::info!(config = ?config, "starting foodcheck");
            let state = crate::app::state(config).await?;
            let server = crate::app::Server::bind(state).await?;
            tracing::info!(addr = %server.addr()?, "listening");
            server.run(crate::app::shutdown_signal()).await
        }
        Command::Migrate => {
            let db = open_db(&config).await?;
            db.close().await;
            eprintln!("migrations applied ({})", db.backend().name());
            Ok(())
        }
        Command::User(cmd) => {
            let db = open_db(&config).await?;
            let result = user_command(&db, cmd).await;
            db.close().await;
            result
        }
        Command::Import(ImportCommand::Establishments { file, dry_run }) => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let db = open_db(&config).await?;
            let result = import_file(&db, bytes, dry_run).await;
            db.close().await;
            result
        }
        Command::Sync(SyncCommand::PurgeTombstones { older_than_days }) => {
            let db = open_db(&config).await?;
            let before = store::now_ms() - i64::from(older_than_days) * 86_400_000;
            let result =
                crate::ops::sync::purge_tombstones(&db, &crate::audit::Ctx::system(), before).await;
            db.close().await;
            let n = result?;
            println!("{n} tombstones purged");
            Ok(())
        }
        Command::Export(ExportCommand::List { issue, format, out }) => {
            let format = crate::export::ExportFormat::parse(&format).with_context(|| {
                format!("unknown format {format:?}: csv, xlsx, json, geojson or lives")
            })?;
            let db = open_db(&config).await?;
            let result = export_list(&db, &issue, format, &out, config.time_zone).await;
            db.close().await;
            result
        }
        Command::Followup(FollowupCommand::CreateDueRechecks { today }) => {
            let db = open_db(&config).await?;
            let settings = crate::followup::Settings {
                today,
                ..crate::followup::Settings::from_config(&config)
            };
            let result = crate::ops::followup::create_due_rechecks(
                &db,
                &crate::audit::Ctx::system(),
                &settings,
                settings.today(),
            )
            .await;
            db.close().await;
            let report = result?;
            for (followup, task) in &report.created {
                println!("follow-up {followup}: recheck task {task} created");
            }
            for (followup, why) in &report.skipped {
                println!("follow-up {followup}: not created: {why}");
            }
            println!(
                "{} recheck tasks created, {} follow-ups left open",
                report.created.len(),
                report.skipped.len()
            );
            Ok(())
        }
        Command::DemoData {
            establishments,
            seed,
        } => {
            let db = open_db(&config).await?;
            let result =
                crate::ops::demo::fill(&db, &crate::ops::Ctx::system(), establishments, seed).await;
            db.close().await;
            let accounts = result?;
            println!("demo district filled: {establishments} establishments in 宝坻区; accounts:");
            println!("{:<14} {:<10} password", "username", "role");
            for a in accounts {
                println!("{:<14} {:<10} {}", a.username, a.role.as_str(), a.password);
            }
            Ok(())
        }
        Command::Draw(DrawCommand::Verify {
            plan: Some(plan), ..
        }) => {
            let db = open_db(&config).await?;
            let current = crate::ops::plans::current_record(&db, &plan).await;
            db.close().await;
            let (_, record) = current
                .with_context(|| format!("plan {plan} does not exist or has not been drawn"))?;
            report_verification((
                "full record (establishments and teams)".into(),
                crate::plan::draw::verify_record(&record),
            ))
        }
        Command::Audit(cmd) => audit_command(&config, cmd).await,
        Command::Openapi { .. }
        | Command::Bench { .. }
        | Command::Draw(_)
        | Command::SyncDoc { .. } => Ok(()),
    }
}

async fn import_file(db: &Db, bytes: Vec<u8>, dry_run: bool) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{bar:40}] {pos}/{len} rows {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = {
        let bar = bar.clone();
        move |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let outcome = crate::ops::import_establishments(
        db,
        &crate::ops::Ctx::system(),
        bytes,
        dry_run,
        &progress,
    )
    .await;
    bar.finish_and_clear();
    let print_problems = |label: &str, problems: &[crate::establishment::import::RowProblem]| {
        for p in problems {
            eprintln!(
                "{label} row {}{}: {} ({})",
                p.row,
                p.column
                    .as_deref()
                    .map(|c| format!(" [{c}]"))
                    .unwrap_or_default(),
                p.message,
                p.code
            );
        }
    };
    match outcome {
        Ok(report) => {
            print_problems("warning", &report.warnings);
            println!(
                "{} {} rows: {} created, {} updated, {} warnings{}",
                report.format,
                report.rows,
                report.created,
                report.updated,
                report.warnings.len(),
                if report.dry_run {
                    " (dry run: nothing written)"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Err(crate::ops::ImportFailure::Rows(report)) => {
            print_problems("error", &report.errors);
            bail!(
                "{} problem(s) found; nothing was written",
                report.errors_total
            )
        }
        Err(crate::ops::ImportFailure::File(e)) => bail!("{e}"),
        Err(crate::ops::ImportFailure::Failed(e)) => Err(e.into()),
    }
}

pub async fn open_db(config: &Config) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let db = Db::connect(&config.database_url(), 4).await?;
    db.migrate().await?;
    crate::ops::checklists::ensure_default(&db)
        .await
        .context("installing the default checklist template")?;
    Ok(db)
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (input is shown; pipe it in to avoid that): ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    check_password_policy(&password).map_err(anyhow::Error::msg)?;
    Ok(password)
}

/// The account commands, as the system (the shell on the server is trusted like an admin).
async fn user_command(db: &Db, cmd: UserCommand) -> anyhow::Result<()> {
    let ctx = Ctx::system();
    match cmd {
        UserCommand::Add {
            username,
            role,
            name,
            badge_no,
            phone,
        } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let new = NewUser::parse(
                &username,
                role,
                &name,
                badge_no.as_deref(),
                phone.as_deref(),
            )
            .map_err(anyhow::Error::msg)?;
            let password = read_password()?;
            let user = accounts::create_user(db, &ctx, &new, password).await?;
            println!(
                "created {} ({}) id={}",
                user.username,
                user.role.as_str(),
                user.id
            );
            Ok(())
        }
        UserCommand::Disable { username } => {
            let user = accounts::disable_user(db, &ctx, Target::Username(&username)).await?;
            println!("disabled {} and revoked its tokens", user.username);
            Ok(())
        }
        UserCommand::Enable { username } => {
            let user = accounts::enable_user(db, &ctx, Target::Username(&username)).await?;
            println!("enabled {}", user.username);
            Ok(())
        }
        UserCommand::List => {
            println!(
                "{:<20} {:<10} {:<9} {:<14} name",
                "username", "role", "status", "badge_no"
            );
            for u in store::users::list(db).await? {
                println!(
                    "{:<20} {:<10} {:<9} {:<14} {}",
                    u.username,
                    u.role.as_str(),
                    if u.disabled { "disabled" } else { "active" },
                    u.badge_no.as_deref().unwrap_or("-"),
                    u.name
                );
            }
            Ok(())
        }
    }
}

/// Verifies an internal record `{input, outcome}` fully, or a public record (the selection).
pub fn verify_record_text(text: &str) -> anyhow::Result<(String, Vec<String>)> {
    if let Ok(record) = serde_json::from_str::<crate::plan::draw::DrawRecord>(text) {
        return Ok((
            "full record (establishments and teams)".into(),
            crate::plan::draw::verify_record(&record),
        ));
    }
    let public: crate::plan::PublicDrawRecord = serde_json::from_str(text)
        .context("the file is neither an internal nor a public draw record")?;
    Ok((
        "public record (establishment selection)".into(),
        public.verify(),
    ))
}

fn report_verification((kind, differences): (String, Vec<String>)) -> anyhow::Result<()> {
    if differences.is_empty() {
        println!("MATCH: re-running the draw from the {kind} gives exactly the recorded outcome");
        Ok(())
    } else {
        for d in &differences {
            println!("DIFFERENCE: {d}");
        }
        bail!(
            "the recorded draw does not match a re-run ({} difference(s))",
            differences.len()
        )
    }
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A verifier key given as the string itself or as a file holding it.
fn verifier_key(arg: &str) -> anyhow::Result<crate::audit::checkpoint::NoteVerifier> {
    let p = std::path::Path::new(arg);
    let text = if !arg.contains('+') && p.exists() {
        read(p)?
    } else {
        arg.to_owned()
    };
    crate::audit::checkpoint::NoteVerifier::parse(&text)
        .map_err(|e| anyhow::anyhow!("the verifier key: {e}"))
}

fn open_note(
    key: &crate::audit::checkpoint::NoteVerifier,
    note: &str,
    what: &str,
) -> anyhow::Result<crate::audit::checkpoint::Checkpoint> {
    key.open_checkpoint(note)
        .map_err(|e| anyhow::anyhow!("the {what} checkpoint is not valid: {e}"))
}

fn decode_hash(what: &str, s: &str) -> anyhow::Result<crate::audit::merkle::Hash> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{what} is not a base64 SHA-256 hash"))
}

/// The audit commands that need no database; None for the others.
fn audit_offline(cmd: &AuditCommand) -> Option<anyhow::Result<()>> {
    use crate::audit::merkle;
    let run = || -> anyhow::Result<()> {
        match cmd {
            AuditCommand::VerifyCheckpoint { checkpoint, key } => {
                let cp = open_note(&verifier_key(key)?, &read(checkpoint)?, "")?;
                println!(
                    "OK: signed checkpoint of {} for {} entries, root {}, time {}",
                    cp.origin,
                    cp.size,
                    hex::encode(cp.root),
                    crate::http::rfc3339(cp.time_ms)
                );
            }
            AuditCommand::VerifyInclusion {
                proof,
                checkpoint,
                key,
            } => {
                let p: crate::http::audit::InclusionProofView =
                    serde_json::from_str(&read(proof)?).context("the proof file")?;
                let note = match checkpoint {
                    Some(f) => read(f)?,
                    None => p
                        .checkpoint
                        .clone()
                        .context("the proof holds no checkpoint; pass --checkpoint")?,
                };
                let cp = open_note(&verifier_key(key)?, &note, "")?;
                if cp.size != p.tree_size {
                    bail!(
                        "the proof is for a tree of {} entries, the checkpoint covers {}",
                        p.tree_size,
                        cp.size
                    );
                }
                let prev = decode_hash("prev_hash", &p.prev_hash)?;
                let h = p.entry.hash(&prev);
                if h != decode_hash("entry_hash", &p.entry_hash)? {
                    bail!(
                        "entry {}: its fields do not hash to the proof's entry_hash",
                        p.entry.seq
                    );
                }
                let path = p
                    .proof
                    .iter()
                    .map(|s| decode_hash("a proof hash", s))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                if !merkle::verify_inclusion(
                    p.entry.seq,
                    cp.size,
                    &merkle::leaf_hash(&h),
                    &path,
                    &cp.root,
                ) {
                    bail!(
                        "entry {} is NOT included in the signed checkpoint of {} entries",
                        p.entry.seq,
                        cp.size
                    );
                }
                println!(
                    "OK: entry {} ({} {} {}) is in the signed checkpoint of {} entries",
                    p.entry.seq, p.entry.action, p.entry.record_type, p.entry.record_id, cp.size
                );
            }
            AuditCommand::VerifyConsistency {
                old,
                new,
                proof,
                key,
            } => {
                let key = verifier_key(key)?;
                let a = open_note(&key, &read(old)?, "old")?;
                let b = open_note(&key, &read(new)?, "new")?;
                let p: crate::http::audit::ConsistencyProofView =
                    serde_json::from_str(&read(proof)?).context("the proof file")?;
                if (p.from, p.to) != (a.size, b.size) {
                    bail!(
                        "the proof is from {} to {} entries, the checkpoints are of {} and {}",
                        p.from,
                        p.to,
                        a.size,
                        b.size
                    );
                }
                let path = p
                    .proof
                    .iter()
                    .map(|s| decode_hash("a proof hash", s))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                if !merkle::verify_consistency(a.size, b.size, &a.root, &b.root, &path) {
                    bail!(
                        "INCONSISTENT: the checkpoint of {} entries does not extend the one of {}: history was rewritten",
                        b.size,
                        a.size
                    );
                }
                println!(
                    "OK: the checkpoint of {} entries extends the one of {} (nothing before was changed)",
                    b.size, a.size
                );
            }
            _ => unreachable!("only offline commands here"),
        }
        Ok(())
    };
    match cmd {
        AuditCommand::VerifyCheckpoint { .. }
        | AuditCommand::VerifyInclusion { .. }
        | AuditCommand::VerifyConsistency { .. } => Some(run()),
        _ => None,
    }
}

fn audit_signer(config: &Config) -> anyhow::Result<crate::audit::checkpoint::NoteSigner> {
    crate::audit::checkpoint::NoteSigner::load_or_generate(
        &config.audit_origin,
        &config.data_dir,
        config.audit_signing_key_file.as_deref(),
    )
}

async fn audit_command(config: &Config, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Key {
            generate: Some(path),
        } => {
            if path.exists() {
                bail!("{} exists; not overwriting a key", path.display());
            }
            crate::audit::checkpoint::generate_key_file(&path)?;
            let text = read(&path)?;
            let seed: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|k| k.try_into().ok())
                .context("the generated key")?;
            let s = crate::audit::checkpoint::NoteSigner::from_seed(&config.audit_origin, seed)?;
            eprintln!("wrote {}; set audit_signing_key_file to it", path.display());
            println!("{}", s.verifier_key());
            Ok(())
        }
        AuditCommand::Key { generate: None } => {
            println!("{}", audit_signer(config)?.verifier_key());
            Ok(())
        }
        AuditCommand::Checkpoint => {
            let signer = audit_signer(config)?;
            let db = open_db(config).await?;
            let result = async {
                let i = crate::ops::audit::integrate_all(&db).await?;
                let c = crate::ops::audit::checkpoint(&db, &signer).await?;
                anyhow::Ok((i, c))
            }
            .await;
            db.close().await;
            let (i, c) = result?;
            eprintln!("integrated {} entries; the log has {}", i.added, i.size);
            match c {
                Some(c) => print!("{}", c.note),
                None => eprintln!("the latest checkpoint already covers the log; nothing signed"),
            }
            Ok(())
        }
        AuditCommand::Verify { key, checkpoints } => {
            let older = checkpoints
                .iter()
                .map(|p| read(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let key = match key {
                Some(k) => verifier_key(&k)?,
                None => crate::audit::checkpoint::NoteVerifier::parse(
                    &audit_signer(config)?.verifier_key(),
                )
                .map_err(anyhow::Error::msg)?,
            };
            let db = open_db(config).await?;
            let t0 = std::time::Instant::now();
            let v = crate::ops::audit::verify(&db, &key, &older).await;
            db.close().await;
            let v = v?;
            match v.result {
                Ok(r) => {
                    println!(
                        "OK: {} entries verified in {:.1} s, root {}{}{}",
                        r.entries,
                        t0.elapsed().as_secs_f64(),
                        hex::encode(r.root),
                        match r.checkpoints_matched.as_slice() {
                            [] => "; no checkpoint signed yet".into(),
                            [n] => format!("; the signed checkpoint of {n} entries matches"),
                            all => format!(
                                "; the signed checkpoints of {} entries match",
                                all.iter()
                                    .map(u64::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        },
                        if v.pending > 0 {
                            format!("; {} entries pending integration", v.pending)
                        } else {
                            String::new()
                        }
                    );
                    Ok(())
                }
                Err(b) => bail!("BROKEN: {b}"),
            }
        }
        AuditCommand::VerifyCheckpoint { .. }
        | AuditCommand::VerifyInclusion { .. }
        | AuditCommand::VerifyConsistency { .. } => Ok(()),
    }
}

/// `foodcheck export list`: the issue's entries streamed into `out` (written to a temporary
/// name beside it, renamed when complete, so a failed export leaves no partial file).
async fn export_list(
    db: &crate::store::Db,
    issue: &str,
    format: crate::export::ExportFormat,
    out: &std::path::Path,
    zone: crate::clock::BureauZone,
) -> anyhow::Result<()> {
    let (public, meta) = crate::ops::exports::issue(db, issue, zone).await?;
    let total = u64::try_from(public.red_count + public.black_count).unwrap_or(0);
    let passes = if format == crate::export::ExportFormat::Lives {
        2
    } else {
        1
    };
    let (progress, bar) = crate::export::progress::progress_bar(Some(total * passes));
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty());
    let tmp = tempfile::NamedTempFile::new_in(dir.unwrap_or(std::path::Path::new(".")))
        .context("creating the output file")?;
    let db = db.clone();
    let issue = issue.to_string();
    let rt = tokio::runtime::Handle::current();
    let tmp = tokio::task::spawn_blocking(move || -> anyhow::Result<tempfile::NamedTempFile> {
        let mut file = std::io::BufWriter::new(tmp);
        crate::ops::exports::write_issue(
            &rt,
            &db,
            &meta,
            &issue,
            format,
            &mut file,
            Some(progress),
        )?;
        file.into_inner()
            .map_err(|e| anyhow::anyhow!("writing the file: {e}"))
    })
    .await??;
    bar.finish();
    tmp.persist(out)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("{} written ({total} entries)", out.display());
    Ok(())
}
