"""Pure logic of safe recreation, duplicate networks and the stack lock; the lock on the memory
gateway (docker/memory.py) and on a dry run over it."""
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import aside_name, carried_volumes
from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import NetworkConverger
from ansible_collections.clockwork.connections.plugins.module_utils.apply.lock import (
    LOCK_LABEL, OWNER_LABEL, PROCESS_LABEL, SINCE_LABEL, STALE_AFTER, StackLock, lock_name, process_id, stack_lock)
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import WRITES, MemoryEngine

ANON = "a" * 64
OTHER_ANON = "b" * 64


def mount(name, target, kind="volume", rw=True):
    return {"Type": kind, "Name": name, "Destination": target, "RW": rw, "Source": "/var/lib/docker/x"}


def test_anonymous_and_image_volumes_are_carried_unless_a_declared_mount_takes_the_target():
    attrs = {"Config": {"Volumes": {"/var/lib/postgresql/data": {}}},
             "Mounts": [mount(ANON, "/var/lib/postgresql/data"),
                        mount(OTHER_ANON, "/cache", rw=False),
                        mount("named", "/srv/named"),                      # declared by the user, not carried
                        mount("shared", "/declared"),
                        {"Type": "bind", "Source": "/host", "Destination": "/etc/x", "RW": True}]}
    assert carried_volumes(attrs, None, {"/declared"}) == [
        "%s:/var/lib/postgresql/data:rw" % ANON, "%s:/cache:ro" % OTHER_ANON]
    # A named volume at an image VOLUME path is data too: carried, as Compose does.
    attrs["Mounts"].append(mount("old-named", "/data"))
    assert "old-named:/data:rw" in carried_volumes(attrs, {"Config": {"Volumes": {"/data": {}}}}, set())
    # A declared mount at the image's VOLUME path wins.
    assert all(not b.endswith("/var/lib/postgresql/data:rw")
               for b in carried_volumes(attrs, None, {"/var/lib/postgresql/data"}))


def test_aside_name_keeps_the_name_and_the_short_id():
    assert aside_name("postgres", "0123456789abcdef") == "postgres_clockwork_old_0123456789ab"


def test_duplicate_networks_sort_by_creation_with_nanoseconds():
    key = NetworkConverger._created_key   # pylint: disable=protected-access
    stamps = ["2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00.123456789Z", "2024-05-01T10:00:00Z",
              "2024-05-01T09:59:59.999999999Z"]
    assert sorted(stamps, key=key) == [stamps[3], stamps[2], stamps[1], stamps[0]]


def test_lock_name_is_a_valid_container_name():
    assert lock_name("shop") == "clockwork-lock-shop"
    odd = lock_name("my shop/α")
    assert odd.startswith("clockwork-lock-my_shop__-") and odd != lock_name("my shop/β")


def test_a_live_process_is_not_stale_a_dead_one_is():
    mine = process_id(os.getpid())
    assert mine and mine == process_id(os.getpid())
    assert StackLock._stale(mine, STALE_AFTER * 10) is False   # pylint: disable=protected-access
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = process_id(child.pid)
    child.wait()
    time.sleep(0.05)
    assert StackLock._stale(dead, 0) is True   # pylint: disable=protected-access


def test_another_machine_is_stale_only_when_old():
    elsewhere = "other-boot/pid:[1]/4242/99"
    assert StackLock._stale(elsewhere, 60) is False   # pylint: disable=protected-access
    assert StackLock._stale(elsewhere, STALE_AFTER + 1) is True   # pylint: disable=protected-access
    assert StackLock._stale(None, STALE_AFTER + 1) is True   # pylint: disable=protected-access


# -- the lock on the memory gateway: its waits on the gateway's clock, a dry run's in its memory --

def _held_by_this_process(engine, stack):
    """A lock of `stack` on `engine` that a live process (this one) holds: never stale."""
    engine.create_container("clockwork-test/nginx:1.22", name=lock_name(stack), labels={
        LOCK_LABEL: stack, OWNER_LABEL: "elsewhere:4242", SINCE_LABEL: "%d" % time.time(),
        PROCESS_LABEL: process_id(os.getpid())})


def _memory_engine():
    return MemoryEngine(images={"clockwork-test/nginx:1.22": {"Cmd": ["nginx"]}})


def test_a_held_lock_is_waited_for_on_the_gateways_clock():
    engine = _memory_engine()
    _held_by_this_process(engine, "shop")
    gateway = DockerGateway(api=engine)
    began, on_engine = time.monotonic(), gateway.monotonic()
    with pytest.raises(ClockworkError) as error:
        with stack_lock(gateway, "shop", timeout=60):
            pass
    assert "stack shop is being converged by another run (elsewhere:4242" in error.value.msg
    assert "waited 60s" in error.value.msg
    assert gateway.monotonic() - on_engine >= 60, "the wait ran on the engine's clock"
    assert time.monotonic() - began < 5, "and took none of the process's time"


def test_a_dry_run_takes_the_lock_in_its_memory_and_never_waits_for_a_holder():
    engine = _memory_engine()
    dry = dry_run_gateway(live=engine)
    with stack_lock(dry, "shop", timeout=60) as lock:
        assert dry.container(lock_name("shop")) is not None, "held in the dry run's memory"
    assert dry.actions[0] == "create container %s" % lock_name("shop")
    assert dry.actions[-1].startswith("remove container "), "and released there"
    # A run holds the engine's lock: the dry run says what a run would do now, without waiting.
    _held_by_this_process(engine, "shop")
    since = len(engine.calls)
    dry = dry_run_gateway(live=engine)
    began = dry.monotonic()
    with stack_lock(dry, "shop", timeout=60) as lock:
        assert lock.holder == "elsewhere:4242" and lock.waited == 0
    assert dry.monotonic() - began < 5
    assert [c for c in engine.calls[since:] if c.method in WRITES] == [], "nothing reached the engine"
    assert engine.inspect_or_none("container", lock_name("shop")) is not None, "the holder's lock stays"
