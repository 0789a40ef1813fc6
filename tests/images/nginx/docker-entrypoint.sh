#!/bin/sh
# The official nginx image's runtime contract: when the command is nginx, run
# /docker-entrypoint.d/*.sh first (templates in /etc/nginx/templates rendered).
set -eu
if [ "${1:-}" = nginx ]; then
  for f in /docker-entrypoint.d/*.sh; do
    [ -e "$f" ] || continue
    echo "$0: running $f"
    sh "$f"
  done
fi
exec "$@"
