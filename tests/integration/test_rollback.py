"""Releases and rollback on the real engine (issue 35 parts 2 and 3).

Release 1: PostgreSQL with a schema and rows, an API of 2 replicas (its client), a frontend, and a
poller that curls the API by name every 50 ms from a container of the stack. Release 2 brings an
API image whose healthcheck never passes and a new frontend env: the run fails, and the API and the
frontend are on release 1's spec afterwards (docker inspect), the poller saw 0 failed requests, and
release 1's declaration reruns with changed=0. Then a good release 2, and `state: rolled_back`
with `release: previous`: check -> apply -> rerun (changed=0) -> check (changed=0), with 0 failed
requests, the rows kept, and no secret in -vvv --diff. Last, through the role (tasks/rollback.yml),
`clockwork_restore_data: true` after a release whose migration V2 added a column and backfilled it:
--check names the snapshot and the rows that would be lost; then schema and every row are exactly as
before V2 (pg_dump), and a rerun changes nothing."""
import json
import subprocess
import time
import uuid

import pytest

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, docker, env_of, inspect, playbook, remove_stack
from test_mysql import MARIADB_IMAGE

from test_replicas import POLL, log_lines, poll_lines, printed_past

PASSWORD = "pg-5ecret-4417"   # pragma: allowlist secret
TOKEN = "api-t0ken-8830"      # pragma: allowlist secret
HEALTHY = {"test": ["CMD", "curl", "-fsS", "http://localhost/"], "interval": "1s", "retries": 30}
NEVER_HEALTHY = {"test": ["CMD", "false"], "interval": "1s", "retries": 1}
SCHEMA = ("CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL); "
          "INSERT INTO items (name) VALUES ('one'), ('two'), ('three');")


@pytest.fixture
def new_api_image(stack):
    """A second local nginx image (another id, as a new release's would be), removed after the stack."""
    tag = "clockwork-test/nginx:rollback-%s" % uuid.uuid4().hex[:8]
    subprocess.run(["docker", "build", "-q", "-t", tag, "--label", "io.clockwork.test=rollback", "-"],
                   input="FROM %s\n" % NGINX_IMAGE, text=True, check=True, capture_output=True,
                   env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"})
    yield tag
    remove_stack(stack)
    docker("rmi", tag, check=False)


def declaration(stack, api_image=NGINX_IMAGE, api_health=None, mode="one"):
    db, api, frontend, poller = (stack + suffix for suffix in ("-db", "-api", "-frontend", "-poller"))
    resources = [
        dict(name=db, image=POSTGRES_IMAGE, env={"POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "appdb"},
             healthcheck={"test": "pg_isready -U postgres -d appdb", "interval": "1s", "retries": 60}),
        dict(name=api, image=api_image, replicas=2, env={"API_TOKEN": TOKEN}, healthcheck=api_health or HEALTHY,
             stop_grace_period="2s", timeout=15),
        dict(name=frontend, image=NGINX_IMAGE, env={"MODE": mode}, stop_grace_period="2s", timeout=30),
        dict(name=poller, image=NGINX_IMAGE, env={"TARGET": api}, command=["sh", "-c", POLL]),
    ]
    connections = [
        dict(type="database", engine="postgresql", username="postgres", password=PASSWORD, database_name="appdb",
             schema_content=SCHEMA, wait_for_ready=True, timeout=60, **{"from": api, "to": db}),
        dict(type="dependency", **{"from": poller, "to": api}),
    ]
    return dict(name=stack, resources=resources, connections=connections)


def task(args):
    return {"name": "stack", "clockwork.connections.stack": args, "register": "result"}


def rollback_args(stack, release="previous"):
    return dict(name=stack, state="rolled_back", release=release)


def rows(stack):
    return docker("exec", stack + "-db", "psql", "-U", "postgres", "-d", "appdb", "-Atc",
                  "SELECT name FROM items ORDER BY id").split()


def spec_of(name):
    attrs = inspect("container", name)
    env = dict(e.partition("=")[::2] for e in attrs["Config"]["Env"])
    return attrs["Image"], env.get("MODE"), attrs["Config"].get("Healthcheck")


def failures_during(poller, start_ns, end_ns):
    lines = [(word, int(ts)) for word, ts in poll_lines(poller) if start_ns <= int(ts) <= end_ns]
    return len(lines), [line for line in log_lines(poller)
                        if line.startswith("FAIL ") and start_ns <= int(line.split()[1]) <= end_ns]


def timed(poller, tasks, **options):
    start = time.time_ns()
    run = playbook(tasks, **options)
    end = time.time_ns()
    printed_past(poller, end)   # a request started just before the end is printed when it ends (curl's --max-time 8)
    return run, start, end


@pytest.fixture
def other_stack():
    """A container of another stack (its label), which nothing here may touch."""
    other = "cwtest-" + uuid.uuid4().hex[:8]
    docker("run", "-d", "--name", other + "-web", "--label", "io.clockwork.stack=" + other, "--label",
           "io.clockwork.resource=%s-web" % other, NGINX_IMAGE)
    yield other + "-web"
    remove_stack(other)


def untouched(name):
    attrs = inspect("container", name)
    return attrs["Id"], attrs["State"]["StartedAt"], attrs["State"]["Running"], attrs["RestartCount"]


def test_a_failed_deploy_goes_back_and_a_rollback_returns_to_the_previous_release(stack, new_api_image, other_stack):
    api_1, api_2, frontend, poller = (stack + s for s in ("-api-1", "-api-2", "-frontend", "-poller"))
    others = untouched(other_stack)
    run = playbook([task(declaration(stack))])
    assert run.rc == 0 and run.result("stack")["release"]["number"] == 1, run.details
    one = dict((name, spec_of(name)) for name in (api_1, api_2, frontend))
    assert rows(stack) == ["one", "two", "three"]
    deadline = time.time() + 30
    while len([w for w, _ in poll_lines(poller) if w == "OK"]) < 10:
        assert time.time() < deadline, poll_lines(poller)[-5:]
        time.sleep(0.2)

    # Release 2 fails: its API never becomes healthy; the frontend it replaced goes back.
    failing = declaration(stack, api_image=new_api_image, api_health=NEVER_HEALTHY, mode="two")
    run, start, end = timed(poller, [task(failing)], diff=True, verbose=True, env={"ANSIBLE_VERBOSITY": "3"})
    assert run.rc != 0, run.details
    message = run.result("stack")["msg"]
    assert "its replacement did not become ready" in message and "the stack is back on release 1" in message, \
        run.details
    assert dict((name, spec_of(name)) for name in (api_1, api_2, frontend)) == one, "all on release 1's spec"
    assert env_of(frontend)["MODE"] == "one"
    requests, failed = failures_during(poller, start, end)
    assert requests >= 8 and failed == [], "%d requests, failed: %s\n%s" % (requests, failed, run.details)
    assert PASSWORD not in run.details and TOKEN not in run.details, run.details
    run = playbook([task(declaration(stack))])
    assert run.rc == 0 and run.result("stack")["changed"] is False, run.details

    # A good release 2, then back to release 1 on demand, without its declaration.
    run = playbook([task(declaration(stack, mode="two"))])
    assert run.rc == 0 and run.result("stack")["release"]["number"] == 2, run.details
    assert env_of(frontend)["MODE"] == "two"
    before = docker("ps", "-aq", "--filter", "label=io.clockwork.stack=%s" % stack)

    check = playbook([task(rollback_args(stack))], check=True, diff=True, verbose=True)
    assert check.rc == 0 and check.result("stack")["changed"] is True, check.details
    assert [(e["name"], e["actions"], e["reasons"]) for e in check.result("stack")["entries"] if e["changed"]] == \
        [(frontend, ["replace start-first"], ["env MODE"])], check.details
    assert check.result("stack")["release"]["number"] == 3 and check.result("stack")["rolled_back_to"] == 1, \
        check.details
    assert docker("ps", "-aq", "--filter", "label=io.clockwork.stack=%s" % stack) == before, "check changed nothing"
    assert env_of(frontend)["MODE"] == "two"
    loud = playbook([task(rollback_args(stack))], check=True, diff=True, verbose=True,
                    env={"ANSIBLE_VERBOSITY": "3"})
    assert loud.rc == 0 and "MODE" in loud.details, loud.details
    assert PASSWORD not in loud.details and TOKEN not in loud.details and PASSWORD not in json.dumps(loud.results), \
        loud.details

    run, start, end = timed(poller, [task(rollback_args(stack))], diff=True, verbose=True,
                            env={"ANSIBLE_VERBOSITY": "3"})
    assert run.rc == 0 and run.result("stack")["changed"] is True, run.details
    assert PASSWORD not in run.details and TOKEN not in run.details and "MODE" in run.details, run.details
    assert run.result("stack")["release"] == dict(run.result("stack")["release"], number=3, rolled_back_to=1), \
        run.details
    assert dict((name, spec_of(name)) for name in (api_1, api_2, frontend)) == one
    requests, failed = failures_during(poller, start, end)
    assert requests >= 8 and failed == [], "%d requests, failed: %s\n%s" % (requests, failed, run.details)
    assert rows(stack) == ["one", "two", "three"], "the database kept its data"

    again = playbook([task(rollback_args(stack))])
    assert again.rc == 0 and again.result("stack")["changed"] is False, again.details
    check = playbook([task(rollback_args(stack))], check=True)
    assert check.rc == 0 and check.result("stack")["changed"] is False, check.details
    assert untouched(other_stack) == others, "another stack's container was touched"


V2 = "ALTER TABLE items ADD COLUMN label text;\nUPDATE items SET label = upper(name);\n"


MARIADB_V2 = "ALTER TABLE items ADD COLUMN label VARCHAR(20);\nUPDATE items SET label = UPPER(name);\n"


def dumped(db, engine="postgresql"):
    """The database as pg_dump (mariadb-dump) writes it, without the random key of pg_dump's \\restrict lines."""
    if engine == "mariadb":
        return docker("exec", "-e", "MYSQL_PWD=" + PASSWORD, db, "mariadb-dump", "--protocol=TCP", "-h", "127.0.0.1",
                      "-u", "root", "--skip-comments", "--routines", "--triggers", "--events", "appdb")
    out = docker("exec", db, "pg_dump", "-U", "postgres", "--no-password", "appdb")
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict ", "\\unrestrict ")))


def role_rollback(stack, declared, restore_data=True):
    role = {"name": "clockwork.connections.stack", "tasks_from": "rollback"}
    return {"name": "rollback", "ansible.builtin.include_role": role,
            "vars": {"clockwork_stack_name": stack, "clockwork_rollback": "previous",
                     "clockwork_restore_data": restore_data, "clockwork_resources": declared["resources"],
                     "clockwork_connections": declared["connections"]}}


def sql(db, engine, query):
    if engine == "mariadb":
        return docker("exec", "-e", "MYSQL_PWD=" + PASSWORD, db, "mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u",
                      "root", "-N", "-B", "-D", "appdb", "-e", query)
    return docker("exec", db, "psql", "-U", "postgres", "-d", "appdb", "-Atc", query)


def database_stack(stack, engine):
    """The database and its client (the API, one container): PostgreSQL, or MariaDB with the same schema."""
    one = declaration(stack)
    one["resources"] = one["resources"][:2]
    one["resources"][1]["replicas"] = 1
    one["connections"] = one["connections"][:1]
    if engine == "mariadb":
        one["resources"][0] = dict(name=stack + "-db", image=MARIADB_IMAGE, env={"MARIADB_ROOT_PASSWORD": PASSWORD},
                                   healthcheck={"test": ["CMD", "healthcheck.sh"], "interval": "1s",
                                                "start_period": "60s"})
        one["connections"][0].update(engine="mariadb", username="root", schema_content=SCHEMA.replace(
            "id serial PRIMARY KEY, name text NOT NULL", "id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL"))
    return one


@pytest.mark.parametrize("engine", ["postgresql", "mariadb"])
def test_restore_data_puts_every_row_back_as_before_the_next_release_s_migration(stack, engine):
    db = stack + "-db"
    one = database_stack(stack, engine)
    run = playbook([task(one)])
    assert run.rc == 0, run.details
    sql(db, engine, "INSERT INTO items (name) VALUES ('four')")
    before = dumped(db, engine)

    two = json.loads(json.dumps(one))
    two["connections"][0]["migrations"] = [{"name": "V2__label.sql", "content": MARIADB_V2 if engine == "mariadb"
                                            else V2}]
    run = playbook([task(two)])
    assert run.rc == 0 and run.result("stack")["release"]["number"] == 2, run.details
    assert sql(db, engine, "SELECT label FROM items ORDER BY id").split() == ["ONE", "TWO", "THREE", "FOUR"]
    sql(db, engine, "INSERT INTO items (name) VALUES ('late')")

    check = playbook([role_rollback(stack, two)], check=True, diff=True)
    assert check.rc == 0, check.details
    assert "rows written to appdb after" in check.details and "are lost" in check.details, check.details
    assert "restore snapshot appdb-" in check.details and PASSWORD not in check.details, check.details
    assert "late" in sql(db, engine, "SELECT name FROM items")

    run = playbook([role_rollback(stack, two)], diff=True, verbose=True, env={"ANSIBLE_VERBOSITY": "3"})
    assert run.rc == 0 and PASSWORD not in run.details, run.details
    assert dumped(db, engine) == before, "schema and rows are not as before V2"
    assert inspect("container", stack + "-api")["State"]["Running"], "the client runs again"
    again = playbook([role_rollback(stack, two)])
    assert again.rc == 0 and not again.changed, again.details
    assert again.result("Roll back stack %s to release previous" % stack)["changed"] is False, again.details
    assert dumped(db, engine) == before
