"""Network resources (issue 34): a network the stack makes whether or not a connection needs it.
The plan's side (fields, validation, what it plans) and the docker applier's on the memory gateway
(made like the stack's default network, recreated on drift with its containers reconnected, removed
with the stack when the stack made it). Docker's side: tests/integration/test_network_resources.py."""
import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.graph import mermaid
from ansible_collections.clockwork.connections.plugins.module_utils.plan import RESOURCE_TYPES, Plan
from ansible_collections.clockwork.connections.plugins.module_utils.resource_types import RESOURCE_KINDS

import memory_stacks as ms
from memory_stacks import home, instant_waits  # noqa: F401  (fixtures, autouse)

BACKEND = {"name": "backend", "type": "network", "network_name": "shop_backend", "internal": True,
           "subnet": "172.31.240.0/24", "gateway": "172.31.240.1"}
API = {"name": "api", "image": "nginx:1.27", "default_network": False,
       "networks": [{"name": "shop_backend", "aliases": ["api"]}]}


def refused(resources, connections=(), engine="docker"):
    with pytest.raises(ClockworkError) as error:
        Plan("shop", resources, list(connections), base_dir="/srv/play", engine=engine)
    return error.value.msg


def test_a_network_resource_is_a_network_of_the_stack_made_before_any_container():
    plan = Plan("shop", [API, BACKEND], [], base_dir="/srv/play")
    backend = [n for n in plan.networks if n["name"] == "shop_backend"]
    assert backend == [{"name": "shop_backend", "by": "stack", "resource": "resource backend",
                        "settings": {"driver": "bridge", "internal": True, "enable_ipv6": False,
                                     "subnet": "172.31.240.0/24", "gateway": "172.31.240.1"}}]
    assert plan.as_dict()["networks"] == ["shop_default", "shop_backend"]
    assert plan.specs["api"].networks == [{"name": "shop_backend", "aliases": ["api"]}], "on its named network only"
    assert "backend" not in plan.specs, "no container"
    assert RESOURCE_TYPES["network"] is RESOURCE_KINDS["network"].args


def test_its_name_is_its_network_s_unless_network_name_says_otherwise():
    plan = Plan("shop", [{"name": "front", "type": "network"}], [], base_dir="/srv/play")
    assert [n["name"] for n in plan.networks] == ["shop_default", "front"]
    assert plan.networks[1]["settings"]["driver"] == "bridge"


def test_every_bad_field_of_a_network_resource_is_named_with_resource_and_field_at_once():
    message = refused([
        {"name": "a", "type": "network", "subnet": "10.1.0.0/33"},
        {"name": "b", "type": "network", "subnet": "10.2.0.0/16", "gateway": "10.3.0.1"},
        {"name": "c", "type": "network", "gateway": "10.4.0.1"},
        {"name": "d", "type": "network", "subnet": "10.5.0.7/16"},
        {"name": "e", "type": "network", "network_name": "-bad"},
        {"name": "f", "type": "network", "network_name": "shop_default"},
        {"name": "g", "type": "network", "driver": "host"},
        {"name": "h", "type": "network", "driver": "Not A Driver"},
        {"name": "i", "type": "network", "internal": "maybe"},
        {"name": "j", "type": "network", "aliases": ["x"]},
        {"name": "k", "type": "network", "gateway": "not-an-ip", "subnet": "10.6.0.0/16"},
    ])
    for expected in (
            "resource a: subnet: 10.1.0.0/33 is not a network like 172.28.0.0/16",
            "resource b: gateway: 10.3.0.1 is outside subnet 10.2.0.0/16",
            "resource c: gateway: 10.4.0.1 is an address of a subnet: give subnet too",
            "resource d: subnet: 10.5.0.7/16 has host bits set: the network is 10.5.0.0/16",
            "resource e: network_name: '-bad' is not a valid Docker name",
            "resource f: network_name: shop_default is the stack's default network",
            "resource g: driver: host is the engine's own network",
            "resource h: driver: 'Not A Driver' is not a network driver's name",
            "resource i: ",
            "resource j: aliases: not a field of this type",
            "resource k: gateway: not-an-ip is not an IP address"):
        assert expected in message, (expected, message)
    assert "internal" in message.split("resource i: ")[1].splitlines()[0]


def test_on_swarm_a_network_resource_is_an_overlay_network():
    Plan("shop", [dict(BACKEND, driver="overlay")], [], base_dir="/srv/play", engine="swarm")
    Plan("shop", [BACKEND], [], base_dir="/srv/play", engine="swarm")
    assert "resource backend: driver: macvlan: on Swarm the stack's networks are attachable overlay networks" in \
        refused([dict(BACKEND, driver="macvlan")], engine="swarm")


def test_one_network_is_declared_with_one_set_of_settings():
    redis = {"name": "redis", "image": "redis:7"}
    same = {"type": "network", "from": "api", "to": "redis", "network_name": "shop_backend", "internal": True,
            "subnet": "172.31.240.0/24", "gateway": "172.31.240.1"}
    plan = Plan("shop", [API, redis, BACKEND], [same], base_dir="/srv/play")
    assert [n["name"] for n in plan.networks] == ["shop_default", "shop_backend"], "made once, by the stack"
    message = refused([API, redis, BACKEND], [dict(same, internal=False)])
    assert "connection network api -> redis: network_name: shop_backend is declared with other settings by " \
           "resource backend" in message
    message = refused([BACKEND, dict(BACKEND, name="again", internal=False)])
    assert "resource again: network_name: shop_backend is declared with other settings by resource backend" \
        in message


def test_a_connection_cannot_start_at_a_network_resource():
    message = refused([API, BACKEND], [{"type": "dependency", "from": "backend", "to": "api"}])
    assert "from: must be a container, backend is a network" in message


def test_the_diagram_draws_a_network_resource_as_a_hexagon():
    text = mermaid([API, BACKEND], [])
    assert '    n_backend{{"backend"}}' in text.splitlines()


# -- the docker applier, on the memory gateway ----------------------------------------------------

NGINX_API = dict(API, image=ms.NGINX)


def _run(engine, base, resources):
    report, _gateway = ms.run(engine, ms.params(base, resources, [], name="shop"))
    return report


def _network(engine, name):
    return [n for n in engine.networks() if n["Name"] == name][0]


def test_the_applier_makes_a_network_resource_like_the_default_network_and_reruns_unchanged(tmp_path):
    engine = ms.new_engine()
    report = _run(engine, tmp_path, [NGINX_API, BACKEND])
    assert ms.entry(report, "network", "shop_backend")["actions"] == ["create network shop_backend"]
    network = _network(engine, "shop_backend")
    assert network["Labels"]["io.clockwork.stack"] == "shop"
    assert network["Internal"] is True
    assert network["IPAM"]["Config"][0]["Subnet"] == "172.31.240.0/24"
    assert ms.networks_of(ms.container(engine, "api")) == {"shop_backend": ["api"]}
    again = _run(engine, tmp_path, [NGINX_API, BACKEND])
    assert ms.changed_entries(again) == []


def test_a_changed_network_resource_is_recreated_with_its_containers_reconnected(tmp_path):
    engine = ms.new_engine()
    _run(engine, tmp_path, [NGINX_API, BACKEND])
    before = _network(engine, "shop_backend")["Id"]
    api = ms.container(engine, "api")["Id"]
    report = _run(engine, tmp_path, [NGINX_API, dict(BACKEND, internal=False)])
    assert ms.entry(report, "network", "shop_backend")["actions"] == ["recreate network shop_backend (internal)"]
    after = _network(engine, "shop_backend")
    assert after["Id"] != before and after["Internal"] is False
    assert ms.container(engine, "api")["Id"] == api, "the container stays; it is reconnected"
    assert ms.networks_of(ms.container(engine, "api")) == {"shop_backend": ["api"]}
    assert ms.changed_entries(_run(engine, tmp_path, [NGINX_API, dict(BACKEND, internal=False)])) == []


def test_destroy_removes_the_network_the_stack_made_and_leaves_one_it_found(tmp_path):
    engine = ms.new_engine()
    engine.create_network("found_here", driver="bridge")   # not the stack's: no labels
    found = {"name": "found", "type": "network", "network_name": "found_here"}
    _run(engine, tmp_path, [NGINX_API, BACKEND, found])
    assert "io.clockwork.stack" not in (_network(engine, "found_here").get("Labels") or {})
    ms.run(engine, ms.params(tmp_path, [NGINX_API, BACKEND, found], [], name="shop", state="absent"))
    assert "shop_backend" not in ms.network_names(engine)
    assert "found_here" in ms.network_names(engine)


def test_on_swarm_the_applier_makes_a_network_resource_an_attachable_overlay_network(tmp_path):
    engine = ms.new_engine(swarm=True)
    api = dict(NGINX_API, endpoint_mode="dnsrr")
    report, _gateway = ms.run(engine, ms.params(tmp_path, [api, BACKEND], [], name="shop", engine="swarm"))
    assert ms.entry(report, "network", "shop_backend")["actions"] == ["create overlay network shop_backend"]
    network = _network(engine, "shop_backend")
    assert (network["Driver"], network["Attachable"], network["Internal"]) == ("overlay", True, True)
    assert network["Labels"]["io.clockwork.stack"] == "shop"
    attached = engine.inspect_service("api")["Spec"]["TaskTemplate"]["Networks"]
    assert [n["Target"] for n in attached] == ["shop_backend"], "on its named network only"


def test_a_container_lists_a_network_resource_by_its_network_s_name():
    message = refused([dict(API, networks=[{"name": "backend"}]), BACKEND])
    assert "resource api: networks: backend is a network resource whose network is shop_backend: list shop_backend" \
        in message
    Plan("shop", [dict(API, networks=[{"name": "front"}]), {"name": "front", "type": "network"}], [])


def test_a_container_s_address_is_one_its_network_resource_s_subnet_has():
    def on(address, network=BACKEND):
        return [dict(API, networks=[{"name": "shop_backend", "ipv4_address": address}]), network]
    Plan("shop", on("172.31.240.9"), [])
    message = refused(on("10.0.0.9") + [dict(API, name="web", networks=[{"name": "shop_backend",
                                                                          "ipv4_address": "nope"}])])
    assert "resource api: networks: shop_backend: ipv4_address 10.0.0.9 is outside subnet 172.31.240.0/24 of " \
           "network resource backend" in message
    assert "resource web: networks: shop_backend: ipv4_address nope is not an IPv4 address" in message
    bare = {"name": "backend", "type": "network", "network_name": "shop_backend"}
    assert "resource api: networks: shop_backend: ipv4_address 10.0.0.9 on a network without a subnet: give " \
           "network resource backend a subnet" in refused(on("10.0.0.9", bare))
    message = refused(on("10.0.0.9", dict(BACKEND, subnet="10.0.0.0/99", gateway=None)))
    assert "resource backend: subnet: 10.0.0.0/99 is not a network" in message and "ipv4_address" not in message
