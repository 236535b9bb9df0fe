#!/usr/bin/env bash
# RFC 3161 tokens: how long `sealtrail-verify timestamp` takes to check a witness's timestamp
# directory of TOKENS checkpoints (each with its token from OpenSSL's TSA, RSA 2048 or ECDSA
# P-384), over RUNS runs (median and max, seconds, and per token), beside `openssl ts -verify` on
# the first 100 of them (one process per token, as a script would run it).
#
# Usage: tests/bench/timestamps.sh            (TOKENS=1000 RUNS=5 KEY=rsa by default)
#        KEY=ec SKIP_BUILD=1 tests/bench/timestamps.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

TOKENS=${TOKENS:-1000}
RUNS=${RUNS:-5}
KEY=${KEY:-rsa}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release --locked -p sealtrail-verifier --bin sealtrail-verify >&2
fi
VERIFY=$PWD/target/release/sealtrail-verify
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 3650 -subj "/CN=Bench Root CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
case "$KEY" in
  rsa) NEWKEY=(-newkey rsa:2048); DIGEST=sha256 ;;
  ec) NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-384); DIGEST=sha384 ;;
  *) echo "KEY is rsa or ec" >&2; exit 2 ;;
esac
openssl req "${NEWKEY[@]}" -nodes -keyout tsa.key -out tsa.csr -subj "/CN=Bench TSA" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n' >tsa.ext
openssl x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tsa.pem -days 365 \
  -extfile tsa.ext 2>/dev/null
echo 01 >serial
cat >tsa.cnf <<EOF
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = ./serial
crypto_device = builtin
signer_cert = ./tsa.pem
certs = ./ca.pem
signer_key = ./tsa.key
signer_digest = $DIGEST
default_policy = 1.3.6.1.4.1.99999.3161.1
digests = sha256, sha384, sha512
accuracy = secs:1
ess_cert_id_alg = sha256
EOF

# The directory an rfc3161 anchor writes: <origin>/<size>-<digest>.checkpoint and .tst.
mkdir -p "stamps/bench.example%2Flog"
echo "making $TOKENS tokens with openssl ts -reply ($KEY)" >&2
for i in $(seq "$TOKENS"); do
  f="stamps/bench.example%2Flog/$i-$(printf '%016x' "$i")"
  printf 'bench.example/log\n%d\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— bench.example/log sig\n' "$i" \
    >"$f.checkpoint"
  openssl ts -query -data "$f.checkpoint" -sha256 -cert -out q.tsq 2>/dev/null
  openssl ts -reply -config tsa.cnf -queryfile q.tsq -token_out -out "$f.tst" 2>/dev/null
done

# Wall-clock seconds of a command, by python3 (no bc on a fresh machine).
seconds() {
  python3 -c 'import subprocess,sys,time; t=time.perf_counter(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); print(time.perf_counter()-t)' "$@"
}

times=()
for _ in $(seq "$RUNS"); do
  times+=("$(seconds "$VERIFY" timestamp --tsa-ca ca.pem stamps)")
done

n=$(( TOKENS < 100 ? TOKENS : 100 ))
cat >verify-with-openssl.sh <<EOF
for i in \$(seq $n); do
  f="stamps/bench.example%2Flog/\$i-\$(printf '%016x' "\$i")"
  openssl ts -verify -token_in -in "\$f.tst" -data "\$f.checkpoint" -CAfile ca.pem >/dev/null 2>&1
done
EOF
openssl_time=$(seconds bash verify-with-openssl.sh)

python3 - "$TOKENS" "$KEY" "$n" "$openssl_time" "${times[@]}" <<'EOF'
import statistics, sys
tokens, key, n, openssl_time = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
times = sorted(float(t) for t in sys.argv[5:])
median = statistics.median(times)
print(f"sealtrail-verify timestamp, {tokens} {key} tokens: median {median:.3f} s, max {times[-1]:.3f} s "
      f"over {len(times)} runs ({median * 1e6 / tokens:.0f} µs per token)")
print(f"openssl ts -verify, one process per token: {openssl_time * 1e6 / n:.0f} µs per token ({n} tokens)")
EOF
