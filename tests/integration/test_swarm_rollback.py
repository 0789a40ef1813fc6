"""engine swarm, issue 35 part 6, on a real single-node swarm: a failed deploy leaves the previous
release's services running, whole (each on the spec the release recorded, not Swarm's one-step
PreviousSpec; the overlay network it made removed), and `state: rolled_back` returns every service
to a kept release's spec, start-first; a client polling the API by name every 50 ms sees no failed
request meanwhile; a rerun and --check of it change nothing.

The swarm is joined and left as tests/integration/test_swarm.py does (its `swarm` fixture: the
engine is left as it was found). What is asserted is `docker service inspect`'s Spec compared with
the one the release recorded on the Docker host (~/.clockwork/<stack>/releases, releases/store.py).
Last, restore_data: PostgreSQL with rows, release 2 with migration V2 adding a column and backfilling it
(its snapshot taken before V2 inside the server's task, through its node's engine), then `state: rolled_back`
with `restore_data`: --check names the snapshot, its time and size and the rows that would be lost; the
database is then exactly as before V2 (pg_dump compared), and a rerun and --check change nothing."""
import time

import docker as docker_sdk
import pytest

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, as_text, docker
from test_replicas import POLL, log_lines, poll_lines
from test_swarm import API_SCRIPT, remove_swarm_stack, swarm, task_container  # noqa: F401  (the swarm fixture)

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import open_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore
from ansible_collections.clockwork.connections.plugins.module_utils.stack import STACK_ARGUMENT_SPEC, run_stack

NEVER_HEALTHY = {"test": "exit 1", "interval": "1s", "timeout": "1s", "retries": 1}
HEALTHY = {"test": "curl -fsS http://localhost:8000/health", "interval": "1s", "retries": 30}


@pytest.fixture
def swarm_stack(swarm, stack):  # noqa: F811
    yield stack
    docker("rm", "-f", stack + "-poller", check=False)
    remove_swarm_stack(stack)


def start_poller(stack, target):
    """A client curling `target` by name every 50 ms from the stack's overlay network: a plain container,
    not labelled the stack's (the swarm target refuses a stack with plain containers), removed by the fixture."""
    poller = stack + "-poller"
    docker("run", "-d", "--name", poller, "--network", stack + "_default", "-e", "TARGET=" + target, NGINX_IMAGE,
           "sh", "-c", POLL)
    deadline = time.time() + 60
    while len([w for w, _ in poll_lines(poller) if w == "OK"]) < 5:
        assert time.time() < deadline, log_lines(poller)[-5:]
        time.sleep(0.5)
    return poller


def requests_during(poller, start_ns, end_ns):
    """(requests, the failed ones as printed) the poller started in a window, once each has ended."""
    deadline = time.time() + 30
    while not [ts for _w, ts in poll_lines(poller) if int(ts) > end_ns]:   # one request at a time
        assert time.time() < deadline, log_lines(poller)[-5:]
        time.sleep(0.5)
    lines = [(word, int(ts)) for word, ts in poll_lines(poller) if start_ns <= int(ts) <= end_ns]
    return len(lines), [line for line in log_lines(poller)
                        if line.startswith("FAIL ") and start_ns <= int(line.split()[1]) <= end_ns]


def resources(stack, feature="1", api_health=None):
    """api (2 tasks, start-first: no volume) and frontend, side by side (no connection: both converge at once)."""
    return [
        {"name": stack + "-api", "image": NGINX_IMAGE, "ports": ["8000"], "replicas": 2, "endpoint_mode": "dnsrr",
         "command": ["sh", "-c", API_SCRIPT], "env": {"FEATURE": feature}, "timeout": 40,
         "healthcheck": api_health or HEALTHY},
        {"name": stack + "-frontend", "image": NGINX_IMAGE, "endpoint_mode": "dnsrr", "env": {"FEATURE": feature}},
    ]


def run(stack, tmp_path, declared=(), check=False, **options):
    result = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(dict(
        dict(name=stack, resources=list(declared), connections=[], engine="swarm", base_dir=str(tmp_path)), **options))
    assert not result.error_messages, result.error_messages
    return run_stack(open_gateway(check), result.validated_parameters, diff=True)


def spec(service):
    """The service's Spec as the engine holds it (GET /services/<name>; the CLI's `docker service inspect`
    asks for it with the engine's defaults inserted, which the release, as the gateway read it, has not)."""
    client = docker_sdk.APIClient(version="auto")
    try:
        return client.inspect_service(service)["Spec"]
    finally:
        client.close()


def recorded(stack, number):
    release = ReleaseStore(open_gateway(True), stack).release(number)
    return dict((name, s["spec"]) for name, s in release["services"].items())


def env(service_spec):
    return dict(e.partition("=")[::2] for e in service_spec["TaskTemplate"]["ContainerSpec"].get("Env") or [])


def test_a_failed_deploy_goes_back_to_the_release_and_a_rollback_returns_to_one(swarm_stack, tmp_path):
    stack = swarm_stack
    api, frontend = stack + "-api", stack + "-frontend"
    released = run(stack, tmp_path, resources(stack))
    first = released["release"]["number"]
    assert sorted(recorded(stack, first)) == [api, frontend], as_text(released)

    poller = start_poller(stack, api + ":8000")

    # Release 2's api never becomes healthy; its frontend updates meanwhile: both go back on release 1's spec,
    # and the overlay network it made (a network resource release 1 has not) is removed.
    start = time.time_ns()
    with pytest.raises(ClockworkError) as failed:
        run(stack, tmp_path, resources(stack, feature="2", api_health=NEVER_HEALTHY)
            + [{"name": stack + "-extra", "type": "network"}])
    requests, failures = requests_during(poller, start, time.time_ns())
    assert requests >= 8 and failures == [], (requests, failures)
    message = failed.value.msg
    assert "service %s" % api in message and "the stack is back on release %d" % first in message, \
        "%s\n(release 1 is %d)" % (message, first)
    assert "service %s: back to release %d (start-first)" % (frontend, first) in message, \
        "%s\n(release 1 is %d)" % (message, first)
    for name in (api, frontend):
        assert spec(name) == recorded(stack, first)[name], as_text({"running": spec(name),
                                                                    "release": recorded(stack, first)[name]})
        assert env(spec(name))["FEATURE"] == "1"
    assert ReleaseStore(open_gateway(True), stack).index()["current"] == first, as_text(released)
    assert "network %s-extra: removed (made by this run, not in release %d)" % (stack, first) in message, \
        "%s\n(release 1 is %d)" % (message, first)
    assert docker("network", "ls", "-q", "--filter", "name=^%s-extra$" % stack) == "", "the run's new network is gone"

    # A good release 2, then back to the previous one on demand: checked first, which changes nothing.
    second = run(stack, tmp_path, resources(stack, feature="2"))["release"]["number"]
    assert env(spec(frontend))["FEATURE"] == "2"
    checked = run(stack, tmp_path, check=True, state="rolled_back", release="previous")
    assert checked["changed"] is True and checked["rolled_back_to"] == first, as_text(checked)
    assert env(spec(api))["FEATURE"] == "2", "--check changed nothing"

    start = time.time_ns()
    report = run(stack, tmp_path, state="rolled_back", release="previous")
    requests, failures = requests_during(poller, start, time.time_ns())
    assert requests >= 8 and failures == [], (requests, failures)
    assert report["changed"] is True and report["rolled_back_to"] == first, as_text(report)
    assert report["release"]["number"] == second + 1, as_text(report)
    assert [(e["name"], e["actions"]) for e in report["entries"] if e["changed"]] == \
        [(e["name"], e["actions"]) for e in checked["entries"] if e["changed"]], as_text([report, checked])
    for name in (api, frontend):
        assert spec(name) == recorded(stack, first)[name], as_text({"running": spec(name),
                                                                    "release": recorded(stack, first)[name]})
    assert len(docker("service", "ps", api, "--filter", "desired-state=running", "-q").split()) == 2

    again = run(stack, tmp_path, state="rolled_back", release="previous")
    assert again["changed"] is False and again["rolled_back_to"] == first, as_text(again)
    checked = run(stack, tmp_path, check=True, state="rolled_back", release="previous")
    assert checked["changed"] is False, as_text(checked)


PASSWORD = "pg-sw4rm-5ecret"   # pragma: allowlist secret
V2 = "ALTER TABLE items ADD COLUMN label text;\nUPDATE items SET label = upper(name);\n"


def database_declaration(stack, migrations=()):
    """PostgreSQL with a table of rows, and its one client (the api, one task)."""
    db, api = stack + "-db", stack + "-api"
    resources = [
        {"name": db, "image": POSTGRES_IMAGE, "ports": ["5432"], "endpoint_mode": "dnsrr",
         "env": {"POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "appdb"},
         "healthcheck": {"test": "pg_isready -U postgres -d appdb", "interval": "1s", "retries": 30}},
        {"name": api, "image": NGINX_IMAGE, "endpoint_mode": "dnsrr"},
    ]
    connections = [{"type": "database", "from": api, "to": db, "username": "postgres", "password": PASSWORD,
                    "database_name": "appdb", "schema_file": "schema.sql",
                    "schema_content": "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL); "
                                      "INSERT INTO items (name) VALUES ('one'), ('two');",
                    "migrations": list(migrations)}]
    return dict(declared=resources, connections=connections)


def psql(stack, sql):
    return docker("exec", task_container(stack + "-db"), "psql", "-U", "postgres", "-d", "appdb", "-Atc", sql)


def dumped(stack):
    """The database as pg_dump writes it, without the random key of its \\restrict lines."""
    out = docker("exec", task_container(stack + "-db"), "pg_dump", "-U", "postgres", "--no-password", "appdb")
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict ", "\\unrestrict ")))


def test_restore_data_puts_the_database_back_as_before_the_next_release_s_migration(swarm_stack, tmp_path):
    stack = swarm_stack
    api, label = stack + "-api", "database %s-api -> %s-db" % (stack, stack)
    first = run(stack, tmp_path, **database_declaration(stack))["release"]["number"]
    psql(stack, "INSERT INTO items (name) VALUES ('three')")
    before = dumped(stack)

    two = database_declaration(stack, [{"name": "V2__label.sql", "content": V2}])
    report = run(stack, tmp_path, **two)
    second = report["release"]["number"]
    snapshots = ReleaseStore(open_gateway(True), stack).release(second)["databases"][label]["snapshots"]
    assert [(s["kind"], s["volume"]) for s in snapshots] == [("pg_dump", stack + "-clockwork-snapshots")], \
        as_text(report)
    assert docker("volume", "inspect", "-f", "{{.Name}}", stack + "-clockwork-snapshots") == \
        stack + "-clockwork-snapshots", "kept in a volume on the node of the server's task"
    assert psql(stack, "SELECT label FROM items ORDER BY id").split() == ["ONE", "TWO", "THREE"]
    psql(stack, "INSERT INTO items (name, label) VALUES ('late', 'LATE')")

    rollback = dict(two, state="rolled_back", release="previous", restore_data=True)
    checked = run(stack, tmp_path, check=True, **rollback)
    restore = [e for e in checked["entries"] if e["kind"] == "database"]
    assert checked["changed"] is True and checked["rolled_back_to"] == first, as_text(checked)
    assert restore and restore[0]["actions"][0].startswith("restore snapshot %s of appdb, taken %s" % (
        snapshots[0]["name"], snapshots[0]["created"])), as_text(checked)
    assert "kB)" in restore[0]["actions"][0] or "MB)" in restore[0]["actions"][0], as_text(checked)
    assert "rows written to appdb after %s are lost" % snapshots[0]["created"] in restore[0]["actions"][0], \
        as_text(checked)
    assert PASSWORD not in as_text(checked), as_text(checked)
    assert "late" in psql(stack, "SELECT name FROM items").split(), "--check changed nothing"

    report = run(stack, tmp_path, **rollback)
    assert report["changed"] is True and report["rolled_back_to"] == first, as_text(report)
    assert [(e["kind"], e["name"], e["actions"][0].split(" of ")[0]) for e in report["entries"] if e["changed"]][:2] \
        == [("service", api, "stop"), ("database", label, "restore snapshot %s" % snapshots[0]["name"])], \
        as_text(report)
    assert dumped(stack) == before, "schema and rows are not as before V2"
    assert len(docker("service", "ps", api, "--filter", "desired-state=running", "-q").split()) == 1, \
        "the client runs again"

    again = run(stack, tmp_path, **rollback)
    assert again["changed"] is False, as_text(again)
    checked = run(stack, tmp_path, check=True, **rollback)
    assert checked["changed"] is False, as_text(checked)
    assert dumped(stack) == before
