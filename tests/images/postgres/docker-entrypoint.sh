#!/bin/sh
# The official postgres image's runtime contract: POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB and /docker-entrypoint-initdb.d, run once on an empty $PGDATA.
set -eu
if [ "${1:-postgres}" != postgres ]; then exec "$@"; fi
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
# As the official image: VAR_FILE names a file holding VAR (a Docker secret, say); not both.
file_env() {
  eval "value=\${$1:-} file=\${$1_FILE:-}"
  if [ -n "$value" ] && [ -n "$file" ]; then
    echo "Error: both $1 and $1_FILE are set (but are exclusive)" >&2
    exit 1
  fi
  if [ -n "$file" ]; then
    value=$(cat "$file")
    export "$1=$value"
  fi
  unset "$1_FILE"
}
file_env POSTGRES_PASSWORD
file_env POSTGRES_USER
file_env POSTGRES_DB
file_env POSTGRES_INITDB_ARGS

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    echo "Error: POSTGRES_PASSWORD is not set (or set POSTGRES_HOST_AUTH_METHOD=trust)." >&2
    exit 1
  fi
  pwfile=$(mktemp); printf '%s' "${POSTGRES_PASSWORD:-}" >"$pwfile"; chown postgres "$pwfile"
  as_postgres initdb --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  echo "host all all all ${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >>"$PGDATA/pg_hba.conf"
  # The init phase's temporary server listens only on a private socket, so a
  # pg_isready healthcheck cannot turn healthy before the init scripts finish.
  initsock=$(mktemp -d); chown postgres "$initsock"
  as_postgres pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$initsock" start >/dev/null
  psql_init() { as_postgres psql -v ON_ERROR_STOP=1 -h "$initsock" -U "$POSTGRES_USER" --no-psqlrc "$@"; }
  if [ "$POSTGRES_DB" != postgres ]; then
    psql_init -d postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "init: running $f"; . "$f" ;;
      *.sql) echo "init: running $f"; psql_init -d "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) echo "init: running $f"; gunzip -c "$f" | psql_init -d "$POSTGRES_DB" ;;
      *) ;;
    esac
  done
  as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  rm -rf "$initsock"
  echo "init: PostgreSQL init process complete; ready for start up."
fi
shift
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -c listen_addresses='*' "$@"
