"""Replicas on the docker engine and the update order: the pure logic (names, plan problems,
checks against every replica, which order an update takes). The engine's side is in
tests/integration/test_replicas.py."""

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    REPLICA_LABEL, RESOURCE_LABEL, ClockworkError)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import ContainerSpec, drift, running_config
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.module_utils.apply.replicas import (
    expand_checks, grace_seconds, replica_names, replica_spec)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.rolling import resolved_order


def test_one_replica_keeps_the_resource_name_and_several_are_numbered():
    assert replica_names("api", 1) == ["api"]
    assert replica_names("api", 3) == ["api-1", "api-2", "api-3"]


def test_the_plan_names_the_containers_of_each_resource_on_the_docker_engine_only():
    resources = [{"name": "api", "image": "nginx", "replicas": 3}, {"name": "web", "image": "nginx"}]
    plan = Plan("shop", resources, [])
    assert plan.containers_of("api") == ["api-1", "api-2", "api-3"]
    assert plan.containers_of("web") == ["web"]
    assert plan.as_dict()["containers"]["api"]["replicas"] == ["api-1", "api-2", "api-3"]
    assert Plan("shop", resources, [], engine="swarm").containers_of("api") == ["api"]


def test_what_replicas_cannot_share_is_refused_all_at_once_naming_entry_and_field():
    resources = [
        {"name": "zero", "image": "nginx", "replicas": 0},
        {"name": "web", "image": "nginx", "replicas": 2, "ports": ["8080:80"]},
        {"name": "db", "image": "postgres", "replicas": 2},
        {"name": "api", "image": "nginx", "replicas": 2, "ports": ["80"], "stop_grace_period": "soon"},
    ]
    connections = [{"type": "database", "from": "api", "to": "db", "engine": "postgresql",
                    "username": "app", "password": "pw", "database_name": "app"}]
    with pytest.raises(ClockworkError) as refused:
        Plan("shop", resources, connections)
    message = refused.value.msg
    assert "resource zero: replicas: must be 1 or more on the docker engine, got 0" in message
    assert "resource web: replicas: 2 replicas cannot all publish host port 8080:80/tcp" in message
    assert "resource db: replicas: it is the server of connection database api -> db" in message
    assert "resource api: stop_grace_period: invalid duration 'soon'" in message
    assert "resource api: replicas" not in message   # a random host port is fine


def test_swarm_keeps_its_meaning_of_replicas():
    resources = [{"name": "web", "image": "nginx", "replicas": 2, "ports": ["8080:80"]}]
    assert Plan("shop", resources, [], engine="swarm").by_name["web"]["replicas"] == 2


def test_the_grace_period_is_whole_seconds_and_docker_s_ten_by_default():
    assert grace_seconds({}) == 10
    assert grace_seconds({"stop_grace_period": "1m30s"}) == 90
    assert grace_seconds({"stop_grace_period": "500ms"}) == 0 or grace_seconds({"stop_grace_period": "500ms"}) == 1


def _spec(**params):
    return ContainerSpec(dict({"name": "web", "image": "nginx"}, **params), "shop")


def test_auto_is_start_first_unless_two_containers_must_not_run_at_once():
    spec = _spec()
    spec.update_order = "auto"
    assert resolved_order(spec, {"Config": {}}, None) == "start-first"
    assert resolved_order(spec, {"Config": {"Volumes": {"/data": {}}}}, None) == "stop-first"
    assert resolved_order(spec, {"Config": {}}, {"Mounts": [{"Type": "volume", "Name": "a" * 64}]}) == "stop-first"
    with_volume = _spec(mounts=[{"type": "volume", "source": "data", "target": "/data", "read_only": False}])
    with_volume.update_order = "auto"
    assert resolved_order(with_volume, {"Config": {}}, None) == "stop-first"
    fixed_port = _spec(ports=["8080:80"])
    fixed_port.update_order = "auto"
    assert resolved_order(fixed_port, {"Config": {}}, None) == "stop-first"
    random_port = _spec(ports=["80"])
    random_port.update_order = "auto"
    assert resolved_order(random_port, {"Config": {}}, None) == "start-first"
    declared = _spec(mounts=[{"type": "volume", "source": "data", "target": "/data", "read_only": False}])
    declared.update_order = "start-first"
    assert resolved_order(declared, {"Config": {}}, None) == "start-first"


def test_a_replica_carries_its_resource_number_and_the_alias_on_every_network():
    spec = _spec(networks=[{"name": "shop_default", "aliases": ["web"]}, {"name": "backend", "aliases": []}])
    replica = replica_spec(spec, "web", 2, 3)
    assert replica.name == "web-2" and replica.alias == "web"
    assert replica.labels[RESOURCE_LABEL] == "web" and replica.labels[REPLICA_LABEL] == "2"
    assert [n["aliases"] for n in replica.networks] == [["web"], ["web"]]
    assert spec.networks[1]["aliases"] == [] and spec.name == "web"   # the resource's spec is untouched
    single = replica_spec(spec, "web", 1, 1)
    assert single.name == "web" and single.networks[1]["aliases"] == []


def test_the_replica_number_never_makes_a_container_drift():
    """Scaling renames the kept container (web <-> web-1): its replica label is not compared."""
    spec = replica_spec(_spec(), "web", 1, 3)
    image = {"Id": "sha256:1", "Config": {}}
    running = {"Image": "sha256:1", "Config": {"Labels": dict(spec.labels, **{REPLICA_LABEL: "7"}), "Env": []},
               "HostConfig": {}}
    assert drift(spec.comparable(image), running_config(running)) == []


def test_checks_run_in_every_replica_and_about_every_replica():
    containers = {"api": ["api-1", "api-2"], "web": ["web-1", "web-2"]}
    checks = [
        {"kind": "http", "connection": "web -> api", "container": "web", "url": "http://api:8000/health"},
        {"kind": "http", "connection": "web -> tls", "container": "cache", "url": "https://api:8443/"},
        {"kind": "running", "connection": "web -> db", "target": "db"},
        {"kind": "dns_tcp", "connection": "cache -> api", "container": "cache", "host": "api", "port": 80},
    ]
    expanded = expand_checks(checks, containers)
    http = [c for c in expanded if c["connection"].startswith("web -> api")]
    assert sorted((c["container"], c["url"]) for c in http) == [
        ("web-1", "http://api-1:8000/health"), ("web-1", "http://api-2:8000/health"),
        ("web-2", "http://api-1:8000/health"), ("web-2", "http://api-2:8000/health")]
    assert len(set(c["connection"] for c in http)) == 4   # each report says which replicas
    tls = [c for c in expanded if c["connection"].startswith("web -> tls")]
    assert [c["url"] for c in tls] == ["https://api:8443/"]   # on the name its certificate is for
    assert [c for c in expanded if c["kind"] == "running"] == [checks[2]]
    assert sorted(c["host"] for c in expanded if c["kind"] == "dns_tcp") == ["api-1", "api-2"]


def test_check_mode_of_a_scale_up_runs_no_check_about_a_replica_it_would_make(tmp_path, monkeypatch):
    """Issue 33: `--check` of a scale-up from 1 to 3 ran the checks against api-1..3, which only the
    dry run made ("Could not resolve host"), and failed. On the memory engine: they are not run."""
    import memory_stacks as ms
    from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
    from ansible_collections.clockwork.connections.plugins.module_utils.stack import run_stack
    monkeypatch.setenv("HOME", str(tmp_path))
    engine = ms.new_engine()
    ms.run(engine, ms.params(tmp_path, *ms.showcase(database=False)))
    before, since = ms.snapshot(engine), len(engine.calls)
    params = dict(ms.params(tmp_path, *ms.showcase(database=False, api_replicas=3)), verify=True)
    checked = run_stack(dry_run_gateway(live=engine), params)
    assert [c for c in engine.calls[since:] if c.method in ms.WRITES] == [] and ms.snapshot(engine) == before
    about_api = [c for c in checked["checks"] if "api-" in c["connection"]]
    assert len(about_api) == 12 and all(c["ok"] is None and "does not exist yet" in c["msg"] for c in about_api), \
        checked["checks"]
    assert [c["ok"] for c in checked["checks"] if c not in about_api] == [True], checked["checks"]
