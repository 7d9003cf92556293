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
