//! ITIL read-path benchmark: list and dashboard latency over real HTTP on 100k incidents.
//!
//! Run:
//!
//! ```text
//! cargo run --release --example itil_bench            # 100_000 incidents
//! ITIL_BENCH_INCIDENTS=20000 cargo run --release --example itil_bench
//! ```
//!
//! What it does:
//!
//! 1. Opens a fresh daemon (`daemon::open_app` + `daemon::start`, the real router and store)
//!    in a temp dir, listening on 127.0.0.1:0, with the system clock.
//! 2. Bulk-loads the incidents through the use case `app::incidents::create`, 256 concurrent
//!    calls at a time so that the group-commit writer folds them into few transactions.
//!    Every cell of the priority matrix and 8 services (plus Default) are used. Then about
//!    1/3 are acknowledged, 1/6 resolved and 1/6 put in progress (`app::incidents::transition`,
//!    also in concurrent batches), so the status index, the counters and the MTTA/MTTR
//!    samples look like a busy week squeezed into a few minutes.
//! 3. Measures, with a reqwest client over loopback HTTP and an admin token:
//!    - `GET /api/v1/incidents?status=new&limit=50`
//!    - `GET /api/v1/dashboard/overview` (default 7-day window: MTTA/MTTR over every sample)
//!
//!    each 2000 times sequentially (one client, one request at a time) and 2000 times from 8
//!    concurrent clients (250 each), after 100 warm-up requests. It prints p50/p90/p99/max
//!    per case, wall time and throughput. Latency is request start to the full body read.
//!
//! The target is p99 <= 10 ms for each case.

use std::sync::Arc;
use std::time::{Duration, Instant};

use incidentd::app::incidents::{self, NewIncident, TransitionRequest};
use incidentd::app::services::{self, NewService};
use incidentd::config::Config;
use incidentd::daemon;
use incidentd::domain::actor::Actor;
use incidentd::domain::clock::SystemClock;
use incidentd::domain::incident::IncidentStatus;
use incidentd::domain::priority::Level;
use tokio::task::JoinSet;

const BATCH: usize = 256;
const REQUESTS: usize = 2000;
const CLIENTS: usize = 8;
const WARMUP: usize = 100;
const PASSWORD: &str = "bench-admin-password";

fn level(n: usize) -> Level {
    Level::ALL[n % 3]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let total: usize = std::env::var("ITIL_BENCH_INCIDENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);

    let dir = tempfile::tempdir()?;
    let mut config = Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config.auth.jwt_secret = Some("bench-secret-bench-secret-bench-secret!".into());
    let app = daemon::open_app(config, Arc::new(SystemClock)).await?;
    incidentd::app::users::ensure_admin(&app, Some(PASSWORD.into())).await?;
    let running = daemon::start(app.clone()).await?;
    let base = format!("http://{}", running.addr);
    println!("daemon on {base}, store in {}", dir.path().display());

    // --- Load -----------------------------------------------------------------------------
    let system = Actor::system();
    let mut service_ids = vec![1u64];
    for n in 0..8 {
        let s = services::create(
            &app,
            &system,
            NewService {
                name: format!("service-{n}"),
                description: String::new(),
                owner_group_id: None,
                escalation_policy_id: None,
                tier: None,
                chat_channel: None,
                discord_channel: None,
            },
        )
        .await?;
        service_ids.push(s.id);
    }

    let started = Instant::now();
    let mut ids = Vec::with_capacity(total);
    let mut next = 0usize;
    while next < total {
        let mut set = JoinSet::new();
        for n in next..(next + BATCH).min(total) {
            let app = app.clone();
            let actor = system.clone();
            let service = service_ids[n % service_ids.len()];
            set.spawn(async move {
                incidents::create(
                    &app,
                    &actor,
                    NewIncident {
                        title: format!("bench incident {n} database latency on service {service}"),
                        description: Some(format!("synthetic load, batch {}", n / BATCH)),
                        impact: level(n),
                        urgency: level(n / 3),
                        service_id: Some(service),
                        assignee_id: None,
                        group_id: None,
                        escalation_policy_id: None,
                    },
                )
                .await
                .map(|v| v.incident.id)
            });
        }
        while let Some(r) = set.join_next().await {
            ids.push(r??);
        }
        next += BATCH;
    }
    let created = started.elapsed();
    println!(
        "created {total} incidents in {:.1} s ({:.0}/s)",
        created.as_secs_f64(),
        total as f64 / created.as_secs_f64()
    );

    ids.sort_unstable();
    let plan: Vec<(u64, &'static [IncidentStatus])> = ids
        .iter()
        .enumerate()
        .filter_map(|(n, id)| {
            let path: &'static [IncidentStatus] = match n % 6 {
                1 | 4 => &[IncidentStatus::Acknowledged],
                2 => &[IncidentStatus::Acknowledged, IncidentStatus::Resolved],
                5 => &[IncidentStatus::InProgress],
                _ => return None,
            };
            Some((*id, path))
        })
        .collect();
    let started = Instant::now();
    let mut moves = 0usize;
    for chunk in plan.chunks(BATCH) {
        let mut set = JoinSet::new();
        for (id, path) in chunk.iter().copied() {
            let app = app.clone();
            let actor = system.clone();
            set.spawn(async move {
                for to in path {
                    incidents::transition(
                        &app,
                        &actor,
                        id,
                        TransitionRequest {
                            to: *to,
                            note: None,
                        },
                    )
                    .await?;
                }
                Ok::<_, incidentd::app::AppError>(path.len())
            });
        }
        while let Some(r) = set.join_next().await {
            moves += r??;
        }
    }
    let moved = started.elapsed();
    println!(
        "made {moves} transitions in {:.1} s ({:.0}/s); writer: {:?}",
        moved.as_secs_f64(),
        moves as f64 / moved.as_secs_f64(),
        app.store.writer_stats()
    );

    // --- Measure --------------------------------------------------------------------------
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS * 2)
        .build()?;
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json::<serde_json::Value>()
        .await?;
    let token: Arc<str> = login["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token: {login}"))?
        .into();

    // Sanity: the list answers what it should.
    let page = http
        .get(format!("{base}/api/v1/incidents?status=new&limit=50"))
        .bearer_auth(&*token)
        .send()
        .await?
        .error_for_status()?
        .json::<serde_json::Value>()
        .await?;
    let items = page["items"].as_array().map(Vec::len).unwrap_or(0);
    let overview = http
        .get(format!("{base}/api/v1/dashboard/overview"))
        .bearer_auth(&*token)
        .send()
        .await?
        .error_for_status()?
        .json::<serde_json::Value>()
        .await?;
    println!(
        "sanity: list returned {items} items; overview: open {} by status {} mtta {} mttr {}",
        overview["open_incidents"], overview["open_by_status"], overview["mtta"], overview["mttr"]
    );

    let cases = [
        (
            "GET /incidents?status=new&limit=50",
            "/api/v1/incidents?status=new&limit=50",
        ),
        ("GET /dashboard/overview", "/api/v1/dashboard/overview"),
    ];
    let writes_before = app.store.writer_stats().operations;
    let mut rows = Vec::new();
    for (name, path) in cases {
        let url: Arc<str> = format!("{base}{path}").into();
        run(&http, &url, &token, WARMUP, 1).await?;
        for clients in [1, CLIENTS] {
            let started = Instant::now();
            let mut lat = run(&http, &url, &token, REQUESTS, clients).await?;
            let wall = started.elapsed();
            lat.sort_unstable();
            rows.push((name, clients, lat, wall));
        }
    }

    println!(
        "writes during the measurement: {} (reads must not write)",
        app.store.writer_stats().operations - writes_before
    );
    println!();
    println!(
        "{} incidents, {} requests per case, {} cores",
        total,
        REQUESTS,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "{:<38} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "case", "clients", "p50 ms", "p90 ms", "p99 ms", "max ms", "req/s"
    );
    let mut missed = false;
    for (name, clients, lat, wall) in &rows {
        let p = |q: f64| ms(lat[((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1]);
        let p99 = p(0.99);
        missed |= p99 > 10.0;
        println!(
            "{:<38} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.0}",
            name,
            clients,
            p(0.50),
            p(0.90),
            p99,
            ms(*lat.last().unwrap_or(&Duration::ZERO)),
            lat.len() as f64 / wall.as_secs_f64()
        );
    }
    println!(
        "target p99 <= 10 ms: {}",
        if missed { "MISSED" } else { "met" }
    );

    running.stop().await;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `requests` GETs of `url` split over `clients` concurrent loops; every latency.
async fn run(
    http: &reqwest::Client,
    url: &Arc<str>,
    token: &Arc<str>,
    requests: usize,
    clients: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut set = JoinSet::new();
    for c in 0..clients {
        let n = requests / clients + usize::from(c < requests % clients);
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        set.spawn(async move {
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let res = http.get(&*url).bearer_auth(&*token).send().await?;
                let status = res.status();
                let body = res.bytes().await?;
                out.push(t.elapsed());
                anyhow::ensure!(status.is_success(), "{url}: {status} {body:?}");
            }
            Ok::<_, anyhow::Error>(out)
        });
    }
    let mut all = Vec::with_capacity(requests);
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    Ok(all)
}
