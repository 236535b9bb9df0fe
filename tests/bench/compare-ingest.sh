#!/usr/bin/env bash
# compare-ingest.sh BEFORE_CHECKOUT AFTER_CHECKOUT [ROUNDS]: ingest of two builds of sealtrail on
# one host, alternating, so that drift of the host's speed hits both: in-process durable ingest
# (`cargo bench --bench ingest`, redb) and HTTP appends over 127.0.0.1 (single entries from 64
# clients, and batches of 1000 from 8 clients, 256-byte JSON, 10 s each, redb).
#
# Each checkout must have been built first, in release:
#   cargo build --release --locked -p sealtrail-server -p sealtrail-tests --bin sealtrail --bin sealtrail-loadgen
#   cargo bench -p sealtrail-server --bench ingest --no-run
# Prints one line per measurement. Bounded: ROUNDS (default 3) x 2 builds x 3 runs.
set -euo pipefail
before=$1 after=$2 rounds=${3:-3}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

ingest_bin() { ls -t "$1"/target/release/deps/ingest-* | grep -v '\.d$' | head -1; }

http_run() { # CHECKOUT NAME LOADGEN-ARGS...
  local co=$1 name=$2; shift 2
  local dir="$tmp/$name"
  mkdir -p "$dir"
  printf '[limits]\nip_rate_per_sec = 0.0\nprincipal_rate_per_sec = 0.0\n' > "$dir/bench.toml"
  "$co/target/release/sealtrail" serve --config "$dir/bench.toml" --data-dir "$dir/data" \
    --listen 127.0.0.1:0 --origin bench.sealtrail.example/log --log warn > "$dir/stdout" 2> "$dir/stderr" &
  local pid=$! url=""
  for _ in $(seq 300); do
    url=$(sed -n 's/^sealtrail: listening on \(http:[^ ]*\)$/\1/p' "$dir/stdout")
    [ -n "$url" ] && break
    sleep 0.1
  done
  "$co/target/release/sealtrail-loadgen" --url "$url" --server-pid "$pid" "$@" > "$dir/out.json"
  kill "$pid"; wait "$pid" || true
  sed -n 's/^ *"entries_per_s": \([0-9.]*\),*$/\1/p' "$dir/out.json" | head -1
  rm -rf "$dir"
}

for r in $(seq "$rounds"); do
  for side in before after; do
    co=${!side}
    ing=$("$(ingest_bin "$co")" --bench redb 2>/dev/null | awk '/redb/ {print $(NF-6)}' | paste -sd' ')
    app=$(http_run "$co" "$side-append-$r" --mode append --concurrency 64 --threads 2 --payload-bytes 256 --duration 10)
    bat=$(http_run "$co" "$side-batch-$r" --mode batch --batch 1000 --concurrency 8 --payload-bytes 256 --duration 10)
    echo "round $r $side: in-process entries/s (1, 100, 1000 per request): $ing | HTTP appends/s: $app | HTTP batch entries/s: $bat"
  done
done
