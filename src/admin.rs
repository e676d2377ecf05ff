//! Operator commands that need the store: users, alert integrations, heartbeat monitors,
//! backups, migration status.
//!
//! The daemon holds the store exclusively. When it runs, the CLI sends these commands over
//! a Unix socket in the data directory (mode 0600: whoever can read the data directory may
//! administer the daemon, as with the store file itself) and the daemon executes them;
//! when it does not run, the CLI opens the store and executes them itself. Either way the
//! same [`execute`] runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::app::heartbeats::{self, HeartbeatView, NewHeartbeat};
use crate::app::integrations::{self, IntegrationView, NewIntegration};
use crate::app::page::{MAX_LIMIT, Page, PageRequest};
use crate::app::users::{self, NewUser};
use crate::app::{App, AppError, FieldErrors, services};
use crate::domain::actor::Actor;
use crate::domain::integration::IntegrationKind;
use crate::store::migrations;

/// The control socket inside the data directory.
pub const SOCKET_FILE: &str = "incidentd.sock";

/// A command for the store's owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Create a user.
    UserAdd {
        /// Login name.
        username: String,
        /// E-mail.
        email: String,
        /// Role names.
        roles: Vec<String>,
        /// Password.
        password: String,
    },
    /// Set a user's password.
    UserPasswd {
        /// Login name.
        username: String,
        /// New password.
        password: String,
    },
    /// List users.
    UserList,
    /// Create an alert integration; its token is shown in the answer, once.
    IntegrationAdd {
        /// Name.
        name: String,
        /// `alertmanager`, `grafana`, `pagerduty` or `generic`.
        kind: String,
        /// The service its alerts open incidents in (default: the Default service).
        service: Option<String>,
    },
    /// List integrations (without tokens).
    IntegrationList,
    /// Give an integration a new token (the old one stops working at once).
    IntegrationRotate {
        /// Its id or name.
        integration: String,
    },
    /// Create a heartbeat monitor; its ping URL (with the token) is shown once.
    HeartbeatAdd {
        /// Name.
        name: String,
        /// The longest silence that is still healthy, in seconds.
        interval_secs: u64,
        /// The service a silence opens its incident on (default: the Default service).
        service: Option<String>,
    },
    /// List heartbeat monitors (without tokens).
    HeartbeatList,
    /// Give a heartbeat monitor a new token (the old one stops working at once).
    HeartbeatRotate {
        /// Its id or name.
        heartbeat: String,
    },
    /// Write a consistent copy of the store.
    Backup {
        /// Target file (must not exist).
        out: PathBuf,
    },
    /// Show applied and pending migrations.
    MigrateStatus,
}

/// What a command answers: printable text or an error line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Outcome {
    /// Success, with text for the operator.
    Ok(String),
    /// Failure, one line.
    Err(String),
}

/// Runs a command against an open application.
pub async fn execute(app: &App, command: Command) -> Outcome {
    match run(app, command).await {
        Ok(text) => Outcome::Ok(text),
        Err(e) => Outcome::Err(e.to_string()),
    }
}

/// Runs one command as the system actor (the operator at the console holds the store).
async fn run(app: &App, command: Command) -> Result<String, AppError> {
    let system = Actor::system();
    match command {
        Command::UserAdd {
            username,
            email,
            roles,
            password,
        } => {
            let user = users::create(
                app,
                &system,
                NewUser {
                    username,
                    email,
                    password,
                    roles,
                    real_name: None,
                    department: None,
                    group_ids: vec![],
                },
            )
            .await?;
            Ok(format!(
                "created user {} (id {}) with roles {}",
                user.username,
                user.id,
                user.roles.join(", ")
            ))
        }
        Command::UserPasswd { username, password } => {
            users::set_password(app, &username, password).await?;
            Ok(format!(
                "password of {username} changed; their sessions have ended"
            ))
        }
        Command::UserList => {
            let mut out = format!(
                "{:>5}  {:<24} {:<32} {:<8} roles\n",
                "id", "username", "email", "active"
            );
            for u in every_page(|page| users::list(app, &system, page))? {
                out.push_str(&format!(
                    "{:>5}  {:<24} {:<32} {:<8} {}\n",
                    u.id,
                    u.username,
                    u.email,
                    u.active,
                    u.roles.join(",")
                ));
            }
            Ok(out.trim_end().to_owned())
        }
        Command::IntegrationAdd {
            name,
            kind,
            service,
        } => {
            let kind = kind
                .parse()
                .map_err(|e: String| FieldErrors::single("kind", e))?;
            let service_id = service_id(app, service.as_deref())?;
            let created = integrations::create(
                app,
                &system,
                NewIntegration {
                    name,
                    kind,
                    service_id,
                    escalation_policy_id: None,
                    settings: None,
                    token: None,
                },
            )
            .await?;
            Ok(format!(
                "created integration {} (id {}, {})\n{}",
                created.name,
                created.id,
                created.kind,
                shown_once(&created)
            ))
        }
        Command::IntegrationList => {
            let mut out = format!(
                "{:>5}  {:<24} {:<13} {:>7}  token\n",
                "id", "name", "kind", "service"
            );
            for i in every_page(|page| integrations::list(app, &system, page))? {
                out.push_str(&format!(
                    "{:>5}  {:<24} {:<13} {:>7}  {}…\n",
                    i.id, i.name, i.kind, i.service_id, i.token_hint
                ));
            }
            Ok(out.trim_end().to_owned())
        }
        Command::IntegrationRotate { integration } => {
            let id = named_id(
                "integration",
                |page| integrations::list(app, &system, page),
                |i| (i.id, i.name.as_str()),
                &integration,
            )?;
            let rotated = integrations::rotate(app, &system, id).await?;
            Ok(format!(
                "new token for integration {} (id {}); the old one no longer works\n{}",
                rotated.name,
                rotated.id,
                shown_once(&rotated)
            ))
        }
        Command::HeartbeatAdd {
            name,
            interval_secs,
            service,
        } => {
            let service_id = service_id(app, service.as_deref())?;
            let created = heartbeats::create(
                app,
                &system,
                NewHeartbeat {
                    name,
                    interval_secs,
                    service_id,
                },
            )
            .await?;
            Ok(format!(
                "created heartbeat monitor {} (id {}, at least one ping every {} s; inactive until the first)\n{}",
                created.name,
                created.id,
                created.interval_secs,
                ping_url_once(&created)
            ))
        }
        Command::HeartbeatList => {
            let mut out = format!(
                "{:>5}  {:<24} {:>9} {:>7}  {:<8}  {:<25}  token\n",
                "id", "name", "interval", "service", "state", "last ping"
            );
            for h in every_page(|page| heartbeats::list(app, &system, page))? {
                let last = h.last_ping_at.map_or_else(
                    || "never".to_owned(),
                    |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                );
                out.push_str(&format!(
                    "{:>5}  {:<24} {:>7} s {:>7}  {:<8}  {:<25}  {}…\n",
                    h.id,
                    h.name,
                    h.interval_secs,
                    h.service_id,
                    h.state.as_str(),
                    last,
                    h.token_hint
                ));
            }
            Ok(out.trim_end().to_owned())
        }
        Command::HeartbeatRotate { heartbeat } => {
            let id = named_id(
                "heartbeat monitor",
                |page| heartbeats::list(app, &system, page),
                |h| (h.id, h.name.as_str()),
                &heartbeat,
            )?;
            let rotated = heartbeats::rotate(app, &system, id).await?;
            Ok(format!(
                "new token for heartbeat monitor {} (id {}); the old one no longer works\n{}",
                rotated.name,
                rotated.id,
                ping_url_once(&rotated)
            ))
        }
        Command::Backup { out } => {
            let store = app.store.clone();
            let target = out.clone();
            let summary = tokio::task::spawn_blocking(move || store.backup_to(&target))
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?
                // A file that exists or a folder that does not is the operator's to fix,
                // not an internal error: the message names the file and the reason.
                .map_err(|e| match e {
                    e @ crate::store::StoreError::Io { .. } => AppError::BadRequest(e.to_string()),
                    other => other.into(),
                })?;
            Ok(format!(
                "backup written to {}: {} tables, {} entries, schema version {}",
                out.display(),
                summary.tables,
                summary.entries,
                summary.schema_version
            ))
        }
        Command::MigrateStatus => {
            let (version, list) = migrations::status_from(&app.store.read()?)?;
            Ok(format_status(version, &list))
        }
    }
}

/// Every item of a list, page after page.
fn every_page<T>(
    mut list: impl FnMut(PageRequest) -> Result<Page<T>, AppError>,
) -> Result<Vec<T>, AppError> {
    let mut page = PageRequest {
        limit: MAX_LIMIT,
        after: None,
    };
    let mut all = Vec::new();
    loop {
        let p = list(page)?;
        all.extend(p.items);
        match p.next_cursor.and_then(|c| c.parse().ok()) {
            Some(after) => page.after = Some(after),
            None => return Ok(all),
        }
    }
}

/// Where an integration receives, with its token: printed once, never stored in clear.
fn shown_once(i: &IntegrationView) -> String {
    let token = i.token.as_deref().unwrap_or_default();
    match i.kind {
        IntegrationKind::Pagerduty => format!(
            "routing key: {token}\nsend events to: {} (the routing key in the body)",
            i.url
        ),
        _ => format!("webhook URL: {}\ntoken: {token}", i.url),
    }
}

/// Where a heartbeat monitor is pinged, with its token: printed once.
fn ping_url_once(h: &HeartbeatView) -> String {
    format!(
        "ping URL (POST or GET): {}\ntoken: {}",
        h.url,
        h.token.as_deref().unwrap_or_default()
    )
}

/// The id of the service `given` names, by name or id as [`id_of`] reads them (`None`:
/// the caller's default): `integration list` shows services by id.
fn service_id(app: &App, given: Option<&str>) -> Result<Option<u64>, AppError> {
    let Some(given) = given else { return Ok(None) };
    let system = Actor::system();
    named_id(
        "service",
        |page| services::list(app, &system, page),
        |s| (s.id, s.name.as_str()),
        given,
    )
    .map(Some)
}

/// [`id_of`] over every item of a paged list, each seen as `(id, name)` by `key`.
fn named_id<T>(
    what: &'static str,
    list: impl FnMut(PageRequest) -> Result<Page<T>, AppError>,
    key: fn(&T) -> (u64, &str),
    given: &str,
) -> Result<u64, AppError> {
    let all = every_page(list)?;
    id_of(what, all.iter().map(key), given)
}

/// The id of the `what` that `given` names among `all` (id, name): `#N` is id N; else
/// its name if exactly one has it (ignoring case), else its id. A name comes first, so
/// that something named "1" is not mistaken for id 1; `#1` says the id.
fn id_of<'a>(
    what: &'static str,
    all: impl Iterator<Item = (u64, &'a str)> + Clone,
    given: &str,
) -> Result<u64, AppError> {
    let given = given.trim();
    if let Some(id) = given.strip_prefix('#').and_then(|n| n.parse::<u64>().ok()) {
        return if all.clone().any(|(i, _)| i == id) {
            Ok(id)
        } else {
            Err(AppError::not_found(what, format!("with id {id}")))
        };
    }
    let key = given.to_lowercase();
    let mut named = all.clone().filter(|(_, name)| name.to_lowercase() == key);
    match (named.next(), named.next()) {
        (Some((id, _)), None) => Ok(id),
        (Some(_), Some(_)) => Err(AppError::Conflict(format!(
            "several {what}s are named '{given}'; give the id as #N (the list command shows it)"
        ))),
        (None, _) => match given.parse::<u64>() {
            Ok(id) if all.clone().any(|(i, _)| i == id) => Ok(id),
            _ => Err(AppError::not_found(what, format!("'{given}'"))),
        },
    }
}

/// The text `migrate --status` prints.
pub fn format_status(version: u64, list: &[migrations::MigrationStatus]) -> String {
    let mut out = format!(
        "schema version {version} (this binary knows up to {})\n",
        migrations::latest_version()
    );
    for m in list {
        let state = if m.version <= version {
            match m.applied_at {
                Some(at) => format!("applied {}", at.to_rfc3339()),
                None => "applied".to_owned(),
            }
        } else {
            "pending".to_owned()
        };
        out.push_str(&format!("{:04} {:<24} {state}\n", m.version, m.name));
    }
    out.trim_end().to_owned()
}

/// The socket path for a data directory.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// Serves commands on the control socket until `shutdown` fires.
pub async fn serve_socket(
    app: Arc<App>,
    path: PathBuf,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let _ = std::fs::remove_file(&path);
    let listener = match tokio::net::UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "control socket unavailable; CLI commands need the daemon stopped");
            return;
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut line = String::new();
                    if BufReader::new(read).read_line(&mut line).await.is_err() {
                        return;
                    }
                    let outcome = match serde_json::from_str::<Command>(&line) {
                        Ok(cmd) => execute(&app, cmd).await,
                        Err(e) => Outcome::Err(format!("bad command: {e}")),
                    };
                    let mut reply = serde_json::to_vec(&outcome).unwrap_or_default();
                    reply.push(b'\n');
                    let _ = write.write_all(&reply).await;
                });
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Sends a command to a running daemon; `None` if no daemon answers on the socket.
pub async fn send(path: &Path, command: &Command) -> Option<Outcome> {
    let stream = tokio::net::UnixStream::connect(path).await.ok()?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(command).ok()?;
    line.push(b'\n');
    write.write_all(&line).await.ok()?;
    let mut reply = String::new();
    BufReader::new(read).read_line(&mut reply).await.ok()?;
    serde_json::from_str(&reply).ok()
}
