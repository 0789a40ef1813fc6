"""Concurrent runs on a real engine: the per-stack lock serialises them, creation tolerates
what a concurrent run made, and a stack wedged by duplicate networks is repaired."""
import os
import subprocess
import sys
import threading
import time

import docker as docker_sdk
import pytest

from helpers import NGINX_IMAGE, docker, engine_state, inspect, playbook

from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.apply.lock import (
    LOCK_LABEL, OWNER_LABEL, PROCESS_LABEL, SINCE_LABEL, STALE_AFTER, StackLock, lock_name, process_id)


def stack_task(stack, **extra):
    web, cache, worker = stack + "-web", stack + "-cache", stack + "-worker"
    resources = [{"name": n, "image": NGINX_IMAGE} for n in (web, cache, worker)]
    connections = [{"type": "network", "from": web, "to": cache, "network_name": stack + "-backend"},
                   {"type": "dependency", "from": worker, "to": web}]
    args = dict(name=stack, resources=resources, connections=connections)
    args.update(extra)
    return {"name": "stack", "clockwork.connections.stack": args, "register": "result"}


def at_once(*calls):
    """Start every call at the same moment; their results, in order."""
    results = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index, call):
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def names(kind, stack):
    """Names of the stack's containers or networks as the engine lists them (duplicates included)."""
    fmt = "{{.Names}}" if kind == "container" else "{{.Name}}"
    listing = ["ps", "-a"] if kind == "container" else ["network", "ls"]
    return sorted(docker(*(listing + ["--filter", "label=io.clockwork.stack=%s" % stack, "--format", fmt])).split())


def assert_converged(stack):
    assert names("container", stack) == sorted([stack + "-cache", stack + "-web", stack + "-worker"])
    assert names("network", stack) == sorted([stack + "-backend", stack + "_default"])
    for name in ("web", "cache", "worker"):
        assert inspect("container", "%s-%s" % (stack, name))["State"]["Running"]
    web_networks = inspect("container", stack + "-web")["NetworkSettings"]["Networks"]
    assert sorted(web_networks) == sorted([stack + "-backend", stack + "_default"])
    assert docker("ps", "-aq", "--filter", "name=^/%s$" % lock_name(stack)) == "", "the lock was left behind"


def hold_lock(stack, process, since):
    """A lock container as another run would have made it."""
    api = docker_sdk.from_env().api
    image = api.images()[0]["Id"]
    labels = {LOCK_LABEL: stack, OWNER_LABEL: "elsewhere:4242", SINCE_LABEL: "%d" % since, PROCESS_LABEL: process}
    return api.create_container(image, command=["clockwork-lock"], name=lock_name(stack), labels=labels,
                                host_config=api.create_host_config(network_mode="none"))["Id"]


@pytest.fixture
def lock_cleanup(stack):
    yield
    docker("rm", "-fv", lock_name(stack), check=False)


@pytest.mark.parametrize("in_process", ["auto", "never"])
def test_two_deploys_at_once_end_converged(stack, in_process):
    env = {"CLOCKWORK_STACK_IN_PROCESS": in_process}
    first, second = at_once(lambda: playbook([stack_task(stack)], env=env),
                            lambda: playbook([stack_task(stack)], env=env))
    for run in (first, second):
        assert run.rc == 0, run.output
        assert "Traceback" not in run.output, run.output
    assert_converged(stack)
    # Serialised: one made the stack, the other (which says how long it waited) found it made.
    assert sorted(r.result("stack")["changed"] for r in (first, second)) == [False, True], \
        first.details + "\n" + second.details
    waited = [r.result("stack") for r in (first, second) if "waited_for_lock" in r.result("stack")]
    assert all(w["waited_for_lock"] > 0 and w["changed"] is False for w in waited) and len(waited) <= 1, \
        first.details + "\n" + second.details
    again = playbook([stack_task(stack)], env=env)
    assert again.rc == 0 and again.changed is False, again.details
    check = playbook([stack_task(stack)], env=env, check=True)
    assert check.rc == 0 and check.changed is False, check.details


def test_a_run_waits_for_the_lock_and_says_so(stack, lock_cleanup):
    holder = StackLock(DockerGateway(), stack)
    holder.acquire(5)
    releaser = threading.Timer(4, holder.release)
    releaser.start()
    try:
        run = playbook([stack_task(stack)])
    finally:
        releaser.join()
    assert run.rc == 0, run.output
    assert run.result("stack")["waited_for_lock"] >= 1, run.details
    assert_converged(stack)


def test_a_held_lock_times_out_naming_its_holder(stack, lock_cleanup):
    # A live process on this machine holds it: never stale.
    hold_lock(stack, process_id(os.getpid()), time.time())
    before = engine_state()
    run = playbook([stack_task(stack)], env={"CLOCKWORK_LOCK_TIMEOUT": "3"})
    assert run.rc != 0, run.output
    msg = run.result("stack")["msg"]
    assert "stack %s is being converged by another run (elsewhere:4242" % stack in msg, msg
    assert "docker rm %s" % lock_name(stack) in msg, run.details
    assert "Traceback" not in run.output, run.output
    assert names("container", stack) == [] and names("network", stack) == []
    assert [c for c in engine_state()["containers"] if stack in c] == \
        [c for c in before["containers"] if stack in c]
    # Check mode does not take the lock, nor wait for it.
    check = playbook([stack_task(stack)], check=True, env={"CLOCKWORK_LOCK_TIMEOUT": "3"})
    assert check.rc == 0, check.output


def test_the_lock_of_a_dead_run_is_taken_over(stack, lock_cleanup):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = process_id(child.pid)
    child.kill()
    child.wait()
    hold_lock(stack, dead, time.time())
    started = time.monotonic()
    run = playbook([stack_task(stack)], env={"CLOCKWORK_LOCK_TIMEOUT": "60"})
    assert run.rc == 0, run.output
    assert time.monotonic() - started < 50
    assert_converged(stack)


def test_a_stale_lock_of_another_machine_is_taken_over(stack, lock_cleanup):
    hold_lock(stack, "another-boot/pid:[4026531836]/4242/1", time.time() - STALE_AFTER - 60)
    run = playbook([stack_task(stack)], env={"CLOCKWORK_LOCK_TIMEOUT": "60"})
    assert run.rc == 0, run.output
    assert_converged(stack)
    # A recent lock of another machine is not stale: a run with something to change waits for it.
    hold_lock(stack, "another-boot/pid:[4026531836]/4242/1", time.time())
    unchanged = playbook([stack_task(stack)], env={"CLOCKWORK_LOCK_TIMEOUT": "2"})
    assert unchanged.rc == 0 and unchanged.changed is False, "an unchanged stack only reads: " + unchanged.details
    assert "waited_for_lock" not in unchanged.result("stack"), unchanged.details
    docker("rm", "-f", stack + "-worker")
    blocked = playbook([stack_task(stack)], env={"CLOCKWORK_LOCK_TIMEOUT": "2"})
    assert blocked.rc != 0 and "is being converged by another run" in blocked.result("stack")["msg"], blocked.details
    assert docker("ps", "-aq", "--filter", "name=^/%s-worker$" % stack) == "", "nothing changed without the lock"


def test_a_stack_wedged_by_duplicate_networks_is_repaired(stack):
    first = playbook([stack_task(stack)])
    assert first.rc == 0, first.output
    api = docker_sdk.from_env().api
    for network in (stack + "_default", stack + "-backend"):
        labels = {"io.clockwork.stack": stack, "io.clockwork.resource": network}
        api.create_network(network, check_duplicate=False, labels=labels)
    assert names("network", stack) == sorted([stack + "-backend"] * 2 + [stack + "_default"] * 2)
    docker("stop", stack + "-cache")   # it cannot start again while its networks are ambiguous

    check = playbook([stack_task(stack)], check=True)
    assert check.rc == 0, check.output
    assert "Traceback" not in check.output, check.output
    merges = [e for e in check.result("stack")["entries"] if e["name"] == "duplicates"][0]["actions"]
    assert [m.split(" (")[0] for m in merges] == [
        "merge 2 duplicate networks %s-backend into one" % stack,
        "merge 2 duplicate networks %s_default into one" % stack], check.details
    assert len(names("network", stack)) == 4, "check mode merged networks"

    repaired = playbook([stack_task(stack)])
    assert repaired.rc == 0, repaired.output
    assert_converged(stack)
    verified = playbook([stack_task(stack, state="verified")])
    assert verified.rc == 0, verified.output
    again = playbook([stack_task(stack)])
    assert again.rc == 0 and again.changed is False, again.details
    _run = playbook([stack_task(stack)], check=True)
    assert _run.changed is False, _run.details


def test_two_container_runs_at_once_make_one_container(stack):
    task = {"name": "web", "clockwork.connections.container": dict(
        name=stack + "-solo", image=NGINX_IMAGE, stack=stack, env={"MODE": "a"}), "register": "web"}
    runs = at_once(lambda: playbook([task]), lambda: playbook([task]), lambda: playbook([task]))
    for run in runs:
        assert run.rc == 0, run.output
    assert names("container", stack) == [stack + "-solo"]
    assert len(set(r.result("web")["container"]["id"] for r in runs)) == 1, "\n".join(r.details for r in runs)
    _run = playbook([task])
    assert _run.result("web")["changed"] is False, _run.details


def test_a_conflict_on_create_means_another_run_made_it(stack):
    """Each run reads an object as absent, then another run creates it first: the 409 is
    read as "someone made it", used when it is ours and the same, refused otherwise."""
    from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
    from ansible_collections.clockwork.connections.plugins.module_utils.connection import (
        ConnectionContext, ConnectionResult)
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import ContainerConverger
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import ContainerSpec
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.volumes import ensure_volume
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import (
        NetworkConverger, wanted_settings)

    def stale_engine(kind, name):
        engine = DockerGateway()
        assert getattr(engine, kind)(name) is None   # read (and remembered) before the other run
        return engine

    name, network, volume = stack + "-web", stack + "-net", stack + "-vol"
    params = dict(name=name, image=NGINX_IMAGE, env={"MODE": "a"}, state="started", wait=True, timeout=30)
    late = [(k, n, stale_engine(k, n)) for k, n in (("container", name), ("network", network), ("volume", volume))]
    ContainerConverger(DockerGateway()).converge(ContainerSpec(params, stack))
    NetworkConverger(ConnectionContext(DockerGateway(), stack)).ensure(
        network, wanted_settings({}), ConnectionResult("n", "a", "b"))
    ensure_volume(ConnectionContext(DockerGateway(), stack), volume, "local", True, ConnectionResult("f", "a", "b"))
    made = dict((n, inspect(k, n)["Id"] if k != "volume" else n) for k, n, _e in late)

    engines = dict((k, e) for k, _n, e in late)
    outcome = ContainerConverger(engines["container"]).converge(ContainerSpec(params, stack))
    assert outcome["actions"] == ["create"] and outcome["container"]["id"] == made[name]
    NetworkConverger(ConnectionContext(engines["network"], stack)).ensure(
        network, wanted_settings({}), ConnectionResult("n", "a", "b"))
    ensure_volume(ConnectionContext(engines["volume"], stack), volume, "local", True, ConnectionResult("f", "a", "b"))
    assert names("container", stack) == [name] and names("network", stack) == [network]
    assert inspect("network", network)["Id"] == made[network]

    # Made meanwhile with other settings: a clear refusal, and theirs is left alone.
    late_engine = stale_engine("container", stack + "-other")
    ContainerConverger(DockerGateway()).converge(ContainerSpec(dict(params, name=stack + "-other"), stack))
    with pytest.raises(ClockworkError) as error:
        ContainerConverger(late_engine).converge(ContainerSpec(dict(params, name=stack + "-other", env={"MODE": "b"}),
                                                               stack))
    assert "another container took the name meanwhile" in error.value.msg
    assert "MODE=a" in inspect("container", stack + "-other")["Config"]["Env"]
    docker("volume", "rm", volume)
