"""make test-cluster: a stack spread over a swarm of three engines on this one machine
(tests/cluster/cluster.sh): its connection's check passes from a task on one node to tasks on
the others, the replicas land on three nodes, and a rolling update keeps serving. The engines,
namespaces and links are gone afterwards, whatever happened."""
import json
import os
import subprocess
import time

import docker as sdk
import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.clockwork.connections.plugins.module_utils.docker_client import Engine
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
    return run_stack(Engine(sdk.DockerClient(base_url=host)), params)


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
    assert [c["ok"] for c in deployed["checks"]] == [True, True], deployed["checks"]
    database = [e for e in deployed["entries"] if e["kind"] == "connection" and e["name"].startswith("database")][0]
    assert database["actions"] == ["apply schema schema.sql", "apply migration 001_notes.sql"], database

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
    assert [e["actions"] for e in updated["entries"] if e["kind"] == "service" and e["name"] == "web"] == [["update"]]
    assert on(host, "service", "inspect", "web", "--format", "{{.ID}}") == before
    versions = [line.split()[0] for line in log if line.strip()]
    assert "FAILED" not in versions, log
    assert versions[0] == "v1" and versions[-1] == "v2" and len(versions) > 20, log
    assert all(c["ok"] for c in updated["checks"])
    database = [e for e in updated["entries"] if e["kind"] == "connection" and e["name"].startswith("database")][0]
    assert not database["changed"], database
    web = tasks(host, "web")
    assert len(set(node for node, _c in web)) == 3

    destroyed = converge(host, "v2", state="absent")
    assert destroyed["changed"] and on(host, "service", "ls", "-q") == ""
