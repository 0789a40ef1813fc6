"""Grants of the host on a real engine: capabilities dropped and added, the host's PID namespace, a
device at another path, the IPC namespace, and privileged false -> true, each made as declared,
read back without drift (capabilities in another form), and recreated, named, when it changes;
through the container module and the stack module; on Swarm, capabilities as the service's and the
other grants refused before any change."""
import json

import pytest

from helpers import NGINX_IMAGE, as_text, docker, engine_state, inspect, playbook
from test_swarm import remove_swarm_stack, swarm_mode, swarm_objects, task_container

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import open_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.stack import STACK_ARGUMENT_SPEC, run_stack

# A process that stops at once on SIGTERM and on SIGQUIT, the nginx image's stop signal (as PID 1 a
# plain `sleep` would ignore both, and each replacement would wait for Docker's 10 s stop timeout).
IDLE = ["sh", "-c", "trap 'exit 0' TERM QUIT; while true; do sleep 0.2; done"]
# CapEff of a root process that has CAP_CHOWN (bit 0) and CAP_NET_BIND_SERVICE (bit 10) only.
CHOWN_AND_BIND = "0000000000000401"


def task(stack, **overrides):
    args = dict(name=stack + "-box", image=NGINX_IMAGE, stack=stack, command=IDLE,
                cap_drop=["ALL"], cap_add=["NET_BIND_SERVICE", "CHOWN"], pid_mode="host",
                devices=["/dev/null:/dev/xnull"], privileged=False)
    args.update(overrides)
    return {"name": "box", "clockwork.connections.container": args, "register": "box"}


def stack_state(stack):
    """engine_state, of this stack's objects only: other sessions share the engine meanwhile."""
    return dict((kind, [line for line in lines if stack in line]) for kind, lines in engine_state().items())


def cap_eff(name):
    status = docker("exec", name, "cat", "/proc/self/status")
    return [line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")][0]


def test_grants_check_apply_idempotent_check(stack):
    name = stack + "-box"
    before = stack_state(stack)
    first_check = playbook([task(stack)], check=True, diff=True)
    assert first_check.rc == 0, first_check.output
    assert first_check.result("box")["changed"] is True, first_check.details
    assert first_check.result("box")["actions"] == ["create", "start"], first_check.details
    assert stack_state(stack) == before, "check mode changed Docker's state"

    applied = playbook([task(stack)])
    assert applied.rc == 0, applied.output
    assert applied.result("box")["changed"] is True, applied.details
    host = inspect("container", name)["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert sorted(c.upper().replace("CAP_", "") for c in host["CapAdd"]) == ["CHOWN", "NET_BIND_SERVICE"]
    assert host["PidMode"] == "host"
    assert host["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rwm"}]
    assert host["Privileged"] is False
    # What the process inside has: only the two capabilities, the device, the host's processes.
    assert cap_eff(name) == CHOWN_AND_BIND
    docker("exec", name, "test", "-c", "/dev/xnull")
    assert docker("exec", name, "cat", "/proc/1/comm") != "sh", "PID 1 is the container's own: not the host's namespace"
    container_id = inspect("container", name)["Id"]

    # The same grants in other forms and another order: the same configuration.
    same = task(stack, cap_add=["cap_chown", "net_bind_service"], cap_drop=["all"],
                devices=["/dev/null:/dev/xnull:rwm"])
    again = playbook([same])
    assert again.rc == 0, again.output
    assert again.result("box")["changed"] is False, again.details
    assert inspect("container", name)["Id"] == container_id

    last_check = playbook([task(stack)], check=True, diff=True)
    assert last_check.rc == 0, last_check.output
    assert last_check.result("box")["changed"] is False, last_check.details


def test_privileged_false_to_true_recreates_naming_it(stack):
    """This machine's engine cannot start a privileged container (its own bounding set lacks
    CAP_SYS_RESOURCE: runc fails "unable to apply caps"), so the container is made, not started
    (state present): what the engine was asked for is what inspect shows."""
    name = stack + "-box"
    plain = task(stack, cap_drop=[], cap_add=[], pid_mode=None, devices=[], state="present")
    _run = playbook([plain])
    assert _run.rc == 0, _run.output
    old_id = inspect("container", name)["Id"]
    assert inspect("container", name)["HostConfig"]["Privileged"] is False

    privileged = task(stack, cap_drop=[], cap_add=[], pid_mode=None, devices=[], privileged=True, state="present")
    check = playbook([privileged], check=True, diff=True)
    assert check.rc == 0, check.output
    assert check.result("box")["changed"] is True, check.details
    assert check.result("box")["actions"] == ["recreate"], check.details
    assert check.result("box")["reasons"] == ["privileged"], check.details
    assert '+    "privileged": true' in check.output, check.output
    assert inspect("container", name)["Id"] == old_id, "check mode recreated the container"

    applied = playbook([privileged], diff=True)
    assert applied.rc == 0, applied.output
    assert applied.result("box")["changed"] is True, applied.details
    assert applied.result("box")["reasons"] == ["privileged"], applied.details
    assert '+    "privileged": true' in applied.output, applied.output
    attrs = inspect("container", name)
    assert attrs["Id"] != old_id and attrs["HostConfig"]["Privileged"] is True

    again = playbook([privileged])
    assert again.rc == 0 and again.result("box")["changed"] is False, again.output
    last_check = playbook([privileged], check=True, diff=True)
    assert last_check.rc == 0 and last_check.result("box")["changed"] is False, last_check.output

    # Taking the grant away recreates too.
    back = playbook([plain], diff=True)
    assert back.rc == 0, back.output
    assert back.result("box")["reasons"] == ["privileged"], back.details
    assert '-    "privileged": true' in back.output, back.output
    assert inspect("container", name)["HostConfig"]["Privileged"] is False


def test_ipc_mode_is_compared_only_when_declared(stack):
    name = stack + "-box"
    plain = task(stack, cap_drop=[], cap_add=[], pid_mode=None, devices=[])
    _run = playbook([plain])
    assert _run.rc == 0, _run.output
    engine_default = inspect("container", name)["HostConfig"]["IpcMode"]
    assert engine_default in ("private", "shareable")
    old_id = inspect("container", name)["Id"]
    _run = playbook([plain])
    assert _run.result("box")["changed"] is False, _run.details   # the engine's choice is no drift

    shared = task(stack, cap_drop=[], cap_add=[], pid_mode=None, devices=[], ipc_mode="host")
    check = playbook([shared], check=True)
    assert check.result("box")["changed"] is True and check.result("box")["reasons"] == ["ipc_mode"], check.details
    applied = playbook([shared])
    assert applied.rc == 0, applied.output
    assert inspect("container", name)["HostConfig"]["IpcMode"] == "host"
    assert inspect("container", name)["Id"] != old_id
    _run = playbook([shared])
    assert _run.result("box")["changed"] is False, _run.details
    _run = playbook([shared], check=True)
    assert _run.result("box")["changed"] is False, _run.details

    dropped = playbook([plain])
    assert dropped.result("box")["reasons"] == ["ipc_mode"], dropped.output
    assert inspect("container", name)["HostConfig"]["IpcMode"] in ("private", "shareable")


def test_the_stack_module_takes_the_grants(stack):
    name = stack + "-box"
    resource = dict(name=name, image=NGINX_IMAGE, command=IDLE, cap_drop=["ALL"], cap_add=["chown"],
                    userns_mode="host", devices=["/dev/null:/dev/xnull:r"])
    stack_task = {"name": "stack", "register": "result",
                  "clockwork.connections.stack": {"name": stack, "resources": [resource], "connections": []}}
    before = stack_state(stack)
    check = playbook([stack_task], check=True)
    assert check.rc == 0 and check.result("stack")["changed"] is True, check.output
    assert stack_state(stack) == before, "check mode changed Docker's state"
    run = playbook([stack_task])
    assert run.rc == 0 and run.result("stack")["changed"] is True, run.output
    host = inspect("container", name)["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and [c.upper().replace("CAP_", "") for c in host["CapAdd"]] == ["CHOWN"]
    assert host["UsernsMode"] == "host"
    assert host["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "r"}]
    assert cap_eff(name) == "0000000000000001"
    again = playbook([stack_task])
    assert again.rc == 0 and again.result("stack")["changed"] is False, json.dumps(again.result("stack"))
    _run = playbook([stack_task], check=True)
    assert _run.result("stack")["changed"] is False, _run.details


def test_an_invalid_grant_is_refused_before_any_change(stack):
    name = stack + "-box"
    run = playbook([task(stack, devices=["dev/null"])])
    assert run.rc != 0, run.output
    msg = run.result("box")["msg"]
    assert "devices" in msg and "dev/null" in msg and name in msg, msg
    assert "Traceback" not in run.output, run.output
    assert inspect("container", name) is None


def swarm_run(stack, resource, tmp_path, check=False):
    """The stack module's in-process path, engine swarm (as test_swarm's converge)."""
    result = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(dict(
        name=stack, resources=[resource], connections=[], engine="swarm", base_dir=str(tmp_path)))
    assert not result.error_messages
    return run_stack(open_gateway(check), result.validated_parameters, diff=True)


def test_swarm_gives_a_service_capabilities_and_refuses_the_other_grants(stack, tmp_path):
    name = stack + "-box"
    resource = dict(name=name, image=NGINX_IMAGE, command=IDLE, cap_drop=["ALL"], cap_add=["chown"],
                    endpoint_mode="dnsrr", timeout=60)
    with swarm_mode():
        try:
            with pytest.raises(ClockworkError) as refused:
                swarm_run(stack, dict(resource, privileged=True, pid_mode="host"), tmp_path)
            message = refused.value.msg
            assert "resource %s: privileged: is not on Swarm" % name in message, message
            assert "resource %s: pid_mode: is not on Swarm" % name in message, message
            assert swarm_objects(stack)["services"] == [] and inspect("network", stack + "_default") is None

            dry = swarm_run(stack, resource, tmp_path, check=True)
            assert dry["changed"] is True, as_text(dry)
            assert swarm_objects(stack)["services"] == []

            applied = swarm_run(stack, resource, tmp_path)
            assert applied["changed"] is True, as_text(applied)
            spec = inspect("service", name)["Spec"]["TaskTemplate"]["ContainerSpec"]
            assert spec["CapabilityAdd"] == ["CAP_CHOWN"] and spec["CapabilityDrop"] == ["ALL"]
            task = task_container(name)
            host = inspect("container", task)["HostConfig"]
            assert host["CapAdd"] == ["CAP_CHOWN"] and host["CapDrop"] == ["ALL"]
            assert cap_eff(task) == "0000000000000001"

            same = swarm_run(stack, dict(resource, cap_add=["CAP_CHOWN"], cap_drop=["all"]), tmp_path)
            assert same["changed"] is False, as_text(same)
            rechecked = swarm_run(stack, resource, tmp_path, check=True)
            assert rechecked["changed"] is False, as_text(rechecked)

            more = swarm_run(stack, dict(resource, cap_add=["chown", "net_bind_service"]), tmp_path, check=True)
            service = [e for e in more["entries"] if e["kind"] == "service"][0]
            assert service["actions"] == ["update"] and "cap_add" in service["reasons"], as_text(service)
        finally:
            remove_swarm_stack(stack)
