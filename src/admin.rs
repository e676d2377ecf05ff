//! Operator commands that need the store: user management, backups, migration status.
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

use crate::app::page::PageRequest;
use crate::app::users::{self, NewUser};
use crate::app::{App, AppError};
use crate::domain::actor::Actor;
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
            let mut page = PageRequest {
                limit: 500,
                after: None,
            };
            loop {
                let p = users::list(app, &system, page)?;
                for u in &p.items {
                    out.push_str(&format!(
                        "{:>5}  {:<24} {:<32} {:<8} {}\n",
                        u.id,
                        u.username,
                        u.email,
                        u.active,
                        u.roles.join(",")
                    ));
                }
                match p.next_cursor.and_then(|c| c.parse().ok()) {
                    Some(after) => page.after = Some(after),
                    None => break,
                }
            }
            Ok(out.trim_end().to_owned())
        }
        Command::Backup { out } => {
            let store = app.store.clone();
            let target = out.clone();
            let summary = tokio::task::spawn_blocking(move || store.backup_to(&target))
                .await
                .map_err(|e| AppError::Internal(e.to_string()))??;
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
