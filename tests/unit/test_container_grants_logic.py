"""Grants of the host on a container resource (privileged, cap_add, cap_drop, devices, pid_mode,
ipc_mode, userns_mode): normalised, compared only when set on a side, kept by a recreate for a
connection's mount, none on an existing container that declares none; on Swarm the capabilities
as the service's and the rest refused; exported under their Compose keys (no Docker)."""
import copy
import os

import pytest
import yaml

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import (
    ContainerSpec, capability, drift, parse_device, running_config, spec_from_container)
from ansible_collections.clockwork.connections.plugins.module_utils.differences import masked_diff
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.preflight import SwarmPreflight
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.services import (
    SPEC_HASH_LABEL, changes, managed_part, service_body, service_problems, spec_hash, wanted_service)
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.exporter import export
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import from_compose
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.secrets import ExportError

IMAGE = {"Id": "sha256:img", "Config": {"Env": ["PATH=/bin"], "Cmd": ["nginx"]}}
PARAMS = {"name": "web", "image": "nginx"}
XNULL = {"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rwm"}
GRANTED = dict(PARAMS, privileged=True, cap_add=["net_admin", "CAP_CHOWN"], cap_drop=["all"],
               devices=["/dev/null:/dev/xnull"], pid_mode="host", ipc_mode="host", userns_mode="host")


def inspected(**host):
    """A container as the engine reports it, made before these fields existed: HostConfig as a
    20.10 engine fills it for a container that asked for none of them, changed by `host`."""
    config = {"Privileged": False, "CapAdd": None, "CapDrop": None, "Devices": [], "PidMode": "",
              "IpcMode": "private", "UsernsMode": "", "PortBindings": {}, "Mounts": [],
              "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}}
    config.update(host)
    return {"Name": "/web", "Image": "sha256:img", "State": {"Running": True},
            "Config": {"Image": "nginx", "Env": ["PATH=/bin"], "Cmd": ["nginx"],
                       "Labels": {"io.clockwork.stack": "s", "io.clockwork.resource": "web", "io.clockwork.ports": ""}},
            "HostConfig": config}


def reasons(params, attrs):
    running = running_config(attrs)
    return drift(ContainerSpec(params, "s").comparable(IMAGE, running), running)


# -- an existing stack is left alone ------------------------------------------------------------

@pytest.mark.parametrize("ipc", ["private", "shareable", ""])
def test_an_existing_container_that_declares_no_grant_does_not_drift(ipc):
    assert reasons(PARAMS, inspected(IpcMode=ipc)) == []


def test_an_inspect_without_the_fields_at_all_does_not_drift():
    attrs = inspected()
    for key in ("Privileged", "CapAdd", "CapDrop", "Devices", "PidMode", "IpcMode", "UsernsMode"):
        del attrs["HostConfig"][key]
    assert reasons(PARAMS, attrs) == []


def test_the_diff_of_a_container_without_grants_shows_none_of_them():
    running = running_config(inspected(IpcMode="shareable"))
    wanted = ContainerSpec(dict(PARAMS, env={"A": "1"}), "s").comparable(IMAGE, running)
    diff = masked_diff(running, wanted)
    grants = ("privileged", "cap_add", "cap_drop", "devices", "pid_mode", "userns_mode")
    assert not [k for k in grants if k in diff["before"] or k in diff["after"]]
    assert diff["before"]["ipc_mode"] == diff["after"]["ipc_mode"] == "shareable"   # the engine's, the same


def test_defaults_of_the_spec():
    spec = ContainerSpec(PARAMS, "s")
    assert (spec.privileged, spec.cap_add, spec.cap_drop, spec.devices) == (False, [], [], [])
    assert (spec.pid_mode, spec.ipc_mode, spec.userns_mode) == (None, None, None)
    assert not set(("privileged", "cap_add", "devices", "pid_mode", "ipc_mode")) & set(spec.comparable(IMAGE))


# -- normal forms ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["net_admin", "NET_ADMIN", "CAP_NET_ADMIN", "cap_net_admin", " Net_Admin "])
def test_a_capability_is_one_name_in_any_form(name):
    assert capability(name) == "CAP_NET_ADMIN"
    assert capability("all") == "ALL"


@pytest.mark.parametrize("device, expected", [
    ("/dev/null", ("/dev/null", "/dev/null", "rwm")),
    ("/dev/null:/dev/xnull", ("/dev/null", "/dev/xnull", "rwm")),
    ("/dev/null:r", ("/dev/null", "/dev/null", "r")),
    ("/dev/fuse:/dev/fuse:rw", ("/dev/fuse", "/dev/fuse", "rw")),
])
def test_device_forms(device, expected):
    assert parse_device(device) == expected


@pytest.mark.parametrize("device", ["dev/null", "/dev/null:xnull", "/dev/null:/dev/x:rwx", "/dev/a:/dev/b:r:w",
                                    "/dev/null:/dev/x:", "/dev/null:/dev/x:rr"])
def test_device_nonsense_is_refused(device):
    with pytest.raises(ClockworkError, match="invalid device"):
        parse_device(device)


def test_capabilities_compare_in_any_form_and_order():
    attrs = inspected(CapAdd=["CAP_CHOWN", "CAP_NET_ADMIN"], CapDrop=["ALL"])
    assert reasons(dict(PARAMS, cap_add=["NET_ADMIN", "chown"], cap_drop=["all"]), attrs) == []
    assert reasons(dict(PARAMS, cap_add=["chown", "CAP_NET_ADMIN", "net_admin"], cap_drop=["ALL"]), attrs) == []
    assert reasons(dict(PARAMS, cap_add=["chown"], cap_drop=["ALL"]), attrs) == ["cap_add"]
    assert reasons(dict(PARAMS, cap_add=["chown", "net_admin"]), attrs) == ["cap_drop"]


def test_devices_compare_as_the_engine_reports_them():
    attrs = inspected(Devices=[XNULL])
    assert reasons(dict(PARAMS, devices=["/dev/null:/dev/xnull"]), attrs) == []
    assert reasons(dict(PARAMS, devices=["/dev/null:/dev/xnull:rwm"]), attrs) == []
    assert reasons(dict(PARAMS, devices=["/dev/null:/dev/xnull:r"]), attrs) == ["devices"]
    assert reasons(PARAMS, attrs) == ["devices"]


def test_every_grant_that_changes_is_named():
    attrs = inspected(Privileged=True, CapAdd=["CAP_CHOWN", "CAP_NET_ADMIN"], CapDrop=["ALL"], PidMode="host",
                      IpcMode="host", UsernsMode="host",
                      Devices=[XNULL])
    assert reasons(GRANTED, attrs) == []
    assert reasons(PARAMS, attrs) == ["privileged", "cap_add", "cap_drop", "devices", "pid_mode", "ipc_mode",
                                      "userns_mode"]
    assert reasons(dict(GRANTED, privileged=False), attrs) == ["privileged"]
    assert reasons(GRANTED, inspected()) == ["privileged", "cap_add", "cap_drop", "devices", "pid_mode", "ipc_mode",
                                             "userns_mode"]


def test_privileged_false_to_true_recreates_and_the_diff_says_it():
    running = running_config(inspected())
    wanted = ContainerSpec(dict(PARAMS, privileged=True), "s").comparable(IMAGE, running)
    assert drift(wanted, running) == ["privileged"]
    diff = masked_diff(running, wanted)
    assert "privileged" not in diff["before"] and diff["after"]["privileged"] is True


def test_an_undeclared_ipc_mode_accepts_the_engine_default_but_not_a_grant():
    assert reasons(PARAMS, inspected(IpcMode="shareable")) == []
    assert reasons(PARAMS, inspected(IpcMode="host")) == ["ipc_mode"]   # a grant taken away recreates
    assert reasons(dict(PARAMS, ipc_mode="shareable"), inspected(IpcMode="private")) == ["ipc_mode"]
    assert reasons(dict(PARAMS, ipc_mode="private"), inspected(IpcMode="private")) == []


def test_a_pid_or_user_namespace_taken_away_recreates():
    assert reasons(PARAMS, inspected(PidMode="host")) == ["pid_mode"]
    assert reasons(PARAMS, inspected(UsernsMode="host")) == ["userns_mode"]
    assert reasons(dict(PARAMS, pid_mode="host"), inspected(PidMode="host")) == []


def test_a_recreate_for_a_connections_mount_keeps_the_grants():
    attrs = inspected(Privileged=True, CapAdd=["CAP_CHOWN"], PidMode="host", IpcMode="shareable",
                      Devices=[{"PathOnHost": "/dev/null", "PathInContainer": "/dev/null", "CgroupPermissions": "r"}])
    spec = spec_from_container(attrs, "s")
    assert (spec.privileged, spec.cap_add, spec.devices, spec.pid_mode) == (
        True, ["CAP_CHOWN"], ["/dev/null:/dev/null:r"], "host")
    assert spec.ipc_mode is None   # the engine's choice, left to the engine
    running = running_config(attrs)
    assert drift(spec.comparable(IMAGE, running), running) == []


# -- refused declarations ---------------------------------------------------------------------------

def test_the_plan_names_the_resource_and_the_field_of_an_invalid_grant():
    for field, given in (("devices", ["dev/null"]), ("cap_add", ["NET ADMIN"]), ("cap_drop", [""]),
                         ("pid_mode", "private"), ("ipc_mode", "hots"), ("userns_mode", "private")):
        with pytest.raises(ClockworkError) as caught:
            Plan("s", [dict(PARAMS, **{field: given})], [])
        assert "resource web" in caught.value.msg and field in caught.value.msg, caught.value.msg


def test_the_plan_takes_every_grant():
    spec = Plan("s", [GRANTED], []).specs["web"]
    assert spec.cap_add == ["CAP_CHOWN", "CAP_NET_ADMIN"] and spec.cap_drop == ["ALL"]
    assert spec.devices == ["/dev/null:/dev/xnull:rwm"] and spec.privileged is True
    assert Plan("s", [dict(PARAMS, pid_mode="container:db", ipc_mode="container:db")], []).specs["web"].pid_mode \
        == "container:db"


# -- Swarm -------------------------------------------------------------------------------------------

def test_swarm_refuses_the_grants_a_service_cannot_have_naming_each_field():
    resource = Plan("s", [GRANTED], [], engine="swarm").by_name["web"]
    problems = service_problems(resource)
    assert [field for field, _problem in problems] == ["privileged", "devices", "pid_mode", "ipc_mode", "userns_mode"]
    assert all("not on Swarm" in problem for _field, problem in problems)
    assert service_problems(Plan("s", [PARAMS], [], engine="swarm").by_name["web"]) == []
    assert service_problems(Plan("s", [dict(PARAMS, cap_add=["ALL"], cap_drop=["chown"])], [],
                                 engine="swarm").by_name["web"]) == []


def test_swarm_stack_refuses_them_before_it_asks_the_engine():
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.applier import SwarmApplier

    class NoEngine(object):
        def __getattr__(self, name):
            raise AssertionError("the engine was asked (%s) before the refusal" % name)

    with pytest.raises(ClockworkError) as caught:
        SwarmApplier(NoEngine(), {"name": "s", "resources": [dict(PARAMS, privileged=True)], "connections": []})
    assert "resource web" in caught.value.msg and "privileged: is not on Swarm" in caught.value.msg


def service(params):
    resource = Plan("s", [params], [], engine="swarm").by_name["web"]
    spec = ContainerSpec(resource, "s")
    return wanted_service(spec, resource, {}, [], [{"name": "s_default", "aliases": ["web"]}], [], [])


def test_swarm_capabilities_are_the_services_and_read_back_normalised():
    want = service(dict(PARAMS, cap_add=["net_bind_service"], cap_drop=["all"]))
    body = service_body("web", want)
    container = body["TaskTemplate"]["ContainerSpec"]
    assert container["CapabilityAdd"] == ["CAP_NET_BIND_SERVICE"] and container["CapabilityDrop"] == ["ALL"]
    stored = copy.deepcopy(body)
    stored["TaskTemplate"]["ContainerSpec"]["CapabilityAdd"] = ["NET_BIND_SERVICE"]   # however the engine keeps it
    assert changes(want, managed_part(stored, want, {})) == []
    fewer = service(dict(PARAMS, cap_drop=["all"]))
    assert changes(fewer, managed_part(stored, fewer, {})) == ["labels io.clockwork.spec-hash", "cap_add"]
    assert "CapabilityAdd" not in service_body("web", fewer, stored)["TaskTemplate"]["ContainerSpec"]


def test_a_service_without_capabilities_keeps_its_spec_hash():
    want = service(PARAMS)
    older = dict((k, v) for k, v in want.items() if k not in ("cap_add", "cap_drop"))   # before the fields existed
    assert spec_hash(older) == spec_hash(want) == want["labels"][SPEC_HASH_LABEL]
    body = service_body("web", want)
    assert "CapabilityAdd" not in body["TaskTemplate"]["ContainerSpec"]
    assert changes(want, managed_part(body, want, {})) == []


class _Gateway(object):
    def __init__(self, version):
        self.api_version = version


class _Stack(object):
    def __init__(self, version, params):
        self.engine = _Gateway(version)
        self.plan = Plan("s", [params], [], engine="swarm")
        self.check_mode = True


@pytest.mark.parametrize("version, refused", [("1.40", True), ("1.41", False), ("1.43", False)])
def test_an_engine_older_than_service_capabilities_is_refused(version, refused):
    preflight = SwarmPreflight(_Stack(version, dict(PARAMS, cap_add=["chown"])))
    preflight._capability_problems()
    assert bool(preflight.problems.items) is refused
    assert all(m.startswith("resource web: cap_add:") and "1.41" in m for m in preflight.problems.items)
    plain = SwarmPreflight(_Stack("1.40", PARAMS))
    plain._capability_problems()
    assert not plain.problems.items


# -- Compose ----------------------------------------------------------------------------------------

def test_to_compose_writes_the_compose_keys_and_from_compose_reads_them_back(tmp_path):
    stack = {"name": "g", "resources": [dict(GRANTED, cap_add=["net_admin"])], "connections": []}
    result = export(stack, base_dir=str(tmp_path))
    web = yaml.safe_load(result["text"])["services"]["web"]
    assert web["privileged"] is True and web["cap_add"] == ["net_admin"] and web["cap_drop"] == ["all"]
    assert web["devices"] == ["/dev/null:/dev/xnull"]
    assert (web["pid"], web["ipc"], web["userns_mode"]) == ("host", "host", "host")
    (tmp_path / "compose.yaml").write_text(result["text"])
    back = from_compose(result["text"], base_dir=str(tmp_path),
                        allow=["privileged", "capabilities", "host_namespaces", "devices"])
    assert back["resources"] == stack["resources"]


def test_to_compose_without_grants_writes_none():
    web = yaml.safe_load(export({"name": "g", "resources": [PARAMS], "connections": []},
                                base_dir=os.getcwd())["text"])["services"]["web"]
    assert not set(("privileged", "cap_add", "cap_drop", "devices", "pid", "ipc", "userns_mode")) & set(web)


def test_to_compose_for_swarm_keeps_capabilities_and_refuses_the_rest():
    caps = {"name": "g", "resources": [dict(PARAMS, cap_add=["chown"])], "connections": []}
    assert yaml.safe_load(export(caps, engine="swarm")["text"])["services"]["web"]["cap_add"] == ["chown"]
    with pytest.raises(ExportError) as caught:
        export({"name": "g", "resources": [dict(PARAMS, privileged=True, pid_mode="host")], "connections": []},
               engine="swarm")
    assert "resource web: privileged, pid_mode: not on Swarm" in str(caught.value)
