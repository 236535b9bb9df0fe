#!/bin/sh
# Staging init for deploy/compose/compose.yaml, run once before the services start (the "init"
# service). On the first run it creates the log's signing key and the three witnesses' keys, each
# in its own volume, mode 0600; on every run it (re)writes the configurations from the public
# keys. It never replaces a key.
#
# Everything it needs comes from the environment, with the compose defaults:
#   SEALTRAIL_ORIGIN   the log's origin                    (staging.sealtrail.test/log)
#   LOG_DIR            the log's data volume               (/data/log)
#   WITNESS_DIR        prefix of the witnesses' volumes    (/data/witness -> /data/witness1..3)
#   CONFIG_DIR         the shared, read-only config volume (/data/config)
#   LOG_ADDR           the log as the witnesses reach it   (sealtrail:8080)
#   WITNESS_HOST       prefix of the witnesses' host names (witness -> witness1..3, port 8081)
#   OWNER              uid:gid of the services             (65532:65532, the image's user)
set -eu

ORIGIN="${SEALTRAIL_ORIGIN:-staging.sealtrail.test/log}"
LOG_DIR="${LOG_DIR:-/data/log}"
WITNESS_DIR="${WITNESS_DIR:-/data/witness}"
CONFIG_DIR="${CONFIG_DIR:-/data/config}"
LOG_ADDR="${LOG_ADDR:-sealtrail:8080}"
WITNESS_HOST="${WITNESS_HOST:-witness}"
OWNER="${OWNER:-65532:65532}"
SEALTRAIL="${SEALTRAIL:-sealtrail}"
SEALTRAIL_WITNESS="${SEALTRAIL_WITNESS:-sealtrail-witness}"
WITNESSES="1 2 3"
QUORUM=2

fail() {
    echo "init: $*" >&2
    exit 1
}

# ensure_key KIND NAME KEY_FILE VKEY_FILE: creates the key unless it exists; the verifier key
# printed by keygen is kept beside it, because it cannot be printed again without starting the
# service.
ensure_key() {
    kind=$1 name=$2 key=$3 vkey=$4
    if [ -e "$key" ]; then
        [ -s "$vkey" ] || fail "$key exists but $vkey does not: write the verifier key there (the service prints it at start), or remove both to start over"
        return 0
    fi
    case $kind in
        log) "$SEALTRAIL" keygen --origin "$name" --out "$key" >"$vkey.tmp" ;;
        witness) "$SEALTRAIL_WITNESS" keygen --name "$name" --out "$key" >"$vkey.tmp" ;;
    esac
    mv "$vkey.tmp" "$vkey"
    echo "init: created $key: $(cat "$vkey")"
}

# write FILE: stdin to FILE, replaced atomically.
write() {
    cat >"$1.tmp"
    chmod 0644 "$1.tmp"
    mv "$1.tmp" "$1"
}

mkdir -p "$LOG_DIR" "$CONFIG_DIR"
ensure_key log "$ORIGIN" "$LOG_DIR/log.key" "$LOG_DIR/log.vkey"
log_vkey=$(cat "$LOG_DIR/log.vkey")
for i in $WITNESSES; do
    mkdir -p "$WITNESS_DIR$i"
    ensure_key witness "$WITNESS_HOST$i.staging.sealtrail.test" "$WITNESS_DIR$i/witness.key" "$WITNESS_DIR$i/witness.vkey"
done

# The log: 2-of-3 witness policy over the three witnesses. It listens beyond loopback (the
# container's 0.0.0.0), where anonymous appends are refused by default; this staging setup allows
# them, and the reading of records, because compose publishes its ports on 127.0.0.1 only (the
# curl in compose.yaml's header). Never in production: create tokens (sealtrail token create) and
# remove the [auth] lines below.
{
    cat <<TOML
# Written by deploy/compose/init.sh on every start of the staging setup: edit init.sh, not this.
origin = "$ORIGIN"
data_dir = "/var/lib/sealtrail"
listen = "0.0.0.0:8080"

[auth]
anonymous_writes = "always"
anonymous_content = "always"

[witnessing]
quorum = $QUORUM
interval_ms = 1000
TOML
    for i in $WITNESSES; do
        cat <<TOML

[[witnessing.witnesses]]
url = "http://$WITNESS_HOST$i:8081"
vkey = "$(cat "$WITNESS_DIR$i/witness.vkey")"
TOML
    done
} | write "$CONFIG_DIR/sealtrail.toml"

# Each witness: cosigns the log, gossips with the two others, anchors to a local file.
for i in $WITNESSES; do
    {
        cat <<TOML
# Written by deploy/compose/init.sh on every start of the staging setup: edit init.sh, not this.
name = "$WITNESS_HOST$i.staging.sealtrail.test"
key_file = "/var/lib/sealtrail-witness/witness.key"
data_dir = "/var/lib/sealtrail-witness"
listen = "0.0.0.0:8081"

[gossip]
interval_secs = 30
timeout_secs = 10

[[anchors]]
kind = "file"
path = "/var/lib/sealtrail-witness/anchors.jsonl"

[[logs]]
origin = "$ORIGIN"
keys = ["$log_vkey"]
url = "http://$LOG_ADDR"
TOML
        for j in $WITNESSES; do
            [ "$j" = "$i" ] && continue
            cat <<TOML

[[peers]]
url = "http://$WITNESS_HOST$j:8081"
vkey = "$(cat "$WITNESS_DIR$j/witness.vkey")"
TOML
        done
    } | write "$CONFIG_DIR/witness$i.toml"
done

# The services run as $OWNER; their keys stay readable by it alone.
if [ "$(id -u)" = 0 ]; then
    chown -R "$OWNER" "$LOG_DIR"
    for i in $WITNESSES; do chown -R "$OWNER" "$WITNESS_DIR$i"; done
fi
chmod 0700 "$LOG_DIR"
chmod 0600 "$LOG_DIR/log.key"
for i in $WITNESSES; do
    chmod 0700 "$WITNESS_DIR$i"
    chmod 0600 "$WITNESS_DIR$i/witness.key"
done
echo "init: configuration written to $CONFIG_DIR"
