#!/usr/bin/env bash
# Evidence packages: how long `sealtrail evidence` takes to build and download a package of
# RECORDS records from a release-built server on 127.0.0.1 (redb), and how long
# `sealtrail-verify evidence` takes to check it, over RUNS runs each (median and max, seconds).
# Goals (issue 22): 10k records built in under 10 s, verified in under 5 s.
#
# Usage: tests/bench/evidence.sh            (RECORDS=10000 RUNS=5 by default)
#        SKIP_BUILD=1 tests/bench/evidence.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

RECORDS=${RECORDS:-10000}
RUNS=${RUNS:-5}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --locked -p sealtrail-server -p sealtrail-verifier \
    --bin sealtrail --bin sealtrail-verify >&2
fi
SERVER=target/release/sealtrail
VERIFY=target/release/sealtrail-verify
DATA=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$DATA"
}
trap cleanup EXIT

$SERVER serve --data-dir "$DATA/log" --listen 127.0.0.1:0 --log-format text \
  >"$DATA/out" 2>"$DATA/err" &
PID=$!
for _ in $(seq 100); do grep -q "listening on" "$DATA/out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^sealtrail: listening on //p' "$DATA/out")
VKEY=$(sed -n 's/^sealtrail: verifier key //p' "$DATA/out")
[ -n "$URL" ] || { echo "the server did not start:" >&2; cat "$DATA/err" >&2; exit 1; }

# The scope: RECORDS JSON records of one type, among as many of another (the search must skip).
batch() {
  python3 - "$1" "$2" <<'EOF'
import sys
first, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(first, first + n):
    print('{"user":"user-%d","action":"login","ip":"198.51.100.%d","ok":true}' % (i, i % 256))
EOF
}
append() {
  local type=$1 total=$2 done=0
  while [ "$done" -lt "$total" ]; do
    local n=$(( total - done < 1000 ? total - done : 1000 ))
    batch "$done" "$n" | curl -sf -o /dev/null -H 'Content-Type: application/x-ndjson' \
      -H "X-Event-Type: $type" --data-binary @- "$URL/v1/entries/batch?wait=checkpoint"
    done=$(( done + n ))
  done
}
append user.login "$RECORDS"
append other.event "$RECORDS"

now() { date +%s.%N; }
build=() verify=() size=0
for r in $(seq "$RUNS"); do
  rm -f "$DATA/pkg.tar.gz"
  t0=$(now)
  $SERVER evidence --url "$URL" --type user.login --out "$DATA/pkg.tar.gz" 2>/dev/null
  t1=$(now)
  $VERIFY evidence --log-key "$VKEY" "$DATA/pkg.tar.gz" >"$DATA/verify.out"
  t2=$(now)
  grep -q "$RECORDS records in scope" "$DATA/verify.out" || { cat "$DATA/verify.out" >&2; exit 1; }
  build+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')")
  verify+=("$(awk -v a="$t1" -v b="$t2" 'BEGIN {printf "%.3f", b - a}')")
  size=$(stat -c %s "$DATA/pkg.tar.gz")
  echo "run $r: built in ${build[-1]} s, verified in ${verify[-1]} s" >&2
done
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %.2f s, max %.2f s", a[int((NR+1)/2)], a[NR]}'; }
echo "evidence package of $RECORDS records ($size bytes): build+download $(stats "${build[@]}"); verify $(stats "${verify[@]}") ($RUNS runs, $(nproc) cores)"
