//! Load generator for the alert webhooks: posts Alertmanager v4 webhooks to a URL from
//! many connections for a while, then prints throughput and latency.
//!
//! Usage:
//!
//! ```text
//! cargo run --release --example loadgen -- \
//!     --url http://127.0.0.1:8080/hooks/alertmanager/<token> \
//!     [--alerts-per-request 1] [--new-share 1.0] [--concurrency 16] [--duration 10] \
//!     [--groups 10] [--bearer <token>]
//! ```
//!
//! - `--url`: the webhook (`POST /hooks/alertmanager/{token}`; with `--bearer`, the token
//!   goes in `Authorization: Bearer` and the URL is `/hooks/alertmanager`). Create the
//!   integration first: `POST /api/v1/integrations {"name": "load", "kind": "alertmanager"}`.
//! - `--alerts-per-request N`: alerts in each webhook (default 1).
//! - `--new-share S` (0..1): share of the alerts in a request that carry a fingerprint never
//!   sent before; the rest repeat alerts this connection already sent (re-sends, the
//!   dedup path). Default 1 (every alert new).
//! - `--concurrency C`: connections, each sending one request after the other (default 16).
//! - `--duration D`: seconds to run (default 10; `10s` works too).
//! - `--groups G`: alert names (`Load0`..`Load{G-1}`); each request is one group with a
//!   `groupKey` per alert name, as Alertmanager sends them (default 10).
//!
//! Output: requests, requests/s, alerts/s, latency p50, p99 and max, the count of non-2xx
//! answers (by status) and of transport errors. The exit code is 1 if any request failed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

#[derive(Parser, Debug, Clone)]
#[command(about = "Posts Alertmanager webhooks and measures the answers")]
struct Args {
    /// The webhook URL.
    #[arg(long)]
    url: String,
    /// Alerts per request.
    #[arg(long, default_value_t = 1)]
    alerts_per_request: usize,
    /// Share (0..1) of alerts with a new fingerprint in each request.
    #[arg(long, default_value_t = 1.0)]
    new_share: f64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds to run (`10` or `10s`).
    #[arg(long, default_value = "10", value_parser = parse_secs)]
    duration: Duration,
    /// Alert names, one group (groupKey) each.
    #[arg(long, default_value_t = 10)]
    groups: usize,
    /// Send the token as `Authorization: Bearer`.
    #[arg(long)]
    bearer: Option<String>,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let n = s.trim().trim_end_matches('s');
    n.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("'{s}' is not a number of seconds"))
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    ok: u64,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    alerts_ok: u64,
}

fn alert(worker: usize, seq: u64, j: usize, name: &str) -> Value {
    json!({
        "status": "firing",
        "labels": {"alertname": name, "severity": "critical",
                   "instance": format!("host-{worker}-{seq}-{j}:9100"), "job": "loadgen"},
        "annotations": {"summary": format!("load alert {worker}/{seq}/{j}"),
                        "description": "synthetic load from examples/loadgen.rs"},
        "startsAt": "2030-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph"
    })
}

fn webhook(name: &str, alerts: Vec<Value>) -> Value {
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "incidentd",
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": alerts
    })
}

async fn worker(id: usize, args: Arc<Args>, client: reqwest::Client, until: Instant) -> Tally {
    let mut t = Tally::default();
    let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
    let groups = args.groups.max(1);
    // (seq, j) of the alerts this connection sent, per group, for re-sends: a re-sent
    // alert keeps its name, so it goes out in a request of its own group.
    let mut sent: Vec<Vec<(u64, usize)>> = vec![Vec::new(); groups];
    let mut seq = 0u64;
    while Instant::now() < until {
        seq += 1;
        let g = (seq as usize + id) % groups;
        let name = format!("Load{g}");
        let mut alerts = Vec::with_capacity(args.alerts_per_request);
        for j in 0..args.alerts_per_request {
            let pool = &mut sent[g];
            if !pool.is_empty() && rng.random::<f64>() >= args.new_share {
                let (s, k) = pool[rng.random_range(0..pool.len())];
                alerts.push(alert(id, s, k, &name));
            } else {
                alerts.push(alert(id, seq, j, &name));
                if pool.len() < 10_000 {
                    pool.push((seq, j));
                }
            }
        }
        let n = alerts.len() as u64;
        let body = webhook(&name, alerts).to_string();
        let mut req = client
            .post(&args.url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(b) = &args.bearer {
            req = req.bearer_auth(b);
        }
        let started = Instant::now();
        match req.send().await {
            Ok(res) => {
                let status = res.status();
                let read = res.bytes().await;
                t.latencies_us.push(started.elapsed().as_micros() as u64);
                if status.is_success() && read.is_ok() {
                    t.ok += 1;
                    t.alerts_ok += n;
                } else {
                    *t.statuses.entry(status.as_u16()).or_default() += 1;
                }
            }
            Err(_) => {
                t.latencies_us.push(started.elapsed().as_micros() as u64);
                t.errors += 1;
            }
        }
    }
    t
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = Arc::new(Args::parse());
    if !(0.0..=1.0).contains(&args.new_share) {
        eprintln!("--new-share must be between 0 and 1");
        std::process::exit(2);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let started = Instant::now();
    let until = started + args.duration;
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|i| tokio::spawn(worker(i, args.clone(), client.clone(), until)))
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await.expect("worker");
        all.latencies_us.extend(t.latencies_us);
        all.ok += t.ok;
        all.alerts_ok += t.alerts_ok;
        all.errors += t.errors;
        for (s, n) in t.statuses {
            *all.statuses.entry(s).or_default() += n;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let total = all.latencies_us.len() as u64;
    let non_2xx: u64 = all.statuses.values().sum();
    println!(
        "url={} alerts/request={} new-share={} concurrency={} duration={:.1}s",
        args.url, args.alerts_per_request, args.new_share, args.concurrency, secs
    );
    println!(
        "requests={total} ok={} req/s={:.0} alerts/s={:.0} p50={:.2}ms p99={:.2}ms max={:.2}ms non-2xx={non_2xx} {:?} errors={}",
        all.ok,
        total as f64 / secs,
        all.alerts_ok as f64 / secs,
        pct(&all.latencies_us, 0.50),
        pct(&all.latencies_us, 0.99),
        all.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0,
        all.statuses,
        all.errors
    );
    if non_2xx > 0 || all.errors > 0 {
        std::process::exit(1);
    }
}
