"""make test-cluster: a stack spread over a swarm of three engines on this one machine
(tests/cluster/cluster.sh): its connection's check passes from a task on one node to tasks on
the others, the replicas land on three nodes, and a rolling update keeps serving. Then the
WordPress-shaped example (playbooks/examples/wordpress.yml: MariaDB, Redis and a client reading
WORDPRESS_DB_* with its passwords as files) with one service on each node: check -> apply ->
idempotent -> check, a password rotation, destroy. The engines, namespaces and links are gone
afterwards, whatever happened."""
import json
import os
import shutil
import subprocess
import time

import docker as sdk
import pytest

from helpers import LOCAL_IMAGES, as_text, run_playbook
from test_wordpress_example import DB_PASSWORD, EXAMPLE, NEW_PASSWORD, REDIS_PASSWORD, assert_nothing_shows

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.stack import STACK_ARGUMENT_SPEC, run_stack

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cluster.sh")
DIR = os.environ.get("CLOCKWORK_CLUSTER_DIR", "/tmp/clockwork-cluster")
STACK = "cwcluster"
NGINX = "clockwork-test/nginx:1.22"
POSTGRES = "clockwork-test/postgres:15"
PASSWORD = "cluster-Pw-%d" % os.getpid()   # pragma: allowlist secret
SCHEMA = "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);"
MIGRATION = "CREATE TABLE notes (id serial PRIMARY KEY, body text);"
WEB = ("cat > /etc/nginx/conf.d/web.conf <<CONF\nserver {\n listen 8000;\n"
       " location = /health { default_type text/plain; return 200 \"ok\\n\"; }\n"
       " location = /version { default_type text/plain; return 200 \"$VERSION \\$hostname\\n\"; }\n}\nCONF\n"
       "exec nginx -g 'daemon off;'")


@pytest.fixture(scope="module")
def cluster():
    """The manager's DOCKER_HOST; the cluster is taken down again even when a test fails."""
    started = time.monotonic()
    try:
        up = subprocess.run([SCRIPT, "up"], capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        print("\ncluster up: %.1fs" % (time.monotonic() - started))
        yield up.stdout.strip().splitlines()[-1].split("=", 1)[1]
    finally:
        stopping = time.monotonic()
        down = subprocess.run([SCRIPT, "down"], capture_output=True, text=True, timeout=300)
        print("cluster down: %.1fs" % (time.monotonic() - stopping))
        assert down.returncode == 0, down.stderr
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert "cwcl-" not in namespaces and not os.path.exists(DIR)
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        assert "cwcl-" not in links


def on(host, *args):
    proc = subprocess.run(["docker", "-H", host] + list(args), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, "docker %s: %s" % (" ".join(args), proc.stderr)
    return proc.stdout.strip()


def converge(host, version, state="present"):
    resources = [
        {"name": "web", "image": NGINX, "ports": ["8000"], "replicas": 3, "max_replicas_per_node": 1,
         "endpoint_mode": "dnsrr", "command": ["sh", "-c", WEB], "env": {"VERSION": version},
         "healthcheck": {"test": "curl -fsS http://localhost:8000/health", "interval": "1s", "retries": 30}},
        {"name": "client", "image": NGINX, "endpoint_mode": "dnsrr"},
        {"name": "db", "image": POSTGRES, "ports": ["5432"], "endpoint_mode": "dnsrr",
         "env": {"POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "appdb"},
         "healthcheck": {"test": "pg_isready -U postgres -d appdb", "interval": "1s", "retries": 60}},
    ]
    # The controller reaches no node's networks (each engine has a namespace of its own): the
    # schema and the migration go through the engine of the database's node.
    connections = [{"type": "service_mesh", "from": "client", "to": "web", "health_check_path": "/health"},
                   {"type": "database", "from": "client", "to": "db", "password": PASSWORD,
                    "database_name": "appdb", "schema_content": SCHEMA,
                    "migrations": [{"name": "001_notes.sql", "content": MIGRATION}]}]
    params = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(dict(
        name=STACK, resources=resources, connections=connections, engine="swarm", state=state, purge=True,
        base_dir="/tmp", verify=state == "present")).validated_parameters
    return run_stack(DockerGateway(sdk.DockerClient(base_url=host)), params)


def tasks(host, service):
    """(node id, container id) of each running task of the service."""
    found = []
    for task_id in on(host, "service", "ps", "-q", "--filter", "desired-state=running", service).split():
        task = json.loads(on(host, "inspect", task_id))[0]
        if task["Status"]["State"] == "running":
            found.append((task["NodeID"], task["Status"]["ContainerStatus"]["ContainerID"]))
    return found


def node_socket(host, node_id):
    return json.loads(on(host, "node", "inspect", node_id))[0]["Spec"]["Labels"]["io.clockwork.docker-host"]


def test_a_stack_spread_over_three_nodes(cluster):
    host = cluster
    started = time.monotonic()
    deployed = converge(host, "v1")
    print("deploy: %.1fs" % (time.monotonic() - started))
    assert [c["ok"] for c in deployed["checks"]] == [True, True], as_text(deployed["checks"])
    database = [e for e in deployed["entries"] if e["kind"] == "connection" and e["name"].startswith("database")][0]
    assert database["actions"] == ["apply schema schema.sql", "apply migration 001_notes.sql"], as_text(database)

    # Applied once, on the server, wherever its task runs; its password is in no service spec.
    (db_node, db_container), = tasks(host, "db")
    psql = ["docker", "-H", node_socket(host, db_node), "exec", db_container, "psql", "-U", "postgres", "-d", "appdb",
            "-tAc"]
    recorded = subprocess.run(psql + ["SELECT count(*) FROM clockwork_schema_migrations"], capture_output=True,
                              text=True)
    assert recorded.stdout.strip() == "2", recorded.stderr
    for service in on(host, "service", "ls", "-q").split():
        assert PASSWORD not in on(host, "service", "inspect", service), service

    # The replicas land on three nodes (max_replicas_per_node 1).
    web = tasks(host, "web")
    assert len(web) == 3 and len(set(node for node, _c in web)) == 3

    # The connection crosses nodes: from the client's task, every web task answers, two of them on
    # other nodes; the stack's own check ran inside that task, on whichever node it is.
    (client_node, client_container), = tasks(host, "client")
    client = ["docker", "-H", node_socket(host, client_node), "exec", client_container]
    addresses = subprocess.run(client + ["getent", "ahosts", "tasks.web"], capture_output=True, text=True).stdout
    answered = {}
    for address in sorted(set(line.split()[0] for line in addresses.splitlines())):
        out = subprocess.run(client + ["curl", "-fsS", "-m", "3", "http://%s:8000/version" % address],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        answered[address] = out.stdout.split()[1]
    containers = dict((container[:12], node) for node, container in web)
    assert sorted(answered.values()) == sorted(containers)
    assert sum(1 for c in answered.values() if containers[c] != client_node) == 2

    # A rolling update (new env, one task at a time, each new one healthy before an old one stops)
    # keeps serving: a client on the attachable overlay polls the service all along.
    poller = on(host, "run", "-d", "--network", STACK + "_default", NGINX, "sh", "-c",
                "while true; do curl -s -m 2 http://web:8000/version || echo FAILED; sleep 0.1; done")
    try:
        time.sleep(2)
        before = on(host, "service", "inspect", "web", "--format", "{{.ID}}")
        started = time.monotonic()
        updated = converge(host, "v2")
        print("rolling update: %.1fs" % (time.monotonic() - started))
        time.sleep(2)
        log = on(host, "logs", poller).splitlines()
    finally:
        on(host, "rm", "-f", poller)
    assert [e["actions"] for e in updated["entries"] if e["kind"] == "service" and e["name"] == "web"] == [["update"]], \
        as_text(updated)
    assert on(host, "service", "inspect", "web", "--format", "{{.ID}}") == before
    versions = [line.split()[0] for line in log if line.strip()]
    assert "FAILED" not in versions, log
    assert versions[0] == "v1" and versions[-1] == "v2" and len(versions) > 20, log
    assert all(c["ok"] for c in updated["checks"]), as_text(updated)
    database = [e for e in updated["entries"] if e["kind"] == "connection" and e["name"].startswith("database")][0]
    assert not database["changed"], as_text(database)
    web = tasks(host, "web")
    assert len(set(node for node, _c in web)) == 3

    destroyed = converge(host, "v2", state="absent")
    assert destroyed["changed"] and on(host, "service", "ls", "-q") == "", as_text(destroyed)


# The example's services are db, cache and wordpress whatever the stack's name; this name keeps
# its host paths (~/.clockwork/<stack>) apart from those of the example on the host's engine.
WORDPRESS_STACK = "cwwordpress"
CONVERGE_TASK = "Converge stack " + WORDPRESS_STACK


def cluster_state(host):
    """The swarm's services, secrets and configs, and what each node's engine lists: compared
    around check mode, and after destroy."""
    state = dict((kind, sorted(on(host, kind, "ls", "-q").split())) for kind in ("service", "secret", "config"))
    for node in on(host, "node", "ls", "-q").split():
        engine = node_socket(host, node)
        for kind, args in (("containers", ("ps", "-aq")), ("networks", ("network", "ls", "-q")),
                           ("volumes", ("volume", "ls", "-q"))):
            state["%s %s" % (node, kind)] = sorted(on(engine, *args).split())
    return state


def settled(host, done, seconds=30):
    """cluster_state once `done(state)`, or at the end of `seconds`: the manager waits for its own
    tasks of a removed service, the other nodes remove theirs at their own pace, within seconds."""
    deadline = time.monotonic() + seconds
    state = cluster_state(host)
    while not done(state) and time.monotonic() < deadline:
        time.sleep(0.5)
        state = cluster_state(host)
    return state


def in_task(host, service, *command, **env):
    """(exit code, output) of a command in the service's running task, through its node's engine."""
    (node, container), = tasks(host, service)
    exports = [arg for name, value in sorted(env.items()) for arg in ("-e", "%s=%s" % (name, value))]
    proc = subprocess.run(["docker", "-H", node_socket(host, node), "exec"] + exports + [container] + list(command),
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, (proc.stdout if proc.returncode == 0 else proc.stderr).strip()


def mariadb(host, password, query):
    """A query as root inside the db task, wherever it runs: its output, or the refusal."""
    return in_task(host, "db", "mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-u", "root", "-N", "-B",
                   "-D", "wordpress", "-e", query, MYSQL_PWD=password)[1]


def test_the_wordpress_example_over_three_nodes(cluster, tmp_path):
    host = cluster
    host_files = os.path.join(os.path.expanduser("~"), ".clockwork", WORDPRESS_STACK)
    shutil.rmtree(host_files, ignore_errors=True)
    releases = ["images", "-q", "--filter", "label=io.clockwork.releases-of=" + WORDPRESS_STACK]
    for record in set(on(host, *releases).split()):   # an earlier run's: a stack's releases stay after its destroy
        on(host, "rmi", "-f", record)

    def example(*args, check=False, **extra_vars):
        return run_playbook(EXAMPLE, check=check, extra_args=args, env={"DOCKER_HOST": host}, extra_vars=dict(
            LOCAL_IMAGES, wordpress_engine="swarm", wordpress_stack_name=WORDPRESS_STACK,
            clockwork_diagram_path=str(tmp_path / "wordpress.stack.md"), **extra_vars))

    def report(run):
        assert run.rc == 0, run.output
        return run.result(CONVERGE_TASK)

    empty = settled(host, lambda s: not any(v for k, v in s.items() if k.endswith(" containers")))
    assert not empty["service"] and not any(v for k, v in empty.items() if k.endswith(" containers")), empty
    dry = example("--diff", check=True)
    assert report(dry)["changed"] is True, dry.details
    assert cluster_state(host) == empty, "check mode changed the cluster"
    assert not os.path.exists(host_files) and not on(host, *releases), "check mode recorded nothing"

    started = time.monotonic()
    applied = example("--diff", "-vvv")
    print("wordpress deploy: %.1fs" % (time.monotonic() - started))
    assert [c["ok"] for c in report(applied)["checks"]] == [True, True, True], as_text(report(applied)["checks"])
    assert_nothing_shows(applied.output, DB_PASSWORD, REDIS_PASSWORD)
    # The client logs in to MariaDB and Redis across nodes. db and cache are created at once (they
    # connect to nothing), so spread may put both on one node; wordpress comes after both are ready,
    # and spread sends it to a node with no task of the stack yet.
    nodes = dict((service, tasks(host, service)[0][0]) for service in ("db", "cache", "wordpress"))
    assert nodes["wordpress"] not in (nodes["db"], nodes["cache"]), nodes
    # db alone mounts db_data: it runs where the stack made the volume, the manager (a task on
    # another node would get an empty volume of that node's own, never purged).
    manager = on(host, "info", "--format", "{{.Swarm.NodeID}}")
    assert nodes["db"] == manager, nodes
    (node, container), = tasks(host, "wordpress")
    assert on(node_socket(host, node), "inspect", "--format", "{{.State.Health.Status}}", container) == "healthy", \
        "the client is healthy only while its own login to MariaDB and its AUTH to Redis succeed"
    # The schema was applied once, from the controller, on MariaDB's own node.
    assert mariadb(host, DB_PASSWORD, "SELECT kind, name FROM clockwork_schema_migrations") == \
        "schema\twordpress-schema.sql"
    assert mariadb(host, DB_PASSWORD, "SELECT COUNT(*) FROM wp_options") == "1"
    # The passwords are Swarm secrets, read as *_FILE; the one exception is the example's own
    # `redis-server --requirepass` command line, which `docker service inspect cache` shows.
    for service in on(host, "service", "ls", "--format", "{{.Name}}").split():
        spec = json.loads(on(host, "service", "inspect", service))[0]
        if service == "cache":
            assert spec["Spec"]["TaskTemplate"]["ContainerSpec"].pop("Args")[1] == "--requirepass"
        assert_nothing_shows(json.dumps(spec), DB_PASSWORD, REDIS_PASSWORD)
    # On Swarm the passwords are the swarm's, not files on the controller; the release this run made is in
    # the manager's engine (the controller reached it over tcp://), none on the controller.
    assert not os.path.exists(host_files), "nothing of the stack on the controller: %s" % os.listdir(host_files)
    assert sorted(on(host, "images", "--filter", "label=io.clockwork.releases-of=" + WORDPRESS_STACK, "--format",
                     "{{.Tag}}").split()) == [WORDPRESS_STACK + ".1", WORDPRESS_STACK + ".index"]

    again = example()
    assert report(again)["changed"] is False, again.output
    state = cluster_state(host)
    dry_again = example("--diff", check=True)
    assert report(dry_again)["changed"] is False, dry_again.output
    assert cluster_state(host) == state

    # A new password: MariaDB's user rotated, its task and the client's restarted with new secrets,
    # on the same node as its volume; the row stays and the old password is refused.
    assert mariadb(host, DB_PASSWORD, "INSERT INTO wp_options (option_name, option_value) VALUES ('kept', 'yes')") == ""
    dry_rotation = example("--diff", "-vvv", check=True, wordpress_db_password=NEW_PASSWORD)
    assert report(dry_rotation)["changed"] is True, dry_rotation.details
    assert cluster_state(host) == state, "check mode changed the cluster"
    assert_nothing_shows(dry_rotation.output, DB_PASSWORD, NEW_PASSWORD, REDIS_PASSWORD)
    rotated = example("--diff", "-vvv", wordpress_db_password=NEW_PASSWORD)
    assert_nothing_shows(rotated.output, DB_PASSWORD, NEW_PASSWORD, REDIS_PASSWORD)
    entries = dict(("%s %s" % (e["kind"], e["name"]), e) for e in report(rotated)["entries"])
    assert entries["connection database wordpress -> db"]["actions"] == ["rotate the password of user root"], \
        "the schema is not applied again: the data is in the named volume:\n" + rotated.details
    assert entries["service db"]["actions"] == entries["service wordpress"]["actions"] == ["update"], rotated.details
    assert entries["service cache"]["changed"] is False, rotated.details
    assert all(c["ok"] for c in report(rotated)["checks"]), as_text(report(rotated)["checks"])
    assert tasks(host, "db")[0][0] == nodes["db"]
    assert mariadb(host, NEW_PASSWORD, "SELECT option_value FROM wp_options WHERE option_name = 'kept'") == "yes"
    assert "Access denied" in mariadb(host, DB_PASSWORD, "SELECT 1")
    assert mariadb(host, NEW_PASSWORD, "SELECT COUNT(*) FROM clockwork_schema_migrations") == "1"
    for service in ("db", "wordpress"):
        assert_nothing_shows(on(host, "service", "inspect", service), DB_PASSWORD, NEW_PASSWORD)
    steady = example(wordpress_db_password=NEW_PASSWORD)
    assert report(steady)["changed"] is False, steady.output

    # Destroy, with purge: the services, network, secrets, the volume and the tasks' containers go.
    destroyed = example(clockwork_state="absent", clockwork_purge=True)
    assert report(destroyed)["changed"] is True, destroyed.details
    left = settled(host, lambda s: s == empty)
    assert left == empty
