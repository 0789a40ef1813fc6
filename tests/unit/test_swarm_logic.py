"""engine swarm without an engine: a resource's service in normal form, compared with what the
engine holds, laid over it without touching the fields we do not manage; secrets named by
content; convergence read from a service and its tasks; what the plan refuses; a service name
read, logged and exec'd on its task's node through that node's gateway; what an engine's refusal
to remove says."""
import copy
import hashlib

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import ContainerSpec
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.secrets import content_digest, object_name
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.services import (
    DEFAULT_STOP_GRACE_NS, SPEC_HASH_LABEL, changes, managed_part, secret_env_names, service_body, service_problems,
    template_key, wanted_service)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm import tasks as swarm_tasks
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.tasks import (
    NODE_ENGINE_LABEL, SwarmView, convergence, in_use, retry_while_in_use)
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker import dry_run
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import api_error

RESOURCE = {"name": "api", "image": "nginx:1.27", "ports": ["8000", "8080:80"], "command": ["nginx", "-g", "x"],
            "env": {"LOG": "info"}, "healthcheck": {"test": "curl -f http://localhost/", "interval": "1s"},
            "replicas": 3, "max_replicas_per_node": None, "endpoint_mode": "dnsrr", "plain_env": []}
NETWORKS = [{"name": "shop_default", "aliases": ["api"]}, {"name": "backend", "aliases": ["api"]}]


def wanted(**changes_to_resource):
    resource = dict(RESOURCE, **changes_to_resource)
    spec = ContainerSpec(resource, "shop")
    mounts = [{"type": "volume", "source": "data", "target": "/data", "read_only": False}]
    return wanted_service(spec, resource, dict(spec.env, DATABASE_URL_FILE="/run/secrets/DATABASE_URL"), mounts,
                          NETWORKS, [("shop_api_DATABASE_URL_0123", "DATABASE_URL")],
                          [("shop_api_config.json_4567", "/etc/app/config.json")], node="node1",
                          endpoint_mode=resource["endpoint_mode"], image_id="sha256:abc",
                          secret_names=["DATABASE_URL"])


def stored(body):
    """What the engine keeps of a body it was sent: network ids for names, Runtime added."""
    kept = copy.deepcopy(body)
    for network in kept["TaskTemplate"]["Networks"]:
        network["Target"] = "id-" + network["Target"]
    kept["TaskTemplate"]["Runtime"] = "container"
    kept["TaskTemplate"]["ContainerSpec"]["Isolation"] = "default"
    return kept


NAMES = {"id-shop_default": "shop_default", "id-backend": "backend"}


def test_a_new_service_reads_back_as_wanted():
    want = wanted()
    body = service_body("api", want, None, {"shop_api_DATABASE_URL_0123": "s1"}, {"shop_api_config.json_4567": "c1"})
    assert body["Mode"] == {"Replicated": {"Replicas": 3}}
    assert body["EndpointSpec"] == {"Mode": "dnsrr", "Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host", "PublishedPort": 8080}]}
    assert body["TaskTemplate"]["ContainerSpec"]["Args"] == ["nginx", "-g", "x"]   # CMD, not ENTRYPOINT
    assert body["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretID"] == "s1"
    assert body["TaskTemplate"]["Placement"]["Constraints"] == ["node.id==node1"]
    assert body["UpdateConfig"]["Order"] == "stop-first"   # it has a volume
    assert body["Labels"]["io.clockwork.ports"] == "8000/tcp,80/tcp" and SPEC_HASH_LABEL in body["Labels"]
    assert changes(want, managed_part(stored(body), want, NAMES)) == []


def test_an_update_keeps_what_the_collection_does_not_manage():
    want = wanted()
    current = stored(service_body("api", want, None))
    current["Labels"]["team"] = "web"
    current["TaskTemplate"]["ContainerSpec"]["Labels"]["team"] = "web"
    current["TaskTemplate"]["Resources"] = {"Limits": {"MemoryBytes": 1 << 28}}
    current["TaskTemplate"]["LogDriver"] = {"Name": "json-file"}
    current["TaskTemplate"]["Placement"]["Constraints"].append("node.role==worker")
    current["TaskTemplate"]["ForceUpdate"] = 3
    current["UpdateConfig"]["Parallelism"] = 2
    assert changes(want, managed_part(current, want, NAMES)) == []
    scaled = wanted(replicas=2, env={"LOG": "debug"})
    assert changes(scaled, managed_part(current, scaled, NAMES)) == [
        "env LOG", "labels %s" % SPEC_HASH_LABEL, "replicas 3 -> 2"]
    body = service_body("api", scaled, current)
    assert body["Labels"]["team"] == "web" and body["TaskTemplate"]["ContainerSpec"]["Labels"]["team"] == "web"
    assert body["TaskTemplate"]["Resources"] == {"Limits": {"MemoryBytes": 1 << 28}}
    assert body["TaskTemplate"]["LogDriver"] == {"Name": "json-file"}
    assert sorted(body["TaskTemplate"]["Placement"]["Constraints"]) == ["node.id==node1", "node.role==worker"]
    assert body["TaskTemplate"]["ForceUpdate"] == 3   # never forced
    assert body["UpdateConfig"]["Parallelism"] == 2 and body["Mode"] == {"Replicated": {"Replicas": 2}}
    assert "LOG=debug" in body["TaskTemplate"]["ContainerSpec"]["Env"]


def test_drift_made_by_hand_is_seen():
    want = wanted()
    current = stored(service_body("api", want, None))
    current["TaskTemplate"]["ContainerSpec"]["Env"].append("DATABASE_URL=postgresql://u:pw@db/app")
    current["TaskTemplate"]["ContainerSpec"]["Labels"]["io.clockwork.stack"] = "shop"   # an older run's label
    assert changes(want, managed_part(current, want, NAMES)) == [
        "env DATABASE_URL", "task labels io.clockwork.stack"]
    body = service_body("api", want, current)
    assert "io.clockwork.stack" not in body["TaskTemplate"]["ContainerSpec"]["Labels"]


def test_jobs_and_update_order():
    job = wanted_service(ContainerSpec(RESOURCE, "shop"), RESOURCE, {}, [], NETWORKS, [], [], job=True)
    body = service_body("migrate", job)
    assert body["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 3, "TotalCompletions": 3}} and "UpdateConfig" not in body
    assert body["TaskTemplate"]["RestartPolicy"]["Condition"] == "on-failure"
    plain = wanted_service(ContainerSpec(RESOURCE, "shop"), RESOURCE, {}, [], NETWORKS, [], [], endpoint_mode="dnsrr")
    assert plain["update_order"] == "start-first" and plain["ports"][0][3] == "host"
    spread = dict(RESOURCE, max_replicas_per_node=1, endpoint_mode="vip")
    spread_wanted = wanted_service(ContainerSpec(spread, "shop"), spread, {}, [], NETWORKS, [], [], endpoint_mode="vip")
    assert spread_wanted["update_order"] == "stop-first" and spread_wanted["ports"][0][3] == "ingress"


def test_a_declared_update_order_wins_over_the_computed_one():
    assert wanted()["update_order"] == "stop-first"   # a volume
    declared = wanted(update_order="start-first")
    assert declared["update_order"] == "start-first"
    assert service_body("api", declared)["UpdateConfig"]["Order"] == "start-first"
    current = stored(service_body("api", wanted()))
    assert "update order" in " ".join(changes(declared, managed_part(current, declared, NAMES)))
    job = wanted_service(ContainerSpec(RESOURCE, "shop"), dict(RESOURCE, update_order="start-first"), {}, [],
                         NETWORKS, [], [], job=True)
    assert job["update_order"] is None   # a job has no update config


def test_stop_grace_period_is_docker_default_and_no_drift_for_existing_services():
    want = wanted()
    assert want["stop_grace_period"] == DEFAULT_STOP_GRACE_NS == 10 * 10 ** 9
    # A service made before the field existed: no StopGracePeriod, and the hash label of that time.
    older = stored(service_body("api", want))
    del older["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"]
    assert changes(want, managed_part(older, want, NAMES)) == []
    explicit_default = wanted(stop_grace_period="10s")
    assert explicit_default["labels"][SPEC_HASH_LABEL] == want["labels"][SPEC_HASH_LABEL]
    longer = wanted(stop_grace_period="1m30s")
    assert longer["stop_grace_period"] == 90 * 10 ** 9
    assert "stop grace period" in changes(longer, managed_part(older, longer, NAMES))
    body = service_body("api", longer, older)
    assert body["TaskTemplate"]["ContainerSpec"]["StopGracePeriod"] == 90 * 10 ** 9
    assert changes(longer, managed_part(stored(body), longer, NAMES)) == []


def test_which_env_becomes_a_secret():
    env = {"POSTGRES_PASSWORD": "pw", "DATABASE_URL": "postgresql://u:pw@db/app", "LOG": "info",
           "UPSTREAM": "https://user:tok@example.org/"}
    assert secret_env_names(env, ["DATABASE_URL"], []) == (["DATABASE_URL", "POSTGRES_PASSWORD", "UPSTREAM"], [])
    assert secret_env_names(env, ["DATABASE_URL"], ["DATABASE_URL"]) == (
        ["POSTGRES_PASSWORD", "UPSTREAM"], ["DATABASE_URL"])


def test_objects_are_named_by_content_and_a_secret_name_is_no_fast_hash_of_it():
    first = object_name("shop", "api_DATABASE_URL", content_digest("secret", "shop", "api_DATABASE_URL", b"pw1"))
    again = object_name("shop", "api_DATABASE_URL", content_digest("secret", "shop", "api_DATABASE_URL", b"pw1"))
    rotated = object_name("shop", "api_DATABASE_URL", content_digest("secret", "shop", "api_DATABASE_URL", b"pw2"))
    assert first == again != rotated
    assert hashlib.sha256(b"pw1").hexdigest()[:16] not in first
    assert content_digest("config", "shop", "x", b"{}") == hashlib.sha256(b"{}").hexdigest()[:16]
    long = object_name("a-very-long-stack-name-for-the-limit", "backend-api-service_DATABASE_URL", "0123456789abcdef")
    assert len(long) <= 64 and long.endswith("_0123456789abcdef")


def test_what_a_resource_cannot_be_on_swarm():
    assert service_problems(dict(RESOURCE, replicas=-1, max_replicas_per_node=0, plain_env=["bad name"],
                                 ports=["127.0.0.1:8080:80"])) == [
        ("replicas", "must be 0 or more, got -1"), ("max_replicas_per_node", "must be 1 or more, got 0"),
        ("plain_env", "bad name is not an environment variable name"),
        ("ports", "127.0.0.1:8080:80 binds a host address; Swarm publishes a port on every address of the node "
                  "(drop the address)")]


def test_both_engines_plan_replicas():
    resources = [{"name": "api", "image": "nginx:1.27", "replicas": 3}]
    assert Plan("shop", resources, []).by_name["api"]["replicas"] == 3
    assert Plan("shop", resources, [], engine="swarm").by_name["api"]["replicas"] == 3
    assert Plan("shop", [{"name": "api", "image": "nginx:1.27"}], []).by_name["api"]["replicas"] == 1


def task(state, desired="running", spec=None, iteration=None, err=None):
    found = {"DesiredState": desired, "Status": {"State": state, "Timestamp": "2026-01-01T00:00:00Z"},
             "Spec": spec or {"ContainerSpec": {"Image": "x"}}}
    if iteration is not None:
        found["JobIteration"] = {"Index": iteration}
    if err:
        found["Status"]["Err"] = err
    return found


def service(replicas=2, update=None, job=False, iteration=1):
    spec = {"TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Runtime": "container"},
            "Mode": {"ReplicatedJob": {"TotalCompletions": replicas}} if job else {"Replicated": {"Replicas": replicas}}}
    found = {"Spec": spec}
    if update:
        found["UpdateStatus"] = {"State": update, "Message": "update paused due to failure"}
    if job:
        found["JobStatus"] = {"JobIteration": {"Index": iteration}}
    return found


def test_convergence():
    old = {"ContainerSpec": {"Image": "old"}}
    assert template_key({"A": 1, "Runtime": "container"}) == template_key({"A": 1})
    assert convergence(service(), [task("running"), task("running")])[0] == "done"
    assert convergence(service(), [task("running"), task("starting")])[0] == "waiting"
    assert convergence(service(update="updating"), [task("running"), task("running")])[0] == "waiting"
    # An update that has not reached the tasks yet: old ones still meant to run.
    assert convergence(service(update="completed"), [task("running", spec=old), task("running")])[0] == "waiting"
    assert convergence(service(), [task("running"), task("running"), task("running", desired="shutdown", spec=old)])[0] \
        == "done"
    assert convergence(service(update="paused"), [task("running")]) == (
        "failed", "its update is paused: update paused due to failure")
    crashing = [task("failed", desired="shutdown", err="task: non-zero exit (3)")] * 3 + [task("starting")]
    assert convergence(service(), crashing)[0] == "failed"
    assert convergence(service(job=True, replicas=1), [task("complete", desired="complete", iteration=1)])[0] == "done"
    assert convergence(service(job=True, replicas=1, iteration=2),
                       [task("complete", desired="complete", iteration=1), task("running", iteration=2)])[0] == "waiting"


# -- the view: a service name stands for a task, on its node's gateway ---------------------------------

class Gateway(object):
    """What the view asks of a gateway, and a record of who asked it what."""

    dry_run = False

    def __init__(self, name, services=None, tasks=None, nodes=None, containers=None):
        self.name, self.asked, self.forgotten = name, [], []
        self._services, self._tasks, self._nodes = services or {}, tasks or {}, nodes or []
        self._containers = containers or {}

    def service(self, name):
        self.asked.append(("service", name))
        if name not in self._services:
            raise api_error(404, "Not Found", "/services/" + name, "service %s not found" % name)
        return self._services[name]

    def tasks(self, filters=None):
        return self._tasks.get(filters["service"], [])

    def nodes(self):
        return self._nodes

    def container(self, name):
        self.asked.append(("container", name))
        return self._containers.get(name)

    def container_now(self, name):
        self.asked.append(("container_now", name))
        return self._containers.get(name)

    def forget(self, kind, name):
        self.forgotten.append((kind, name))

    def network(self, name):
        return None

    def exec_create(self, container, argv, **options):
        self.asked.append(("exec_create", container))
        return {"Id": "%s-exec" % self.name}

    def exec_start(self, exec_id, **options):
        self.asked.append(("exec_start", exec_id))

    def logs(self, name, tail=20):
        self.asked.append(("logs", name))
        return b"last words\n"

    def update_service(self, service, version, name, **options):
        self.asked.append(("update_service", name))

    def volume(self, name):
        return {"Name": name}


def _swarm(task_container="c2"):
    owned = {"ID": "s1", "Spec": {"Name": "shop-db", "Labels": {"io.clockwork.stack": "shop"}}}
    running = {"NodeID": "n2", "Status": {"State": "running", "Timestamp": "t",
                                          "ContainerStatus": {"ContainerID": task_container}}}
    nodes = [{"ID": "n1"}, {"ID": "n2", "Spec": {"Labels": {NODE_ENGINE_LABEL: "tcp://node2:2375"}}}]
    base = Gateway("manager", services={"shop-db": owned}, tasks={"s1": [running]}, nodes=nodes,
                   containers={"web": {"Id": "w"}})
    node = Gateway("node2", containers={"c2": {"Id": "c2", "Config": {"Env": ["A=1"]}}, "c3": {"Id": "c3"}})
    return base, node


def test_a_service_name_is_read_logged_and_execd_on_its_tasks_node(monkeypatch):
    base, node = _swarm()
    made = []
    monkeypatch.setattr(swarm_tasks, "DockerGateway", lambda environment: made.append(environment) or node)
    view = SwarmView(base, "shop", "n1", ["shop-db"])
    attrs = view.container("shop-db")
    assert attrs["Id"] == "c2" and attrs["Config"]["Labels"]["io.clockwork.stack"] == "shop"
    assert made == [{"DOCKER_HOST": "tcp://node2:2375"}]    # one gateway per node, made once
    assert view.container("shop-db") is attrs and node.asked == [("container_now", "c2")]
    view.exec_create("shop-db", ["true"])
    view.exec_start("node2-exec", socket=True)
    assert view.logs_tail("shop-db") == "last words"
    assert node.asked[1:] == [("exec_create", "c2"), ("exec_start", "node2-exec"), ("logs", "c2")]
    # A name that is no service of the stack is the manager's container; the rest is the manager's too.
    assert view.container("web") == {"Id": "w"} and ("container", "web") in base.asked
    assert view.volume("data") == {"Name": "data"} and made == [{"DOCKER_HOST": "tcp://node2:2375"}]


def test_a_services_write_and_a_wait_read_its_task_afresh(monkeypatch):
    base, node = _swarm()
    monkeypatch.setattr(swarm_tasks, "DockerGateway", lambda environment: node)
    view = SwarmView(base, "shop", "n1", ["shop-db"])
    assert view.container("shop-db")["Id"] == "c2"
    base._tasks["s1"][0]["Status"]["ContainerStatus"]["ContainerID"] = "c3"
    assert view.container("shop-db")["Id"] == "c2"     # kept for the run
    view.update_service("s1", 1, "shop-db")
    assert ("update_service", "shop-db") in base.asked and view.container("shop-db")["Id"] == "c3"
    base._tasks["s1"][0]["Status"]["ContainerStatus"]["ContainerID"] = "c2"
    assert view.container_now("shop-db")["Id"] == "c2"


def test_a_node_whose_engine_cannot_be_reached_has_no_task_to_offer(monkeypatch):
    base, _node = _swarm()

    def unreachable(environment):
        raise ClockworkError("cannot reach the Docker engine: connection refused")
    monkeypatch.setattr(swarm_tasks, "DockerGateway", unreachable)
    view = SwarmView(base, "shop", "n1", ["shop-db"])
    assert view.locate("shop-db") == (None, None) and view.container("shop-db") is None
    assert view.node_gateway("n2") is None and view.node_gateway("n1") is base


def test_on_a_dry_run_a_tasks_node_is_read_through_a_dry_run_of_its_engine(monkeypatch):
    base, node = _swarm()
    base.dry_run = True
    made = []

    def never(environment):
        raise AssertionError("a dry run opened the node's engine for writes: %s" % environment)
    monkeypatch.setattr(swarm_tasks, "DockerGateway", never)
    monkeypatch.setattr(dry_run, "dry_run_gateway", lambda environment: made.append(environment) or node)
    view = SwarmView(base, "shop", "n1", ["shop-db"])
    assert view.container("shop-db")["Id"] == "c2" and made == [{"DOCKER_HOST": "tcp://node2:2375"}]
    assert view.node_gateway("n1") is base


def test_a_service_name_is_a_forecast_when_its_task_is_one_on_its_node(monkeypatch):
    base, node = _swarm()
    monkeypatch.setattr(swarm_tasks, "DockerGateway", lambda environment: node)
    node.forecast = lambda container: container == "c2"
    view = SwarmView(base, "shop", "n1", ["shop-db"])
    assert view.forecast("shop-db") is True
    base._tasks["s1"][0]["Status"]["ContainerStatus"]["ContainerID"] = "c3"
    view.forget("container", "shop-db")
    assert view.forecast("shop-db") is False
    base._tasks["s1"] = []
    view.forget("container", "shop-db")
    assert view.forecast("shop-db") is False, "no task: nothing to forecast"


def _refused(status, words):
    return api_error(status, "Refused", "/x", words)


@pytest.mark.parametrize("status, words, meant", [
    (409, "remove shop_data: volume is in use - [ae1e]", True),
    (403, "error while removing network: network shop_default id 1a has active endpoints", True),
    (400, "rpc error: code = InvalidArgument desc = secret 'shop_x' is in use by the following service: db", True),
    (400, "rpc error: code = FailedPrecondition desc = network 1a is in use by service 2b", True),
    (400, "rpc error: code = InvalidArgument desc = invalid name", False),
    (500, "driver failed", False),
])
def test_in_use_is_told_by_status_where_the_api_gives_one(status, words, meant):
    assert in_use(_refused(status, words)) is meant


class Clock(object):
    def __init__(self):
        self.now, self.slept = 0.0, []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_a_removal_is_retried_while_in_use_and_bounded():
    clock, answers = Clock(), [_refused(409, "volume is in use"), False, None]

    def remove():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer
    retry_while_in_use(clock, remove, "volume", "shop_data")
    assert clock.slept == [0.5, 0.5] and not answers
    retry_while_in_use(clock, lambda: (_ for _ in ()).throw(_refused(404, "gone")), "volume", "shop_data")   # gone already
    with pytest.raises(ClockworkError) as caught:
        retry_while_in_use(clock, lambda: (_ for _ in ()).throw(_refused(500, "driver failed")), "volume", "v")
    assert caught.value.msg == "cannot remove volume v: driver failed"
    clock.slept = []
    with pytest.raises(ClockworkError) as caught:
        retry_while_in_use(clock, lambda: False, "secret", "shop_s")
    assert caught.value.msg == "cannot remove secret shop_s: in use" and len(clock.slept) == 120
