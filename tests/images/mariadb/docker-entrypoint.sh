#!/bin/sh
# The official mariadb image's runtime contract: MARIADB_ROOT_PASSWORD (or MYSQL_ROOT_PASSWORD,
# or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD), MARIADB_DATABASE, MARIADB_USER, MARIADB_PASSWORD (and
# their MYSQL_ forms), the _FILE form of each, and /docker-entrypoint-initdb.d, run once on an
# empty /var/lib/mysql.
set -eu
case "${1:-mariadbd}" in mariadbd|mysqld) ;; *) exec "$@" ;; esac
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
for name in ROOT_PASSWORD DATABASE USER PASSWORD ALLOW_EMPTY_ROOT_PASSWORD; do
  file_env "MARIADB_$name"
  file_env "MYSQL_$name"
  eval "[ -n \"\${MARIADB_$name:-}\" ] || MARIADB_$name=\${MYSQL_$name:-}"
done
# A value as a SQL string literal's content: backslashes and quotes escaped (printf, not echo:
# dash's echo would read the backslashes).
literal() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g"; }
ident() { printf '%s' "$1" | sed -e 's/`/``/g'; }

DATADIR=/var/lib/mysql
mkdir -p "$DATADIR" /run/mysqld
chown mysql:mysql "$DATADIR" /run/mysqld
if [ ! -d "$DATADIR/mysql" ]; then
  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ]; then
    echo "Error: MARIADB_ROOT_PASSWORD is not set (or set MARIADB_ALLOW_EMPTY_ROOT_PASSWORD)." >&2
    exit 1
  fi
  mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db --auth-root-authentication-method=socket \
    >/dev/null
  socket=/run/mysqld/init.sock
  mariadbd --user=mysql --datadir="$DATADIR" --skip-networking --socket="$socket" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 60); do
    mariadb-admin --socket="$socket" ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  sql() { mariadb --socket="$socket" -uroot "$@"; }
  root=$(literal "$MARIADB_ROOT_PASSWORD")
  {
    printf '%s\n' "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('$root') OR unix_socket;"
    printf '%s\n' "CREATE USER root@'%' IDENTIFIED BY '$root'; GRANT ALL ON *.* TO root@'%' WITH GRANT OPTION;"
    if [ -n "$MARIADB_DATABASE" ]; then
      printf '%s\n' "CREATE DATABASE IF NOT EXISTS \`$(ident "$MARIADB_DATABASE")\` CHARACTER SET utf8mb4;"
    fi
    if [ -n "$MARIADB_USER" ] && [ -n "$MARIADB_PASSWORD" ]; then
      printf '%s\n' "CREATE USER '$(literal "$MARIADB_USER")'@'%' IDENTIFIED BY '$(literal "$MARIADB_PASSWORD")';"
      if [ -n "$MARIADB_DATABASE" ]; then
        printf '%s\n' "GRANT ALL ON \`$(ident "$MARIADB_DATABASE")\`.* TO '$(literal "$MARIADB_USER")'@'%';"
      fi
    fi
    printf '%s\n' "FLUSH PRIVILEGES;"
  } | sql
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "init: running $f"; . "$f" ;;
      *.sql) echo "init: running $f"; sql ${MARIADB_DATABASE:+"--database=$MARIADB_DATABASE"} <"$f" ;;
      *.sql.gz) echo "init: running $f"; gunzip -c "$f" | sql ${MARIADB_DATABASE:+"--database=$MARIADB_DATABASE"} ;;
      *) ;;
    esac
  done
  mariadb-admin --socket="$socket" -uroot shutdown
  wait "$pid" || true
  echo "init: MariaDB init process complete; ready for start up."
fi
shift
exec mariadbd --user=mysql --datadir="$DATADIR" --bind-address=0.0.0.0 --port=3306 "$@"
