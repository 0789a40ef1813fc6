"""The option table on a real engine: a stack's container with many of the table's options (user,
working dir, entrypoint, names, hosts and DNS, a read-only root with tmpfs, capabilities, security
options, shm, ulimits, sysctls, init, stop signal and grace, logging, memory and CPU limits, pids,
OOM score, groups, an anonymous volume and a tmpfs mount) is made as declared, as `docker inspect`
shows; rerun and checked it is unchanged; a few options changed recreate it naming each, keeping
its anonymous volume; and the memory engine reads the same container back as the live one does."""
import json

import pytest

from helpers import NGINX_IMAGE, as_text, docker, engine_state, inspect, playbook
from test_swarm import remove_swarm_stack, swarm_mode, swarm_objects, task_container

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import (
    ContainerSpec, create_body, running_config)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import open_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import memory_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.stack import STACK_ARGUMENT_SPEC, run_stack

# A process that stops on SIGINT or SIGTERM at once.
SCRIPT = "trap 'exit 0' INT TERM; while true; do sleep 0.2; done"


def resource(stack, **changes):
    fields = dict(
        name=stack + "-box", image=NGINX_IMAGE, entrypoint=["/bin/sh", "-c"], command=[SCRIPT],
        user="1000:1000", working_dir="/srv", hostname="optbox", domainname="example.test",
        extra_hosts={"db.example.test": "10.1.2.3"}, dns=["10.0.0.53"], dns_search=["example.test"],
        dns_opt=["ndots:2"], cap_drop=["ALL"], cap_add=["chown"], read_only=True,
        security_opt=["no-new-privileges:true"], tmpfs=["/run:size=8m", "/tmp"], shm_size="128m",
        ulimits={"nofile": {"soft": 1024, "hard": 2048}}, sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
        init=True, stop_signal="int", stop_grace_period="5s",
        logging={"driver": "json-file", "options": {"max-size": "1m"}}, mem_limit="64m", mem_reservation="32m",
        cpus=0.5, cpu_shares=512, pids_limit=64, oom_score_adj=100, group_add=["29"],
        mac_address="02:42:ac:11:00:42", pull_policy="never",
        mounts=[{"target": "/cache"}, {"type": "tmpfs", "target": "/scratch", "tmpfs_size": "1m"}])
    fields.update(changes)
    return fields


def stack_task(stack, **changes):
    return {"name": "stack", "register": "result",
            "clockwork.connections.stack": {"name": stack, "resources": [resource(stack, **changes)], "connections": []}}


def stack_state(stack):
    return dict((kind, [line for line in lines if stack in line]) for kind, lines in engine_state().items())


def entry(run, name):
    return [e for e in run.result("stack")["entries"] if e["kind"] == "container" and e["name"] == name][0]


def cache_volume(name):
    return [m["Name"] for m in inspect("container", name)["Mounts"] if m["Destination"] == "/cache"]


def test_a_container_with_the_tables_options(stack):
    name = stack + "-box"
    before = stack_state(stack)
    check = playbook([stack_task(stack)], check=True, diff=True)
    assert check.rc == 0 and check.result("stack")["changed"] is True, check.output
    assert stack_state(stack) == before, "check mode changed Docker's state"

    applied = playbook([stack_task(stack)], diff=True)
    assert applied.rc == 0 and applied.result("stack")["changed"] is True, applied.output
    attrs = inspect("container", name)
    config, host = attrs["Config"], attrs["HostConfig"]
    assert attrs["State"]["Running"] is True, attrs["State"]
    assert (config["User"], config["WorkingDir"], config["Entrypoint"], config["Cmd"]) == (
        "1000:1000", "/srv", ["/bin/sh", "-c"], [SCRIPT])
    assert (config["Hostname"], config["Domainname"], config["StopSignal"], config["StopTimeout"]) == (
        "optbox", "example.test", "SIGINT", 5)
    assert config["MacAddress"] == "02:42:ac:11:00:42"
    assert host["ExtraHosts"] == ["db.example.test:10.1.2.3"]
    assert (host["Dns"], host["DnsSearch"], host["DnsOptions"]) == (["10.0.0.53"], ["example.test"], ["ndots:2"])
    assert host["CapDrop"] == ["ALL"] and [c.upper().replace("CAP_", "") for c in host["CapAdd"]] == ["CHOWN"]
    assert host["ReadonlyRootfs"] is True and host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Tmpfs"] == {"/run": "size=8m", "/tmp": ""}
    assert host["ShmSize"] == 128 * 1024 ** 2
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["Sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "0"}
    assert host["Init"] is True
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert (host["Memory"], host["MemoryReservation"], host["NanoCpus"], host["CpuShares"]) == (
        64 * 1024 ** 2, 32 * 1024 ** 2, 5 * 10 ** 8, 512)
    assert (host["PidsLimit"], host["OomScoreAdj"], host["GroupAdd"]) == (64, 100, ["29"])
    mounts = dict((m["Destination"], m) for m in attrs["Mounts"])
    assert mounts["/cache"]["Type"] == "volume" and len(mounts["/cache"]["Name"]) == 64   # anonymous
    assert mounts["/scratch"]["Type"] == "tmpfs"
    # What the process has: its user and groups, the read-only root, the tmpfs, its hosts line.
    assert docker("exec", name, "id", "-u").strip() == "1000"
    assert "29" in docker("exec", name, "id", "-G").split()
    assert "Read-only file system" in docker("exec", name, "sh", "-c", "touch /root-file 2>&1; true")
    assert docker("exec", name, "sh", "-c", "touch /tmp/x /scratch/x && echo written") == "written"
    assert "10.1.2.3\tdb.example.test" in docker("exec", name, "cat", "/etc/hosts")
    assert docker("exec", name, "hostname").strip() == "optbox"
    volume = cache_volume(name)
    docker("exec", "-u", "0", name, "sh", "-c", "echo kept > /cache/mark")   # data the recreate below keeps

    again = playbook([stack_task(stack)])
    assert again.rc == 0 and again.result("stack")["changed"] is False, json.dumps(entry(again, name))
    check_again = playbook([stack_task(stack)], check=True)
    assert check_again.rc == 0 and check_again.result("stack")["changed"] is False, check_again.details

    # A few options changed: each named, the anonymous volume kept.
    changes = dict(user="1001", mem_limit="96m", read_only=False, hostname="optbox2", ulimits={"nofile": 4096})
    changed_check = playbook([stack_task(stack, **changes)], check=True, diff=True)
    assert changed_check.rc == 0 and entry(changed_check, name)["reasons"] == [
        "hostname", "read_only", "user", "mem_limit", "ulimits"], changed_check.details
    changed = playbook([stack_task(stack, **changes)], diff=True)
    assert changed.rc == 0, changed.output
    assert entry(changed, name)["reasons"] == ["hostname", "read_only", "user", "mem_limit", "ulimits"], \
        changed.details
    for field in ("hostname", "read_only", "user", "mem_limit", "ulimits"):
        assert '"%s"' % field in changed.output, changed.output   # the --diff shows each
    attrs = inspect("container", name)
    assert (attrs["Config"]["User"], attrs["Config"]["Hostname"], attrs["HostConfig"]["Memory"]) == (
        "1001", "optbox2", 96 * 1024 ** 2)
    assert attrs["HostConfig"]["ReadonlyRootfs"] is False
    assert attrs["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Soft": 4096, "Hard": 4096}]
    assert cache_volume(name) == volume, "the recreate kept the anonymous volume"
    assert docker("exec", name, "cat", "/cache/mark") == "kept"
    rerun = playbook([stack_task(stack, **changes)])
    assert rerun.rc == 0 and rerun.result("stack")["changed"] is False, json.dumps(entry(rerun, name))
    last_check = playbook([stack_task(stack, **changes)], check=True)
    assert last_check.rc == 0 and last_check.result("stack")["changed"] is False, last_check.details


def test_the_memory_engine_reads_the_options_back_as_the_live_one(stack):
    """One create call from the table, on the live engine and on the memory engine: the table's
    normal forms of both inspects are equal, option by option."""
    declared = dict(resource(stack), name=stack + "-parity", state="present", mounts=[{"target": "/cache"}])
    for key, value in dict(ports=[], env={}, labels={}, networks=[], privileged=False, devices=[],
                           restart_policy="no").items():
        declared.setdefault(key, value)
    declared["labels"] = {"io.clockwork.stack": stack}
    spec = ContainerSpec(declared, stack)
    live = DockerGateway()
    memory = memory_gateway(images={NGINX_IMAGE: inspect("image", NGINX_IMAGE)["Config"]})
    seen = {}
    for key, gw in (("live", live), ("memory", memory)):
        body = create_body(spec)
        gw.create_container(spec.name, spec.image, host_config=body.host, **body.config)
        try:
            seen[key] = running_config(gw.container_now(spec.name))
        finally:
            gw.remove_container(spec.name, force=True, volumes=True)
    seen["live"].pop("image"), seen["memory"].pop("image")
    assert seen["live"] == seen["memory"], json.dumps(seen, indent=1, sort_keys=True)


def swarm_run(stack, resource, tmp_path, check=False):
    """The stack module's in-process path, engine swarm (as test_swarm's converge)."""
    result = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(dict(
        name=stack, resources=[resource], connections=[], engine="swarm", base_dir=str(tmp_path)))
    assert not result.error_messages, result.error_messages
    return run_stack(open_gateway(check), result.validated_parameters, diff=True)


def test_a_service_with_the_tables_options(stack, tmp_path):
    """On Swarm the options a service has are its fields (the task's container gets them: tmpfs paths as
    tmpfs mounts, the platform as the placement's); the others are refused, naming each, before any change;
    a change updates the service naming it, rerun unchanged."""
    name = stack + "-svc"
    resource = dict(name=name, image=NGINX_IMAGE, entrypoint=["/bin/sh", "-c"], command=[SCRIPT], endpoint_mode="dnsrr",
                    user="1000:1000", working_dir="/srv", hostname="optsvc", extra_hosts=["db.example.test:10.1.2.3"],
                    dns=["10.0.0.53"], read_only=True, init=True, stop_signal="SIGINT", group_add=["29"],
                    ulimits={"nofile": {"soft": 1024, "hard": 2048}}, sysctls={"net.ipv4.ip_unprivileged_port_start": "0"},
                    logging={"driver": "json-file", "options": {"max-size": "1m"}}, mem_limit="64m", cpus=0.5,
                    pids_limit=64, mem_reservation="32m", tmpfs=["/run:size=8m", "/tmp"], platform="linux/amd64",
                    security_opt=["label=level:s0:c100,c200"], timeout=60)
    with swarm_mode():
        try:
            with pytest.raises(ClockworkError) as refused:
                swarm_run(stack, dict(resource, shm_size="1g", domainname="example.test"), tmp_path)
            for field in ("shm_size", "domainname"):
                assert "resource %s: %s: is not on Swarm" % (name, field) in refused.value.msg, refused.value.msg
            assert swarm_objects(stack)["services"] == []

            dry = swarm_run(stack, resource, tmp_path, check=True)
            assert dry["changed"] is True and swarm_objects(stack)["services"] == [], as_text(dry)
            applied = swarm_run(stack, resource, tmp_path)
            assert applied["changed"] is True, as_text(applied)
            attrs = inspect("container", task_container(name))
            config, host = attrs["Config"], attrs["HostConfig"]
            assert (config["User"], config["WorkingDir"], config["Hostname"], config["StopSignal"]) == (
                "1000:1000", "/srv", "optsvc", "SIGINT")
            assert config["Entrypoint"] == ["/bin/sh", "-c"] and config["Cmd"] == [SCRIPT]
            assert "10.1.2.3\tdb.example.test" in docker("exec", task_container(name), "cat", "/etc/hosts")
            assert host["Dns"] == ["10.0.0.53"] and host["ReadonlyRootfs"] is True and host["Init"] is True
            assert host["GroupAdd"] == ["29"] and host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
            assert host["Sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "0"}
            assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
            assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (64 * 1024 ** 2, 5 * 10 ** 8, 64)
            # A reservation is the scheduler's: on the service, not on its task's container.
            resources = inspect("service", name)["Spec"]["TaskTemplate"]["Resources"]
            assert resources["Reservations"] == {"MemoryBytes": 32 * 1024 ** 2}, resources
            # The tmpfs paths are the service's tmpfs mounts; the platform, where its tasks may run.
            mounts = dict((m["Destination"], m) for m in attrs["Mounts"])
            assert mounts["/run"]["Type"] == "tmpfs" and mounts["/tmp"]["Type"] == "tmpfs", attrs["Mounts"]
            assert "size=8192k" in docker("exec", task_container(name), "sh", "-c", "grep ' /run ' /proc/mounts")
            assert docker("exec", task_container(name), "sh", "-c", "touch /tmp/x && echo written") == "written"
            placement = inspect("service", name)["Spec"]["TaskTemplate"]["Placement"]
            assert placement["Platforms"] == [{"OS": "linux", "Architecture": "amd64"}], placement
            # An SELinux label is the service's privileges, and the task's security option.
            assert host["SecurityOpt"] == ["label=level:s0:c100,c200"], host["SecurityOpt"]

            same = swarm_run(stack, resource, tmp_path)
            assert same["changed"] is False, as_text(same)
            rechecked = swarm_run(stack, resource, tmp_path, check=True)
            assert rechecked["changed"] is False, as_text(rechecked)

            changed = dict(resource, user="1001", mem_limit="96m", tmpfs=["/run:size=16m", "/tmp"])
            more = swarm_run(stack, changed, tmp_path, check=True)
            entry = [e for e in more["entries"] if e["kind"] == "service"][0]
            assert entry["actions"] == ["update"] and "user" in entry["reasons"] and "mem_limit" in entry["reasons"], \
                as_text(entry)
            assert "mounts" in entry["reasons"], as_text(entry)
            updated = swarm_run(stack, changed, tmp_path)
            assert updated["changed"] is True, as_text(updated)
            assert "size=16384k" in docker("exec", task_container(name), "sh", "-c", "grep ' /run ' /proc/mounts")
            again = swarm_run(stack, changed, tmp_path)
            assert again["changed"] is False, as_text(again)
            again = swarm_run(stack, changed, tmp_path, check=True)
            assert again["changed"] is False, as_text(again)
        finally:
            remove_swarm_stack(stack)


def test_a_container_modules_addresses_propagation_and_tmpfs_mount(stack, tmp_path):
    """The container module: a fixed address on a network with a subnet, the network of the higher priority
    joined at creation, a bind mount's propagation, a tmpfs mount's size; check -> apply -> idempotent ->
    check."""
    name = stack + "-net"
    fixed, other = stack + "_fixed", stack + "_other"
    docker("network", "create", "--subnet", "10.231.77.0/24", "--label", "io.clockwork.stack=" + stack, fixed)
    docker("network", "create", "--label", "io.clockwork.stack=" + stack, other)
    task = {"name": "box", "register": "box", "clockwork.connections.container": dict(
        name=name, image=NGINX_IMAGE, stack=stack, entrypoint=["/bin/sh", "-c"], command=[SCRIPT],
        networks=[{"name": other, "aliases": ["o"]}, {"name": fixed, "ipv4_address": "10.231.77.42", "priority": 5}],
        mounts=[{"type": "bind", "source": str(tmp_path), "target": "/shared", "propagation": "rprivate"},
                {"type": "tmpfs", "target": "/scratch", "tmpfs_size": "2m", "tmpfs_mode": "1777"}])}
    check = playbook([task], check=True)
    assert check.rc == 0 and check.result("box")["actions"] == ["create", "start"], check.details
    assert inspect("container", name) is None, "check mode made the container"
    applied = playbook([task])
    assert applied.rc == 0 and applied.result("box")["changed"] is True, applied.details
    attrs = inspect("container", name)
    assert attrs["HostConfig"]["NetworkMode"] == fixed, "the network of the higher priority first"
    point = attrs["NetworkSettings"]["Networks"][fixed]
    assert point["IPAddress"] == "10.231.77.42" and point["IPAMConfig"]["IPv4Address"] == "10.231.77.42", point
    assert "o" in attrs["NetworkSettings"]["Networks"][other]["Aliases"]
    mounts = dict((m["Destination"], m) for m in attrs["Mounts"])
    assert mounts["/shared"]["Propagation"] == "rprivate" and mounts["/scratch"]["Type"] == "tmpfs"
    assert "size=2048k" in docker("exec", name, "sh", "-c", "grep ' /scratch ' /proc/mounts")
    again = playbook([task])
    assert again.rc == 0 and again.result("box")["changed"] is False, again.details
    last = playbook([task], check=True)
    assert last.rc == 0 and last.result("box")["changed"] is False, last.details


def test_cpus_and_the_pids_limit_change_in_place_naming_each(stack):
    """A stack's container: cpus and pids_limit changed are a `docker update` (the gateway sends NanoCpus and
    PidsLimit, which the SDK's update lacks), the same container running on, each field in --diff; a pids
    limit taken away is in place too; cpus taken away recreates. check -> apply -> rerun -> check each time."""
    name = stack + "-box"
    small = dict(user=None, read_only=False, tmpfs=None, mounts=[], cap_drop=[], cap_add=[], mem_limit=None,
                 mem_reservation=None, cpus=0.5, pids_limit=64)

    def converged(changes, expect):
        task = stack_task(stack, **dict(small, **changes))
        check = playbook([task], check=True, diff=True)
        assert check.rc == 0 and check.result("stack")["changed"] is expect, check.details
        before = inspect("container", name)
        applied = playbook([task], diff=True)
        assert applied.rc == 0 and applied.result("stack")["changed"] is expect, applied.output
        rerun = playbook([task])
        assert rerun.rc == 0 and rerun.result("stack")["changed"] is False, json.dumps(entry(rerun, name))
        last = playbook([task], check=True)
        assert last.rc == 0 and last.result("stack")["changed"] is False, last.details
        return before, check, applied, inspect("container", name)

    _none, _check, made, first = converged({}, True)
    assert (first["HostConfig"]["NanoCpus"], first["HostConfig"]["PidsLimit"]) == (5 * 10 ** 8, 64), made.details

    before, check, applied, after = converged(dict(cpus=1.5, pids_limit=100), True)
    for run in (check, applied):
        assert entry(run, name)["actions"] == ["update"] and entry(run, name)["reasons"] == ["cpus", "pids_limit"], \
            run.details
    for field in ("cpus", "pids_limit"):
        assert '"%s"' % field in applied.output, applied.output   # the --diff shows each
    assert after["Id"] == before["Id"] and after["State"]["StartedAt"] == before["State"]["StartedAt"], applied.details
    assert (after["HostConfig"]["NanoCpus"], after["HostConfig"]["PidsLimit"]) == (15 * 10 ** 8, 100), applied.details

    before, _check, applied, after = converged(dict(cpus=1.5, pids_limit=None), True)
    assert entry(applied, name)["actions"] == ["update"] and entry(applied, name)["reasons"] == ["pids_limit"], \
        applied.details
    assert after["Id"] == before["Id"] and not after["HostConfig"]["PidsLimit"], applied.details

    before, _check, applied, after = converged(dict(cpus=None, pids_limit=None), True)
    assert entry(applied, name)["actions"][0] in ("recreate", "replace start-first"), applied.details
    assert entry(applied, name)["reasons"] == ["cpus"], applied.details
    assert after["Id"] != before["Id"] and after["HostConfig"]["NanoCpus"] == 0, applied.details


class UpdatingGateway(DockerGateway):
    """The live gateway with `docker update` (apply/container.py uses it when the gateway has it)."""

    def update_container(self, container, **resources):
        self.api.update_container(container, **resources)
        self._wrote("update container %s" % container, ("container", container))


def test_a_memory_limit_and_the_restart_policy_change_in_place_on_the_engine(stack):
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import ContainerConverger
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import CONTAINER_ARGS

    def declared(**fields):
        result = ArgumentSpecValidator(CONTAINER_ARGS).validate(dict(
            dict(name=stack + "-upd", image=NGINX_IMAGE, entrypoint=["/bin/sh", "-c"], command=[SCRIPT]), **fields))
        assert not result.error_messages, result.error_messages
        return ContainerSpec(result.validated_parameters, stack)

    gw = UpdatingGateway()
    made = ContainerConverger(gw).converge(declared(mem_limit="64m", restart_policy="always"))
    assert made["actions"] == ["create", "start"], as_text(made)
    first = inspect("container", stack + "-upd")
    outcome = ContainerConverger(UpdatingGateway()).converge(declared(mem_limit="256m", cpu_shares=512,
                                                                      restart_policy="unless-stopped"))
    assert outcome["actions"] == ["update"], as_text(outcome)
    attrs = inspect("container", stack + "-upd")
    assert attrs["Id"] == first["Id"] and attrs["State"]["StartedAt"] == first["State"]["StartedAt"]
    assert (attrs["HostConfig"]["Memory"], attrs["HostConfig"]["CpuShares"], attrs["HostConfig"]["RestartPolicy"]["Name"]) \
        == (256 * 1024 ** 2, 512, "unless-stopped")
    again = ContainerConverger(UpdatingGateway()).converge(declared(mem_limit="256m", cpu_shares=512,
                                                                    restart_policy="unless-stopped"))
    assert again["changed"] is False, as_text(again)
