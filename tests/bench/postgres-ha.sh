#!/usr/bin/env bash
# postgres-ha.sh: sealtrail on PostgreSQL, measured in one run beside pgbench on the same host.
#
#   1. pgbench: one durable INSERT per transaction, 64 clients (the baseline of issue 21).
#   2. Single-entry appends through TWO sealtrail instances on one database (32 clients each,
#      256-byte JSON), and through one instance (64 clients).
#   3. Batches of 1000 entries through one instance (8 clients) and through two (4 clients each).
#   4. Reads on a log of LOG_ENTRIES entries: inclusion proofs, consistency proofs and level-0
#      tiles (64 clients), on PostgreSQL and on redb, built the same way.
#
# Usage (from anywhere in the repository), after a release build of the server and loadgen:
#   cargo build --release --locked -p sealtrail-server -p sealtrail-tests --bin sealtrail --bin sealtrail-loadgen
#   tests/bench/postgres-ha.sh
# Settings: DURATION (s per scenario, default 10), LOG_ENTRIES (default 1000000), OUT (default
# target/bench-postgres). Needs PostgreSQL's server binaries (apt-get install postgresql).
# Bounded: a fixed number of runs of DURATION seconds, plus building the read logs.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
LOG_ENTRIES=${LOG_ENTRIES:-1000000}
OUT=${OUT:-target/bench-postgres}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
SERVER=target/release/sealtrail
LOADGEN=target/release/sealtrail-loadgen
ORIGIN=bench.sealtrail.example/log
DATA=$(mktemp -d)
PIDS=()
PG_STOP=""
RESULTS="$OUT/results.txt"
: > "$RESULTS"
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$PG_STOP" ]; then eval "$PG_STOP" >/dev/null 2>&1 || true; fi
  rm -rf "$DATA"
}
trap cleanup EXIT
say() { printf '\n==> %s\n' "$*" >&2; }
result() { echo "$*" | tee -a "$RESULTS"; }
json_num() { sed -n "s/^ *\"$2\": \([0-9.e+-]*\),\{0,1\}$/\1/p" "$1" | head -1; }

# --- PostgreSQL: a throwaway cluster, fsync and synchronous_commit on -------------------------
# shellcheck source=tests/bench/pg-cluster.sh
. tests/bench/pg-cluster.sh
PGDIR="$DATA/pg"
pg_start "$PGDIR" "-c listen_addresses='' -c max_connections=200 -c shared_buffers=512MB"
PSQL=("$PGBIN/psql" -h "$PGDIR" -p "$PGPORT" -U bench -v ON_ERROR_STOP=1 -q)
newdb() { "${PSQL[@]}" -d postgres -c "CREATE DATABASE $1"; echo "host=$PGDIR port=$PGPORT user=bench dbname=$1"; }

# start NAME ENGINE [PG_URL]: a server; sets SPID and SURL.
start() {
  local name=$1 engine=$2 url=${3:-} dir="$DATA/$1"
  mkdir -p "$dir"
  {
    printf 'origin = "%s"\nstore = "%s"\n[limits]\nip_rate_per_sec = 0.0\nprincipal_rate_per_sec = 0.0\n' "$ORIGIN" "$engine"
    [ -z "$url" ] || printf '[postgres]\nurl = "%s"\npool_size = 8\n' "$url"
  } > "$dir/config.toml"
  [ -f "$DATA/log.key" ] || "$SERVER" keygen --origin "$ORIGIN" --out "$DATA/log.key" > /dev/null
  "$SERVER" serve --config "$dir/config.toml" --data-dir "$dir/data" --key-file "$DATA/log.key" \
    --listen 127.0.0.1:0 --log warn > "$dir/stdout" 2> "$dir/stderr" &
  local pid=$! u=""
  PIDS+=("$pid")
  for _ in $(seq 300); do
    u=$(sed -n 's/^sealtrail: listening on \(http:[^ ]*\)$/\1/p' "$dir/stdout")
    [ -n "$u" ] && { SPID=$pid; SURL=$u; return 0; }
    sleep 0.1
  done
  cat "$dir/stderr" >&2; exit 1
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
SPID="" SURL=""

# loadgen NAME PID URL ARGS...: one run, summary in $OUT/NAME.json; prints entries/s or requests/s.
loadgen() {
  local name=$1 pid=$2 url=$3; shift 3
  "$LOADGEN" --url "$url" --server-pid "$pid" "$@" > "$OUT/$name.json" || { echo "FAILED: $name" >&2; cat "$OUT/$name.json" >&2; exit 1; }
  local r; r=$(json_num "$OUT/$name.json" entries_per_s)
  # Reads append nothing: their rate is requests.
  if [ -z "$r" ] || [ "${r%.*}" = 0 ]; then r=$(json_num "$OUT/$name.json" requests_per_s); fi
  echo "${r%.*}"
}
p99() { sed -n '/"latency_ms"/,/}/p' "$OUT/$1.json" | sed -n 's/^ *"p99": \([0-9.]*\),*$/\1/p' | head -1; }

# --- 1. pgbench --------------------------------------------------------------------------------
say "pgbench: one durable INSERT per transaction, 64 clients"
"${PSQL[@]}" -d postgres -c "CREATE TABLE audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), payload jsonb NOT NULL)"
PAD=$(printf 'x%.0s' $(seq 227))
cat > "$DATA/insert.sql" <<EOF
\set seq random(1, 1000000000)
INSERT INTO audit (payload) VALUES (('{"seq":"' || lpad(:seq::text, 10, '0') || '","pad":"$PAD"}')::jsonb);
EOF
"$PGBIN/pgbench" -h "$PGDIR" -p "$PGPORT" -U bench -n -c 64 -j 2 -T "$DURATION" -M prepared -f "$DATA/insert.sql" postgres > "$OUT/pgbench.txt" 2>&1
PG_TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/pgbench.txt" | head -1)
result "pgbench, 64 clients, durable INSERT: ${PG_TPS%.*} transactions/s"

# --- 2. single appends -------------------------------------------------------------------------
say "single-entry appends through two instances (32 clients each)"
URL=$(newdb singles2)
start s2a postgres "$URL"; P1=$SPID; U1=$SURL
start s2b postgres "$URL"; P2=$SPID; U2=$SURL
loadgen single2-a "$P1" "$U1" --mode append --concurrency 32 --payload-bytes 256 --duration "$DURATION" --post-check 20 > "$DATA/r1" &
L1=$!
loadgen single2-b "$P2" "$U2" --mode append --concurrency 32 --payload-bytes 256 --duration "$DURATION" --post-check 20 > "$DATA/r2" &
L2=$!
wait "$L1" "$L2"
R1=$(cat "$DATA/r1"); R2=$(cat "$DATA/r2")
result "single appends through two instances, 2 x 32 clients: $(( R1 + R2 )) entries/s ($R1 + $R2; p99 $(p99 single2-a) / $(p99 single2-b) ms) = $(awk -v a=$(( R1 + R2 )) -v p="$PG_TPS" 'BEGIN { printf "%.2f", a / p }') x pgbench"
stop "$P1"; stop "$P2"
say "single-entry appends through one instance (64 clients)"
start s1 postgres "$(newdb singles1)"; P=$SPID; U=$SURL
R=$(loadgen single1 "$P" "$U" --mode append --concurrency 64 --threads 2 --payload-bytes 256 --duration "$DURATION")
result "single appends through one instance, 64 clients: $R entries/s (p99 $(p99 single1) ms)"
stop "$P"

# --- 3. batches --------------------------------------------------------------------------------
say "batches of 1000"
start b1 postgres "$(newdb batch1)"; P=$SPID; U=$SURL
R=$(loadgen batch1 "$P" "$U" --mode batch --batch 1000 --concurrency 8 --payload-bytes 256 --duration "$DURATION")
result "batches of 1000 through one instance, 8 clients: $R entries/s"
stop "$P"
URL=$(newdb batch2)
start b2a postgres "$URL"; P1=$SPID; U1=$SURL
start b2b postgres "$URL"; P2=$SPID; U2=$SURL
loadgen batch2-a "$P1" "$U1" --mode batch --batch 1000 --concurrency 4 --payload-bytes 256 --duration "$DURATION" > "$DATA/r1" &
L1=$!
loadgen batch2-b "$P2" "$U2" --mode batch --batch 1000 --concurrency 4 --payload-bytes 256 --duration "$DURATION" > "$DATA/r2" &
L2=$!
wait "$L1" "$L2"
R1=$(cat "$DATA/r1"); R2=$(cat "$DATA/r2")
result "batches of 1000 through two instances, 2 x 4 clients: $(( R1 + R2 )) entries/s ($R1 + $R2)"
stop "$P1"; stop "$P2"

# --- 4. reads on the same log size, PostgreSQL and redb --------------------------------------
for engine in postgres redb; do
  say "reads on a $LOG_ENTRIES-entry log ($engine)"
  if [ "$engine" = postgres ]; then start "read-$engine" postgres "$(newdb reads)"; else start "read-$engine" redb; fi
  P=$SPID; U=$SURL
  loadgen "build-$engine" "$P" "$U" --mode batch --batch 1000 --concurrency 4 --payload-bytes 256 \
    --count $(( LOG_ENTRIES / 1000 )) --post-check 10 > /dev/null
  for mode in inclusion consistency tiles; do
    # The first run warms the caches; the second is the one reported.
    loadgen "$mode-$engine-warmup" "$P" "$U" --mode "$mode" --concurrency 64 --duration "$DURATION" > /dev/null
    R=$(loadgen "$mode-$engine" "$P" "$U" --mode "$mode" --concurrency 64 --duration "$DURATION")
    eval "READ_${mode}_${engine}=$R"
    result "$mode on a $LOG_ENTRIES-entry log, 64 clients, $engine: $R requests/s (p99 $(p99 "$mode-$engine") ms)"
  done
  stop "$P"
done
for mode in inclusion consistency tiles; do
  pg=$(eval echo "\$READ_${mode}_postgres"); rd=$(eval echo "\$READ_${mode}_redb")
  result "$mode: postgres / redb = $(awk -v a="$pg" -v b="$rd" 'BEGIN { printf "%.2f", a / b }')"
done
echo
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ); $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)); PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on the same host"
echo "results: $RESULTS; each run's summary in $OUT/*.json"
