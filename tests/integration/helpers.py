"""Run real playbooks and look at what the real Docker engine sees."""
import json
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
LOCAL_IMAGES = yaml.safe_load(open(os.path.join(ROOT, "tests/images/local-images.yml")))
POSTGRES_IMAGE = LOCAL_IMAGES["showcase_postgres_image"]
REDIS_IMAGE = LOCAL_IMAGES["showcase_redis_image"]
NGINX_IMAGE = LOCAL_IMAGES["showcase_nginx_image"]
# A container that, sent its stop signal (SIGQUIT in the nginx image, else SIGTERM), writes
# /data/marker and exits: the marker shows it was stopped gracefully (a forced removal kills it
# with no chance to write).
STOPPED_GRACEFULLY = ["sh", "-c", "trap 'echo stopped > /data/marker; exit 0' TERM QUIT; "
                      "while true; do sleep 0.2; done"]


def as_text(value):
    """A parsed result as the message of a failed assertion: whole, as indented JSON (pytest cuts
    a message that is not a string to 240 characters)."""
    return json.dumps(value, indent=1, sort_keys=True, default=str)


class Run(object):
    """One ansible-playbook run: its exit code, its output and every task result.

    An assertion on a run carries the run as its message, so that a failure shows why without a
    rerun: `assert run.rc == 0, run.output` (what it printed: stdout and stderr), or, where a
    task's result is asserted, `assert run.result("x")["changed"] is False, run.details`.
    tests/unit/test_run_output.py finds an assertion on a run without one."""

    def __init__(self, proc, results):
        self.command = proc.args if isinstance(proc.args, str) else " ".join(str(a) for a in proc.args)
        self.rc = proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr
        self.output = proc.stdout + proc.stderr
        self.results = results

    @property
    def details(self):
        """The command, its exit code, stdout, stderr and each task's result: everything the run told."""
        return "$ %s\nexit code %s\n--- stdout ---\n%s\n--- stderr ---\n%s\n--- task results ---\n%s" % (
            self.command, self.rc, self.stdout, self.stderr, as_text(self.results))

    def result(self, name=None):
        """The result of the task called `name` (the last one when not given)."""
        matching = [r for r in self.results
                    if name is None or r["_task"] == name or r["_task"].endswith(" : " + name)]
        assert matching, "no result for task %r in:\n%s" % (name, self.output)
        return matching[-1]

    @property
    def changed(self):
        return any(r.get("changed") for r in self.results)


def playbook(tasks, check=False, diff=False, extra_vars=None, verbose=False, workdir=None, tags=None, env=None,
             play_extra=None):
    """Run `tasks` (a list of task dicts) on localhost; returns a Run."""
    workdir = workdir or tempfile.mkdtemp(prefix="clockwork-test-")
    path = os.path.join(workdir, "play.yml")
    play = {"hosts": "localhost", "gather_facts": False, "tasks": tasks}
    play.update(play_extra or {})
    with open(path, "w") as handle:
        yaml.safe_dump([play], handle)
    return run_playbook(path, check=check, diff=diff, extra_vars=extra_vars, verbose=verbose, tags=tags, env=env)


def run_playbook(path, check=False, diff=False, extra_vars=None, verbose=False, tags=None, extra_args=(), env=None):
    results_file = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    overrides = env or {}
    # No model endpoint leaks in from the machine: tests that want one pass it.
    base = dict((k, v) for k, v in os.environ.items() if not k.startswith(("CLOCKWORK_LLM_", "OPENAI_")))
    env = dict(base,
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, "tests/integration/callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="clockwork_results",
               ANSIBLE_NOCOLOR="1",
               CLOCKWORK_RESULTS_FILE=results_file)
    env.update(overrides)
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), path,
           "-i", os.path.join(ROOT, "playbooks/inventory.ini")]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbose:
        cmd.append("-v")
    if tags:
        cmd += ["--tags", tags]
    for key, value in (extra_vars or {}).items():
        cmd += ["-e", json.dumps({key: value})]
    cmd += list(extra_args)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    try:
        with open(results_file) as handle:
            results = json.load(handle)
    except ValueError:
        results = []
    os.unlink(results_file)
    return Run(proc, results)


def docker(*args, check=True):
    """The docker CLI, as a user would run it; returns stdout."""
    proc = subprocess.run(["docker"] + list(args), capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError("docker %s failed: %s" % (" ".join(args), proc.stderr))
    return proc.stdout.strip()


def inspect(kind, name):
    out = docker(kind, "inspect", name, check=False)
    return json.loads(out)[0] if out.startswith("[") and out != "[]" else None


def engine_state():
    """What `docker ps -a`, `docker network ls` and `docker volume ls` list: compared around check mode."""
    return {
        "containers": sorted(docker("ps", "-a", "--format", "{{.ID}} {{.Names}} {{.State}}").splitlines()),
        "networks": sorted(docker("network", "ls", "--format", "{{.ID}} {{.Name}}").splitlines()),
        "volumes": sorted(docker("volume", "ls", "--format", "{{.Name}}").splitlines()),
    }


# Every stack a test removed or was given: what the session's leak check counts as ours.
STACKS_SEEN = set()
# The session's EventLog (conftest starts it): which container mounted which volume.
EVENTS = None


def stack_of(labels):
    """The stack a container belongs to: its own label, or, for a Swarm task, its service's."""
    labels = labels or {}
    return labels.get("io.clockwork.stack") or labels.get("io.clockwork.swarm-stack")


class EventLog(object):
    """Docker's container-create and volume-mount events, read as they happen (the engine
    keeps only its last few hundred): they tie an anonymous volume, which has no label, to
    the container that made it, long after that container is gone."""

    def __init__(self):
        self.containers, self.mounts = {}, {}
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            ["docker", "events", "--format", "{{json .}}", "--filter", "type=container", "--filter", "type=volume",
             "--filter", "event=create", "--filter", "event=mount"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self._proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            actor = event.get("Actor") or {}
            with self._lock:
                if event.get("Type") == "container":
                    self.containers[actor.get("ID")] = actor.get("Attributes") or {}
                else:
                    self.mounts.setdefault(actor.get("ID"), set()).add((actor.get("Attributes") or {}).get("container"))

    def owners(self, volume):
        """The attributes (name, labels) of the containers that mounted `volume`."""
        time.sleep(0.2)   # events of the last moment are on their way
        with self._lock:
            return [self.containers[c] for c in self.mounts.get(volume, ()) if c in self.containers]

    def volumes_of(self, stack):
        """The volumes that containers of `stack` mounted."""
        time.sleep(0.2)
        with self._lock:
            return set(volume for volume, ids in self.mounts.items()
                       if any(stack_of(self.containers.get(c, {})) == stack for c in ids))

    def stop(self):
        self._proc.terminate()
        self._proc.wait(timeout=10)


def remove_stack(stack):
    """Remove what the stack owns (by label), whatever state a failed test left; containers
    go with their anonymous volumes (`docker rm -v`), and so do the anonymous volumes of its
    containers that were removed without them (by the collection's destroy, or a test)."""
    STACKS_SEEN.add(stack)
    label = "label=io.clockwork.stack=%s" % stack
    ids = docker("ps", "-aq", "--filter", label).split()
    if ids:
        docker("rm", "-fv", *ids)
    for name in docker("network", "ls", "-q", "--filter", label).split():
        docker("network", "rm", name, check=False)
    for name in docker("volume", "ls", "-q", "--filter", label).split():
        docker("volume", "rm", "-f", name, check=False)
    for name in sorted(EVENTS.volumes_of(stack) if EVENTS else ()):
        attrs = inspect("volume", name)
        if attrs and is_anonymous(attrs) and not docker("ps", "-aq", "--filter", "volume=" + name):
            docker("volume", "rm", name, check=False)
    if stack.startswith(("cwtest-", "cwremote-")):
        # A test stack's releases (they stay after a destroy, by design) and files on this Docker host: gone with it.
        records = docker("images", "-q", "--filter", "label=io.clockwork.releases-of=" + stack).split()
        if records:
            docker("rmi", "-f", *sorted(set(records)), check=False)
        shutil.rmtree(os.path.join(os.path.expanduser("~"), ".clockwork", stack), ignore_errors=True)


# The showcase's container names, fixed: one deployer at a time, under the showcase lock.
SHOWCASE_CONTAINERS = ["postgres", "redis", "storage", "api", "frontend"]


def clear_fixed_names(names=SHOWCASE_CONTAINERS, keep=None):
    """Before a test deploys the showcase's fixed names (under the showcase lock): a container of
    one of those names left by an earlier test's stack (cwtest-*) or by `make showcase` is
    removed with its stack, so the deploy does not meet "exists and is not owned"; it prints
    which. Anything else of that name (not the collection's) stays, and the test then fails."""
    for name in names:
        attrs = inspect("container", name)
        owner = ((attrs or {}).get("Config", {}).get("Labels") or {}).get("io.clockwork.stack")
        if owner and owner != keep and (owner == "showcase" or owner.startswith("cwtest-")):
            print("removing stack %s, which left container %s on the engine" % (owner, name))
            remove_stack(owner)


def is_anonymous(volume):
    return len(volume["Name"]) == 64 and not volume.get("Labels")


def engine_objects():
    """The ids of every container, network and volume on the engine, by kind."""
    return {"container": set(docker("ps", "-aq", "--no-trunc").split()),
            "network": set(docker("network", "ls", "-q", "--no-trunc").split()),
            "volume": set(docker("volume", "ls", "-q").split())}


def engine_leaks(before, events, stacks, strict=False):
    """(leaks, others): what is on the engine now and was not at `before`. Leaks are what
    this session made: labelled with, or named after, one of `stacks`, or a volume that one
    of those containers mounted (`events`, an EventLog, says which). With `strict`,
    everything new is a leak (an engine nobody else uses, as in CI)."""
    now = engine_objects()

    def ours(labels, name):
        return strict or stack_of(labels) in stacks or \
            any(name == s or name.startswith(s + "-") for s in stacks)

    leaks, others = [], []
    for kind in ("container", "network", "volume"):
        for ident in sorted(now[kind] - before[kind]):
            attrs = inspect(kind, ident)
            if attrs is None:
                continue   # gone meanwhile
            labels = attrs["Config"].get("Labels") if kind == "container" else attrs.get("Labels")
            name = attrs.get("Name", "").lstrip("/")
            owners = events.owners(ident) if kind == "volume" else []
            mine = ours(labels, name) or any(ours(owner, owner.get("name", "")) for owner in owners)
            described = "%s %s" % (kind, name or ident)
            if owners:
                described += " (%smounted by %s)" % ("anonymous, " if is_anonymous(attrs) else "",
                                                     ", ".join(sorted(o.get("name", "?") for o in owners)))
            (leaks if mine else others).append(described)
    return leaks, others


def env_of(container):
    return dict(item.split("=", 1) for item in inspect("container", container)["Config"]["Env"])


# -- killing a run half-way ------------------------------------------------------------------

def descendants(pid):
    """The processes below `pid`, by id (from /proc): ansible-core's worker, which runs the stack's
    action in-process, calls setsid(), so killing ansible-playbook's process group alone leaves it
    running the rollback to its end."""
    parents = {}
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % entry) as handle:
                parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (ValueError, OSError, IndexError):
            continue
    found, todo = [], [pid]
    while todo:
        above = todo.pop()
        children = [child for child, parent in parents.items() if parent == above]
        found += children
        todo += children
    return found


def kill_run(proc):
    """SIGKILL the run: ansible-playbook's process group and every process below it, all stopped
    first (none starts another, none is handed to init unseen)."""
    os.killpg(proc.pid, signal.SIGSTOP)
    frozen = set()
    while set(descendants(proc.pid)) - frozen:
        for pid in set(descendants(proc.pid)) - frozen:
            frozen.add(pid)
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in frozen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return sorted(frozen)


class _Relay(socketserver.BaseRequestHandler):
    """One TCP connection, relayed both ways to the engine's Unix socket."""

    def handle(self):
        engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        engine.connect("/var/run/docker.sock")

        def pump(source, target):
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    target.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    target.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        back = threading.Thread(target=pump, args=(engine, self.request), daemon=True)
        back.start()
        pump(self.request, engine)
        back.join(60)
        engine.close()


class EngineOverTcp(object):
    """This machine's engine reached as a remote one: DOCKER_HOST=tcp://127.0.0.1:<port> (the
    collection then sees no local socket: gateway.is_local is false). `with EngineOverTcp() as url:`."""

    def __enter__(self):
        socketserver.ThreadingTCPServer.daemon_threads = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Relay)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return "tcp://127.0.0.1:%d" % self.server.server_address[1]

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
