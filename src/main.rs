//! The `incidentd` command line.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use incidentd::admin::{self, Command, Outcome};
use incidentd::config::{self, Config};
use incidentd::domain::clock::SystemClock;
use incidentd::store::{StoreError, migrations};

#[derive(Parser)]
#[command(
    name = "incidentd",
    version,
    about = "Incident response daemon: alerts in, ITIL incidents out"
)]
struct Cli {
    /// Configuration file (TOML); also INCIDENTD_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

/// The top-level commands.
#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon.
    Serve,
    /// Apply pending store migrations (`--status` only shows them).
    Migrate {
        /// Show applied and pending migrations without changing anything.
        #[arg(long)]
        status: bool,
    },
    /// Manage users (the password is read from stdin or a prompt, never from arguments).
    #[command(subcommand)]
    User(UserCmd),
    /// Manage alert integrations (a token is printed once: at creation or rotation).
    #[command(subcommand)]
    Integration(IntegrationCmd),
    /// Manage heartbeat monitors (the ping URL with its token is printed once: at creation or rotation)
    #[command(subcommand)]
    Heartbeat(HeartbeatCmd),
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Write a consistent copy of the store, also while the daemon runs.
    Backup {
        /// The file to write (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Fill an empty data directory from a backup.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// Discord application set-up.
    #[command(subcommand)]
    Discord(DiscordCmd),
    /// Triage playbooks.
    #[command(subcommand)]
    Playbook(PlaybookCmd),
}

/// `incidentd playbook ...`.
#[derive(Subcommand)]
enum PlaybookCmd {
    /// Check a playbook file and show what it would do; with `--incident`, whether it
    /// reacts to that incident (exit 1 if it does not).
    Test {
        /// The playbook (YAML).
        file: PathBuf,
        /// A JSON file describing an incident: {"event", "title", "service", "impact",
        /// "urgency", "priority", "labels"}, every key optional.
        #[arg(long, value_name = "FILE")]
        incident: Option<PathBuf>,
    },
}

/// `incidentd discord ...`.
#[derive(Subcommand)]
enum DiscordCmd {
    /// Register (overwrite) the /incident, /problem and /approval slash commands with
    /// Discord, using `[discord] application_id` and `bot_token`.
    RegisterCommands {
        /// Register in one server only (they appear at once there; global commands may
        /// take a while to reach every client).
        #[arg(long, value_name = "GUILD_ID")]
        guild: Option<String>,
        /// Print the command definitions instead of sending them.
        #[arg(long)]
        print: bool,
    },
}

/// `incidentd user ...`: accounts, through the daemon while it runs.
#[derive(Subcommand)]
enum UserCmd {
    /// Create a user.
    Add {
        /// Login name.
        username: String,
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// Role name; repeat for several (default Engineer).
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// Set a user's password.
    Passwd {
        /// Login name.
        username: String,
    },
    /// List users.
    List,
}

/// `incidentd integration ...`: alert sources, through the daemon while it runs.
#[derive(Subcommand)]
enum IntegrationCmd {
    /// Create an integration; prints its webhook URL and token.
    Add {
        /// Name.
        name: String,
        /// What sends to it.
        #[arg(long, ignore_case = true, value_parser = ["alertmanager", "grafana", "pagerduty", "generic"])]
        kind: String,
        /// The service its alerts open incidents in, by name (default: Default).
        #[arg(long)]
        service: Option<String>,
    },
    /// List integrations (without tokens).
    List,
    /// Give an integration a new token; the old one stops working at once.
    Rotate {
        /// Its id or name.
        integration: String,
    },
}

/// `incidentd heartbeat ...`: heartbeat monitors, through the daemon while it runs.
#[derive(Subcommand)]
enum HeartbeatCmd {
    /// Create a heartbeat monitor; prints its ping URL and token.
    Add {
        /// Name (shown in the incident a silence opens).
        name: String,
        /// The longest silence that is still healthy, in seconds (60 to 604800).
        #[arg(long = "interval-secs", value_name = "SECS")]
        interval_secs: u64,
        /// The service a silence opens its incident on, by name (default: Default).
        #[arg(long)]
        service: Option<String>,
    },
    /// List heartbeat monitors (without tokens).
    List,
    /// Give a heartbeat monitor a new token; the old one stops working at once.
    Rotate {
        /// Its id or name.
        heartbeat: String,
    },
}

/// `incidentd config ...`.
#[derive(Subcommand)]
enum ConfigCmd {
    /// Load and validate the configuration; print the effective values.
    Check,
}

/// mimalloc instead of the system allocator: ingestion allocates and frees many small
/// strings per alert on one writer thread, and glibc's malloc was a tenth of its profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Everything the daemon writes (the store, its redo log, backups, the admin socket)
    // holds password hashes, webhook secrets or alerts: its owner's only.
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe { libc::umask(0o077) };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if matches!(cli.command, Cmd::Config(_) | Cmd::Playbook(_)) {
        // These only print: piped into `head`, they end quietly when the pipe closes, as
        // Unix tools do, instead of panicking in println!. (The daemon, and the commands
        // that talk to it over its socket, keep Rust's default: a peer closing a socket
        // is an error to handle, not a signal that ends the process without a word.)
        // SAFETY: restoring a signal's default disposition has no memory effects.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let config = match Config::load(cli.config.as_deref(), &config::process_env).and_then(|c| {
        if matches!(cli.command, Cmd::Serve) {
            c.check_first_admin_password(&config::process_env)?;
        }
        Ok(c)
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Cmd::Config(ConfigCmd::Check) = cli.command {
        if let Some(dir) = &config.playbooks_dir {
            match incidentd::app::playbooks::load_dir(dir) {
                Ok(p) => println!("{} playbook(s) ok", p.len()),
                Err(e) => {
                    eprintln!("config error: playbooks_dir: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        println!("configuration ok");
        println!(
            "{}",
            toml::to_string_pretty(&config.redacted()).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    incidentd::telemetry::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: many of our errors already say
/// their cause (`{path}: {source}`), and anyhow's `{:#}` would repeat it.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}

async fn run(command: Cmd, config: Config) -> anyhow::Result<()> {
    match command {
        Cmd::Serve => incidentd::daemon::serve(config).await,
        Cmd::Migrate { status: true } => {
            let path = config.store_path();
            if let Some(out) = admin::send(
                &admin::socket_path(&config.data_dir),
                &Command::MigrateStatus,
            )
            .await
            {
                return print_outcome(out);
            }
            if !path.exists() {
                println!("{}", admin::format_status(0, &pending_all()));
                return Ok(());
            }
            let db = redb::Database::builder()
                .open_read_only(&path)
                .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
            let (version, list) =
                migrations::status_from(&redb::ReadableDatabase::begin_read(&db)?)?;
            println!("{}", admin::format_status(version, &list));
            Ok(())
        }
        Cmd::Migrate { status: false } => {
            let store = open_locally(&config).await?;
            let (version, list) = migrations::status_from(&store.store.read()?)?;
            store.store.shutdown().await;
            println!("{}", admin::format_status(version, &list));
            Ok(())
        }
        Cmd::User(UserCmd::Add {
            username,
            email,
            roles,
        }) => {
            let password = read_password(&format!("Password for {username}: "))?;
            let roles = if roles.is_empty() {
                vec!["Engineer".to_owned()]
            } else {
                roles
            };
            dispatch(
                &config,
                Command::UserAdd {
                    username,
                    email,
                    roles,
                    password,
                },
            )
            .await
        }
        Cmd::User(UserCmd::Passwd { username }) => {
            let password = read_password(&format!("New password for {username}: "))?;
            dispatch(&config, Command::UserPasswd { username, password }).await
        }
        Cmd::User(UserCmd::List) => dispatch(&config, Command::UserList).await,
        Cmd::Integration(IntegrationCmd::Add {
            name,
            kind,
            service,
        }) => {
            dispatch(
                &config,
                Command::IntegrationAdd {
                    name,
                    kind: kind.to_lowercase(),
                    service,
                },
            )
            .await
        }
        Cmd::Integration(IntegrationCmd::List) => dispatch(&config, Command::IntegrationList).await,
        Cmd::Integration(IntegrationCmd::Rotate { integration }) => {
            dispatch(&config, Command::IntegrationRotate { integration }).await
        }
        Cmd::Heartbeat(HeartbeatCmd::Add {
            name,
            interval_secs,
            service,
        }) => {
            dispatch(
                &config,
                Command::HeartbeatAdd {
                    name,
                    interval_secs,
                    service,
                },
            )
            .await
        }
        Cmd::Heartbeat(HeartbeatCmd::List) => dispatch(&config, Command::HeartbeatList).await,
        Cmd::Heartbeat(HeartbeatCmd::Rotate { heartbeat }) => {
            dispatch(&config, Command::HeartbeatRotate { heartbeat }).await
        }
        Cmd::Backup { out } => {
            let out = absolute(&out)?;
            dispatch(&config, Command::Backup { out }).await
        }
        Cmd::Restore { file } => {
            let summary = incidentd::store::backup::restore(
                &file,
                &config.data_dir,
                incidentd::store::STORE_FILE,
            )?;
            println!(
                "restored {} into {}: {} tables, {} entries, schema version {}",
                file.display(),
                config.data_dir.display(),
                summary.tables,
                summary.entries,
                summary.schema_version
            );
            Ok(())
        }
        Cmd::Config(ConfigCmd::Check) => Ok(()),
        Cmd::Discord(DiscordCmd::RegisterCommands { guild, print }) => {
            register_discord_commands(&config, guild.as_deref(), print).await
        }
        Cmd::Playbook(PlaybookCmd::Test { file, incident }) => {
            test_playbook(&file, incident.as_deref())
        }
    }
}

/// `playbook test`: the playbook's mistakes, or what it would do.
fn test_playbook(file: &Path, incident: Option<&Path>) -> anyhow::Result<()> {
    use incidentd::app::playbooks::{self, SampleIncident};
    let p = playbooks::load_file(file).map_err(|e| anyhow::anyhow!(e))?;
    let on: Vec<&str> = p.spec.on.iter().map(|e| e.as_str()).collect();
    println!(
        "playbook '{}' is valid: {} step(s), on {}",
        p.name(),
        p.spec.steps.len(),
        on.join(", ")
    );
    let sample: SampleIncident = match incident {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => serde_json::from_str("{}")?,
    };
    let facts = sample.facts(chrono::Utc::now());
    if incident.is_some() {
        if !p.matches(&facts.for_event(sample.event)) {
            anyhow::bail!("it does not react to this incident (on {})", sample.event);
        }
        println!("it reacts to this incident ({}) and would:", sample.event);
    } else {
        println!("its steps:");
    }
    for (i, step) in p.spec.steps.iter().enumerate() {
        println!("  {}. {}", i + 1, playbooks::describe(step, &facts));
    }
    Ok(())
}

/// `discord register-commands`: one bulk overwrite, so that commands removed from
/// incidentd disappear from Discord too.
async fn register_discord_commands(
    config: &Config,
    guild: Option<&str>,
    print: bool,
) -> anyhow::Result<()> {
    use incidentd::chat::discord::{api::DiscordApi, definitions};
    let commands = definitions::all();
    if print {
        println!("{}", serde_json::to_string_pretty(&commands)?);
        return Ok(());
    }
    let d = config.discord.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "Discord is not configured: set [discord] bot_token and application_id \
             (or INCIDENTD_DISCORD_BOT_TOKEN and INCIDENTD_DISCORD_APPLICATION_ID)"
        )
    })?;
    if d.bot_token.is_empty() {
        anyhow::bail!("discord.bot_token is required (set INCIDENTD_DISCORD_BOT_TOKEN)");
    }
    if d.application_id.is_empty() {
        anyhow::bail!("discord.application_id is required (set INCIDENTD_DISCORD_APPLICATION_ID)");
    }
    if let Some(g) = guild
        && !incidentd::domain::notification::is_discord_id(g)
    {
        anyhow::bail!("--guild must be a Discord server id (digits), not '{g}'");
    }
    let http =
        incidentd::notify::http_client(std::time::Duration::from_secs(config.notify.timeout_secs))
            .map_err(|e| anyhow::anyhow!(e))?;
    let api = DiscordApi::new(http, &d.api_base_url, &d.bot_token);
    let n = api
        .overwrite_commands(&d.application_id, guild, &commands)
        .await
        .map_err(|e| anyhow::anyhow!("Discord refused the commands: {e}"))?;
    match guild {
        Some(g) => println!("registered {n} commands in server {g}"),
        None => println!("registered {n} global commands"),
    }
    Ok(())
}

fn pending_all() -> Vec<migrations::MigrationStatus> {
    migrations::MIGRATIONS
        .iter()
        .map(|m| migrations::MigrationStatus {
            version: m.version,
            name: m.name.to_owned(),
            applied_at: None,
        })
        .collect()
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir()?.join(p)
    })
}

async fn open_locally(config: &Config) -> anyhow::Result<Arc<incidentd::App>> {
    Ok(incidentd::daemon::open_app(config.clone(), Arc::new(SystemClock)).await?)
}

/// Runs a command in the running daemon if there is one, else against the store directly.
async fn dispatch(config: &Config, command: Command) -> anyhow::Result<()> {
    if let Some(out) = admin::send(&admin::socket_path(&config.data_dir), &command).await {
        return print_outcome(out);
    }
    let app = match open_locally(config).await {
        Ok(app) => app,
        Err(e)
            if e.downcast_ref::<incidentd::app::StartError>()
                .is_some_and(|s| {
                    matches!(s, incidentd::app::StartError::Store(StoreError::Locked(_)))
                }) =>
        {
            anyhow::bail!(
                "the store is in use by a running daemon whose control socket does not answer (if it stopped answering after taking the command, the command may have been applied: check with a list command): {e}"
            );
        }
        Err(e) => return Err(e),
    };
    let outcome = admin::execute(&app, command).await;
    app.store.shutdown().await;
    print_outcome(outcome)
}

fn print_outcome(outcome: Outcome) -> anyhow::Result<()> {
    match outcome {
        Outcome::Ok(text) => {
            println!("{text}");
            Ok(())
        }
        Outcome::Err(e) => anyhow::bail!(e),
    }
}

/// A password from the terminal (asked twice) or the first line of stdin.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        let second = rpassword::prompt_password("Repeat: ")?;
        anyhow::ensure!(first == second, "the passwords differ");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\r', '\n']).to_owned();
        anyhow::ensure!(!password.is_empty(), "no password on stdin");
        Ok(password)
    }
}
