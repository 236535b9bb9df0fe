#!/usr/bin/env bash
# attacks.sh [CHECKOUT] [SECONDS]: the resource-exhaustion attacks of `sealtrail-loadgen --attack`
# against a fresh release server on 127.0.0.1 with default limits, one server per scenario:
# unread responses (150 connections), unfinished 8 MiB bodies (300) and idle sockets (4200),
# then the unfinished bodies and idle sockets against a witness. Prints each report (JSON) and a
# summary line: the target's memory before, at its peak and after, /livez and append latency, and
# failures. CHECKOUT (default .) must have been built first, in release:
#   cargo build --release --locked -p sealtrail-server -p sealtrail-witness -p sealtrail-tests \
#     --bin sealtrail --bin sealtrail-witness --bin sealtrail-loadgen
# SERVER_ATTACKS and WITNESS_ATTACKS (space-separated scenario names, may be empty) pick a subset.
# Bounded: SECONDS (default 20) of attack per scenario, plus at most 90 s of watching after each.
set -euo pipefail
co=${1:-.} secs=${2:-20}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

wait_url() { # FILE
  local url=""
  for _ in $(seq 300); do
    url=$(sed -n 's/^sealtrail[a-z-]*: listening on \(http:[^ ]*\)$/\1/p' "$1" | head -1)
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "no listening line in $1" >&2; cat "$1" >&2; exit 1; }
  echo "$url"
}

summary() { # NAME REPORT
  jq -r --arg n "$1" '"\($n): rss \(.rss_baseline_mib|floor) -> peak \(.rss_peak_mib|floor) -> after \(.rss_after_mib|floor) MiB (in \(.settle_s*10|floor/10) s; then at most \(.rss_linger_max_mib|floor)); livez p50 \(.livez.latency_ms.p50) p99 \(.livez.latency_ms.p99) max \(.livez.latency_ms.max) ms, \(.livez.failed) failed; appends ok \(.appends.ok) failed \(.appends.failed) p99 \(.appends.latency_ms.p99) ms; attack: \(.opened) opened, \(.open_peak) open at once, \(.refused) refused"' "$2"
}

server() { # SCENARIO
  local dir="$tmp/$1"
  mkdir -p "$dir"
  "$co/target/release/sealtrail" serve --data-dir "$dir/data" --listen 127.0.0.1:0 \
    --origin attack.sealtrail.example/log --log warn > "$dir/stdout" 2> "$dir/stderr" &
  local pid=$! url
  url=$(wait_url "$dir/stdout")
  "$co/target/release/sealtrail-loadgen" --attack "$1" --url "$url" --server-pid "$pid" \
    --duration "$secs" > "$dir/report.json" || true
  kill "$pid"; wait "$pid" || true
  cat "$dir/report.json"
  summary "server $1" "$dir/report.json" >> "$tmp/summary"
}

witness() { # SCENARIO
  local dir="$tmp/witness-$1"
  mkdir -p "$dir"
  "$co/target/release/sealtrail-witness" keygen --name attack.witness.example \
    --out "$dir/witness.key" > /dev/null
  cat > "$dir/witness.toml" <<TOML
name = "attack.witness.example"
key_file = "$dir/witness.key"
data_dir = "$dir/data"
listen = "127.0.0.1:0"
TOML
  "$co/target/release/sealtrail-witness" serve --config "$dir/witness.toml" > "$dir/stdout" 2> "$dir/stderr" &
  local pid=$! url
  url=$(wait_url "$dir/stdout")
  "$co/target/release/sealtrail-loadgen" --attack "$1" --url "$url" --server-pid "$pid" \
    --duration "$secs" --no-appends --attack-path /add-checkpoint --body-bytes 131072 \
    > "$dir/report.json" || true
  kill "$pid"; wait "$pid" || true
  cat "$dir/report.json"
  summary "witness $1" "$dir/report.json" >> "$tmp/summary"
}

for s in ${SERVER_ATTACKS-unread-responses slow-bodies idle-sockets}; do server "$s"; done
for s in ${WITNESS_ATTACKS-slow-bodies idle-sockets}; do witness "$s"; done
echo
cat "$tmp/summary"
