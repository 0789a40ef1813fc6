"""engine swarm on a single-node swarm: the showcase-shaped stack as services, with an API at 3
replicas, secrets instead of plaintext passwords, a one-shot job, scaling and rotation as updates,
a failed update reported with its tasks' errors and gone back to the release, destroy, and the showcase playbook itself.

The module's fixture puts the shared engine in swarm mode when it is not (and leaves the swarm
afterwards, unless another session still uses it); other sessions' plain containers and bridge
networks keep working meanwhile. Service names are swarm-wide, so each resource name here starts
with the test's stack name; the showcase's fixed names run under the showcase lock."""
import contextlib
import fcntl
import json
import os
import time

import pytest

import helpers
from helpers import (LOCAL_IMAGES, NGINX_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, ROOT, as_text, docker, inspect,
                     remove_stack, run_playbook)

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import open_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.stack import STACK_ARGUMENT_SPEC, run_stack

SWARM_USERS = "/tmp/clockwork-swarm.lock"          # shared by every session using the swarm
SWARM_SETUP = "/tmp/clockwork-swarm-setup.lock"    # one session at a time joins or leaves
SWARM_MARK = "/tmp/clockwork-swarm.initialised"    # a test session put the engine in swarm mode
SHOWCASE_LOCK = "/tmp/clockwork-showcase.lock"
PASSWORD = "s3cret-Pw-%d" % os.getpid()   # pragma: allowlist secret
API_SCRIPT = ("cat > /etc/nginx/conf.d/api.conf <<'CONF'\nserver {\n listen 8000;\n"
              " location = /health { default_type text/plain; return 200 \"ok\\n\"; }\n"
              " location / { default_type text/plain; return 200 \"$hostname\\n\"; }\n}\nCONF\n"
              "exec nginx -g 'daemon off;'")


def _locked(path, mode):
    handle = open(path, "a")
    fcntl.flock(handle, mode)
    return handle


@pytest.fixture(scope="module")
def swarm():
    with swarm_mode():
        yield


@contextlib.contextmanager
def swarm_mode():
    """The engine in swarm mode meanwhile; left again by the last session using it, when a
    test session made it (a swarm somebody else made is never left). bench/swarm.py uses it too."""
    with _locked(SWARM_SETUP, fcntl.LOCK_EX):
        users = _locked(SWARM_USERS, fcntl.LOCK_SH)
        if docker("info", "--format", "{{.Swarm.LocalNodeState}}") == "inactive":
            bridge = "existed" if inspect("network", "docker_gwbridge") else "made"
            docker("swarm", "init", "--advertise-addr", "127.0.0.1")
            with open(SWARM_MARK, "w") as mark:
                mark.write(bridge)
    try:
        yield
    finally:
        with _locked(SWARM_SETUP, fcntl.LOCK_EX):
            fcntl.flock(users, fcntl.LOCK_UN)
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except OSError:
                alone = False   # another session is still on the swarm: the last one leaves
            users.close()
            if alone and os.path.exists(SWARM_MARK):
                with open(SWARM_MARK) as mark:
                    bridge = mark.read()
                docker("swarm", "leave", "--force")
                os.unlink(SWARM_MARK)
                if bridge == "made":
                    _remove_gateway_bridge()


def _remove_gateway_bridge():
    """swarm leave keeps docker_gwbridge; remove it once its endpoints are gone."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        attrs = inspect("network", "docker_gwbridge")
        if attrs is None:
            return
        if not attrs.get("Containers"):
            docker("network", "rm", "docker_gwbridge", check=False)
            return
        time.sleep(0.5)


def swarm_objects(stack):
    """What the stack owns on the swarm, by kind: names."""
    label = "label=io.clockwork.stack=%s" % stack
    return {
        "services": docker("service", "ls", "-q", "--filter", label).split(),
        "networks": docker("network", "ls", "-q", "--filter", label).split(),
        "secrets": docker("secret", "ls", "-q", "--filter", label).split(),
        "configs": docker("config", "ls", "-q", "--filter", label).split(),
    }


def remove_swarm_stack(stack):
    label = "label=io.clockwork.stack=%s" % stack
    services = docker("service", "ls", "-q", "--filter", label).split()
    if services:
        docker("service", "rm", *services, check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and docker("ps", "-q", "--filter", "label=io.clockwork.swarm-stack=" + stack):
        time.sleep(0.5)
    ended = docker("ps", "-aq", "--filter", "label=io.clockwork.swarm-stack=" + stack).split()
    if ended:   # a job's completed tasks outlive it
        docker("rm", "-fv", *ended, check=False)
    for kind in ("secret", "config"):
        names = docker(kind, "ls", "-q", "--filter", label).split()
        if names:
            docker(kind, "rm", *names, check=False)
    remove_stack(stack)


@pytest.fixture
def swarm_stack(swarm, stack):
    yield stack
    remove_swarm_stack(stack)


def tasks_of(service, state="running"):
    out = docker("service", "ps", service, "--filter", "desired-state=" + state, "--format", "{{.CurrentState}}")
    return [line for line in out.splitlines() if line]


def task_container(service):
    ids = docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=" + service).split()
    assert ids, "no running task of %s" % service
    return ids[0]


def declaration(stack, replicas=3, token="t1", api_script=API_SCRIPT, timeout=60):  # noqa: S107
    """The showcase's shape: postgres, redis, a config file, storage sharing a volume with the API
    (3 replicas), a frontend reaching the API, and a one-shot job the frontend waits for."""
    def name(short):
        return "%s-%s" % (stack, short)
    resources = [
        {"name": name("postgres"), "image": POSTGRES_IMAGE, "ports": ["5432"], "endpoint_mode": "dnsrr",
         "env": {"POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": "appdb"},
         "healthcheck": {"test": "pg_isready -U postgres -d appdb", "interval": "1s", "retries": 30}},
        {"name": name("redis"), "image": REDIS_IMAGE, "ports": ["6379"], "endpoint_mode": "dnsrr",
         "healthcheck": {"test": "redis-cli ping", "interval": "1s", "retries": 30}},
        {"name": name("config"), "type": "file", "path": "config.json", "content": '{"log_level": "info"}'},
        {"name": name("storage"), "image": NGINX_IMAGE, "endpoint_mode": "dnsrr"},
        {"name": name("api"), "image": NGINX_IMAGE, "ports": ["8000"], "replicas": replicas, "endpoint_mode": "dnsrr",
         "command": ["sh", "-c", api_script], "env": {"API_TOKEN": token}, "timeout": timeout,
         "healthcheck": {"test": "curl -fsS http://localhost:8000/health", "interval": "1s", "retries": 30}},
        {"name": name("migrate"), "image": NGINX_IMAGE, "command": ["sh", "-c", "echo migrated"]},
        {"name": name("frontend"), "image": NGINX_IMAGE, "ports": ["80"], "endpoint_mode": "dnsrr"},
    ]
    connections = [
        {"type": "database", "from": name("api"), "to": name("postgres"), "username": "postgres",
         "password": PASSWORD, "database_name": "appdb", "schema_content": "CREATE TABLE users (id serial);",
         "schema_file": "schema.sql"},
        {"type": "network", "from": name("api"), "to": name("redis"), "network_name": name("backend")},
        {"type": "file", "from": name("api"), "to": name("config"), "mount_path": "/etc/app/config.json",
         "read_only": True},
        {"type": "file", "from": name("api"), "to": name("storage"), "mount_path": "/data/shared",
         "volume_name": name("shared")},
        {"type": "service_mesh", "from": name("frontend"), "to": name("api"), "health_check_path": "/health"},
        {"type": "dependency", "from": name("frontend"), "to": name("redis")},
        {"type": "dependency", "from": name("frontend"), "to": name("migrate"), "condition": "completed_successfully"},
    ]
    return resources, connections


def converge(stack, tmp_path, check=False, state="present", purge=False, **kwargs):
    """The stack module's in-process path (what the action plugin runs on the local connection)."""
    resources, connections = declaration(stack, **kwargs)
    result = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(dict(
        name=stack, resources=resources, connections=connections, state=state, engine="swarm", purge=purge,
        base_dir=str(tmp_path), verify=state == "present" and not check))
    assert not result.error_messages
    return run_stack(open_gateway(check), result.validated_parameters, diff=True)


def entry(report, kind, name):
    found = [e for e in report["entries"] if e["kind"] == kind and e["name"] == name]
    assert len(found) == 1, "%s %s in:\n%s" % (kind, name, as_text(report["entries"]))
    return found[0]


def test_plain_containers_and_bridge_networks_keep_working_in_swarm_mode(swarm, stack):
    network = stack + "-bridge"
    docker("network", "create", "--label", "io.clockwork.stack=" + stack, network)
    docker("run", "-d", "--name", stack + "-a", "--label", "io.clockwork.stack=" + stack, "--network", network,
           NGINX_IMAGE)
    out = docker("run", "--rm", "--label", "io.clockwork.stack=" + stack, "--network", network, NGINX_IMAGE,
                 "curl", "-fsS", "-o", "/dev/null", "-w", "%{http_code}", "http://%s-a/" % stack)
    assert out == "200"
    assert inspect("network", network)["Scope"] == "local"


def test_showcase_shaped_stack_on_swarm(swarm_stack, tmp_path):
    stack = swarm_stack
    api, frontend, postgres = stack + "-api", stack + "-frontend", stack + "-postgres"

    # --check on an empty swarm: every action reported, nothing made.
    dry = converge(stack, tmp_path, check=True)
    assert dry["changed"] and entry(dry, "service", api)["actions"] == ["create"], as_text(dry)
    assert swarm_objects(stack) == {"services": [], "networks": [], "secrets": [], "configs": []}
    assert docker("volume", "ls", "-q", "--filter", "label=io.clockwork.stack=" + stack) == ""

    started = time.monotonic()
    deployed = converge(stack, tmp_path)
    print("deploy: %.1fs" % (time.monotonic() - started))
    assert [c["ok"] for c in deployed["checks"]] == [True] * 7, as_text(deployed["checks"])
    assert deployed["verified"], as_text(deployed)
    assert len(tasks_of(api)) == 3 and all(s.startswith("Running") for s in tasks_of(api))
    objects = swarm_objects(stack)
    assert len(objects["services"]) == 6 and len(objects["networks"]) == 2
    assert len(objects["secrets"]) == 3 and len(objects["configs"]) == 1   # two passwords and the URL; the file

    # The job ran once and completed; the frontend came after it.
    assert inspect("service", stack + "-migrate")["Spec"]["Mode"] == {
        "ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    assert tasks_of(stack + "-migrate", "complete")[0].startswith("Complete")

    # tasks.<api> resolves the 3 tasks, on the stack's network, from a one-off container on it (attachable).
    addresses = docker("run", "--rm", "--network", stack + "_default", NGINX_IMAGE, "getent", "ahosts",
                       "tasks." + api).split()
    tasks_ips = sorted(set(a for a in addresses if a[0].isdigit()))
    assert len(tasks_ips) == 3
    subnet = inspect("network", stack + "_default")["IPAM"]["Config"][0]["Subnet"]
    assert all(ip.startswith(subnet.split(".")[0] + "." + subnet.split(".")[1] + ".") for ip in tasks_ips)

    # No password in any service spec: the server reads POSTGRES_PASSWORD_FILE, the API DATABASE_URL_FILE.
    for service in objects["services"]:
        text = docker("service", "inspect", service)
        assert PASSWORD not in text and "API_TOKEN=t1" not in text, service
    env = inspect("service", api)["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "DATABASE_URL_FILE=/run/secrets/DATABASE_URL" in env and "API_TOKEN_FILE=/run/secrets/API_TOKEN" in env
    assert not any(e.startswith("DATABASE_URL=") for e in env)
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/POSTGRES_PASSWORD" in \
        inspect("service", postgres)["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert docker("exec", task_container(api), "cat", "/run/secrets/DATABASE_URL") == \
        "postgresql://postgres:%s@%s:5432/appdb" % (PASSWORD, postgres)
    # The shared volume: storage and the API on one node.
    for service in (api, stack + "-storage"):
        constraints = inspect("service", service)["Spec"]["TaskTemplate"]["Placement"]["Constraints"]
        assert constraints == ["node.id==" + docker("info", "--format", "{{.Swarm.NodeID}}")]
    assert PASSWORD not in json.dumps(deployed), as_text(deployed)

    # Rerun: nothing changes, the same services at the same versions.
    versions = dict((s, inspect("service", s)["Version"]["Index"]) for s in objects["services"])
    again = converge(stack, tmp_path)
    assert not again["changed"], as_text([e for e in again["entries"] if e["changed"]])
    assert dict((s, inspect("service", s)["Version"]["Index"]) for s in objects["services"]) == versions

    # Verify only (--tags assert): every check passes.
    verified = converge(stack, tmp_path, state="verified")
    assert [c["ok"] for c in verified["checks"]] == [True] * 7 and not verified["changed"], as_text(verified)

    # Scaling 3 -> 2 is an update of the same service; --check first changes nothing.
    api_id, api_version = inspect("service", api)["ID"], inspect("service", api)["Version"]["Index"]
    dry = converge(stack, tmp_path, check=True, replicas=2)
    assert entry(dry, "service", api)["actions"] == ["update"], as_text(dry)
    assert inspect("service", api)["Version"]["Index"] == api_version
    scaled = converge(stack, tmp_path, replicas=2)
    assert entry(scaled, "service", api)["actions"] == ["update"], as_text(scaled)
    assert "replicas 3 -> 2" in entry(scaled, "service", api)["reasons"], as_text(scaled)
    assert inspect("service", api)["ID"] == api_id and len(tasks_of(api)) == 2

    # Rotation: a new secret, a rolling update; the old secret stays while a kept release uses it (rollback).
    old = set(swarm_objects(stack)["secrets"])
    rotated = converge(stack, tmp_path, replicas=2, token="t2")
    new = set(swarm_objects(stack)["secrets"])
    assert len(new - old) == 1 and old <= new
    assert [e["actions"] for e in rotated["entries"] if e["kind"] == "secret" and e["changed"]] == [
        ["create"]], as_text(rotated)
    assert docker("exec", task_container(api), "cat", "/run/secrets/API_TOKEN") == "t2"

    # Destroy: --check removes nothing; then services, networks, secrets and configs go, the volume stays.
    dry = converge(stack, tmp_path, check=True, state="absent")
    assert dry["changed"] and len(swarm_objects(stack)["services"]) == 6, as_text(dry)
    destroyed = converge(stack, tmp_path, state="absent")
    assert destroyed["changed"], as_text(destroyed)
    assert swarm_objects(stack) == {"services": [], "networks": [], "secrets": [], "configs": []}
    assert docker("volume", "ls", "-q", "--filter", "label=io.clockwork.stack=" + stack) == stack + "-shared"
    converge(stack, tmp_path, state="absent", purge=True)
    assert docker("volume", "ls", "-q", "--filter", "label=io.clockwork.stack=" + stack) == ""


def test_a_failed_update_reports_its_tasks_and_goes_back_to_the_release(swarm_stack, tmp_path):
    stack = swarm_stack
    api = stack + "-api"
    converge(stack, tmp_path, replicas=1)
    with pytest.raises(ClockworkError) as failed:
        converge(stack, tmp_path, replicas=1, api_script="echo broken >&2; exit 3", timeout=30)
    message = failed.value.msg
    assert "service %s" % api in message and "non-zero exit (3)" in message, message
    assert "broken" in message   # the failed task's last log lines
    # The failed update went back to the stack's release 1 (issue 35 part 6, apply/swarm/rollback.py).
    assert "the stack is back on release 1 (" in message and "service %s: back to release 1" % api in message, message
    assert inspect("service", api)["UpdateStatus"]["State"] == "completed"
    again = converge(stack, tmp_path, replicas=1)
    assert entry(again, "service", api)["actions"] == [], as_text(again)   # on release 1 already
    assert all(c["ok"] for c in again["checks"]), as_text(again)


def test_the_docker_engine_refuses_no_replicas(stack, tmp_path):
    resources, connections = declaration(stack, replicas=0)
    params = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(dict(
        name=stack, resources=resources, connections=connections, base_dir=str(tmp_path))).validated_parameters
    with pytest.raises(ClockworkError) as refused:
        run_stack(open_gateway(True), params)
    assert "resource %s-api: replicas: must be 1 or more on the docker engine" % stack in refused.value.msg
    assert docker("ps", "-aq", "--filter", "label=io.clockwork.stack=" + stack) == ""


SLOW_READY = "sleep 4; touch /tmp/ready; exec nginx -g 'daemon off;'"


def slow_pair(stack, tmp_path, check=False):
    """Two independent services, each healthy only 4 s after it starts, and a third that waits for
    both; one declares update_order and one stop_grace_period."""
    slow = {"image": NGINX_IMAGE, "endpoint_mode": "dnsrr", "command": ["sh", "-c", SLOW_READY],
            "healthcheck": {"test": "test -f /tmp/ready", "interval": "1s", "retries": 30}}
    resources = [dict(slow, name=stack + "-one", stop_grace_period="3s"),
                 dict(slow, name=stack + "-two", update_order="stop-first"),
                 {"name": stack + "-after", "image": NGINX_IMAGE, "endpoint_mode": "dnsrr"}]
    connections = [{"type": "dependency", "from": stack + "-after", "to": stack + "-one"},
                   {"type": "dependency", "from": stack + "-after", "to": stack + "-two"}]
    result = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(dict(
        name=stack, resources=resources, connections=connections, engine="swarm", base_dir=str(tmp_path)))
    assert not result.error_messages
    lines = []
    report = run_stack(open_gateway(check), result.validated_parameters, diff=True,
                       progress=lambda line, verbosity: lines.append(line))
    return report, lines


def first_healthy(service):
    """When the service's task was first seen healthy (the end of its first passing probe)."""
    health = inspect("container", task_container(service))["State"]["Health"]["Log"]
    return min(probe["End"] for probe in health if probe["ExitCode"] == 0)


def test_independent_services_converge_concurrently(swarm_stack, tmp_path):
    stack = swarm_stack
    names = [stack + "-one", stack + "-two", stack + "-after"]
    before = swarm_objects(stack)
    planned, _lines = slow_pair(stack, tmp_path, check=True)
    assert planned["changed"] and swarm_objects(stack) == before, as_text(planned)
    assert [e["name"] for e in planned["entries"] if e["kind"] == "service"] == names, as_text(planned)

    applied, lines = slow_pair(stack, tmp_path)
    assert applied["changed"], as_text(applied)
    assert [e["name"] for e in applied["entries"] if e["kind"] == "service"] == names, as_text(applied)   # plan order
    said = [line.split(":")[0] for line in lines if line.startswith(stack)]
    assert sorted(set(said), key=said.index) == names and said == sorted(said, key=names.index), \
        "\n".join(lines)   # plan order
    # Overlap, from the engine's own stamps: each slow service existed before the other was healthy
    # (one after the other, `two` would be created only once `one` is healthy, 4 s later).
    created = dict((n, inspect("service", n)["CreatedAt"][:19]) for n in names)   # UTC, to the second
    healthy = dict((n, first_healthy(n)[:19]) for n in names[:2])
    assert created[names[1]] < healthy[names[0]] and created[names[0]] < healthy[names[1]], (created, healthy)
    # `after` waits for both.
    assert created[names[2]] >= max(healthy.values())
    one, two = (inspect("service", n)["Spec"] for n in names[:2])
    assert one["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] == 3 * 10 ** 9
    assert two["UpdateConfig"]["Order"] == "stop-first" and one["UpdateConfig"]["Order"] == "start-first"
    assert two["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] == 10 * 10 ** 9

    state = swarm_objects(stack)
    again, _lines = slow_pair(stack, tmp_path)
    assert not again["changed"], as_text(again)
    checked, _lines = slow_pair(stack, tmp_path, check=True)
    assert not checked["changed"] and swarm_objects(stack) == state, as_text(checked)


@pytest.fixture
def showcase_lock():
    with _locked(SHOWCASE_LOCK, fcntl.LOCK_EX) as lock:
        helpers.clear_fixed_names()
        yield lock


def test_showcase_playbook_on_swarm(swarm, showcase_lock):
    """playbooks/showcase.yml -e clockwork_engine=swarm with the API at 3 replicas: deploy and
    verify, rerun, assert, check, scale to 2, destroy."""
    helpers.STACKS_SEEN.add("showcase")
    plain = docker("ps", "-aq", "--filter", "label=io.clockwork.stack=showcase")
    assert not plain, "the showcase runs on the docker engine here: destroy it first"

    def showcase(*args, check=False, diff=False, tags=None, replicas=3):
        return run_playbook(os.path.join(ROOT, "playbooks/showcase.yml"), check=check, diff=diff, tags=tags,
                            extra_vars=dict(LOCAL_IMAGES, clockwork_engine="swarm", showcase_api_replicas=replicas),
                            extra_args=args)
    try:
        dry = showcase(check=True)
        assert dry.rc == 0, dry.output
        assert swarm_objects("showcase") == {"services": [], "networks": [], "secrets": [], "configs": []}
        started = time.monotonic()
        deployed = showcase()
        print("showcase deploy: %.1fs" % (time.monotonic() - started))
        assert deployed.rc == 0, deployed.output
        report = deployed.result("Converge stack showcase")
        assert report["engine"] == "swarm" and [c["ok"] for c in report["checks"]] == [True] * 6, deployed.details
        assert "no IPVS" in deployed.output or os.path.exists("/proc/net/ip_vs"), deployed.output
        assert sorted(inspect("service", s)["Spec"]["Name"] for s in swarm_objects("showcase")["services"]) == [
            "api", "frontend", "postgres", "redis", "storage"]
        # The API's 3 tasks answer to tasks.api on the stack's network; no password in any spec.
        assert len(tasks_of("api")) == 3
        addresses = docker("run", "--rm", "--network", "showcase_default", NGINX_IMAGE, "getent", "ahosts",
                           "tasks.api").split()
        assert len(set(a for a in addresses if a[0].isdigit())) == 3
        for service in swarm_objects("showcase")["services"]:
            assert "secret123" not in docker("service", "inspect", service), service
        assert "secret123" not in deployed.output, deployed.output

        again = showcase()
        assert again.rc == 0 and not again.result("Converge stack showcase")["changed"], again.output
        asserted = showcase(tags="assert")
        assert asserted.rc == 0 and all(c["ok"] for c in asserted.result("Verify every connection from inside the "
                                                                          "containers")["checks"]), asserted.details
        dry = showcase(check=True, diff=True)
        assert dry.rc == 0 and not dry.result("Converge stack showcase")["changed"], dry.details

        # 3 -> 2 is an update of the same service.
        api = inspect("service", "api")["ID"]
        scaled = showcase(replicas=2)
        assert scaled.rc == 0, scaled.output
        entries = [e for e in scaled.result("Converge stack showcase")["entries"] if e["name"] == "api"]
        assert [e["actions"] for e in entries if e["kind"] == "service"] == [["update"]], scaled.details
        assert inspect("service", "api")["ID"] == api and len(tasks_of("api")) == 2
    finally:
        destroyed = showcase("-e", "clockwork_state=absent", "-e", "clockwork_purge=true")
    assert destroyed.rc == 0, destroyed.output
    assert swarm_objects("showcase") == {"services": [], "networks": [], "secrets": [], "configs": []}


def test_tls_material_as_configs_and_a_secret(swarm_stack, tmp_path):
    """service_mesh with TLS: the CA and the certificate are configs, the key a secret; HTTPS answers."""
    stack = swarm_stack
    web, client = stack + "-web", stack + "-client"
    script = ("cat > /etc/nginx/conf.d/web.conf <<'CONF'\nserver {\n listen 8443 ssl;\n"
              " ssl_certificate /etc/clockwork/tls/tls.crt;\n ssl_certificate_key /etc/clockwork/tls/tls.key;\n"
              " location = /health { return 200 \"ok\\n\"; }\n}\nCONF\nexec nginx -g 'daemon off;'")
    params = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(dict(
        name=stack, engine="swarm", base_dir=str(tmp_path), verify=True,
        resources=[{"name": web, "image": NGINX_IMAGE, "ports": ["8443"], "command": ["sh", "-c", script],
                    "endpoint_mode": "dnsrr"},
                   {"name": client, "image": NGINX_IMAGE, "endpoint_mode": "dnsrr"}],
        connections=[{"type": "service_mesh", "from": client, "to": web, "tls_enabled": True,
                      "tls_dir": str(tmp_path / "tls")}])).validated_parameters
    deployed = run_stack(DockerGateway(), params)
    assert [c["ok"] for c in deployed["checks"]] == [True] \
        and "https://%s:8443" % web in deployed["checks"][0]["msg"], as_text(deployed)
    served = inspect("service", web)["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert [s["File"]["Name"] for s in served["Secrets"]] == ["/etc/clockwork/tls/tls.key"]
    assert [c["File"]["Name"] for c in served["Configs"]] == ["/etc/clockwork/tls/tls.crt"]
    assert "Mounts" not in served
    assert [c["File"]["Name"] for c in inspect("service", client)["Spec"]["TaskTemplate"]["ContainerSpec"]["Configs"]] \
        == ["/etc/clockwork/tls/ca.crt"]
    rerun = run_stack(DockerGateway(), params)
    assert not rerun["changed"], as_text(rerun)
