//! Notification latency benchmark: from an Alertmanager webhook POST to the outbound
//! webhook's arrival at a local receiver, at a steady alert rate.
//!
//! Run:
//!
//! ```text
//! cargo run --release --example notify_latency                  # 100 alerts/s for 30 s
//! NOTIFY_BENCH_RATE=200 NOTIFY_BENCH_SECS=10 cargo run --release --example notify_latency
//! ```
//!
//! What it does:
//!
//! 1. Opens a fresh daemon (`daemon::open_app` + `daemon::start`: the real router, store and
//!    outbox worker) in a temp dir on 127.0.0.1:0, and a webhook receiver (axum) on another
//!    loopback port that notes the arrival time of every POST.
//! 2. Over HTTP, as admin: creates an `alertmanager` integration and a notification rule
//!    `incident.opened -> webhook` (with a signing secret) pointing at the receiver.
//! 3. Sends `RATE` Alertmanager v4 webhook POSTs per second for `SECS` seconds, on a fixed
//!    schedule (each POST in its own task, so a slow answer does not delay the next send).
//!    Every POST carries one new firing alert with its own fingerprint and group key, so
//!    each opens a new incident; the alert's summary is `notify-bench <n>`, which becomes
//!    the incident title.
//! 4. Latency of alert `n` = the receiver's arrival time of the webhook whose
//!    `incident.title` is `notify-bench <n>` minus the moment the POST of alert `n` was
//!    started (one process, one monotonic clock). It covers HTTP ingestion, the durable
//!    commit of alert + incident + event + planned delivery, the outbox worker waking,
//!    rendering, HMAC signing and the outbound POST.
//!
//! It prints p50/p90/p99/max of that latency, of the ingest POST alone (request start to
//! answer), how many notifications arrived, and whether the target p99 <= 50 ms was met.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use incidentd::config::Config;
use incidentd::daemon;
use incidentd::domain::clock::SystemClock;
use serde_json::{Value, json};
use tokio::task::JoinSet;

const PASSWORD: &str = "bench-admin-password";
const TARGET_P99_MS: f64 = 50.0;

type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

async fn receive(State(arrivals): State<Arrivals>, body: Bytes) -> &'static str {
    let at = Instant::now();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(n) = v["incident"]["title"]
        .as_str()
        .and_then(|t| t.rsplit_once("notify-bench ").map(|(_, n)| n))
        .and_then(|n| n.parse::<u64>().ok())
    {
        arrivals.lock().expect("arrivals").entry(n).or_insert(at);
    }
    "{}"
}

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

fn alert(n: u64) -> Value {
    let labels = json!({"alertname": "notify-bench", "severity": "critical", "n": n.to_string()});
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{n=\"{n}\"}}"),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "incidentd",
        "groupLabels": {"n": n.to_string()},
        "commonLabels": labels,
        "commonAnnotations": {"summary": format!("notify-bench {n}")},
        "externalURL": "http://alertmanager.invalid:9093",
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": format!("notify-bench {n}")},
            "startsAt": chrono::Utc::now().to_rfc3339(),
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.invalid:9090/graph",
            "fingerprint": format!("{n:016x}")
        }]
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentiles(mut v: Vec<Duration>) -> Option<(f64, f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort();
    let p = |q: f64| ms(v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]);
    Some((p(0.50), p(0.90), p(0.99), ms(*v.last().expect("non-empty"))))
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Retries and failures of the outbox show on stderr (INCIDENTD_LOG overrides).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("INCIDENTD_LOG").unwrap_or_else(|_| "warn,incidentd::engine=info".into()),
        ))
        .with_writer(std::io::stderr)
        .init();
    let rate = env_num("NOTIFY_BENCH_RATE", 100);
    let secs = env_num("NOTIFY_BENCH_SECS", 30);
    let total = rate * secs;

    // The receiver.
    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_addr = listener.local_addr()?;
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(arrivals.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    // The daemon.
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

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let admin = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let integration: Value = http
        .post(format!("{base}/api/v1/integrations"))
        .bearer_auth(&admin)
        .json(&json!({"name": "notify-bench", "kind": "alertmanager"}))
        .send()
        .await?
        .json()
        .await?;
    let token = integration["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no integration token: {integration}"))?
        .to_owned();
    let rule = http
        .post(format!("{base}/api/v1/notification-rules"))
        .bearer_auth(&admin)
        .json(&json!({"name": "bench", "events": ["incident.opened"],
            "targets": [{"kind": "webhook", "url": format!("http://{receiver_addr}/hook"), "secret": "bench-secret"}]}))
        .send()
        .await?;
    anyhow::ensure!(rule.status().is_success(), "rule: {}", rule.text().await?);
    let hook = format!("{base}/hooks/alertmanager/{token}");

    println!(
        "notify_latency: {rate} alerts/s for {secs} s ({total} alerts) -> incident.opened -> webhook"
    );
    println!(
        "daemon {base}, receiver http://{receiver_addr}/hook, store in {}",
        dir.path().display()
    );

    // Warm-up: a few alerts outside the measurement (connections, caches).
    for n in 0..20u64 {
        let _ = http.post(&hook).json(&alert(1_000_000 + n)).send().await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The load: one POST every 1/rate s, on schedule.
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let mut tasks = JoinSet::new();
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut failures = 0usize;
    let mut ingest = Vec::new();
    for n in 0..total {
        tokio::time::sleep_until(start + period * n as u32).await;
        let (http, hook, sent) = (http.clone(), hook.clone(), sent.clone());
        let body = serde_json::to_vec(&alert(n))?;
        tasks.spawn(async move {
            let t0 = Instant::now();
            sent.lock().expect("sent").insert(n, t0);
            let res = http
                .post(&hook)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let ok = matches!(&res, Ok(r) if r.status().is_success());
            (ok, t0.elapsed())
        });
        while let Some(r) = tasks.try_join_next() {
            match r {
                Ok((true, took)) => ingest.push(took),
                _ => failures += 1,
            }
        }
    }
    let send_wall = start.elapsed();
    for r in tasks.join_all().await {
        if r.0 {
            ingest.push(r.1);
        } else {
            failures += 1;
        }
    }

    // Wait for the stragglers (at most 20 s: a retried delivery waits about 5 s). Only the
    // measured alerts count: the warm-up ones arrive too.
    let deadline = Instant::now() + Duration::from_secs(20);
    let measured_arrived = || {
        let arrived = arrivals.lock().expect("arrivals");
        (0..total).filter(|n| arrived.contains_key(n)).count()
    };
    while measured_arrived() < total as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = sent.lock().expect("sent").clone();
    let arrived = arrivals.lock().expect("arrivals").clone();
    let latencies: Vec<Duration> = (0..total)
        .filter_map(|n| Some(arrived.get(&n)?.duration_since(*sent.get(&n)?)))
        .collect();

    println!(
        "machine: {} CPUs ({}), {} build",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "sent {total} alerts in {:.1} s ({:.0}/s), {failures} failed POSTs; {} notifications arrived",
        send_wall.as_secs_f64(),
        total as f64 / send_wall.as_secs_f64(),
        latencies.len()
    );
    println!(
        "{:<34} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "case", "p50 ms", "p90 ms", "p99 ms", "max ms", "n"
    );
    let mut p99_end_to_end = f64::INFINITY;
    for (name, v) in [
        ("alert POST -> webhook received", latencies.clone()),
        ("alert POST answered (ingest)", ingest),
    ] {
        let n = v.len();
        if let Some((p50, p90, p99, max)) = percentiles(v) {
            if name.starts_with("alert POST ->") {
                p99_end_to_end = p99;
            }
            println!("{name:<34} {p50:>8.2} {p90:>8.2} {p99:>8.2} {max:>8.2} {n:>7}");
        }
    }
    if latencies.len() < total as usize {
        let missing: Vec<u64> = (0..total)
            .filter(|n| !arrived.contains_key(n))
            .take(10)
            .collect();
        println!("missing (first 10): {missing:?}");
        for status in ["pending", "failed", "dead"] {
            let log: Value = http
                .get(format!(
                    "{base}/api/v1/notifications?status={status}&limit=500"
                ))
                .bearer_auth(&admin)
                .send()
                .await?
                .json()
                .await?;
            let items = log["items"].as_array().cloned().unwrap_or_default();
            println!("deliveries {status}: {}", items.len());
            for d in items.iter().take(5) {
                println!("  {d}");
            }
        }
    }
    let complete = latencies.len() == total as usize && failures == 0;
    println!(
        "target p99 <= {TARGET_P99_MS} ms with every notification delivered: {}",
        if complete && p99_end_to_end <= TARGET_P99_MS {
            "met"
        } else {
            "MISSED"
        }
    );
    running.stop().await;
    Ok(())
}
