#!/usr/bin/env bash
# Alert ingestion throughput: incidentd's Alertmanager webhook vs Prometheus Alertmanager's
# own `POST /api/v2/alerts`, on this machine, in one run, with the same tool and flags
# (oha -z $DUR -c $CONC), NEW alerts in every request, 1 and 100 alerts per request.
#
#   bench/ingest-vs-alertmanager.sh [OUT_DIR]
#
# Env: DUR (10s), CONCS ("16"; e.g. "16 64"), ROUNDS (1), AM_PORT (19093),
#      PORT (18080 for incidentd), SCENARIOS ("1-unique 100-unique"),
#      SKIP_AM=1 (only incidentd), LINES_1 (600000),
#      LINES_100 (12000): request bodies generated for incidentd (cycled by oha if it sends
#      more, which would turn new alerts into re-sends: the script warns).
# Needs: prometheus-alertmanager (apt), oha (cargo install oha --locked), jq, python3, curl.
#
# The anchor is bench/alertmanager-bench.sh (a copy of the shared tool): a fresh
# Alertmanager per scenario, cluster off, a receiver with no integrations. Each scenario
# runs Alertmanager then incidentd back to back, so that both see the same machine load
# (on a shared machine, repeat with ROUNDS=3).
#
# Our side: `cargo build --release`, a fresh data dir per scenario, `incidentd serve`, one
# alertmanager integration, and oha posting Alertmanager v4 webhooks to its URL. The alerts
# mirror alertmanager-bench.sh's (same labels, annotations, sizes); each webhook is one
# group with `groupKey` {}:{alertname="BenchN"} and Alertmanager's fingerprints, as
# Alertmanager would send it. With 100 per request, the 100 alerts of request i share the
# name Bench{i%10} (one group per webhook); with 1 per request, as in the anchor, every
# alert is Bench0. Every 2xx means the alerts are durably stored (fsync'd), which
# Alertmanager (in memory) does not do.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-$(mktemp -d /tmp/ingest-bench.XXXXXX)}"
DUR="${DUR:-10s}"
CONCS="${CONCS:-${CONC:-16}}"
ROUNDS="${ROUNDS:-1}"
PORT="${PORT:-18080}"
SCENARIOS="${SCENARIOS:-1-unique 100-unique}"
LINES_1="${LINES_1:-600000}"
LINES_100="${LINES_100:-12000}"
OHA="$(command -v oha || echo "$HOME/.cargo/bin/oha")"
PASSWORD="bench-admin-password"
mkdir -p "$OUT"
for tool in jq python3 curl; do command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }; done
[[ -x "$OHA" ]] || { echo "needs oha: cargo install oha --locked" >&2; exit 2; }

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(uname -r)" | tee "$OUT/machine.txt"

# 2. incidentd.
cargo build --release --quiet --bin incidentd
BIN="${CARGO_TARGET_DIR:-target}/release/incidentd"

python3 - "$OUT" "$LINES_1" "$LINES_100" <<'PY'
import hashlib, json, os, sys
out, n1, n100 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def alert(i, j, name):
    labels = {"alertname": name, "severity": "critical",
              "instance": f"host-{i}-{j}:9100", "job": "bench"}
    fp = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    return {"status": "firing", "labels": labels,
            "annotations": {"summary": f"bench alert {i}/{j}",
                            "description": "synthetic load from alertmanager-bench.sh"},
            "startsAt": "2025-11-24T09:12:31.482Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": fp}
def webhook(name, alerts):
    return {"receiver": "incidentd", "status": "firing", "alerts": alerts,
            "groupLabels": {"alertname": name},
            "commonLabels": {"alertname": name, "job": "bench", "severity": "critical"},
            "commonAnnotations": {"description": "synthetic load from alertmanager-bench.sh"},
            "externalURL": "http://127.0.0.1:9093", "version": "4",
            "groupKey": "{}:{alertname=\"%s\"}" % name, "truncatedAlerts": 0}
with open(os.path.join(out, "webhook-1.lines"), "w") as f:
    for i in range(n1):
        f.write(json.dumps(webhook("Bench0", [alert(i + 1, 0, "Bench0")]), separators=(",", ":")) + "\n")
with open(os.path.join(out, "webhook-100.lines"), "w") as f:
    for i in range(n100):
        name = f"Bench{(i + 1) % 10}"
        f.write(json.dumps(webhook(name, [alert(i + 1, j, name) for j in range(100)]), separators=(",", ":")) + "\n")
PY

PID=""
cleanup() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=""; }
trap cleanup EXIT

start_incidentd() {
  rm -rf "$OUT/data-$1"; mkdir -p "$OUT/data-$1"
  INCIDENTD_LISTEN="127.0.0.1:$PORT" INCIDENTD_DATA_DIR="$OUT/data-$1" \
  INCIDENTD_ADMIN_PASSWORD="$PASSWORD" INCIDENTD_LOG=warn \
    "$BIN" serve >"$OUT/incidentd-$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "incidentd did not start" >&2; cat "$OUT/incidentd-$1.log" >&2; exit 1
}

# One oha result as a table row: target scenario conc req/s alerts/s p50 p90 p99 ok% rss
row() { # JSON TARGET SCENARIO CONC N RSS
  jq -r --arg t "$2" --arg sc "$3" --arg c "$4" --arg n "$5" --arg rss "$6" '
    . as $r | ($r.summary.requestsPerSec) as $rps |
    [$t, $sc, $c, ($rps|floor), (($rps * ($n|tonumber))|floor),
     ($r.latencyPercentiles.p50*1000*100|round/100),
     ($r.latencyPercentiles.p90*1000*100|round/100),
     ($r.latencyPercentiles.p99*1000*100|round/100),
     ($r.summary.successRate*100*10|round/10), $rss] | @tsv' "$1" |
    awk -F'\t' '{printf "%-13s %-11s %5s %9s %10s %9s %9s %9s %7s %7s\n",$1,$2,$3,$4,$5,$6,$7,$8,$9,$10}'
}
# Answers that were not 2xx, and transport errors other than oha's own cut-off at the
# deadline (in-flight requests it abandons when the duration is over, for both targets).
failures() {
  jq -r '[([.statusCodeDistribution | to_entries[] | select(.key|test("^2")|not) | .value] | add // 0),
          ([.errorDistribution | to_entries[] | select(.key != "aborted due to deadline") | .value] | add // 0),
          ([.statusCodeDistribution[]] | add // 0)] | @tsv' "$1"
}

printf '%-13s %-11s %5s %9s %10s %9s %9s %9s %7s %7s\n' target scenario conc req/s alerts/s p50_ms p90_ms p99_ms ok% rss_MB | tee "$OUT/summary.txt"
for round in $(seq 1 "$ROUNDS"); do
for conc in $CONCS; do
for sc in $SCENARIOS; do
  n="${sc%%-*}"
  if [[ "${SKIP_AM:-0}" != 1 ]]; then
    amdir="$OUT/alertmanager-r$round-c$conc-$sc"
    SCENARIOS="$sc" DUR="$DUR" CONC="$conc" bench/alertmanager-bench.sh "$amdir" >/dev/null
    amrss=$(awk -v s="$sc" '$1==s{print $9}' "$amdir/summary.txt")
    row "$amdir/$sc.json" alertmanager "$sc" "$conc" "$n" "$amrss" | tee -a "$OUT/summary.txt"
    read -r bad errs answered < <(failures "$amdir/$sc.json")
    echo "   (alertmanager: $answered answered, non-2xx $bad, errors $errs)" >> "$OUT/notes.txt"
  fi
  tag="r$round-c$conc-$sc"
  start_incidentd "$tag"
  ACCESS=$(curl -fsS -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" "http://127.0.0.1:$PORT/api/v1/auth/login" | jq -r .access_token)
  TOKEN=$(curl -fsS -H "authorization: Bearer $ACCESS" -H 'content-type: application/json' \
    -d '{"name":"bench","kind":"alertmanager"}' "http://127.0.0.1:$PORT/api/v1/integrations" | jq -r .token)
  URL="http://127.0.0.1:$PORT/hooks/alertmanager/$TOKEN"
  CMD=("$OHA" --no-tui -z "$DUR" -c "$conc" -m POST -T application/json -Z "$OUT/webhook-$n.lines" --output-format json "$URL")
  echo "${CMD[*]}" | sed "s/$TOKEN/<token>/" > "$OUT/incidentd-$tag.cmd"
  "${CMD[@]}" > "$OUT/incidentd-$tag.json"
  rss=$(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$PID/status")
  curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^incidentd_(alerts_received_total|store_)' > "$OUT/incidentd-$tag.metrics" || true
  cleanup
  row "$OUT/incidentd-$tag.json" incidentd "$sc" "$conc" "$n" "$rss" | tee -a "$OUT/summary.txt"
  read -r bad errs answered < <(failures "$OUT/incidentd-$tag.json")
  lines=$(wc -l < "$OUT/webhook-$n.lines")
  echo "   (incidentd $tag: $answered answered, non-2xx $bad, errors $errs; $(tr '\n' ' ' < "$OUT/incidentd-$tag.metrics"))" >> "$OUT/notes.txt"
  if (( bad + errs > 0 )); then
    echo "   WARNING incidentd $tag: $bad non-2xx, $errs errors" | tee -a "$OUT/summary.txt"
  fi
  if (( answered > lines )); then
    echo "   WARNING incidentd $tag: $answered requests > $lines distinct bodies: some were re-sends (raise LINES_$n)" | tee -a "$OUT/summary.txt"
  fi
done
done
done
cat "$OUT/notes.txt"

# Side by side (each incidentd row against the Alertmanager row just before it).
if [[ "${SKIP_AM:-0}" != 1 ]]; then
  echo "== incidentd / alertmanager: alerts/s ratio (target >= 1.5), p99 ms (target: not worse)" | tee "$OUT/ratio.txt"
  awk '$1=="alertmanager"{a=$0; next} $1=="incidentd" && a!=""{split(a,A," "); split($0,U," ");
       printf "%-11s c=%-4s %9s vs %9s alerts/s = %.2fx   p99 %s vs %s ms %s\n", U[2], U[3], U[5], A[5], U[5]/A[5], U[8], A[8],
              (U[5]/A[5] >= 1.5 && U[8]+0 <= A[8]+0) ? "MET" : "MISSED"; a=""}' "$OUT/summary.txt" | tee -a "$OUT/ratio.txt"
fi
echo "results in $OUT"
