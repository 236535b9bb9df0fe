#!/bin/sh
# Staging init for deploy/compose-ha/compose.yaml, run before the services start (the "init"
# service). It first runs the single-instance init (deploy/compose/init.sh, mounted as
# $SHARED_INIT): the log's signing key and the three witnesses' keys on the first run, the
# witnesses' configurations on every run. Then it writes the ONE configuration that all three
# sealtrail instances read: the single-instance log configuration (origin, 2-of-3 witness
# policy) plus store = "postgres", the database URL, a submitter token and limits for running
# behind a load balancer. It never replaces a key or the token.
#
# From the environment, besides what deploy/compose/init.sh reads (LOG_DIR, WITNESS_DIR,
# CONFIG_DIR, OWNER, SEALTRAIL, ...), with the compose defaults:
#   SHARED_INIT          deploy/compose/init.sh                   (/init/shared-init.sh)
#   LOG_ADDR             the log as the witnesses reach it        (lb:8080, the load balancer)
#   LOG_CONFIG_DIR       the instances' config volume, 0700       (/data/log-config)
#   DB_PASSWORD_FILE     the database password (a compose secret) (/run/secrets/postgres-password)
#   DB_HOST              host:port of PostgreSQL                  (postgres:5432)
#   DB_USER, DB_NAME     its role and database                    (sealtrail, sealtrail)
set -eu

SHARED_INIT="${SHARED_INIT:-/init/shared-init.sh}"
LOG_DIR="${LOG_DIR:-/data/log}"
CONFIG_DIR="${CONFIG_DIR:-/data/config}"
LOG_CONFIG_DIR="${LOG_CONFIG_DIR:-/data/log-config}"
DB_PASSWORD_FILE="${DB_PASSWORD_FILE:-/run/secrets/postgres-password}"
DB_HOST="${DB_HOST:-postgres:5432}"
DB_USER="${DB_USER:-sealtrail}"
DB_NAME="${DB_NAME:-sealtrail}"
OWNER="${OWNER:-65532:65532}"
SEALTRAIL="${SEALTRAIL:-sealtrail}"
LOG_ADDR="${LOG_ADDR:-lb:8080}"
export LOG_DIR CONFIG_DIR OWNER SEALTRAIL LOG_ADDR

fail() {
    echo "init: $*" >&2
    exit 1
}

# The password goes into a URL and a TOML string unescaped: URL-safe characters only.
[ -r "$DB_PASSWORD_FILE" ] || fail "no database password at $DB_PASSWORD_FILE: set POSTGRES_PASSWORD in .env (see README.md)"
password=$(cat "$DB_PASSWORD_FILE")
case $password in
    "") fail "the database password is empty: set POSTGRES_PASSWORD in .env (see README.md)" ;;
    *[!A-Za-z0-9._~-]*) fail "the database password may hold only A-Z a-z 0-9 . _ ~ - (try: openssl rand -hex 24)" ;;
esac
[ ${#password} -ge 16 ] || fail "the database password is shorter than 16 characters (try: openssl rand -hex 24)"

# Keys, witness configurations, and the single-instance log configuration to start from.
sh "$SHARED_INIT"
base="$CONFIG_DIR/sealtrail.toml"
[ -s "$base" ] || fail "$SHARED_INIT wrote no $base"

mkdir -p "$LOG_CONFIG_DIR"
chmod 0700 "$LOG_CONFIG_DIR"

# A token for staging clients, created once (appends need one: the instances listen beyond
# loopback). Only its SHA-256 goes into the configuration.
token_file="$LOG_CONFIG_DIR/submitter.token"
if [ ! -s "$token_file" ]; then
    (umask 077 && "$SEALTRAIL" token create --name staging --role submitter \
        >"$token_file.tmp" 2>"$token_file.err") \
        || { cat "$token_file.err" >&2; fail "creating the submitter token failed"; }
    rm -f "$token_file.err"
    mv "$token_file.tmp" "$token_file"
    echo "init: created the submitter token in $token_file (see README.md)"
fi
token=$(cat "$token_file")
token_sha256=$(printf %s "$token" | sha256sum | cut -d' ' -f1)

# The instances' configuration: top-level keys before the first table, new tables after the
# single-instance ones. Replaced atomically, readable by the services' user only (it holds the
# database password).
{
    cat <<TOML
# Written by deploy/compose-ha/init.sh on every start of the HA staging setup: edit that file (or
# deploy/compose/init.sh for the witness policy), not this. Every instance reads this one file:
# instances of one log must share the origin, the signing key, authentication and witnesses.
store = "postgres"
TOML
    grep -v '^# Written by' "$base"
    cat <<TOML

[postgres]
url = "postgresql://$DB_USER:$password@$DB_HOST/$DB_NAME"
pool_size = 4

# "staging", created by init; the token itself is in the log-config volume (README.md).
[[auth.tokens]]
name = "staging"
role = "submitter"
sha256 = "$token_sha256"

[limits]
# Behind HAProxy every client has the load balancer's address: no per-address caps or shares
# (they would limit all clients together). Put per-client limits into the load balancer.
max_connections_per_ip = 0
max_inflight_body_bytes_per_ip = 0
max_inflight_response_bytes_per_ip = 0
ip_rate_per_sec = 0.0
TOML
} >"$LOG_CONFIG_DIR/sealtrail.toml.tmp"
chmod 0600 "$LOG_CONFIG_DIR/sealtrail.toml.tmp"
mv "$LOG_CONFIG_DIR/sealtrail.toml.tmp" "$LOG_CONFIG_DIR/sealtrail.toml"
# The witnesses read the shared config volume: the log's configuration is not theirs.
rm -f "$base"

if [ "$(id -u)" = 0 ]; then
    chown -R "$OWNER" "$LOG_CONFIG_DIR"
fi
chmod 0600 "$LOG_CONFIG_DIR/submitter.token"
echo "init: the instances' configuration written to $LOG_CONFIG_DIR"
