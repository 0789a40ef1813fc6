#!/usr/bin/env bash
# A swarm of several Docker engines on this one machine, for tests/cluster/test_cluster.py.
#
#   tests/cluster/cluster.sh up      # nodes n1 (manager), n2, n3 ...; prints the manager's DOCKER_HOST
#   tests/cluster/cluster.sh down    # engines, namespaces, links and data gone, whatever state `up` left
#
# Each node is a network namespace with a dockerd of its own (data and exec roots, pidfile, socket,
# config file under $CLOCKWORK_CLUSTER_DIR), started with `nsenter --net` (`ip netns exec` remounts
# /sys and dockerd then fails with "Devices cgroup isn't mounted"). Node i has 10.213.0.(10+i)/24 on
# one end of a veth pair; the other ends are ports of a bridge in a namespace of their own, a switch
# that leaves the host's routes and firewall (and the shared engine's) alone. The manager advertises
# its address, the workers join with the token, every node gets the test images with docker save | load,
# and carries the label io.clockwork.docker-host (its socket), by which the collection reaches a task
# on another node. All nodes report this machine's hostname: tests tell them apart by node id.
set -euo pipefail

DIR=${CLOCKWORK_CLUSTER_DIR:-/tmp/clockwork-cluster}
NODES=${CLOCKWORK_CLUSTER_NODES:-3}
# Every local test image (tests/images/local-images.yml): they share their base layer, so one
# `docker save` of all of them is hardly bigger than of one.
LOCAL_IMAGES="$(dirname "$0")/../images/local-images.yml"
IMAGES=${CLOCKWORK_CLUSTER_IMAGES:-$(awk '$1 ~ /_image:$/ {print $2}' "$LOCAL_IMAGES" | sort -u | tr '\n' ' ')}
NET=10.213.0
PREFIX=cwcl
SWITCH=$PREFIX-sw
STOP_SECONDS=20

node_sock() { echo "unix://$DIR/n$1/docker.sock"; }
on() { local node=$1; shift; docker -H "$(node_sock "$node")" "$@"; }
say() { echo "cluster: $*" >&2; }

up() {
  down >/dev/null 2>&1 || true
  mkdir -p "$DIR"
  ip netns add "$SWITCH"
  ip -n "$SWITCH" link set lo up
  ip -n "$SWITCH" link add br0 type bridge
  ip -n "$SWITCH" link set br0 up
  for i in $(seq 1 "$NODES"); do
    ip netns add "$PREFIX-n$i"
    ip link add "$PREFIX-n$i" type veth peer name "$PREFIX-s$i"
    ip link set "$PREFIX-n$i" netns "$PREFIX-n$i"
    ip link set "$PREFIX-s$i" netns "$SWITCH"
    ip -n "$SWITCH" link set "$PREFIX-s$i" master br0 up
    ip -n "$PREFIX-n$i" link set lo up
    ip -n "$PREFIX-n$i" addr add "$NET.$((10 + i))/24" dev "$PREFIX-n$i"
    ip -n "$PREFIX-n$i" link set "$PREFIX-n$i" up
    mkdir -p "$DIR/n$i/data" "$DIR/n$i/exec"
    echo '{}' >"$DIR/n$i/daemon.json"   # not the host's /etc/docker/daemon.json
    nsenter --net="/run/netns/$PREFIX-n$i" dockerd --config-file "$DIR/n$i/daemon.json" \
      --data-root "$DIR/n$i/data" --exec-root "$DIR/n$i/exec" --pidfile "$DIR/n$i/docker.pid" \
      -H "$(node_sock "$i")" >"$DIR/n$i/dockerd.log" 2>&1 &
    echo $! >"$DIR/n$i/started.pid"
  done
  for i in $(seq 1 "$NODES"); do
    for _ in $(seq 1 120); do on "$i" info >/dev/null 2>&1 && break; sleep 0.25; done
    on "$i" info >/dev/null || { say "engine n$i did not start:"; tail -20 "$DIR/n$i/dockerd.log" >&2; exit 1; }
  done
  say "$NODES engines up; loading $IMAGES"
  # shellcheck disable=SC2086  # several images, one word each
  docker save $IMAGES -o "$DIR/images.tar"
  pids=()
  for i in $(seq 1 "$NODES"); do on "$i" load -q -i "$DIR/images.tar" >/dev/null & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid"; done
  rm -f "$DIR/images.tar"
  on 1 swarm init --advertise-addr "$NET.11" --listen-addr "$NET.11:2377" >/dev/null
  token=$(on 1 swarm join-token -q worker)
  for i in $(seq 2 "$NODES"); do
    on "$i" swarm join --token "$token" --advertise-addr "$NET.$((10 + i))" "$NET.11:2377" >/dev/null
  done
  for i in $(seq 1 "$NODES"); do
    node=$(on "$i" info --format '{{.Swarm.NodeID}}')
    on 1 node update --label-add "io.clockwork.docker-host=$(node_sock "$i")" "$node" >/dev/null
  done
  for _ in $(seq 1 120); do
    [ "$(on 1 node ls --format '{{.Status}}' | grep -c Ready)" = "$NODES" ] && break
    sleep 0.25
  done
  # Each node makes docker_gwbridge (its ingress sandbox's) a few seconds after it joins: ready
  # means made, so that a test comparing the nodes' networks before and after sees no such change.
  for i in $(seq 1 "$NODES"); do
    for _ in $(seq 1 120); do on "$i" network inspect docker_gwbridge >/dev/null 2>&1 && break; sleep 0.25; done
  done
  say "swarm of $NODES nodes ready"
  echo "DOCKER_HOST=$(node_sock 1)"
}

# The processes of one node: its dockerd (by the pid we recorded and its pidfile), and any
# containerd or shim whose command line names this node's own directory.
node_pids() {
  local i=$1 pid
  for file in "$DIR/n$i/started.pid" "$DIR/n$i/docker.pid"; do
    [ -f "$file" ] && pid=$(cat "$file") && [ -d "/proc/$pid" ] && echo "$pid"
  done
  for proc in /proc/[0-9]*; do   # a process that ends meanwhile has no cmdline any more
    if tr '\0' ' ' 2>/dev/null <"$proc/cmdline" | grep -qF "$DIR/n$i/"; then echo "${proc#/proc/}"; fi
  done
  return 0
}

down() {
  set +e   # best effort: each step runs whatever the ones before it left
  for i in $(seq 1 "$NODES"); do
    [ -d "$DIR/n$i" ] || continue
    for pid in $(node_pids "$i" | sort -u); do kill -TERM "$pid" 2>/dev/null || true; done
  done
  for _ in $(seq 1 $((STOP_SECONDS * 4))); do
    left=""
    for i in $(seq 1 "$NODES"); do [ -d "$DIR/n$i" ] && left+=$(node_pids "$i"); done
    [ -z "$left" ] && break
    sleep 0.25
  done
  for i in $(seq 1 "$NODES"); do
    [ -d "$DIR/n$i" ] || continue
    for pid in $(node_pids "$i" | sort -u); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  # What the engines left mounted (overlay layers, network namespaces of containers), deepest first.
  if [ -d "$DIR" ]; then
    grep -F " $DIR/" /proc/mounts | awk '{print $2}' | sort -r | while read -r mount; do
      umount -l "$mount" 2>/dev/null || true
    done
  fi
  for i in $(seq 1 "$NODES"); do ip netns del "$PREFIX-n$i" 2>/dev/null || true; done
  ip netns del "$SWITCH" 2>/dev/null || true
  rm -rf "$DIR"
  say "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
