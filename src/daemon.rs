//! `incidentd serve`: start-up, the HTTP server, background tasks and graceful shutdown.
//!
//! Start-up opens and migrates the store, applies configured settings, makes sure an admin
//! exists, then binds. On SIGTERM or SIGINT the server stops accepting, finishes in-flight
//! requests (up to `http.shutdown_grace_secs`), background tasks stop, the writer commits
//! what is queued, and the process exits 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::users::AdminBootstrap;
use crate::app::{App, StartError};
use crate::config::Config;
use crate::domain::actor::Actor;
use crate::domain::clock::{Clock, SystemClock};

/// A started daemon: where it listens and how to stop it.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The application.
    pub app: Arc<App>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens the application on a blocking thread and runs the start-up use cases.
pub async fn open_app(config: Config, clock: Arc<dyn Clock>) -> Result<Arc<App>, StartError> {
    let app = tokio::task::spawn_blocking(move || App::open(config, clock))
        .await
        .map_err(|e| StartError::App(crate::app::AppError::Internal(e.to_string())))??;
    let app = Arc::new(app);
    crate::app::ingest_queue::replay_backlog(&app, &|kind, body, settings| {
        crate::ingest::parse(kind, body, settings).map_err(|e| e.to_string())
    })
    .await?;
    crate::app::settings::apply_chat_settings(&app).await?;
    if let Some(matrix) = app.config.priority.matrix() {
        crate::app::settings::set_priority_matrix(&app, &Actor::system(), matrix).await?;
    }
    Ok(app)
}

/// Creates the first-start admin if the store has no users, printing a generated
/// password once.
pub async fn bootstrap_admin(app: &App) -> Result<(), StartError> {
    let given = crate::config::process_env(crate::config::ADMIN_PASSWORD_ENV);
    match crate::app::users::ensure_admin(app, given).await? {
        AdminBootstrap::Existing => {}
        AdminBootstrap::CreatedWithGivenPassword => {
            tracing::info!("created user 'admin' with the password from INCIDENTD_ADMIN_PASSWORD");
        }
        AdminBootstrap::CreatedWithGeneratedPassword(password)
            if app.config.log.format == crate::config::LogFormat::Json =>
        {
            // stderr is a stream of JSON objects for whatever reads it: one more, printed
            // directly (not logged: the password belongs on this console only, once).
            let line = serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "WARN",
                "fields": {
                    "message": "incidentd created the first user 'admin' with a generated password, shown only this once; change it with `incidentd user passwd admin` or POST /api/v1/auth/password",
                    "username": "admin",
                    "generated_password": password,
                },
                "target": "incidentd::daemon",
            });
            eprintln!("{line}");
        }
        AdminBootstrap::CreatedWithGeneratedPassword(password) => {
            eprintln!("================================================================");
            eprintln!(" incidentd created the first user:  admin");
            eprintln!(" its generated password (shown only this once): {password}");
            eprintln!(
                " change it with `incidentd user passwd admin` or POST /api/v1/auth/password"
            );
            eprintln!("================================================================");
        }
    }
    Ok(())
}

/// Binds and starts serving `app`; returns at once.
pub async fn start(app: Arc<App>) -> std::io::Result<Running> {
    let listener = TcpListener::bind(app.config.listen).await?;
    start_on(app, listener).await
}

/// Starts serving `app` on `listener` (bound by the caller, so that it can fail before
/// anything else happens); returns at once.
pub async fn start_on(app: Arc<App>, listener: TcpListener) -> std::io::Result<Running> {
    let channels =
        crate::notify::Channels::from_config(&app.config).map_err(std::io::Error::other)?;
    let playbooks = match &app.config.playbooks_dir {
        Some(dir) => crate::app::playbooks::load_dir(dir)
            .map_err(|e| std::io::Error::other(format!("playbooks: {e}")))?,
        None => Vec::new(),
    };
    if !playbooks.is_empty() {
        tracing::info!(count = playbooks.len(), "playbooks loaded");
    }
    crate::engine::playbooks::PlaybookRunner::prepare(&app, !playbooks.is_empty())
        .await
        .map_err(std::io::Error::other)?;
    let addr = listener.local_addr()?;
    app.set_bound_addr(addr);
    let (shutdown, signal) = watch::channel(false);
    let router = crate::api::router(app.clone());
    // Answers go out at once: an answer written while the peer has not yet acknowledged
    // the previous one would otherwise wait for that ACK (Nagle), up to a delayed-ACK
    // timeout, on every keep-alive connection that sends requests back to back.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let mut server_signal = signal.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = server_signal.wait_for(|stop| *stop).await;
        })
        .await
    });
    let mut tasks = vec![
        tokio::spawn(crate::admin::serve_socket(
            app.clone(),
            crate::admin::socket_path(&app.config.data_dir),
            signal.clone(),
        )),
        tokio::spawn(
            crate::engine::outbox::OutboxWorker::new(app.clone(), channels).run(signal.clone()),
        ),
        tokio::spawn(
            crate::engine::escalation::EscalationWorker::new(app.clone()).run(signal.clone()),
        ),
        tokio::spawn(
            crate::engine::retention::RetentionWorker::new(app.clone()).run(signal.clone()),
        ),
        tokio::spawn(
            crate::engine::heartbeats::HeartbeatChecker::new(app.clone()).run(signal.clone()),
        ),
        tokio::spawn(crate::engine::approvals::run(app.clone(), signal.clone())),
        tokio::spawn(crate::engine::silences::run(app.clone(), signal.clone())),
        tokio::spawn(crate::engine::snoozes::run(app.clone(), signal.clone())),
    ];
    if !playbooks.is_empty() {
        tasks.push(tokio::spawn(
            crate::engine::playbooks::PlaybookRunner::new(app.clone(), playbooks)
                .run(signal.clone()),
        ));
    }
    tracing::info!(%addr, data_dir = %app.config.data_dir.display(), "incidentd listening");
    Ok(Running {
        addr,
        app,
        shutdown,
        server,
        tasks,
    })
}

impl Running {
    /// Stops accepting, lets in-flight requests finish (bounded by the grace period),
    /// stops background tasks and flushes the store.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let grace = Duration::from_secs(self.app.config.http.shutdown_grace_secs);
        if tokio::time::timeout(grace, self.server).await.is_err() {
            tracing::warn!("in-flight requests did not finish within the grace period");
        }
        for task in self.tasks {
            let _ = tokio::time::timeout(grace, task).await;
        }
        self.app.ingest_queue.shutdown().await;
        self.app.store.shutdown().await;
        tracing::info!("incidentd stopped");
    }
}

/// SIGTERM and SIGINT, listened for from the moment this is made: made before the daemon
/// answers its first request, so that a SIGTERM sent as soon as it is ready (a supervisor,
/// a test) is a clean shutdown rather than the signal's default, an exit without one.
pub struct Termination {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Termination {
    /// Starts listening.
    pub fn listen() -> std::io::Result<Termination> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Termination {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Termination {})
        }
    }

    /// Waits for either signal.
    pub async fn received(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `incidentd serve` from start to a clean exit.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let app = open_app(config, Arc::new(SystemClock)).await?;
    // The port first: a start that fails there must not use up the one-time display of a
    // generated admin password.
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve on {listen}: {e}"))?;
    bootstrap_admin(&app).await?;
    let termination = Termination::listen()?;
    let running = start_on(app, listener).await?;
    termination.received().await;
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}
