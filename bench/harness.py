"""What bench/run.py and bench/peer.py both use, in a module of its own so that neither imports the other.

commands   sh (a command, its output captured), sh_peak (with the peak memory of its process tree),
           timed; problem() and PROBLEMS, what makes a comparison doubtful
showcase   its playbook, clean() (the showcase removed whoever made it) and the showcase lock
engine     the Docker SDK's client (engine()), the containers of a label (inspect_all, wait_ready),
           the removal by label of what a tool made for the N-service stack (scale_clean)
scale      a cold run of the N-service stack (scale_cold), with the engine's events as its timeline
compare    snapshot and differences (tests/integration/compose_compare.py): two tools' containers, field by field
"""
import contextlib
import fcntl
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import docker
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".venv", "bin")
IMAGES = yaml.safe_load(open(os.path.join(ROOT, "tests/images/local-images.yml")))
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
# As a user's shell: Python writes its bytecode cache (the collection's code is imported through it).
ENV.pop("PYTHONDONTWRITEBYTECODE", None)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
# The comparison of two tools' containers, shared with the compose export test; Compose v2 as the tests run it.
from compose_compare import (  # noqa: E402,F401  (run.py, peer.py and tests use them)
    COMPOSE_CONFIG, compose_v2_missing, differences, snapshot)
# Compose v2, the reference column: `docker compose` with the plugin `make compose` put in the project's own
# DOCKER_CONFIG directory (.docker/). docker-compose 1.29 (Debian's) is a second column where asked (--compose-v1).
COMPOSE_ENV = dict(ENV, DOCKER_CONFIG=COMPOSE_CONFIG)

SHOWCASE_LOCK = "/tmp/clockwork-showcase.lock"


def compose(project, path, *args, v1=False):
    """The command of Compose v2 (`docker compose`, run by sh() with the project's DOCKER_CONFIG), or with
    `v1` of docker-compose 1.29, on the compose file `path` as project `project`."""
    return (["docker-compose"] if v1 else ["docker", "compose"]) + ["-p", project, "-f", path] + list(args)


def compose_changed(output):
    """Whether `up -d` output says it made or started something: v2 (`Container x  Created`,
    `Recreated`, `Started`) or v1 (`Creating x ... done`, `Recreating`, `Starting`); `Running` is no change."""
    words = ("Creating", "Created", "Recreating", "Recreated", "Starting", "Started")
    return any(word in line.split() for line in output.splitlines() for word in words)


def compose_version(v1=False):
    return sh(*(["docker-compose"] if v1 else ["docker", "compose"]), "version", "--short").stdout.strip()


def sh(*cmd, check=True, env=None, quiet=True):
    if env is None and list(cmd[:2]) == ["docker", "compose"]:
        env = COMPOSE_ENV
    proc = subprocess.run(cmd, cwd=ROOT, env=env or ENV, capture_output=quiet, text=True)
    if check and proc.returncode != 0:
        sys.exit("bench: %s failed:\n%s%s" % (" ".join(cmd), proc.stdout or "", proc.stderr or ""))
    return proc


def _tree_pss(root):
    """Sum of the proportional set size (PSS, kB) of `root` and all its descendants: pages shared
    by ansible-playbook's forked workers count once in all, not once per process as RSS would."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open("/proc/%d/smaps_rollup" % pid) as handle:
                total += next(int(line.split()[1]) for line in handle if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass   # exited between the listing and the read
    return total


def sh_peak(*cmd):
    """Run `cmd` like sh(), polling /proc every 20 ms; returns (process, peak MB of the whole tree's PSS)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_pss(proc.pid))
            time.sleep(0.02)
        out.seek(0)
        proc.stdout, proc.stderr = out.read(), ""
    if proc.returncode != 0:
        sys.exit("bench: %s failed:\n%s" % (" ".join(cmd), proc.stdout))
    return proc, peak / 1024.0


def timed(*cmd, env=None):
    started = time.monotonic()
    sh(*cmd, env=env)
    return time.monotonic() - started


def playbook(*extra):
    return [os.path.join(BIN, "ansible-playbook"), "playbooks/showcase.yml", "-e",
            "@tests/images/local-images.yml"] + list(extra)


def clean():
    """Remove the showcase whoever made it: the stack's labels, then compose's names."""
    sh(*playbook("-e", "clockwork_state=absent", "-e", "clockwork_purge=true", "--tags", "deploy"))
    # With their anonymous volumes (the images' VOLUMEs): compose's run made them, for nothing.
    sh("docker", "rm", "-fv", "postgres", "redis", "storage", "api", "frontend", check=False)
    for network in ("backend-network", "bench_default", "showcase_default"):
        sh("docker", "network", "rm", network, check=False)
    sh("docker", "volume", "rm", "-f", "app-shared-data", check=False)


def median(values):
    return statistics.median(values) if values else float("nan")


@contextlib.contextmanager
def showcase_lock():
    """The showcase's container names are fixed: one deployment of it at a time on this machine."""
    with open(SHOWCASE_LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("bench: waiting for %s (someone else deploys the showcase)" % SHOWCASE_LOCK, flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


GENERATED = os.path.join(ROOT, "bench/results/generated")
READY_TIMEOUT = 300
_CLIENT = []


def engine():
    if not _CLIENT:
        _CLIENT.append(docker.from_env(timeout=120).api)
    return _CLIENT[0]


def owner_filters(description):
    """Label filters that select what each tool made for this stack, and nothing else."""
    return {"clockwork": {"label": "io.clockwork.stack=%s" % description["stack"]},
            "compose": {"label": "com.docker.compose.project=%s" % description["project"]},
            "compose_v1": {"label": "com.docker.compose.project=%s" % description["project"]}}


def scale_clean(description):
    """Remove, by label, everything either tool made for this stack: containers (with their
    anonymous volumes), our stack lock, networks, volumes."""
    api = engine()
    filters = []
    for labels in owner_filters(description).values():   # Compose v1's and v2's are one label
        if labels not in filters:
            filters.append(labels)
    ids = set()
    for labels in filters + [{"label": "io.clockwork.lock=%s" % description["stack"]}]:
        ids.update(c["Id"] for c in api.containers(all=True, filters=labels))

    # One at a time: concurrent removals of containers on one network can leave the Docker 20.10
    # engine counting endpoints that no longer exist, and then the network cannot be removed.
    for container_id in ids:
        try:
            api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
    for labels in filters:
        for net in api.networks(filters=labels):
            remove_network(api, net["Id"])
        for volume in api.volumes(filters=labels).get("Volumes") or []:
            try:
                api.remove_volume(volume["Name"])
            except docker.errors.NotFound:
                pass


STALE_NETWORKS = set()


def remove_network(api, network_id):
    """The engine releases a removed container's endpoints a moment later: retry a while."""
    deadline = time.monotonic() + (1 if network_id in STALE_NETWORKS else 10)
    while True:
        try:
            api.remove_network(network_id)
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as error:
            if "active endpoints" not in str(error):
                raise
            if time.monotonic() > deadline:
                # Docker 20.10 can keep a count of endpoints no container holds (parallel removals
                # under load); only an engine restart clears it. The next run reuses the network.
                if network_id not in STALE_NETWORKS:
                    STALE_NETWORKS.add(network_id)
                    print("bench: warning: the engine says network %s has active endpoints but none is "
                          "attached; left in place (reused by the next run)" % network_id[:12], flush=True)
                return
            time.sleep(0.2)


def ready(listed, expected):
    """Every container there and running, healthy where it has a healthcheck."""
    return len(listed) == expected and all(
        c["State"] == "running" and "(health: starting)" not in c["Status"] and "(unhealthy)" not in c["Status"]
        for c in listed)


def wait_ready(labels, expected):
    """Poll the engine until ready(); returns how many polls it took (1: ready at once)."""
    api = engine()
    deadline = time.monotonic() + READY_TIMEOUT
    polls = 0
    while True:
        listed = api.containers(all=True, filters=labels)
        polls += 1
        if ready(listed, expected):
            return polls
        if time.monotonic() > deadline:
            sys.exit("bench: %s: %d containers never all ran (healthy): %s"
                     % (labels["label"], expected, sorted("%s %s" % (c["Names"][0], c["Status"]) for c in listed)))
        time.sleep(0.05)


def inspect_all(labels):
    api = engine()
    return [api.inspect_container(c["Id"]) for c in api.containers(all=True, filters=labels)]


class EventRecorder(object):
    """The container events of one run, read live on a connection of its own: the engine keeps
    only its last few hundred events, and others share it."""

    def __init__(self, labels):
        self.stream = docker.from_env(timeout=None).api.events(
            filters={"type": "container", "label": labels["label"]}, decode=True)
        self.events = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for event in self.stream:
                self.events.append(event)
        except Exception:   # the stream closed under the reader: the run is over
            pass

    def stop(self):
        time.sleep(0.2)     # let the last events of the run arrive
        self.stream.close()
        self.thread.join(5)
        return self.events


def timeline(events, roles, wall_start):
    """When things happened on the engine, in seconds from the command's start."""
    seen = {}
    for event in events:
        attributes = event.get("Actor", {}).get("Attributes", {})
        name = attributes.get("io.clockwork.resource") or attributes.get("com.docker.compose.service")
        if name in roles:
            seen.setdefault((event.get("Action"), roles[name]), []).append(event["timeNano"] / 1e9 - wall_start)

    def at(action, role, pick):
        times = seen.get((action, role))
        return pick(times) if times else None
    created = [t for (action, _), times in seen.items() if action == "create" for t in times]
    return {"first_created": min(created) if created else None,
            "cache_healthy": at("health_status: healthy", "cache", min),
            "apis_started": at("start", "api", max), "workers_started": at("start", "worker", max)}


PROBLEMS = []


def problem(text):
    """Something that makes a comparison doubtful: said now, kept in the results, and the run fails
    at the end (after its numbers are written)."""
    PROBLEMS.append(text)
    print("bench: problem: " + text, flush=True)


def scale_commands(description, paths, v1=False):
    """The cold and no-op command of each tool: ours, Compose v2, and with `v1` docker-compose 1.29."""
    playbook_path, compose_path = paths
    commands = {"clockwork": [os.path.join(BIN, "ansible-playbook"), playbook_path],
                "compose": compose(description["project"], compose_path, "up", "-d")}
    if v1:
        commands["compose_v1"] = compose(description["project"], compose_path, "up", "-d", v1=True)
    return commands


def scale_cold(tool, description, command, roles):
    """From nothing (cleaned before) until every container runs, healthy where it has one."""
    labels = owner_filters(description)[tool]
    recorder = EventRecorder(labels)
    wall_start, started = time.time(), time.monotonic()
    # The peak is taken of our tool only: polling costs it a little CPU, not compose.
    peak = sh_peak(*command)[1] if tool == "clockwork" else None
    if peak is None:
        sh(*command)
    returned = time.monotonic()
    polls = wait_ready(labels, description["size"])
    elapsed = time.monotonic() - started
    detail = timeline(recorder.stop(), roles, wall_start)
    attrs = inspect_all(labels)
    detail.update(returned=returned - started, total=elapsed, waited_after_return=polls > 1, peak_mb=peak)
    if tool == "clockwork" and polls > 1:
        print("bench: warning: %s returned before every container was ready" % description["stack"], flush=True)
    return elapsed, detail, attrs
