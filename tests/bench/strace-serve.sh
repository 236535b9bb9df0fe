#!/usr/bin/env bash
# Usage: tests/bench/strace-serve.sh ENGINE N
# N sequential appends to a fresh release-built server under strace, each waiting for its 201:
# shows how many real syncs (fsync, fdatasync) the acknowledged commits cost. Needs strace and curl.
# Run from the repository root after `cargo build --release -p sealtrail-server`.
set -euo pipefail
engine=$1; n=$2; port=$((18000 + RANDOM % 1000))
dir=$(mktemp -d)
strace -f -c -e trace=fsync,fdatasync,sync_file_range -o "$dir/strace.txt" \
  target/release/sealtrail serve --data-dir "$dir/data" --listen 127.0.0.1:$port --store "$engine" \
  --origin strace.example/log --log warn > "$dir/out.txt" &
for _ in $(seq 100); do grep -q listening "$dir/out.txt" 2>/dev/null && break; sleep 0.1; done
ok=0
for i in $(seq "$n"); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data "{\"n\":$i}" http://127.0.0.1:$port/v1/entries)
  [ "$code" = 201 ] && ok=$((ok+1))
done
pkill -TERM -f "sealtrail serve --data-dir $dir/data"
wait
echo "$engine: $ok of $n appends acknowledged (201)"
cat "$dir/strace.txt"
rm -rf "$dir"
