"""The memory engine answers as the live one does: one sequence of gateway calls, run on the live
gateway (the real engine) and on the memory gateway, gives equal values in every field the
collection reads (ids and times normalised), and equal errors (type, status, the engine's words).
And a dry run over the live engine changes nothing there, while its own later reads show its writes."""
import json
import re
import shutil
import tempfile
import time

import pytest
from docker.types import Mount

from helpers import REDIS_IMAGE, docker, inspect
from ansible_collections.clockwork.connections.plugins.module_utils.docker import errors
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import (
    DockerGateway, container_state, exec_in)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import memory_gateway

HEX64 = re.compile(r"[0-9a-f]{64}")
HEALTHCHECK = {"test": ["CMD", "redis-cli", "ping"], "interval": 500 * 10 ** 6, "timeout": 2 * 10 ** 9, "retries": 3,
               "start_period": 0}


def wait_health(gw, name, timeout=60):
    """The container's health once it is no longer starting (the memory engine's is at once)."""
    deadline = time.monotonic() + timeout
    while True:
        status, health = container_state(gw.container_now(name))
        if health != "starting" or time.monotonic() > deadline:
            return status, health
        time.sleep(0.2)


class Normal(object):
    """Ids, short ids, addresses and times in a form both engines share."""

    def __init__(self, gw):
        self.gw = gw

    def ids(self, text):
        text = HEX64.sub("<id>", text)
        for attrs in self.gw.containers(all=True):
            text = text.replace(attrs["Id"][:12], "<short-id>")
        return text

    def value(self, value):
        return json.loads(self.ids(json.dumps(value, sort_keys=True)))

    def container(self, name):
        """What the collection reads of an inspected container."""
        attrs = self.gw.container_now(name)
        if attrs is None:
            return None
        config, host, state = attrs["Config"], attrs["HostConfig"], attrs["State"]
        mounts = [dict((k, m.get(k)) for k in ("Type", "Name", "Destination", "RW", "Mode")) for m in attrs["Mounts"]]
        for mount, original in zip(mounts, attrs["Mounts"]):
            mount["Source"] = original["Source"] if original["Type"] == "bind" else bool(original["Source"])
        networks = dict((net, {"Aliases": point.get("Aliases"), "has_address": bool(point.get("IPAddress")),
                               "in_network": point.get("NetworkID") == (self.gw.network(net) or {}).get("Id")})
                        for net, point in attrs["NetworkSettings"]["Networks"].items())
        ports = dict((port, [(b["HostIp"], bool(b["HostPort"])) for b in bound or []] if bound is not None else None)
                     for port, bound in (attrs["NetworkSettings"].get("Ports") or {}).items())
        return self.value({
            "Id": bool(HEX64.fullmatch(attrs["Id"])), "Name": attrs["Name"],
            "Image": attrs["Image"] == self.gw.image(config["Image"])["Id"],
            "Config": dict((k, config.get(k)) for k in ("Env", "Labels", "Image", "Cmd", "Healthcheck", "ExposedPorts",
                                                        "Volumes", "Entrypoint", "WorkingDir")),
            "HostConfig": dict((k, host.get(k)) for k in (
                "Binds", "Mounts", "PortBindings", "RestartPolicy", "CapAdd", "CapDrop", "Privileged", "PidMode",
                "IpcMode", "UsernsMode", "Devices", "NetworkMode")),
            "Mounts": sorted(mounts, key=lambda m: m["Destination"]),
            "State": {"Status": state["Status"], "Running": state["Running"], "ExitCode": state["ExitCode"],
                      "Health": (state.get("Health") or {}).get("Status")},
            "Networks": networks, "Ports": ports})

    def listed(self, stack):
        found = self.gw.containers(all=True, filters={"label": "io.clockwork.stack=%s" % stack})
        return self.value(sorted(({"Names": c["Names"], "Labels": c["Labels"], "State": c["State"],
                                   "Image": c["Image"], "ImageID": c["ImageID"] == self.gw.image(c["Image"])["Id"],
                                   "Ports": sorted((p.get("IP"), p["PrivatePort"], bool(p.get("PublicPort")), p["Type"])
                                                   for p in c["Ports"])}
                                  for c in found), key=lambda c: c["Names"]))

    def network(self, name):
        attrs = self.gw.network(name)
        return attrs and self.value({
            "Name": attrs["Name"], "Driver": attrs["Driver"], "Scope": attrs["Scope"], "Internal": attrs["Internal"],
            "Attachable": attrs["Attachable"], "Labels": attrs["Labels"], "Subnet": bool(attrs["IPAM"]["Config"]),
            "Containers": sorted(c["Name"] for c in attrs["Containers"].values())})

    def volume(self, name):
        attrs = self.gw.volume(name)
        return attrs and self.value(dict((k, attrs[k]) for k in ("Name", "Driver", "Labels", "Scope", "Mountpoint")))

    def error(self, call, *args, **kwargs):
        try:
            call(*args, **kwargs)
        except errors.APIError as exc:
            return {"status": errors.status_of(exc), "not_found": isinstance(exc, errors.NotFound),
                    "image_not_found": isinstance(exc, errors.ImageNotFound), "words": self.ids(errors.engine_words(exc))}
        return None


def scenario(gw, stack, conf_dir):
    """The calls, the same on any gateway; what the collection would read after each."""
    read = Normal(gw)
    web, net, back, vol = stack + "-web", stack + "_default", stack + "_back", stack + "_data"
    labels = {"io.clockwork.stack": stack, "io.clockwork.resource": "web"}
    seen = {}
    gw.create_network(net, driver="bridge", labels={"io.clockwork.stack": stack})
    gw.create_volume(vol, labels={"io.clockwork.stack": stack})
    host = dict(port_bindings={"6379/tcp": [("127.0.0.1", None)]}, binds=["%s:/conf:ro" % conf_dir],
                mounts=[Mount("/named", vol, type="volume", read_only=False)], restart_policy={"Name": "unless-stopped"},
                network_mode=net, cap_add=["NET_ADMIN"])
    gw.create_container(web, REDIS_IMAGE, host_config=host, command=["redis-server", "--port", "6379"],
                        environment={"APP_MODE": "test", "EMPTY": ""}, labels=labels, ports=[("6379", "tcp")],
                        healthcheck=HEALTHCHECK,
                        networking_config=gw.networking_config({net: gw.endpoint_config(aliases=["cache"])}))
    seen["created"] = read.container(web)
    seen["created listed"] = read.listed(stack)
    seen["name in use"] = read.error(gw.create_container, web, REDIS_IMAGE, labels=labels)
    seen["no such image"] = read.error(gw.create_container, stack + "-x", "clockwork-test/none:1", labels=labels)
    seen["exec in a created container"] = read.error(gw.exec_create, web, ["true"])
    gw.start(web)
    seen["health"] = wait_health(gw, web)
    seen["started"] = read.container(web)
    seen["started listed"] = read.listed(stack)
    seen["network with its container"] = read.network(net)
    seen["volume"] = read.volume(vol)
    seen["remove running"] = read.error(gw.remove_container, web)
    seen["remove network in use"] = read.error(gw.remove_network, net)
    seen["remove volume in use"] = read.error(gw.remove_volume, vol)
    gw.rename(web, web + "-old")
    gw.create_container(web, REDIS_IMAGE, labels=labels, command=["sleep", "600"])
    seen["renamed"] = read.container(web + "-old")
    seen["rename onto a name in use"] = read.error(gw.rename, web + "-old", web)
    seen["lists by name and label"] = read.value({
        "exact": [c["Names"] for c in gw.containers(all=True, filters={"name": "^/%s$" % web})],
        "part": sorted(c["Names"][0] for c in gw.containers(all=True, filters={"name": stack + "-we"})),
        "running": [c["Names"] for c in gw.containers(filters={"label": "io.clockwork.stack=%s" % stack})],
        "networks": sorted(n["Name"] for n in gw.networks(names=[stack])),
        "volumes": [v["Name"] for v in gw.api.volumes(filters={"label": "io.clockwork.stack=%s" % stack})["Volumes"]]})
    gw.create_network(back, labels={"io.clockwork.stack": stack}, internal=True)
    gw.connect(web + "-old", back, aliases=["api"])
    seen["connected"] = read.container(web + "-old")
    seen["connect again"] = read.error(gw.connect, web + "-old", back)
    seen["disconnect what is not connected"] = read.error(gw.disconnect, web, back)
    seen["no such network, running"] = read.error(gw.connect, web + "-old", stack + "_none")
    gw.connect(web, stack + "_none", aliases=["kept"])
    seen["no such network, not running"] = read.container(web)
    seen["start without its network"] = read.error(gw.start, web)
    seen["its state then"] = read.container(web)
    gw.stop(web + "-old")
    seen["stopped"] = read.container(web + "-old")
    gw.remove_container(web + "-old", volumes=True)
    gw.remove_container(web, volumes=True)   # its image's VOLUME too: nothing left behind
    seen["removed"] = read.container(web + "-old")
    seen["no such container"] = read.error(gw.start, web + "-old")
    gw.remove_network(back)
    gw.remove_network(net)
    gw.remove_volume(vol)
    seen["gone"] = [read.network(net), read.volume(vol), read.listed(stack)]
    seen["no such volume"] = read.error(gw.remove_volume, vol)
    seen["actions"] = read.value(gw.actions)
    return seen


@pytest.fixture
def conf_dir():
    path = tempfile.mkdtemp(prefix="clockwork-parity-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_memory_engine_answers_as_the_live_one(stack, conf_dir):
    live = DockerGateway()
    image = inspect("image", REDIS_IMAGE)
    assert image is not None, "the local test image %s is built (tests/images)" % REDIS_IMAGE
    memory = memory_gateway(images={REDIS_IMAGE: image["Config"]})
    on_live = scenario(live, stack, conf_dir)
    on_memory = scenario(memory, stack, conf_dir)
    assert on_live["health"] == ("running", "healthy"), on_live
    assert on_live["no such image"]["image_not_found"] and on_live["no such container"]["not_found"], on_live
    assert set(on_live) == set(on_memory)
    different = dict((step, {"live": on_live[step], "memory": on_memory[step]})
                     for step in on_live if on_live[step] != on_memory[step])
    assert different == {}, json.dumps(different, indent=1, sort_keys=True)


def engine_view(stack):
    """What `docker ps -a`, `network ls`, `volume ls` and `docker inspect` say of the stack's objects."""
    label = "label=io.clockwork.stack=%s" % stack
    containers = docker("ps", "-a", "--filter", label, "--format", "{{.ID}} {{.Names}} {{.State}}").splitlines()
    inspected = []
    for line in sorted(containers):
        attrs = inspect("container", line.split()[0])
        inspected.append({"Id": attrs["Id"], "Name": attrs["Name"], "Status": attrs["State"]["Status"],
                          "StartedAt": attrs["State"]["StartedAt"], "Labels": attrs["Config"]["Labels"],
                          "Networks": sorted(attrs["NetworkSettings"]["Networks"]), "Mounts": attrs["Mounts"]})
    return {"containers": sorted(containers), "inspected": inspected,
            "networks": sorted(docker("network", "ls", "--filter", label, "--format", "{{.ID}} {{.Name}}").splitlines()),
            "volumes": sorted(docker("volume", "ls", "--filter", label, "--format", "{{.Name}}").splitlines())}


def test_a_dry_run_changes_nothing_on_the_engine_and_reads_its_own_writes(stack):
    labels = {"io.clockwork.stack": stack}
    web, net, vol = stack + "-web", stack + "_default", stack + "_data"
    live = DockerGateway()
    live.create_network(net, labels=labels)
    live.create_volume(vol, labels=labels)
    live.create_container(web, REDIS_IMAGE, labels=labels, healthcheck=HEALTHCHECK,
                          host_config={"network_mode": net, "mounts": [Mount("/data", vol, type="volume")]})
    live.start(web)
    assert wait_health(live, web) == ("running", "healthy")
    before = engine_view(stack)

    gw = dry_run_gateway()
    assert gw.dry_run
    assert exec_in(gw, web, ["redis-cli", "ping"]) == (0, "PONG"), "a container the dry run left alone answers live"
    conflict = Normal(gw).error(gw.create_container, web, REDIS_IMAGE, labels=labels)
    assert conflict["status"] == errors.CONFLICT, conflict
    assert Normal(gw).error(gw.remove_network, net)["status"] == 403, "its live endpoint came along"
    gw.stop(web)
    gw.rename(web, web + "-old")
    gw.create_container(web, REDIS_IMAGE, labels=labels, healthcheck=HEALTHCHECK,
                        host_config={"network_mode": net, "mounts": [Mount("/data", vol, type="volume")]})
    gw.start(web)
    gw.create_network(stack + "_back", labels=labels)
    gw.connect(web, stack + "_back", aliases=["api"])
    gw.create_volume(stack + "_more", labels=labels)
    gw.remove_container(web + "-old", volumes=True)

    after = engine_view(stack)
    assert after == before, json.dumps({"before": before, "after": after}, indent=1)
    assert container_state(inspect("container", web)) == ("running", "healthy")
    new = gw.container(web)
    assert new["Id"] != inspect("container", web)["Id"] and gw.container(web + "-old") is None
    assert container_state(new) == ("running", "healthy")
    assert sorted(new["NetworkSettings"]["Networks"]) == sorted([net, stack + "_back"])
    assert [c["Names"] for c in gw.containers(all=True, filters={"label": "io.clockwork.stack=%s" % stack})] == \
        [["/" + web]]
    assert sorted(n["Name"] for n in gw.networks(filters={"label": "io.clockwork.stack=%s" % stack})) == \
        sorted([net, stack + "_back"])
    assert sorted(v["Name"] for v in gw.api.volumes(filters={"label": "io.clockwork.stack=%s" % stack})["Volumes"]) \
        == sorted([vol, stack + "_more"])
    assert exec_in(gw, web, ["redis-cli", "ping"]) == (0, ""), "the dry run's own container answers as scripted"
    assert gw.actions == ["stop container %s" % web, "rename container %s to %s-old" % (web, web),
                          "create container %s" % web, "start container %s" % web,
                          "create network %s_back" % stack, "connect container %s to network %s_back" % (web, stack),
                          "create volume %s_more" % stack, "remove container %s-old" % web]
    with pytest.raises(Exception, match="does not send"):
        gw.api.live.stop(web)
