"""External networks and volumes (issue 34, Compose's `external: true`): the stack uses them as they
are (never made, compared, recreated or removed, destroy with purge included); they must exist, which
the pre-flight says before any change. The plan's side, the import and export, and the appliers on the
memory gateway. Docker's side: tests/integration/test_network_resources.py."""
import pytest
import yaml

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.module_utils.stack import run_stack
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.exporter import export
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import ComposeError, from_compose

import memory_stacks as ms
from memory_stacks import home, instant_waits  # noqa: F401  (fixtures, autouse)

OUTSIDE = {"name": "outside", "type": "network", "external": True}
SHARED = {"name": "shared", "type": "volume", "volume_name": "shared_data", "external": True}
API = {"name": "api", "image": ms.NGINX, "networks": [{"name": "outside"}],
       "mounts": [{"type": "volume", "source": "shared_data", "target": "/data"}]}


def refused(resources, connections=(), engine="docker"):
    with pytest.raises(ClockworkError) as error:
        Plan("shop", resources, list(connections), base_dir="/srv/play", engine=engine)
    return error.value.msg


# -- the plan ----------------------------------------------------------------------------------------

def test_an_external_network_or_volume_is_planned_as_used_as_it_is():
    plan = Plan("shop", [API, OUTSIDE, SHARED], [], base_dir="/srv/play")
    assert [n for n in plan.networks if n["name"] == "outside"] == [
        {"name": "outside", "settings": None, "by": "stack", "resource": "resource outside"}]
    assert plan.volumes == [{"name": "shared_data", "driver": None, "by": "resource shared"}]
    assert plan.by_name["shared"]["driver"] is None
    made = Plan("shop", [{"name": "vol", "type": "volume"}, {"name": "net", "type": "network"}], [])
    assert made.by_name["vol"]["driver"] == "local" and made.by_name["net"]["driver"] == "bridge", "defaults kept"


def test_settings_beside_external_are_refused_naming_resource_and_field_at_once():
    message = refused([dict(OUTSIDE, driver="overlay", subnet="10.9.0.0/16", internal=True),
                       dict(SHARED, driver="local")])
    for field in ("driver", "subnet", "internal"):
        assert "resource outside: %s: an external network is used as it is, never made or changed by the stack: " \
               "drop %s or external" % (field, field) in message, message
    assert "resource shared: driver: an external volume is used as it is" in message


def test_one_name_is_external_or_made_by_the_stack_not_both():
    message = refused([OUTSIDE, {"name": "again", "type": "network", "network_name": "outside"}])
    assert "resource again: network_name: outside is declared by resource outside too, as external" in message
    message = refused([SHARED, {"name": "again", "type": "volume", "volume_name": "shared_data"}])
    assert "resource again: volume_name: shared_data is declared by resource shared too, as external" in message


def test_a_connection_uses_an_external_network_or_volume_as_it_is():
    redis = {"name": "redis", "image": ms.REDIS}
    connections = [{"type": "network", "from": "api", "to": "redis", "network_name": "outside"},
                   {"type": "file", "from": "api", "to": "shared", "mount_path": "/shared"}]
    plan = Plan("shop", [API, redis, OUTSIDE, SHARED], connections, base_dir="/srv/play")
    assert [n["name"] for n in plan.networks] == ["shop_default", "outside"]
    assert plan.volumes == [{"name": "shared_data", "driver": None, "by": "resource shared"}]


def test_a_container_address_on_an_external_network_is_the_engine_s_business():
    Plan("shop", [dict(API, networks=[{"name": "outside", "ipv4_address": "10.1.2.3"}]), OUTSIDE, SHARED], [])


# -- import and export --------------------------------------------------------------------------------

COMPOSE = """
services:
  web:
    image: nginx
    networks: [front, legacy]
    volumes: [data:/data]
networks:
  front: {external: true}
  legacy: {external: {name: old_front}}
volumes:
  data: {external: true, name: site_data}
"""


def test_from_compose_maps_external_without_a_warning_and_to_compose_writes_it_back(tmp_path):
    imported = from_compose(COMPOSE, project_name="site", base_dir=str(tmp_path))
    assert not [w for w in imported["warnings"] if "external" in w], imported["warnings"]
    resources = dict((r["name"], r) for r in imported["resources"])
    assert resources["front"] == {"name": "front", "type": "network", "network_name": "front", "external": True}
    assert resources["old_front"]["external"] is True and resources["old_front"]["network_name"] == "old_front"
    assert resources["site_data"] == {"name": "site_data", "type": "volume", "volume_name": "site_data",
                                      "external": True}
    exported = export({"name": "site", "resources": imported["resources"], "connections": imported["connections"]},
                      base_dir=str(tmp_path))
    document = yaml.safe_load(exported["text"])
    assert document["networks"]["front"] == {"name": "front", "external": True}
    assert document["networks"]["old_front"] == {"name": "old_front", "external": True}
    assert document["volumes"]["site_data"] == {"name": "site_data", "external": True}
    again = from_compose(exported["text"], project_name="site", base_dir=str(tmp_path))
    assert sorted(again["resources"], key=lambda r: r["name"]) == sorted(imported["resources"], key=lambda r: r["name"])
    assert not [w for w in again["warnings"] if "external" in w], again["warnings"]


def test_from_compose_refuses_settings_beside_external_as_compose_does():
    with pytest.raises(ComposeError) as error:
        from_compose(COMPOSE.replace("front: {external: true}", "front: {external: true, driver: overlay}")
                     .replace("data: {external: true, name: site_data}", "data: {external: true, driver: local}"),
                     project_name="site")
    message = str(error.value)
    assert "networks.front.driver: given beside external: true, which Compose refuses too" in message, message
    assert "volumes.data.driver: given beside external: true" in message, message


# -- the appliers, on the memory gateway ----------------------------------------------------------------

def _params(base, name="shop", **options):
    return ms.params(base, [API, OUTSIDE, SHARED], [], name=name, **options)


def _external(engine, swarm=False):
    engine.create_network("outside", driver="overlay" if swarm else "bridge", attachable=swarm or None)
    engine.create_volume("shared_data", driver="local")


def _objects(engine):
    return ([(n["Id"], n.get("Labels")) for n in engine.networks() if n["Name"] == "outside"],
            [(v["Name"], v.get("Labels")) for v in engine.volumes()["Volumes"] if v["Name"] == "shared_data"])


def test_the_pre_flight_refuses_a_missing_external_before_any_change_all_at_once(tmp_path):
    engine = ms.new_engine()
    before = ms.snapshot(engine)
    with pytest.raises(ClockworkError) as error:
        ms.run(engine, _params(tmp_path))
    message = error.value.msg
    assert "resource outside: external: network outside does not exist, and the stack never makes an external " \
           "network: create it first (docker network create outside), or drop external" in message, message
    assert "resource shared: external: volume shared_data does not exist, and the stack never makes an external " \
           "volume: create it first (docker volume create shared_data)" in message, message
    assert ms.snapshot(engine) == before, "nothing made"
    with pytest.raises(ClockworkError) as error:
        run_stack(dry_run_gateway(live=engine), _params(tmp_path))
    assert "external: network outside does not exist" in error.value.msg, "check mode: would fail"


def test_an_existing_external_is_used_as_it_is_check_apply_rerun_and_destroy_with_purge_leaves_it(tmp_path):
    engine = ms.new_engine()
    _external(engine)
    engine.create_network("other_settings", driver="bridge", internal=True)
    objects = _objects(engine)
    checked = run_stack(dry_run_gateway(live=engine), _params(tmp_path), diff=True)
    assert checked["changed"] is True
    assert [e for e in ms.changed_entries(checked) if e[1] in ("outside", "shared_data")] == []
    report, _gateway = ms.run(engine, _params(tmp_path), diff=True)
    assert [e for e in ms.changed_entries(report) if e[1] in ("outside", "shared_data")] == []
    assert "outside" in ms.networks_of(ms.container(engine, "api"))
    assert [m["Name"] for m in ms.container(engine, "api")["Mounts"] if m["Destination"] == "/data"] == ["shared_data"]
    assert _objects(engine) == objects, "not labelled, not recreated"
    assert ms.changed_entries(ms.run(engine, _params(tmp_path))[0]) == []
    assert run_stack(dry_run_gateway(live=engine), _params(tmp_path))["changed"] is False
    ms.run(engine, _params(tmp_path, state="absent", purge=True))
    assert _objects(engine) == objects, "destroy with purge leaves it"
    assert "api" not in ms.container_names(engine)


def test_an_external_network_with_settings_of_its_own_is_not_compared(tmp_path):
    engine = ms.new_engine()
    engine.create_network("outside", driver="bridge", internal=True, ipam={"Driver": "default", "Config": [
        {"Subnet": "10.77.0.0/24"}]})
    engine.create_volume("shared_data", driver="other-driver")
    objects = _objects(engine)
    report, _gateway = ms.run(engine, _params(tmp_path))
    assert [e for e in ms.changed_entries(report) if e[1] in ("outside", "shared_data")] == []
    assert _objects(engine) == objects


def test_on_swarm_an_external_network_must_be_an_overlay_network_of_the_swarm(tmp_path):
    engine = ms.new_engine(swarm=True)
    engine.create_network("outside", driver="bridge")
    engine.create_volume("shared_data", driver="local")
    api = dict(API, endpoint_mode="dnsrr")
    stack = ms.params(tmp_path, [api, OUTSIDE, SHARED], [], name="shop", engine="swarm")
    with pytest.raises(ClockworkError) as error:
        ms.run(engine, stack)
    assert "resource outside: external: network outside is a local bridge network; services join swarm-wide " \
           "overlay networks: name an overlay network of the swarm" in error.value.msg, error.value.msg


def test_on_swarm_an_external_overlay_network_is_joined_and_left_at_destroy(tmp_path):
    engine = ms.new_engine(swarm=True)
    _external(engine, swarm=True)
    objects = _objects(engine)
    api = dict(API, endpoint_mode="dnsrr")
    stack = ms.params(tmp_path, [api, OUTSIDE, SHARED], [], name="shop", engine="swarm")
    report, _gateway = ms.run(engine, stack)
    assert [e for e in ms.changed_entries(report) if e[1] in ("outside", "shared_data")] == []
    attached = engine.inspect_service("api")["Spec"]["TaskTemplate"]["Networks"]
    assert sorted(n["Target"] for n in attached) == ["outside", "shop_default"]
    assert ms.changed_entries(ms.run(engine, stack)[0]) == []
    ms.run(engine, ms.params(tmp_path, [api, OUTSIDE, SHARED], [], name="shop", engine="swarm", state="absent",
                             purge=True))
    assert _objects(engine) == objects


def test_an_address_on_an_external_network_is_one_of_its_subnets(tmp_path):
    engine = ms.new_engine()
    engine.create_network("outside", driver="bridge", ipam={"Driver": "default", "Config": [{"Subnet": "10.78.0.0/24"}]})
    engine.create_volume("shared_data", driver="local")
    api = dict(API, networks=[{"name": "outside", "ipv4_address": "10.79.0.5"}])
    with pytest.raises(ClockworkError) as error:
        ms.run(engine, ms.params(tmp_path, [api, OUTSIDE, SHARED], [], name="shop"))
    assert "resource api: networks: outside: ipv4_address 10.79.0.5 is outside the subnets of external network " \
           "outside (10.78.0.0/24)" in error.value.msg, error.value.msg
    api = dict(API, networks=[{"name": "outside", "ipv4_address": "10.78.0.5"}])
    report, _gateway = ms.run(engine, ms.params(tmp_path, [api, OUTSIDE, SHARED], [], name="shop"))
    assert ms.entry(report, "container", "api")["changed"] is True
