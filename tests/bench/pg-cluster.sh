# Sourced by the benchmark scripts: a throwaway PostgreSQL cluster with fsync and
# synchronous_commit on. Needs PostgreSQL's server binaries (Debian: apt-get install postgresql;
# installed here if missing and root).
#
# pg_start DIR EXTRA_OPTIONS: initdb into DIR/data (superuser `bench`, trust), start the server on a
# random port with its socket in DIR, plus EXTRA_OPTIONS; sets PGBIN, PGPORT and PG_STOP (the
# command that stops it), and defines as_pg (runs a command as the cluster's owner).
pg_start() {
  local dir=$1 extra=$2
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ ! -x "${PGBIN:-/nonexistent}/initdb" ] && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  [ -x "${PGBIN:-/nonexistent}/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir"; chmod 755 "$(dirname "$dir")"
    as_pg() { runuser -u postgres -- "$@"; }
  else
    as_pg() { "$@"; }
  fi
  PGPORT=$(( 20000 + RANDOM % 10000 ))
  as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U bench --no-sync > "$dir/initdb.log"
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $PGPORT -k $dir -c fsync=on -c synchronous_commit=on $extra" start >&2
  PG_STOP="as_pg '$PGBIN/pg_ctl' -D '$dir/data' -m fast stop"
}
