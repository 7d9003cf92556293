//! The command line: `serve`, `migrate`, `user`, `openapi`. Every command reads the same
//! configuration as the server (file, environment, flags).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::auth::{check_password_policy, password, Role, Username};
use crate::config::{Config, Secret};
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
    /// Print the OpenAPI document (or write it with --write).
    Openapi {
        #[arg(long)]
        write: Option<PathBuf>,
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
        Command::Openapi { .. } => Ok(()),
    }
}

pub async fn open_db(config: &Config) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let db = Db::connect(&config.database_url(), 4).await?;
    db.migrate().await?;
    crate::store::checklists::ensure_default(&db)
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

async fn user_command(db: &Db, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            username,
            role,
            name,
            badge_no,
            phone,
        } => {
            let username = Username::parse(&username).map_err(anyhow::Error::msg)?;
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let name = name.trim();
            if name.is_empty() {
                bail!("--name must not be empty");
            }
            let badge_no = badge_no
                .map(|b| b.trim().to_string())
                .filter(|b| !b.is_empty());
            if role == Role::Inspector && badge_no.is_none() {
                bail!("inspectors need --badge-no (执法证号)");
            }
            let password = read_password()?;
            let hash = password::hash_password(password).await?;
            let new = store::users::NewUser {
                username: username.as_str(),
                name,
                role,
                badge_no: badge_no.as_deref(),
                phone: phone.as_deref(),
                password_hash: &hash,
            };
            match store::users::create(db, new).await {
                Ok(user) => {
                    println!(
                        "created {} ({}) id={}",
                        user.username,
                        user.role.as_str(),
                        user.id
                    );
                    Ok(())
                }
                Err(e) if store::is_unique_violation(&e) => {
                    bail!("a user with that username or badge number already exists")
                }
                Err(e) => Err(e.into()),
            }
        }
        UserCommand::Disable { username } => {
            let username = Username::parse(&username).map_err(anyhow::Error::msg)?;
            if !store::users::disable(db, username.as_str(), None).await? {
                bail!("no user {}", username.as_str());
            }
            println!("disabled {} and revoked its tokens", username.as_str());
            Ok(())
        }
        UserCommand::Enable { username } => {
            let username = Username::parse(&username).map_err(anyhow::Error::msg)?;
            if !store::users::enable(db, username.as_str(), None).await? {
                bail!("no user {}", username.as_str());
            }
            println!("enabled {}", username.as_str());
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
