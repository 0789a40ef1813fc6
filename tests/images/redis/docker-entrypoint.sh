#!/bin/sh
# The official redis image's runtime contract: `redis-server [options]` (or just
# options) as the command, listening on all interfaces with protected mode off.
set -eu
case "${1:-}" in -*) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ]; then
  shift
  exec setpriv --reuid=redis --regid=redis --init-groups \
    redis-server --bind '0.0.0.0 ::' --protected-mode no --dir /data "$@"
fi
exec "$@"
