#!/usr/bin/env bash
# Make sure a Docker engine answers. On a Debian machine where we are root and none
# answers, install the docker.io package and start dockerd in the background.
# An engine that already answers is never restarted or reconfigured.
set -euo pipefail

WAIT_SECONDS="${CLOCKWORK_DOCKER_WAIT:-60}"
LOG=/var/log/clockwork-dockerd.log

engine_answers() { docker info >/dev/null 2>&1; }

if engine_answers; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  echo "ensure-docker: no Docker engine answers, and this is not Debian as root:" >&2
  echo "  start a Docker engine yourself (docker info must succeed), then rerun." >&2
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing the Debian package docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "ensure-docker: starting dockerd in the background (log: $LOG)"
  nohup dockerd >"$LOG" 2>&1 &
fi

for _ in $(seq "$WAIT_SECONDS"); do
  if engine_answers; then
    echo "ensure-docker: engine answers ($(docker version --format '{{.Server.Version}}'))"
    exit 0
  fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within ${WAIT_SECONDS}s; last log lines:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
