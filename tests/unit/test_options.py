"""The container option table (plugins/module_utils/options/): every option goes from a declaration
into the create call, comes back from the memory engine's inspect (which answers as a 20.10 engine)
in the same normal form, and a changed value is drift that names it; the options a Swarm service
cannot have are refused naming the resource and the field (no Docker)."""
import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import ContainerConverger
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import (
    CONTAINER_ARGS, ContainerSpec, drift, running_config, spec_from_container)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.services import (
    MAPPED, NOT_ON_SWARM, OPTIONS_LABEL, SPEC_HASH_LABEL, changes, managed_part, service_body, service_problems,
    wanted_service)
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import MemoryEngine, memory_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.options.registry import BY_NAME, TABLE
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan

IMAGE = "clockwork-test/app:1"
IMAGE_CONFIG = {"Cmd": ["serve"], "Entrypoint": ["/entry.sh"], "User": "app", "WorkingDir": "/app",
                "StopSignal": "SIGQUIT", "Env": ["PATH=/bin", "MODE=image"], "Labels": {"from": "image"}}
NETWORK = "s_default"

# Per option: a declared value, and another one (a change). Every compared option has one, so
# that adding an option to the table without a test fails here.
SAMPLES = {
    "image": (IMAGE, "clockwork-test/app:2"),
    "command": (["serve", "--port", "80"], "serve --port 81"),
    "env": ({"A": "1"}, {"A": "2"}),
    "ports": (["8080:80", "53/udp"], ["8081:80"]),
    "mounts": ([{"type": "volume", "source": "data", "target": "/data"}, {"target": "/cache"},
                {"type": "bind", "source": "/srv/conf", "target": "/conf", "read_only": True, "propagation": "rslave"},
                {"type": "tmpfs", "target": "/scratch", "tmpfs_size": "1m", "tmpfs_mode": "1777"}],
               [{"type": "volume", "source": "data", "target": "/data", "nocopy": True}]),
    "healthcheck": ({"test": "true", "interval": "2s"}, {"test": ["CMD", "true"], "interval": "3s"}),
    "restart_policy": ("always", "unless-stopped"),
    "labels": ({"tier": "web"}, {"tier": "api"}),
    "tmpfs": (["/run:size=64m", "/tmp"], ["/run"]),
    "shm_size": ("256m", "1g"),
    "network_mode": ("host", "none"),
    "hostname": ("web", "web2"),
    "domainname": ("example.org", "example.com"),
    "mac_address": ("02:42:AC:11:00:99", "02:42:ac:11:00:98"),
    "extra_hosts": ({"db": "10.0.0.2"}, ["db:10.0.0.3"]),
    "dns": (["1.1.1.1", "9.9.9.9"], ["9.9.9.9", "1.1.1.1"]),
    "dns_search": (["example.org"], ["example.com"]),
    "dns_opt": (["ndots:2"], ["ndots:3"]),
    "privileged": (True, False),
    "cap_add": (["net_admin", "CHOWN"], ["NET_ADMIN"]),
    "cap_drop": (["all"], ["NET_RAW"]),
    "devices": (["/dev/null:/dev/xnull"], ["/dev/null:/dev/xnull:r"]),
    "pid_mode": ("host", None),
    "ipc_mode": ("host", "shareable"),
    "userns_mode": ("host", None),
    "read_only": (True, False),
    "security_opt": (["no-new-privileges:true"], ["apparmor=unconfined"]),
    "user": ("1000:1000", "root"),
    "working_dir": ("/srv", "/"),
    "entrypoint": ("/bin/sh -c", ["/bin/bash", "-c"]),
    "init": (True, False),
    "stop_signal": ("int", "SIGTERM"),
    "stop_grace_period": ("30s", "1m"),
    "group_add": (["audio", "100"], ["audio"]),
    "mem_limit": ("512m", 1024 ** 3),
    "mem_reservation": ("128m", "256m"),
    "cpus": (0.5, 1.5),
    "cpu_shares": (512, 256),
    "pids_limit": (100, 200),
    "oom_score_adj": (100, -100),
    "ulimits": ({"nofile": {"soft": 1024, "hard": 2048}, "nproc": 512}, {"nofile": 4096}),
    "sysctls": ({"net.core.somaxconn": 1024}, {"net.core.somaxconn": "2048"}),
    "logging": ({"driver": "json-file", "options": {"max-size": "10m"}}, {"driver": "local"}),
    # Not compared on a container; on Swarm the service's placement.
    "platform": ("linux/amd64", "linux/arm64"),
}
COMPARED = [o.name for o in TABLE if o.compare]


def gateway():
    gw = memory_gateway(images={IMAGE: dict(IMAGE_CONFIG), "clockwork-test/app:2": dict(IMAGE_CONFIG, Labels={"from": "image", "v": "2"})})
    gw.create_network(NETWORK, driver="bridge", labels={"io.clockwork.stack": "s"})
    return gw


def params(**fields):
    declared = dict(dict(name="web", image=IMAGE, state="present", wait=False), **fields)
    if not declared.get("network_mode"):
        declared.setdefault("networks", [{"name": NETWORK, "aliases": ["web"]}])
    result = ArgumentSpecValidator(CONTAINER_ARGS).validate(declared)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def converge(gw, declared):
    return ContainerConverger(gw).converge(ContainerSpec(declared, "s"))


def compared(gw, declared):
    """(wanted, running) of the container `declared`, as the converger compares them."""
    spec = ContainerSpec(declared, "s")
    running = running_config(gw.container_now("web"))
    return spec.comparable(gw.image(spec.image), running), running


def test_every_compared_option_has_a_sample_and_every_option_is_documented():
    assert sorted(set(COMPARED) - set(SAMPLES)) == []
    for option in TABLE:
        assert option.doc and option.spec.get("type"), option
        assert all(isinstance(key, str) for key in option.compose), option
        assert option.grant in (None, "privileged", "capabilities", "devices", "host_namespaces", "host_paths"), option
        assert CONTAINER_ARGS[option.name] == option.spec
        for key in option.spec.get("options") or {}:
            assert option.subdocs.get(key), (option, key)


@pytest.mark.parametrize("name", COMPARED)
def test_an_option_goes_into_the_container_and_reads_back_equal(name):
    gw = gateway()
    declared = params(**{name: SAMPLES[name][0]})
    outcome = converge(gw, declared)
    assert outcome["actions"] == ["create"], outcome
    wanted, running = compared(gw, declared)
    assert drift(wanted, running) == []
    if BY_NAME[name].optional:
        assert name in running and running[name] == wanted[name], (name, running.get(name), wanted.get(name))
    assert converge(gw, declared)["changed"] is False
    # The declaration that gives the running container, as a connection's mount rebuilds it, is the same.
    again = spec_from_container(gw.container_now("web"), "s")
    assert drift(again.comparable(gw.image(again.image), running), running) == []


@pytest.mark.parametrize("name", COMPARED)
def test_a_changed_option_recreates_naming_it(name):
    gw = gateway()
    converge(gw, params(**{name: SAMPLES[name][0]}))
    outcome = converge(gw, params(**{name: SAMPLES[name][1]}))
    # A restart policy or a limit `docker update` takes is changed in place (the gateway's update_container).
    assert outcome["actions"] == (["update"] if BY_NAME[name].update else ["recreate"]), outcome
    said = outcome["reasons"]
    assert said[0].split(" ")[0] == name, said
    # A changed image brings its labels; changed ports, the label that lists them.
    assert said[1:] in ([], ["labels v"], ["labels io.clockwork.ports"]), said
    assert converge(gw, params(**{name: SAMPLES[name][1]}))["changed"] is False


# Not declared, these have what the image gives (user ...) or what the engine chose (ipc_mode, logging).
FROM_IMAGE = ("user", "working_dir", "entrypoint", "stop_signal")
CHOSEN = FROM_IMAGE + ("ipc_mode", "logging")


@pytest.mark.parametrize("name", [n for n in COMPARED if BY_NAME[n].optional])
def test_an_option_taken_away_recreates_naming_it_and_unset_it_is_not_shown(name):
    gw = gateway()
    converge(gw, params())
    assert (name in converge(gw, params())["diff"]["before"]) == (name in CHOSEN)
    converge(gw, params(**{name: SAMPLES[name][0]}))
    outcome = converge(gw, params())
    # Without its entrypoint, the container gets the image's command back too.
    assert outcome["reasons"] == (["command", name] if name == "entrypoint" else [name]), outcome
    assert (name in outcome["diff"]["after"]) == (name in FROM_IMAGE)


def test_every_option_at_once_reads_back_equal():
    gw = gateway()
    fields = dict((name, SAMPLES[name][0]) for name in COMPARED if name not in ("network_mode", "ipc_mode", "pid_mode"))
    declared = params(**fields)
    converge(gw, declared)
    wanted, running = compared(gw, declared)
    assert drift(wanted, running) == []
    changed = params(**dict(fields, user="root", mem_limit="1g", read_only=False))
    assert converge(gw, changed)["reasons"] == ["read_only", "user", "mem_limit"]


def test_the_create_call_carries_the_options_as_the_engine_keeps_them():
    gw = gateway()
    converge(gw, params(user="1000", shm_size="256m", ulimits={"nofile": 1024}, cpus=0.5, mem_limit="512m",
                        logging={"driver": "local"}, mac_address="02:42:ac:11:00:99", extra_hosts=["db:10.0.0.2"]))
    attrs = gw.container_now("web")
    host, config = attrs["HostConfig"], attrs["Config"]
    assert (config["User"], config["MacAddress"]) == ("1000", "02:42:ac:11:00:99")
    assert (host["ShmSize"], host["NanoCpus"], host["Memory"]) == (256 * 1024 ** 2, 5 * 10 ** 8, 512 * 1024 ** 2)
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 1024}]
    assert host["LogConfig"] == {"Type": "local", "Config": {}}
    assert host["ExtraHosts"] == ["db:10.0.0.2"]


# -- what the options mean beyond the create call ---------------------------------------------

def test_a_declared_entrypoint_drops_the_image_command():
    gw = gateway()
    converge(gw, params(entrypoint=["/bin/sh"]))
    assert gw.container_now("web")["Config"]["Cmd"] is None
    assert converge(gw, params(entrypoint=["/bin/sh"]))["changed"] is False


def test_an_anonymous_volume_is_kept_by_a_recreate():
    gw = gateway()
    converge(gw, params(mounts=[{"target": "/cache"}]))
    before = [m["Name"] for m in gw.container_now("web")["Mounts"] if m["Destination"] == "/cache"]
    outcome = converge(gw, params(mounts=[{"target": "/cache"}], env={"A": "2"}))
    assert outcome["reasons"] == ["env A"]
    after = [m["Name"] for m in gw.container_now("web")["Mounts"] if m["Destination"] == "/cache"]
    assert after == before and len(before) == 1
    assert converge(gw, params(mounts=[{"target": "/cache"}], env={"A": "2"}))["changed"] is False


def test_a_network_mode_joins_no_network():
    gw = gateway()
    converge(gw, params(network_mode="host"))
    attrs = gw.container_now("web")
    assert attrs["HostConfig"]["NetworkMode"] == "host" and list(attrs["NetworkSettings"]["Networks"]) == ["host"]
    # Back on the network: the host mode is not carried over.
    outcome = converge(gw, params())
    assert outcome["reasons"] == ["network_mode"]
    assert list(gw.container_now("web")["NetworkSettings"]["Networks"]) == [NETWORK]


def test_a_network_address_and_priority():
    gw = gateway()
    gw.create_network("s_back", driver="bridge", labels={"io.clockwork.stack": "s"})
    converge(gw, params(networks=[{"name": NETWORK}, {"name": "s_back", "priority": 10, "aliases": ["b"]}]))
    attrs = gw.container_now("web")
    assert attrs["HostConfig"]["NetworkMode"] == "s_back"   # the highest priority is joined at creation


def test_a_network_address_is_asked_for_at_creation_and_kept():
    gw = gateway()
    gw.create_network("s_fixed", driver="bridge", labels={"io.clockwork.stack": "s"},
                      ipam={"Driver": "default", "Config": [{"Subnet": "10.77.0.0/24"}]})
    declared = params(networks=[{"name": "s_fixed", "ipv4_address": "10.77.0.42"}], state="started", wait=False)
    converge(gw, declared)
    point = gw.container_now("web")["NetworkSettings"]["Networks"]["s_fixed"]
    assert point["IPAMConfig"] == {"IPv4Address": "10.77.0.42"} and point["IPAddress"] == "10.77.0.42"
    assert converge(gw, declared)["changed"] is False


def test_pull_policy_never_refuses_a_missing_image():
    gw = gateway()
    with pytest.raises(ClockworkError, match="container web: image clockwork-test/none:1 is not on the Docker host, "
                                             "and pull_policy is never"):
        converge(gw, params(image="clockwork-test/none:1", pull_policy="never"))
    assert not [a for a in gw.actions if a.startswith("pull")]


@pytest.mark.parametrize("field, given, words", [
    ("shm_size", "lots", "shm_size: invalid size"),
    ("mem_limit", "1x", "mem_limit: invalid size"),
    ("extra_hosts", ["db"], "extra_hosts: 'db' is not host:address"),
    ("extra_hosts", {"db": "here"}, "extra_hosts: db: 'here' is not an IP address"),
    ("network_mode", "bridgey", "network_mode: 'bridgey' is not one of host, none"),
    ("tmpfs", ["run"], "tmpfs: run is not an absolute path"),
    ("ulimits", {"nofile": {"soft": 1}}, "ulimits: nofile: give a number, or soft and hard"),
    ("logging", {"driver": ""}, "logging: driver is required"),
    ("stop_grace_period", "soon", "stop_grace_period: invalid duration"),
    ("mounts", [{"type": "bind", "target": "/x"}], "mounts: a bind mount at /x needs a source"),
    ("mounts", [{"type": "tmpfs", "target": "/x", "tmpfs_mode": "rwx"}], "mounts: tmpfs_mode 'rwx' of the mount at /x"),
    ("mounts", [{"type": "volume", "source": "vol", "target": "/x", "tmpfs_size": "1m"}],
     "mounts: tmpfs_size is for a tmpfs mount"),
])
def test_the_plan_names_the_resource_and_the_field_of_an_invalid_value(field, given, words):
    with pytest.raises(ClockworkError) as caught:
        Plan("s", [{"name": "web", "image": IMAGE, field: given}], [])
    assert "resource web" in caught.value.msg and words in caught.value.msg, caught.value.msg


def test_a_network_mode_leaves_the_stack_network_and_refuses_networks():
    spec = Plan("s", [{"name": "web", "image": IMAGE, "network_mode": "host"}], []).specs["web"]
    assert spec.networks == [] and spec.network_mode == "host"
    with pytest.raises(ClockworkError, match="resource web: networks: a container with network_mode host joins no"):
        Plan("s", [{"name": "web", "image": IMAGE, "network_mode": "host", "networks": [{"name": "n"}]}], [])


# -- Swarm ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NOT_ON_SWARM)
def test_swarm_refuses_an_option_it_cannot_give_a_service_naming_the_field(name):
    value = SAMPLES.get(name, ("missing",))[0] if name != "pull_policy" else "always"
    if name == "platform":
        value = "linux/amd64"
    resource = Plan("s", [{"name": "web", "image": IMAGE, name: value}], [], engine="swarm").by_name["web"]
    problems = service_problems(resource)
    assert [field for field, _problem in problems] == [name]
    assert "is not on Swarm" in problems[0][1]


def test_swarm_stack_refuses_every_one_at_once_before_the_engine():
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.applier import SwarmApplier

    class NoEngine(object):
        def __getattr__(self, name):
            raise AssertionError("the engine was asked (%s) before the refusal" % name)

    fields = {"shm_size": "1g", "domainname": "example.org", "oom_score_adj": 10, "privileged": True}
    with pytest.raises(ClockworkError) as caught:
        SwarmApplier(NoEngine(), {"name": "s", "resources": [dict(name="web", image=IMAGE, **fields)],
                                  "connections": [], "base_dir": None})
    for field in fields:
        assert "resource web: %s: is not on Swarm" % field in caught.value.msg, caught.value.msg


def service(fields, current=None):
    """(wanted, the body sent, as stored) of a resource with `fields` as a Swarm service."""
    resource = dict(dict(name="web", image=IMAGE), **fields)
    spec = ContainerSpec(params(**fields), "s")
    want = wanted_service(spec, resource, spec.env, spec.mounts, [], [], [])
    body = service_body("s_web", want, current)
    return want, body


# What a service takes where it takes less than a container (a security option: SELinux labels only).
SWARM_SAMPLES = dict(SAMPLES, security_opt=(["label=type:svirt_apache_t", "label:level:s0:c100,c200"],
                                            ["label=disable"]))


@pytest.mark.parametrize("name", [o.name for o in MAPPED])
def test_a_mapped_option_goes_into_the_service_and_reads_back_equal(name):
    samples = SWARM_SAMPLES[name]
    want, body = service({name: samples[0]})
    assert changes(want, managed_part(body, want, {})) == []
    assert body["Labels"][OPTIONS_LABEL] == name
    # Changed: named, and written.
    changed, _body = service({name: samples[1]})
    said = changes(changed, managed_part(body, changed, {}))
    # A change to false (read_only, init) takes the option away: its label goes too.
    labels = SPEC_HASH_LABEL + (", " + OPTIONS_LABEL if samples[1] is False else "")
    assert said == ["labels %s" % labels, name], said
    _, updated = service({name: samples[1]}, body)
    assert changes(changed, managed_part(updated, changed, {})) == []
    # Taken away: named, and the field taken out of the service.
    plain, _body = service({})
    said = changes(plain, managed_part(body, plain, {}))
    assert said == ["labels %s, %s" % (SPEC_HASH_LABEL, OPTIONS_LABEL), name], said
    _, cleared = service({}, body)
    assert BY_NAME[name].swarm.get(cleared) is None and OPTIONS_LABEL not in cleared["Labels"]
    assert changes(plain, managed_part(cleared, plain, {})) == []


def test_a_field_somebody_else_set_on_the_service_is_kept():
    plain, body = service({})
    body["TaskTemplate"]["Resources"] = {"Limits": {"MemoryBytes": 1 << 28}}
    body["TaskTemplate"]["ContainerSpec"]["User"] = "nobody"
    assert changes(plain, managed_part(body, plain, {})) == []
    _, again = service({"env": {"A": "2"}}, body)
    assert again["TaskTemplate"]["Resources"] == {"Limits": {"MemoryBytes": 1 << 28}}
    assert again["TaskTemplate"]["ContainerSpec"]["User"] == "nobody"


def test_a_service_field_in_the_engines_form():
    _, body = service({"extra_hosts": {"db": "10.0.0.2"}, "cpus": 0.5, "mem_limit": "64m", "ulimits": {"nofile": 10},
                       "logging": {"driver": "local"}, "dns": ["1.1.1.1"]})
    container, template = body["TaskTemplate"]["ContainerSpec"], body["TaskTemplate"]
    assert container["Hosts"] == ["10.0.0.2 db"] and container["DNSConfig"] == {"Nameservers": ["1.1.1.1"]}
    assert container["Ulimits"] == [{"Name": "nofile", "Soft": 10, "Hard": 10}]
    assert template["Resources"] == {"Limits": {"NanoCPUs": 5 * 10 ** 8, "MemoryBytes": 64 * 1024 ** 2}}
    assert template["LogDriver"] == {"Name": "local", "Options": {}}


def test_a_services_mounts_keep_their_settings():
    mounts = [{"target": "/cache"}, {"type": "tmpfs", "target": "/scratch", "tmpfs_size": "1m", "tmpfs_mode": 0o1777},
              {"type": "bind", "source": "/srv", "target": "/srv", "propagation": "rslave"},
              {"type": "volume", "source": "data", "target": "/data", "nocopy": True}]
    want, body = service({"mounts": mounts})
    made = dict((m["Target"], m) for m in body["TaskTemplate"]["ContainerSpec"]["Mounts"])
    assert "Source" not in made["/cache"] and made["/scratch"]["TmpfsOptions"] == {"SizeBytes": 1024 ** 2, "Mode": 0o1777}
    assert made["/srv"]["BindOptions"] == {"Propagation": "rslave"} and made["/data"]["VolumeOptions"] == {"NoCopy": True}
    assert changes(want, managed_part(body, want, {})) == []
    other, _body = service({"mounts": mounts[:1] + [dict(mounts[1], tmpfs_size="2m")] + mounts[2:]})
    assert changes(other, managed_part(body, other, {})) == ["labels %s" % SPEC_HASH_LABEL, "mounts"]


class UpdatingGateway(DockerGateway):
    """The gateway with `docker update` (the memory engine answers it as 20.10 does)."""

    def update_container(self, container, **resources):
        self.api.update_container(container, **resources)
        self._wrote("update container %s" % container, ("container", container))


def updating_gateway():
    gw = UpdatingGateway(api=MemoryEngine(images={IMAGE: dict(IMAGE_CONFIG)}))
    gw.create_network(NETWORK, driver="bridge", labels={"io.clockwork.stack": "s"})
    return gw


def test_a_limit_or_the_restart_policy_changes_in_place():
    gw = updating_gateway()
    converge(gw, params(mem_limit="64m", restart_policy="always"))
    before = gw.container_now("web")["Id"]
    outcome = converge(gw, params(mem_limit="256m", cpu_shares=512, restart_policy="no"))
    assert outcome["actions"] == ["update"] and outcome["reasons"] == ["restart_policy", "mem_limit", "cpu_shares"]
    attrs = gw.container_now("web")
    assert attrs["Id"] == before and (attrs["HostConfig"]["Memory"], attrs["HostConfig"]["MemorySwap"]) == (
        256 * 1024 ** 2, 512 * 1024 ** 2)
    assert gw.actions[-1] == "update container web"
    assert converge(gw, params(mem_limit="256m", cpu_shares=512, restart_policy="no"))["changed"] is False


@pytest.mark.parametrize("fields, then", [
    ({"mem_limit": "64m"}, {}),                                   # a limit taken away: no update can
    ({"mem_limit": "64m"}, {"mem_limit": "128m", "user": "root"}),  # with another change
    ({"cpus": 0.5}, {}),                                          # NanoCpus 0 leaves the limit as it is
    ({"cpus": 0.5, "pids_limit": 64}, {"pids_limit": 100}),
])
def test_what_docker_update_cannot_do_recreates(fields, then):
    gw = updating_gateway()
    converge(gw, params(**fields))
    assert converge(gw, params(**then))["actions"] == ["recreate"]


def test_cpus_and_the_pids_limit_change_in_place_through_the_gateway():
    """The SDK's update_container has neither: the gateway sends the engine's NanoCpus and PidsLimit,
    and a pids limit taken away is PidsLimit -1 (none), in place too."""
    gw = memory_gateway(images={IMAGE: dict(IMAGE_CONFIG)})
    gw.create_network(NETWORK, driver="bridge", labels={"io.clockwork.stack": "s"})
    converge(gw, params(cpus=0.5, pids_limit=64))
    before = gw.container_now("web")["Id"]
    outcome = converge(gw, params(cpus=1.5, pids_limit=100))
    assert outcome["actions"] == ["update"] and outcome["reasons"] == ["cpus", "pids_limit"], outcome
    assert set(outcome["diff"]["before"]) >= {"cpus", "pids_limit"} and outcome["diff"]["after"]["cpus"] == 1.5
    host = gw.container_now("web")["HostConfig"]
    assert gw.container_now("web")["Id"] == before and (host["NanoCpus"], host["PidsLimit"]) == (15 * 10 ** 8, 100)
    assert converge(gw, params(cpus=1.5, pids_limit=100))["changed"] is False
    taken = converge(gw, params(cpus=1.5))
    assert taken["actions"] == ["update"] and taken["reasons"] == ["pids_limit"], taken
    assert gw.container_now("web")["HostConfig"]["PidsLimit"] == 0 and gw.container_now("web")["Id"] == before
    assert converge(gw, params(cpus=1.5))["changed"] is False


def test_the_gateway_posts_what_the_sdks_update_lacks():
    """On the live engine (engine_api.EngineAPI) the gateway posts the engine's body itself when
    asked for NanoCpus or PidsLimit; the SDK's update_container for the rest."""
    from ansible_collections.clockwork.connections.plugins.module_utils.docker import container_calls

    class Response(object):
        pass

    class SDK(object):
        def __init__(self):
            self.posted, self.updated = [], []

        def _url(self, path, *args):
            return "/v1.41" + path.format(*args)

        def _post_json(self, url, data):
            self.posted.append((url, data))
            return Response()

        def _result(self, response, json):
            return {"Warnings": None}

        def update_container(self, container, **resources):
            self.updated.append((container, resources))

    class Live(container_calls.EngineAPI):
        def __init__(self):
            self.sdk = SDK()

        @property
        def client(self):
            return type("Client", (), {"api": self.sdk})()

        def update_container(self, container, **resources):
            self.sdk.update_container(container, **resources)

    live = Live()
    gw = DockerGateway(api=live)
    gw.update_container("web", nano_cpus=15 * 10 ** 8, pids_limit=-1, mem_limit=64)
    gw.update_container("web", cpu_shares=512)
    assert live.sdk.posted == [("/v1.41/containers/web/update", {"NanoCpus": 15 * 10 ** 8, "PidsLimit": -1,
                                                                 "Memory": 64})]
    assert live.sdk.updated == [("web", {"cpu_shares": 512})]
    assert gw.actions[-2:] == ["update container web", "update container web"]


class GatewayWithoutUpdate(DockerGateway):
    """A gateway that cannot change a container in place (as one without update_container)."""

    @property
    def update_container(self):
        raise AttributeError("update_container")


def test_without_the_gateways_update_a_limit_recreates():
    gw = GatewayWithoutUpdate(api=MemoryEngine(images={IMAGE: dict(IMAGE_CONFIG)}))
    converge(gw, params(mem_limit="64m"))
    assert converge(gw, params(mem_limit="128m"))["actions"] == ["recreate"]


@pytest.mark.parametrize("field, given, words", [
    ("healthcheck", 1, "healthcheck: must be a mapping"),
    ("logging", "json-file", "logging: must be a mapping"),
    ("mounts", ["/data"], "mounts: must be a list of mappings"),
    ("entrypoint", 1, "entrypoint: give a list of words or a string"),
])
def test_a_field_in_another_shape_is_a_problem_not_a_traceback(field, given, words):
    with pytest.raises(ClockworkError) as caught:
        Plan("s", [{"name": "web", "image": IMAGE, field: given}], [])
    assert "resource web: " in caught.value.msg and words in caught.value.msg, caught.value.msg


def test_an_anonymous_volume_is_shared_by_a_start_first_replacement():
    gw = gateway()
    converge(gw, dict(params(mounts=[{"target": "/cache"}]), state="started", wait=False))
    before = [m["Name"] for m in gw.container_now("web")["Mounts"] if m["Destination"] == "/cache"]
    spec = ContainerSpec(dict(params(mounts=[{"target": "/cache"}], env={"A": "2"}), state="started", wait=False), "s")
    spec.update_order = "start-first"
    outcome = ContainerConverger(gw).converge(spec)
    assert outcome["actions"][0] == "replace start-first", outcome
    assert [m["Name"] for m in gw.container_now("web")["Mounts"] if m["Destination"] == "/cache"] == before


# -- Swarm: the fields a service honours beyond its ContainerSpec basics ---------------------------

def test_a_services_tmpfs_paths_are_its_tmpfs_mounts():
    want, body = service({"tmpfs": ["/run:size=8m,mode=1777", "/tmp", "/ro:ro"]})
    made = dict((m["Target"], m) for m in body["TaskTemplate"]["ContainerSpec"]["Mounts"])
    assert made["/run"] == {"Target": "/run", "Type": "tmpfs", "ReadOnly": False,
                            "TmpfsOptions": {"SizeBytes": 8 * 1024 ** 2, "Mode": 0o1777}}
    assert made["/tmp"] == {"Target": "/tmp", "Type": "tmpfs", "ReadOnly": False} and made["/ro"]["ReadOnly"] is True
    assert changes(want, managed_part(body, want, {})) == []
    other, _body = service({"tmpfs": ["/run:size=16m", "/tmp", "/ro:ro"]})
    assert changes(other, managed_part(body, other, {})) == ["labels %s" % SPEC_HASH_LABEL, "mounts"]
    plain, _body = service({})
    assert changes(plain, managed_part(body, plain, {})) == ["labels %s" % SPEC_HASH_LABEL, "mounts"]


def test_a_services_selinux_labels_are_its_privileges():
    want, body = service({"security_opt": ["label:type:svirt_apache_t", "label=level:s0:c1,c2"]})
    container = body["TaskTemplate"]["ContainerSpec"]
    assert container["Privileges"] == {"SELinuxContext": {"Type": "svirt_apache_t", "Level": "s0:c1,c2"}}
    # The colon spelling is the equal sign's: no drift between them.
    assert want["security_opt"] == ["label=level:s0:c1,c2", "label=type:svirt_apache_t"]
    assert changes(want, managed_part(body, want, {})) == []
    _, disabled = service({"security_opt": ["label=disable"]}, body)
    assert disabled["TaskTemplate"]["ContainerSpec"]["Privileges"] == {"SELinuxContext": {"Disable": True}}


def test_a_services_platform_is_its_placement():
    want, body = service({"platform": "linux/amd64"})
    assert body["TaskTemplate"]["Placement"]["Platforms"] == [{"OS": "linux", "Architecture": "amd64"}]
    assert changes(want, managed_part(body, want, {})) == []
    # Constraints somebody else set stay beside it.
    body["TaskTemplate"]["Placement"]["Constraints"] = ["node.role==manager"]
    _, again = service({"platform": "linux/arm64"}, body)
    assert again["TaskTemplate"]["Placement"] == {"Constraints": ["node.role==manager"],
                                                  "Platforms": [{"OS": "linux", "Architecture": "arm64"}]}


@pytest.mark.parametrize("fields, words", [
    ({"tmpfs": ["/run:size=8m,noexec"]}, "tmpfs: /run: a service's tmpfs mount takes size, mode and ro only, not noexec"),
    ({"tmpfs": ["/run:size=50%"]}, "tmpfs: invalid size '50%'"),
    ({"tmpfs": ["/run:mode=rwx"]}, "tmpfs: /run: mode=rwx is not a file mode"),
    ({"tmpfs": ["/data"], "mounts": [{"target": "/data"}]}, "tmpfs: /data is a target of mounts too"),
    ({"platform": "linux/arm/v7"}, "platform: linux/arm/v7: a service's placement takes an OS and an architecture, "
                                   "not a variant (give linux/arm"),
    ({"security_opt": ["label=type:x", "no-new-privileges:true", "seccomp=unconfined"]},
     "security_opt: no-new-privileges:true, seccomp=unconfined: a service takes SELinux labels only"),
    ({"security_opt": ["label=bogus:x"]}, "security_opt: label=bogus:x: a service takes SELinux labels only"),
])
def test_swarm_refuses_a_value_a_service_cannot_have_naming_the_field(fields, words):
    resource = Plan("s", [dict(name="web", image=IMAGE, **fields)], [], engine="swarm").by_name["web"]
    said = ["%s: %s" % problem for problem in service_problems(resource)]
    assert len(said) == 1 and said[0].startswith(words), said


def test_a_service_with_the_fields_swarm_honours_on_the_memory_swarm(tmp_path, monkeypatch):
    """The memory swarm (20.10's API 1.41): a service with capabilities, sysctls, ulimits, init, a read-only
    root, names and DNS, stop signal and grace, groups, tmpfs mounts, a platform and an SELinux label; rerun unchanged;
    a tmpfs path and the platform changed update it naming each."""
    import memory_stacks as ms
    monkeypatch.setenv("HOME", str(tmp_path))
    fields = dict(name="web", image=ms.NGINX, endpoint_mode="dnsrr", cap_add=["NET_ADMIN"], cap_drop=["ALL"],
                  sysctls={"net.core.somaxconn": 1024}, ulimits={"nofile": 2048}, init=True, read_only=True,
                  hostname="websvc", dns=["10.0.0.53"], extra_hosts={"db": "10.0.0.2"}, stop_signal="SIGINT",
                  stop_grace_period="5s", group_add=["29"], tmpfs=["/run:size=8m", "/tmp"], platform="linux/amd64",
                  security_opt=["label=type:container_t"])
    engine = ms.new_engine(swarm=True)

    def converged(**changes):
        report, _gateway = ms.run(engine, ms.params(tmp_path, [dict(fields, **changes)], [], engine="swarm"))
        return report, [e for e in report["entries"] if e["kind"] == "service"][0]

    report, _entry = converged()
    assert report["changed"] is True, report["entries"]
    spec = engine.inspect_service("web")["Spec"]
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert (container["CapabilityAdd"], container["CapabilityDrop"]) == (["CAP_NET_ADMIN"], ["ALL"]), container
    assert container["Sysctls"] == {"net.core.somaxconn": "1024"} and container["Init"] is True
    assert container["ReadOnly"] is True and container["Hostname"] == "websvc" and container["Groups"] == ["29"]
    assert container["Hosts"] == ["10.0.0.2 db"] and container["DNSConfig"] == {"Nameservers": ["10.0.0.53"]}
    assert (container["StopSignal"], container["StopGracePeriod"]) == ("SIGINT", 5 * 10 ** 9)
    assert container["Ulimits"] == [{"Name": "nofile", "Soft": 2048, "Hard": 2048}]
    tmpfs = dict((m["Target"], m) for m in container["Mounts"])
    assert tmpfs["/run"]["Type"] == "tmpfs" and tmpfs["/run"]["TmpfsOptions"] == {"SizeBytes": 8 * 1024 ** 2}
    assert spec["TaskTemplate"]["Placement"]["Platforms"] == [{"OS": "linux", "Architecture": "amd64"}]
    assert container["Privileges"] == {"SELinuxContext": {"Type": "container_t"}}
    again, _entry = converged()
    assert again["changed"] is False, again["entries"]
    changed, entry = converged(tmpfs=["/run:size=16m", "/tmp"], platform="linux/arm64")
    assert changed["changed"] is True and "mounts" in entry["reasons"] and "platform" in entry["reasons"], entry
    assert converged(tmpfs=["/run:size=16m", "/tmp"], platform="linux/arm64")[0]["changed"] is False
