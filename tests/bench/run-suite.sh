#!/usr/bin/env bash
# sealtrail's benchmark suite: one command, every scenario against a fresh release-built server on
# 127.0.0.1, a PostgreSQL baseline and this machine's physical limits, written as a results table
# (Markdown and JSON) with the CPU, core count and date.
#
# Usage (from anywhere in the repository):
#   tests/bench/run-suite.sh            # the full suite (about 15-25 minutes on 2 cores)
#   tests/bench/run-suite.sh --smoke    # seconds per scenario, a tiny log, no PostgreSQL (CI)
#
# Settings (environment variables):
#   DURATION     seconds per measured scenario (default 10; smoke 2)
#   LOG_ENTRIES  size of the log the proof scenarios read (default 10000000; smoke 3000)
#   RSS_AT       log sizes at which the server's RSS and disk use are reported, each at most
#                LOG_ENTRIES (default "1000000 10000000"; smoke "1000 3000")
#   ENGINES      storage engines (default "redb sled")
#   PG           1: run the PostgreSQL baseline (default 1; smoke 0). Needs PostgreSQL's server
#                binaries (Debian: apt-get install postgresql; installed here if missing and root)
#   OUT          results directory (default target/bench-suite)
#   DATA         where the logs and the PostgreSQL cluster live (default: a new temporary directory)
#   PROFILE      cargo profile of the binaries: release (default) or debug (smoke default: the
#                debug binaries `cargo test` has already built, so CI compiles nothing more)
#   SKIP_BUILD   1: use the existing binaries
#
# Exit status: non-zero if a scenario could not run, or if any answer failed or did not verify.
# Goals are judged in the table ("met"), never by the exit status: speed depends on the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."

SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; elif [ -n "${1:-}" ]; then
  echo "usage: $0 [--smoke]" >&2; exit 2
fi
if [ "$SMOKE" = 1 ]; then
  DURATION=${DURATION:-2}; LOG_ENTRIES=${LOG_ENTRIES:-3000}; RSS_AT=${RSS_AT:-"1000 3000"}; PG=${PG:-0}
  PROFILE=${PROFILE:-debug}
else
  DURATION=${DURATION:-10}; LOG_ENTRIES=${LOG_ENTRIES:-10000000}; RSS_AT=${RSS_AT:-"1000000 10000000"}; PG=${PG:-1}
  PROFILE=${PROFILE:-release}
fi
case "$PROFILE" in release|debug) ;; *) echo "PROFILE must be release or debug" >&2; exit 2 ;; esac
ENGINES=${ENGINES:-"redb sled"}
OUT=${OUT:-target/bench-suite}
KEEP_DATA=0
if [ -n "${DATA:-}" ]; then KEEP_DATA=1; mkdir -p "$DATA"; else DATA=$(mktemp -d); fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ROWS="$OUT/rows.jsonl"
: > "$ROWS"
SERVER=target/$PROFILE/sealtrail
LOADGEN=target/$PROFILE/sealtrail-loadgen
ORIGIN=bench.sealtrail.example/log
SERVER_PID=""
PG_STOP=""
FAILED=0

say() { printf '\n==> %s\n' "$*" >&2; }
# shellcheck source=tests/bench/pg-cluster.sh
. tests/bench/pg-cluster.sh

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "$PG_STOP" ]; then eval "$PG_STOP" >/dev/null 2>&1 || true; fi
  if [ "$KEEP_DATA" = 0 ]; then rm -rf "$DATA"; fi
}
trap cleanup EXIT

# A row that is not a load-generator run (the loadgen writes its own with --record).
# fact SCENARIO ENGINE RESULT NOTE
fact() {
  local esc=()
  for v in "$@"; do v=${v//\\/\\\\}; esc+=("${v//\"/\\\"}"); done
  printf '{"scenario":"%s","engine":"%s","result":"%s","note":"%s"}\n' "${esc[@]}" >> "$ROWS"
}

# json_num FILE KEY: a top-level number from a loadgen summary (its keys are unique).
json_num() { sed -n "s/^ *\"$2\": \([0-9.e+-]*\),\{0,1\}$/\1/p" "$1" | head -1; }

# start_server ENGINE DIR [extra args]: sets SERVER_PID and URL.
start_server() {
  local engine=$1 dir=$2; shift 2
  mkdir -p "$dir"
  # One load generator on one address is the whole client population here: the per-IP and
  # per-principal rate limits (abuse protection, 5000/s by default) would measure themselves.
  printf '[limits]\nip_rate_per_sec = 0.0\nprincipal_rate_per_sec = 0.0\n' > "$dir/bench.toml"
  "$SERVER" serve --config "$dir/bench.toml" --data-dir "$dir/data" --listen 127.0.0.1:0 \
    --store "$engine" --origin "$ORIGIN" --log warn "$@" > "$dir/stdout" 2> "$dir/stderr" &
  SERVER_PID=$!
  URL=""
  for _ in $(seq 300); do
    URL=$(sed -n 's/^sealtrail: listening on \(http:[^ ]*\)$/\1/p' "$dir/stdout" 2>/dev/null)
    [ -n "$URL" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "the server did not start:" >&2; cat "$dir/stderr" >&2; exit 1
}

stop_server() {
  kill "${1:--TERM}" "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# loadgen NAME ARGS...: one measured run against $URL; summary in $OUT/NAME.json.
loadgen() {
  local name=$1; shift
  say "$name"
  if ! "$LOADGEN" --url "$URL" --server-pid "$SERVER_PID" --record "$ROWS" "$@" > "$OUT/$name.json"; then
    echo "FAILED: $name (see $OUT/$name.json)" >&2
    FAILED=1
  fi
  grep -E '"(entries_per_s|requests_per_s|errors|verified)"|"p99"' "$OUT/$name.json" | tr -s ' ' >&2 || true
}

# The served tree size, over bash's /dev/tcp (no curl needed): HTTP/1.0, so the server closes.
tree_size() {
  local hp=${URL#http://}
  exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}"
  printf 'GET /v1/log HTTP/1.0\r\nHost: %s\r\n\r\n' "$hp" >&3
  sed -n 's/.*"tree_size":\([0-9]*\).*/\1/p' <&3
  exec 3<&-
}

# metric SERIES: one sample of the server's /metrics (over /dev/tcp, like tree_size), or 0.
metric() {
  local hp=${URL#http://} v
  exec 3<>"/dev/tcp/${hp%:*}/${hp##*:}"
  printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$hp" >&3
  v=$(awk -v s="$1" '$1 == s { print $2 }' <&3)
  exec 3<&-
  echo "${v:-0}"
}

# resident FILE...: how much of the files the page cache holds (fincore, util-linux), or "?". A
# file with holes (redb preallocates) never has all of its size resident.
resident() {
  fincore --bytes --noheadings --output RES,SIZE "$@" 2>/dev/null |
    awk '{ r += $1; s += $2 } END { if (s > 0) printf "%.0f of %.0f MiB", r / 1048576, s / 1048576; else print "?" }'
}

# pg_cpu_ticks PID: CPU clock ticks of PostgreSQL's postmaster PID, of its children that have
# exited (reaped: the backends of closed connections) and of its live children (auxiliary
# processes, backends not yet reaped).
pg_cpu_ticks() {
  local pm=$1 t=0 pid f
  for st in /proc/[0-9]*/stat; do
    f=$(cat "$st" 2>/dev/null) || continue
    pid=${f%% *}
    f=${f##*) }                       # field 3 on: state ppid ... utime(14) stime(15) cutime cstime
    set -- $f
    if [ "$pid" = "$pm" ]; then t=$(( t + ${12} + ${13} + ${14} + ${15} ))
    elif [ "$2" = "$pm" ]; then t=$(( t + ${12} + ${13} )); fi
  done
  echo "$t"
}

kib() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB$/\1/p" "/proc/$1/status"; }

# ---------------------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "$PROFILE build"
  cargo build $([ "$PROFILE" = release ] && echo --release) --locked \
    -p sealtrail-server -p sealtrail-tests --bin sealtrail --bin sealtrail-loadgen
fi

CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
CORES=$(nproc)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
fact "machine" "-" "$CORES cores, ${CPU:-unknown CPU}" "$(uname -sr), $(rustc --version 2>/dev/null || echo rustc ?), load at start $LOAD_START"

# --- physical limits of this box -------------------------------------------------------------
say "physical limits: fsync latency, sequential write bandwidth, SHA-256"
PROBE="$DATA/probe"; mkdir -p "$PROBE"
if [ "$SMOKE" = 1 ]; then SYNCS=200; MIB=64; else SYNCS=2000; MIB=1024; fi
dd_secs() { awk -F', ' '/copied/ { split($(NF-1), a, " "); print a[1] }'; }
SYNC_S=$(dd if=/dev/zero of="$PROBE/sync" bs=4k count=$SYNCS oflag=dsync 2>&1 | dd_secs)
FSYNC_US=$(awk -v s="$SYNC_S" -v n=$SYNCS 'BEGIN { printf "%.0f", s * 1e6 / n }')
fact "fsync latency (4 KiB O_DSYNC writes)" "disk" "$FSYNC_US µs per durable write" "dd oflag=dsync, $SYNCS writes in ${SYNC_S} s: at most $(awk -v u="$FSYNC_US" 'BEGIN { printf "%.0f", 1e6 / (u > 0 ? u : 1) }') serial commits/s"
# The tail matters as much as the mean: a durable answer waits for its commit's sync, so one
# slow sync delays every request queued behind it.
if [ "$SMOKE" = 1 ]; then PROBE_S=1; else PROBE_S=10; fi
"$LOADGEN" --fsync-probe "$PROBE" --duration $PROBE_S > "$OUT/fsync-probe.json"
fact "fsync latency tail (4 KiB overwrite + fdatasync, ${PROBE_S} s)" "disk" \
  "p50 $(json_num "$OUT/fsync-probe.json" p50) ms, p99 $(json_num "$OUT/fsync-probe.json" p99) ms, max $(json_num "$OUT/fsync-probe.json" max) ms" \
  "sealtrail-loadgen --fsync-probe: $(json_num "$OUT/fsync-probe.json" syncs) syncs, $(json_num "$OUT/fsync-probe.json" over_25ms) slower than 25 ms"
SEQ_S=$(dd if=/dev/zero of="$PROBE/seq" bs=1M count=$MIB conv=fdatasync 2>&1 | dd_secs)
SEQ_MBS=$(awk -v s="$SEQ_S" -v m=$MIB 'BEGIN { printf "%.0f", m * 1.048576 / s }')
fact "sequential write bandwidth" "disk" "$SEQ_MBS MB/s" "dd bs=1M count=$MIB conv=fdatasync in ${SEQ_S} s"
rm -rf "$PROBE"
SHA_BPS=$(openssl speed -mr -seconds 1 -bytes 256 sha256 2>/dev/null | sed -n 's/^+F:[0-9]*:sha256:\([0-9.]*\)$/\1/p' | tail -1 || true)
SHA_HPS=$(awk -v b="${SHA_BPS:-0}" 'BEGIN { printf "%.0f", b / 256 }')
fact "SHA-256 of 256-byte inputs, one core" "cpu" "$SHA_HPS hashes/s" "openssl speed -bytes 256 sha256 ($(awk -v b="${SHA_BPS:-0}" 'BEGIN { printf "%.0f", b / 1e6 }') MB/s)"

# --- the scenarios, per engine ---------------------------------------------------------------
declare -A APPEND_RATE BATCH_RATE BYTES_PER_ENTRY
for ENGINE in $ENGINES; do
  # The previous engine's gigabytes must not be written back under this one's syncs.
  sync
  # 1. Single-entry appends, 64 clients, 256-byte JSON; then SIGKILL and check every
  #    acknowledged entry is still there. Two client threads, as pgbench's `-c 64 -j 2` in the
  #    PostgreSQL baseline this rate is compared with.
  start_server "$ENGINE" "$DATA/$ENGINE-append"
  loadgen "append-$ENGINE" --mode append --concurrency 64 --threads 2 --payload-bytes 256 --duration "$DURATION" \
    --scenario "HTTP appends, 64 clients, 256 B" --goal-rate 20000 --goal-p99-ms 25
  APPEND_RATE[$ENGINE]=$(json_num "$OUT/append-$ENGINE.json" entries_per_s)
  ACKED=$(json_num "$OUT/append-$ENGINE.json" tree_size_after)
  stop_server -KILL
  start_server "$ENGINE" "$DATA/$ENGINE-append"
  AFTER=$(tree_size)
  if [ "${AFTER:-0}" -ge "${ACKED:-1}" ]; then OK=yes; else OK=NO; FAILED=1; fi
  fact "acknowledged entries survive SIGKILL" "$ENGINE" "$OK: tree size $AFTER after restart, $ACKED acknowledged" "every 201 came after a durable commit"
  stop_server
  rm -rf "$DATA/$ENGINE-append"

  # 2. Batch appends, 1000 entries per request.
  start_server "$ENGINE" "$DATA/$ENGINE-batch"
  loadgen "batch-$ENGINE" --mode batch --batch 1000 --concurrency 8 --payload-bytes 256 --duration "$DURATION" \
    --scenario "HTTP batches of 1000, 8 clients, 256 B" --goal-rate 100000
  BATCH_RATE[$ENGINE]=$(json_num "$OUT/batch-$ENGINE.json" entries_per_s)
  stop_server
  rm -rf "$DATA/$ENGINE-batch"

  # 3. wait=checkpoint at 5,000 entries/s offered (open loop): latency to a verified proof.
  start_server "$ENGINE" "$DATA/$ENGINE-checkpoint"
  loadgen "checkpoint-$ENGINE" --mode checkpoint --rate 5000 --payload-bytes 256 --duration "$DURATION" \
    --scenario "wait=checkpoint, 5,000/s offered" --goal-rate 4900 --goal-p99-ms 50
  stop_server
  rm -rf "$DATA/$ENGINE-checkpoint"

  # 4. A large log: built by batches, RSS and disk use at each size in RSS_AT, then proofs.
  LOGDIR="$DATA/$ENGINE-log"
  start_server "$ENGINE" "$LOGDIR"
  built=0
  for size in $RSS_AT $LOG_ENTRIES; do
    [ "$size" -le "$LOG_ENTRIES" ] && [ "$size" -gt "$built" ] || continue
    loadgen "build-$ENGINE-$size" --mode batch --batch 1000 --concurrency 4 --payload-bytes 256 \
      --count $(( (size - built + 999) / 1000 )) --post-check 10 --scenario "build the log to $size entries"
    built=$(tree_size)
    BYTES=$(du -sb "$LOGDIR/data" | cut -f1)
    BYTES_PER_ENTRY[$ENGINE]=$(( BYTES / built ))
    fact "server RSS at $built entries" "$ENGINE" "$(( $(kib "$SERVER_PID" VmRSS) / 1024 )) MiB (peak $(( $(kib "$SERVER_PID" VmHWM) / 1024 )) MiB)" \
      "goal ≤ 300 MiB and flat; disk $(( BYTES / 1048576 )) MiB, ${BYTES_PER_ENTRY[$ENGINE]} bytes per entry"
  done
  # Proofs against a freshly started server.
  stop_server
  CACHED_BEFORE=$(resident "$LOGDIR"/data/*)
  start_server "$ENGINE" "$LOGDIR"
  # A fresh process first reads every tile from the store and summarises it (see read.rs); the
  # goal is judged on the second run, with the caches as a long-running server has them.
  loadgen "inclusion-cold-$ENGINE" --mode inclusion --concurrency 64 --duration "$DURATION" \
    --scenario "inclusion proofs, $built-entry log, 64 clients, fresh server"
  loadgen "inclusion-$ENGINE" --mode inclusion --concurrency 64 --duration "$DURATION" \
    --scenario "inclusion proofs, $built-entry log, 64 clients, warm caches" --goal-rate 20000 --goal-p99-ms 5
  loadgen "consistency-$ENGINE" --mode consistency --concurrency 64 --duration "$DURATION" \
    --scenario "consistency proofs, $built-entry log, 64 clients"
  loadgen "tiles-$ENGINE" --mode tiles --concurrency 64 --duration "$DURATION" \
    --scenario "level-0 tile reads, $built-entry log, 64 clients"
  loadgen "mixed-$ENGINE" --mode mixed --concurrency 64 --duration "$DURATION" \
    --scenario "mixed (1/2 appends, 3/10 inclusion, 1/10 tiles, 1/10 consistency)"
  fact "server RSS after the read scenarios" "$ENGINE" "$(( $(kib "$SERVER_PID" VmRSS) / 1024 )) MiB (peak $(( $(kib "$SERVER_PID" VmHWM) / 1024 )) MiB)" "log of $(tree_size) entries"
  # Reads from the page cache run inline, reads that went to the disk send the next ones to the
  # blocking pool (api/read.rs, ReadPath): how warm the store's files were decides which.
  fact "point reads: inline / pool / from the disk" "$ENGINE" \
    "$(metric 'sealtrail_point_reads_total{path="inline"}') / $(metric 'sealtrail_point_reads_total{path="pool"}') / $(metric sealtrail_slow_inline_reads_total)" \
    "store files in the page cache: $CACHED_BEFORE at the start of the read scenarios, $(resident "$LOGDIR"/data/*) after"
  stop_server
  if [ "$KEEP_DATA" = 0 ]; then rm -rf "$LOGDIR"; fi
done

# --- fractions of the physical limits --------------------------------------------------------
for ENGINE in $ENGINES; do
  [ -n "${BATCH_RATE[$ENGINE]:-}" ] && [ -n "${BYTES_PER_ENTRY[$ENGINE]:-}" ] || continue
  fact "batch ingest against the limits" "$ENGINE" \
    "$(awk -v r="${BATCH_RATE[$ENGINE]}" -v b="${BYTES_PER_ENTRY[$ENGINE]}" -v bw="$SEQ_MBS" 'BEGIN { printf "%.0f MB/s stored = %.1f%% of sequential bandwidth", r * b / 1e6, 100 * r * b / 1e6 / (bw > 0 ? bw : 1) }')" \
    "$(awk -v r="${BATCH_RATE[$ENGINE]}" -v h="$SHA_HPS" 'BEGIN { printf "about 2 SHA-256 per entry (leaf + node): %.1f%% of one core hashing", 100 * 2 * r / (h > 0 ? h : 1) }')"
done

# --- PostgreSQL baseline ---------------------------------------------------------------------
if [ "$PG" = 1 ]; then
  say "PostgreSQL baseline: durable INSERTs, 64 clients, 256-byte JSON"
  sync   # nor the engines' data under PostgreSQL's
  PGDIR="$DATA/pg"
  pg_start "$PGDIR" "-c listen_addresses=127.0.0.1 -c max_connections=100"
  PSQL=("$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U bench -d postgres -v ON_ERROR_STOP=1 -q)
  "${PSQL[@]}" -c "CREATE TABLE audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), payload jsonb NOT NULL)"
    # 256 bytes, like the loadgen's payloads: {"seq":"<10 digits>","pad":"<227 x>"}
  PAD=$(printf 'x%.0s' $(seq 227))
  cat > "$PGDIR/insert.sql" <<EOF
\set seq random(1, 1000000000)
INSERT INTO audit (payload) VALUES (('{"seq":"' || lpad(:seq::text, 10, '0') || '","pad":"$PAD"}')::jsonb);
EOF
  PM=$(head -1 "$PGDIR/data/postmaster.pid")
  PG_CPU0=$(pg_cpu_ticks "$PM")
  # pgbench in a subshell whose `times` (its children's user and system time) is its CPU.
  ( cd "$PGDIR" && "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U bench -n -c 64 -j 2 -T "$DURATION" -M prepared \
      -f insert.sql -l --log-prefix=pgb postgres > pgbench.out 2>&1 && times > pgbench.times ) \
    || { cat "$PGDIR/pgbench.out" >&2; exit 1; }
  PG_CPU1=$(pg_cpu_ticks "$PM")
  cp "$PGDIR/pgbench.out" "$OUT/pgbench.txt"
  PG_TPS=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$PGDIR/pgbench.out" | head -1)
  PG_ROWS=$("${PSQL[@]}" -At -c "SELECT count(*) FROM audit")
  PG_P=$(cat "$PGDIR"/pgb.* | awk '{ print $3 }' | sort -n | awk '{ v[NR] = $1 } END { i50 = int(NR * 0.5 + 0.999); i99 = int(NR * 0.99 + 0.999); printf "%.2f %.2f", v[i50] / 1000, v[i99] / 1000 }')
  # CPU per insert, like the loadgen's "CPU per request": the server's processes and pgbench's.
  PG_CPU_US=$(awk -v a="$PG_CPU0" -v b="$PG_CPU1" -v hz="$(getconf CLK_TCK)" -v n="$PG_ROWS" \
    'BEGIN { printf "%.0f", (b - a) / hz / n * 1e6 }')
  PGB_CPU_US=$(sed -n 2p "$PGDIR/pgbench.times" | awk -v n="$PG_ROWS" '
    function secs(t,  m) { m = t; sub(/m.*/, "", m); sub(/^[0-9]*m/, "", t); sub(/s$/, "", t); return m * 60 + t }
    { printf "%.0f", (secs($1) + secs($2)) / n * 1e6 }')
  printf '{"scenario":"durable INSERT, 64 clients, 256 B (pgbench)","engine":"postgresql","result":"%.0f entries/s","p50_ms":%s,"p99_ms":%s,"note":"%s rows; synchronous_commit=on, fsync=on; jsonb payload, identity key; CPU per insert: pgbench %s µs, server %s µs; load %s"}\n' \
    "$PG_TPS" ${PG_P% *} ${PG_P#* } "$PG_ROWS" "$PGB_CPU_US" "$PG_CPU_US" "$(cut -d' ' -f1 /proc/loadavg)" >> "$ROWS"
  for ENGINE in $ENGINES; do
    [ -n "${APPEND_RATE[$ENGINE]:-}" ] || continue
    RATIO=$(awk -v a="${APPEND_RATE[$ENGINE]}" -v p="$PG_TPS" 'BEGIN { printf "%.2f", a / p }')
    MET=$(awk -v r="$RATIO" 'BEGIN { print (r >= 1.5) ? "true" : "false" }')
    printf '{"scenario":"single appends: sealtrail / PostgreSQL","engine":"%s","result":"%s x","goal":"≥ 1.5 x","met":%s,"note":"%.0f vs %.0f entries/s, same clients and payloads"}\n' \
      "$ENGINE" "$RATIO" "$MET" "${APPEND_RATE[$ENGINE]}" "$PG_TPS" >> "$ROWS"
  done
  eval "$PG_STOP" >&2; PG_STOP=""
fi

# --- the results table -----------------------------------------------------------------------
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo "# sealtrail benchmark suite"
  echo
  echo "$DATE; $CORES cores (${CPU:-unknown CPU}); $(uname -sr); load average $LOAD_START at start, $LOAD_END at the end."
  echo "The load generator ran on the same machine; $PROFILE build. Command: \`tests/bench/run-suite.sh$([ "$SMOKE" = 1 ] && echo ' --smoke')\`"
  echo "(DURATION=$DURATION s per scenario, LOG_ENTRIES=$LOG_ENTRIES, ENGINES=\"$ENGINES\")."
  echo
  "$LOADGEN" --report "$ROWS"
} > "$OUT/results.md"
{
  printf '{"date":"%s","cpu":"%s","cores":%s,"kernel":"%s","load_start":"%s","load_end":"%s","smoke":%s,"duration_s":%s,"log_entries":%s,"rows":[' \
    "$DATE" "${CPU:-unknown}" "$CORES" "$(uname -sr)" "$LOAD_START" "$LOAD_END" "$([ "$SMOKE" = 1 ] && echo true || echo false)" "$DURATION" "$LOG_ENTRIES"
  paste -sd, "$ROWS"
  echo ']}'
} > "$OUT/results.json"
cat "$OUT/results.md"
echo
echo "results: $OUT/results.md, $OUT/results.json; each run's summary in $OUT/*.json"
exit "$FAILED"
