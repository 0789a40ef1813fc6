"""Shared by the applier tests on the memory gateway (test_docker_applier_memory.py,
test_swarm_applier_memory.py): the showcase-like declaration, engines in a known state, a
scripted database server, and readers of what the engine holds and what a run wrote.

Nothing here talks to Docker: the engine is docker/memory.py's MemoryEngine, which records every
call; what a test asserts is read from its inspects and from the run's report."""
import copy
import importlib
import io
import re
import tarfile
import threading
import time as _time

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES
from ansible_collections.clockwork.connections.plugins.module_utils.docker import errors
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import WRITES, MemoryEngine
from ansible_collections.clockwork.connections.plugins.module_utils.stack import STACK_ARGUMENT_SPEC, run_stack

STACK = "showcase"
STACK_LABEL = "io.clockwork.stack"
RESOURCE_LABEL = "io.clockwork.resource"
POSTGRES = "clockwork-test/postgres:15"
REDIS = "clockwork-test/redis:7"
NGINX = "clockwork-test/nginx:1.22"
PASSWORD = "secret123"  # pragma: allowlist secret
PG_DATA = "/var/lib/postgresql/data"
# The local test images as the engine describes them: what matters here is the VOLUME each
# database image declares (an anonymous volume per container) and the ports they expose.
IMAGES = {
    POSTGRES: {"Volumes": [PG_DATA], "ExposedPorts": ["5432/tcp"], "Env": ["PATH=/usr/bin:/bin", "PG_MAJOR=15"],
               "Cmd": ["postgres"], "Entrypoint": ["docker-entrypoint.sh"]},
    REDIS: {"Volumes": ["/data"], "ExposedPorts": ["6379/tcp"], "Cmd": ["redis-server"], "WorkingDir": "/data"},
    NGINX: {"ExposedPorts": ["80/tcp"], "Cmd": ["nginx", "-g", "daemon off;"]},
}
SCHEMA = "CREATE TABLE users (id serial PRIMARY KEY, name text);"
HEX_ID = re.compile(r"(?<![0-9a-f])(?:[0-9a-f]{64}|[0-9a-f]{12})(?![0-9a-f])")   # a full or short id


def new_engine(swarm=False):
    """An empty engine with the test images."""
    return MemoryEngine(images=copy.deepcopy(IMAGES), swarm=swarm)


# -- time ---------------------------------------------------------------------------------------

class VirtualTime(object):
    """A clock on which sleeping takes no time: what `time` is for the appliers' waits that still
    read the process's clock instead of the gateway's (gateway.monotonic/sleep). A wait for a
    container (container_wait.wait_for: SETTLE_SECONDS after a start, its backoff, a timeout), the
    wait for what a concurrent run creates (container._created_meanwhile) and the checks' retries
    (checks.py) then take no real time; the order of events and every bound stay what they are.
    (docker_applier and the stack lock wait on the gateway's clock: the memory engine's own.)"""

    # The applier modules whose `time` this stands in for, while they have one.
    MODULES = ("container_wait", "container", "checks")

    def __init__(self):
        self._now = 1000.0
        self._lock = threading.Lock()

    def monotonic(self):
        with self._lock:
            return self._now

    def sleep(self, seconds):
        with self._lock:
            self._now += max(0.0, seconds)

    @staticmethod
    def time():
        return _time.time()

    def install(self, monkeypatch):
        for name in self.MODULES:
            module = importlib.import_module(
                "ansible_collections.clockwork.connections.plugins.module_utils.apply." + name)
            if hasattr(module, "time"):
                monkeypatch.setattr(module, "time", self)
        return self


# -- the declaration ---------------------------------------------------------------------------

def showcase(database=True, api_replicas=1, **changes):
    """(resources, connections) of roles/showcase with the local images: PostgreSQL, Redis, a
    file, a shared volume, the API and the frontend; every connection type. `database`: the
    database connection api -> postgres (its login is scripted: ScriptedDatabase). `changes`:
    resource name -> fields laid over that resource's."""
    resources = [
        {"name": "postgres", "image": POSTGRES, "ports": ["5432"],
         "env": {"POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "appdb"},
         "healthcheck": {"test": "pg_isready -U postgres -d appdb", "interval": "1s", "retries": 30}},
        {"name": "redis", "image": REDIS, "ports": ["6379"],
         "healthcheck": {"test": "redis-cli ping", "interval": "1s", "retries": 30}},
        {"name": "config_file", "type": "file", "path": "config.json", "content": '{"log_level": "info"}',
         "mode": "0644"},
        {"name": "storage", "image": NGINX},
        {"name": "api", "image": NGINX, "ports": ["8000"], "replicas": api_replicas,
         "command": ["sh", "-c", "exec nginx -g 'daemon off;'"],
         "healthcheck": {"test": "curl -fsS http://localhost:8000/health", "interval": "1s", "retries": 30}},
        {"name": "frontend", "image": NGINX, "ports": ["80"]},
    ]
    connections = [
        {"type": "network", "from": "api", "to": "redis", "network_name": "backend-network", "driver": "bridge",
         "internal": False},
        {"type": "file", "from": "api", "to": "config_file", "mount_path": "/etc/app/config.json", "read_only": True},
        {"type": "file", "from": "api", "to": "storage", "mount_path": "/data/shared", "volume_name": "app-shared-data",
         "create_volume": True},
        {"type": "service_mesh", "from": "frontend", "to": "api", "protocol": "http", "health_check_path": "/health"},
        {"type": "dependency", "from": "frontend", "to": "redis"},
    ]
    if database:
        connections.insert(0, {
            "type": "database", "from": "api", "to": "postgres",
            "connection_string_template": "postgresql://{user}:{password}@{host}:{port}/{database}",
            "username": "postgres", "password": PASSWORD, "database_name": "appdb", "schema_file": "schema.sql",
            "schema_content": SCHEMA, "wait_for_ready": True, "timeout": 30})
    if api_replicas > 1 and database:
        raise ValueError("a replicated api cannot be the database's client here: use database=False")
    for resource in resources:
        resource.update(copy.deepcopy(changes.get(resource["name"]) or {}))
    return resources, connections


def params(base_dir, resources, connections, name=STACK, **options):
    """The stack module's parameters, validated by its own argument spec (as the module does)."""
    result = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(dict(
        name=name, resources=copy.deepcopy(resources), connections=copy.deepcopy(connections),
        base_dir=str(base_dir), **options))
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


# -- running the module's entry point ------------------------------------------------------------

class RecordingGateway(DockerGateway):
    """The gateway, remembering the id of each container it created by name: the stack lock's
    container is told apart from the stack's by it."""

    def __init__(self, api):
        DockerGateway.__init__(self, api=api)
        self.created = {}

    def create_container(self, name, image, host_config=None, **config):
        made = DockerGateway.create_container(self, name, image, host_config=host_config, **config)
        self.created.setdefault(name, []).append(made["Id"])
        return made


def run(engine, stack_params, diff=False):
    """run_stack on a fresh gateway over `engine` (one gateway per run, as one module run has).
    Returns (report, gateway)."""
    gateway = RecordingGateway(engine)
    return run_stack(gateway, stack_params, diff=diff), gateway


def lock_ids(gateway):
    return set(i for name, ids in gateway.created.items() if name.startswith("clockwork-lock-") for i in ids)


def stack_writes(engine, since, gateway):
    """The engine's write calls from its call number `since` on (len(engine.calls) before the run),
    but the stack lock's (its container's create and remove: every run that may change the stack
    takes it, a no-op too)."""
    locks = lock_ids(gateway)
    kept = []
    for call in [c for c in engine.calls[since:] if c.method in WRITES]:
        if call.method == "create_container" and (call.kwargs.get("name") or "").startswith("clockwork-lock-"):
            continue
        if call.method == "remove_container" and call.args and call.args[0] in locks:
            continue
        kept.append(call)
    return kept


def without_lock(actions):
    """A gateway's recorded actions without the stack lock's and the release records' (releases/shelf.py),
    ids made comparable between engines."""
    actions = [a for a in actions if not a.startswith("release record: ")]
    kept = [a for a in actions if not a.startswith("create container clockwork-lock-")]
    # The lock's release names it by id; it is the last write of a run that took it.
    if len(kept) < len(actions) and kept and kept[-1].startswith("remove container "):
        kept = kept[:-1]
    return [HEX_ID.sub("<id>", a) for a in kept]


# -- reading the engine ----------------------------------------------------------------------

def container(engine, name):
    return engine.inspect_or_none("container", name)


def env_of(attrs):
    return dict(e.partition("=")[::2] for e in attrs["Config"]["Env"] or [])


def mounts_of(attrs):
    """target -> (type, source or volume name, read-write)."""
    return dict((m["Destination"], (m["Type"], m.get("Name") or m["Source"], m["RW"])) for m in attrs["Mounts"])


def networks_of(attrs):
    """network -> its aliases, without the container's short id (the engine adds it)."""
    return dict((name, sorted(a for a in point.get("Aliases") or [] if a != attrs["Id"][:12]))
                for name, point in attrs["NetworkSettings"]["Networks"].items())


def state_of(attrs):
    state = attrs["State"]
    return state["Status"], (state.get("Health") or {}).get("Status")


def read_file(engine, name, path):
    """A file's bytes as `docker cp` reads them out of a container (None when it has none)."""
    try:
        chunks, _stat = engine.get_archive(name, path)
    except errors.APIError:
        return None
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        return tar.extractfile(tar.getmembers()[0]).read()


def container_names(engine):
    return sorted(c["Names"][0].lstrip("/") for c in engine.containers(all=True))


def network_names(engine):
    return sorted(n["Name"] for n in engine.networks() if n["Name"] not in ("bridge", "host", "none"))


def volume_names(engine):
    return sorted(v["Name"] for v in engine.volumes()["Volumes"])


def snapshot(engine):
    """What the engine holds, to compare before and after a run: every container with its id,
    state, env, mounts, networks and labels; the networks and volumes with their labels."""
    containers = {}
    for name in container_names(engine):
        attrs = container(engine, name)
        containers[name] = (attrs["Id"], state_of(attrs), env_of(attrs), mounts_of(attrs), networks_of(attrs),
                            attrs["Config"]["Labels"])
    networks = dict((n["Name"], (n["Id"], n["Labels"])) for n in engine.networks())
    volumes = dict((v["Name"], v["Labels"]) for v in engine.volumes()["Volumes"])
    return {"containers": containers, "networks": networks, "volumes": volumes}


def entry(report, kind, name):
    found = [e for e in report["entries"] if e["kind"] == kind and e["name"] == name]
    assert len(found) == 1, "%s %s in %s" % (kind, name, report["entries"])
    return found[0]


def changed_entries(report):
    return [(e["kind"], e["name"], e["actions"]) for e in report["entries"] if e["changed"]]


# -- the database server, scripted ----------------------------------------------------------

class ScriptedDatabase(object):
    """PostgreSQL's login replaced by a scripted target (pure logic: no server, no driver): it
    remembers the files applied, by (kind, name) -> checksum, as the tracking table would, and
    who logged in where. `install(monkeypatch)` puts it in place of the engine's login and of
    the session a password rotation opens."""

    def __init__(self):
        self.applied = {}
        self.logins = []          # (host, port, read_only)
        self.applies = []         # (kind, name) in the order applied

    def install(self, monkeypatch):
        engine = ENGINES["postgresql"]
        monkeypatch.setattr(engine, "login", self.login)
        monkeypatch.setattr(engine, "session", self.session)
        return self

    def login(self, host, port, settings, timeout, wait, read_only, server, engine):
        self.logins.append((host, port, read_only))
        return _Target(self)

    def session(self, host, port, user, password, database, timeout):
        return None   # nothing to rotate in these tests: a login that would be one is refused


class _Target(object):
    def __init__(self, database):
        self.database = database

    def create_database(self):
        pass

    def applied(self):
        return dict(self.database.applied)

    def lock(self):
        pass

    def unlock(self):
        pass

    def refuse(self, pending):
        pass

    def prepare(self, pending, ctx, result):
        return None

    def apply(self, kind, name, sql, checksum, snapshot=None):
        self.database.applied[(kind, name)] = checksum
        self.database.applies.append((kind, name))

    def close(self):
        pass


# -- fixtures both applier files use (imported by name there) ------------------------------

@pytest.fixture(autouse=True)
def instant_waits(monkeypatch):
    """The appliers' waits that read the process's clock (VirtualTime) take no time; the rest run on
    the gateway's clock, the memory engine's."""
    return VirtualTime().install(monkeypatch)


@pytest.fixture
def base(tmp_path):
    """The playbook's directory, where relative paths resolve."""
    directory = tmp_path / "base"
    directory.mkdir()
    return directory


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Password files and TLS material go under the stack's home: a temporary one."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def release_store(engine, stack=STACK):
    """The release store of `stack` in the memory `engine` (releases/store.py)."""
    from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore
    return ReleaseStore(RecordingGateway(engine), stack)


def release_tags(engine, stack=STACK):
    """The tags of the images that hold `stack`'s release records on `engine`, sorted."""
    prefix = "clockwork-releases:%s." % stack
    return sorted(tag[len(prefix):] for image in engine.images() for tag in image["RepoTags"] or []
                  if tag.startswith(prefix))
