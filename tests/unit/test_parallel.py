"""The stack's scheduler: containers converge in parallel, each after what it connects to.
Pure logic: the container step is replaced by a recorder (no Docker)."""
import threading
import time

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.apply.docker_applier import DockerApplier


def stack_of(resources, connections, parallel=4, fail=(), delay=0.05):
    stack = DockerApplier(None, "shop", resources, connections, parallel=parallel, progress=lambda line, level: None)
    log, lock, running = [], threading.Lock(), []
    peak = [0]

    def converge(name):
        with lock:
            log.append(("start", name))
            running.append(name)
            peak[0] = max(peak[0], len(running))
        time.sleep(delay)
        with lock:
            running.remove(name)
            log.append(("end", name))
        stack._record("container", name, False, [], resource=name)  # pylint: disable=protected-access
        if name in fail:
            raise ClockworkError("container %s exited" % name)
    stack._converge_container = converge  # pylint: disable=protected-access
    return stack, log, peak


def containers(*names):
    return [{"name": n, "image": "nginx"} for n in names]


def test_independent_containers_overlap_and_dependents_wait():
    resources = containers("cache", "api1", "api2", "api3", "web")
    connections = [{"type": "dependency", "from": "api%d" % i, "to": "cache"} for i in (1, 2, 3)]
    connections.append({"type": "dependency", "from": "web", "to": "api2"})
    stack, log, peak = stack_of(resources, connections)
    stack._converge_containers()  # pylint: disable=protected-access
    position = dict((event, index) for index, event in enumerate(log))
    for api in ("api1", "api2", "api3"):
        assert position[("start", api)] > position[("end", "cache")]
    assert position[("start", "web")] > position[("end", "api2")]
    assert peak[0] == 3, "the three APIs converge at once"
    # Entries come in the plan's order, whatever finished first.
    assert [e["name"] for e in stack.entries] == ["cache", "api1", "api2", "api3", "web"]


def test_the_pool_is_bounded():
    stack, _log, peak = stack_of(containers(*("w%02d" % i for i in range(12))), [], parallel=3)
    stack._converge_containers()  # pylint: disable=protected-access
    assert peak[0] == 3


def test_every_failure_is_reported_and_nothing_new_starts_after_one():
    resources = containers("aa", "bb", "cc", "dd")
    connections = [{"type": "dependency", "from": "dd", "to": "aa"}]
    stack, log, _peak = stack_of(resources, connections, fail=("aa", "bb"), parallel=4)
    with pytest.raises(ClockworkError) as error:
        stack._converge_containers()  # pylint: disable=protected-access
    msg = error.value.msg
    assert msg.startswith("stack shop: 2 resources failed:\n- container aa exited\n- container bb exited")
    assert "not converged, as they wait for those or came after: dd" in msg
    assert ("start", "dd") not in log


def test_one_at_a_time_keeps_the_plan_order():
    resources = containers("aa", "bb", "cc")
    stack, log, peak = stack_of(resources, [], parallel=1)
    stack._converge_containers()  # pylint: disable=protected-access
    assert [name for event, name in log if event == "start"] == ["aa", "bb", "cc"] and peak[0] == 1


def test_only_what_another_waits_for_is_awaited_by_its_worker():
    resources = containers("cache", "api", "w1", "w2")
    connections = [{"type": "dependency", "from": "api", "to": "cache"}] + [
        {"type": "dependency", "from": w, "to": "api"} for w in ("w1", "w2")]
    stack = DockerApplier(None, "shop", resources, connections, parallel=4, progress=lambda line, level: None)
    waited = []
    stack._wait_ready = lambda name, timeout, just_started, since=None: waited.append((name, just_started))  # pylint: disable=protected-access

    def converge(name):
        # What _converge_container does once the container runs.
        if name in stack._awaited:  # pylint: disable=protected-access
            stack._wait_ready(name, 5, False)  # pylint: disable=protected-access
        stack._awaited_at_end.append((name, name, 5, True, 0.0))  # pylint: disable=protected-access
    stack._converge_container = converge  # pylint: disable=protected-access
    stack._converge_containers()  # pylint: disable=protected-access
    assert stack._awaited == {"cache", "api"}  # pylint: disable=protected-access
    assert waited == [("cache", False), ("api", False)], "the workers free themselves of the leaves"
    # At the end every container that was just started settles, in the plan's order.
    assert stack._await_the_rest() == {}  # pylint: disable=protected-access
    assert waited[2:] == [("cache", True), ("api", True), ("w1", True), ("w2", True)]


def test_a_leaf_that_does_not_become_ready_is_reported_by_name():
    stack = DockerApplier(None, "shop", containers("aa", "bb"), [], parallel=2, progress=lambda line, level: None)

    def not_ready(name, timeout, just_started, since):
        raise ClockworkError("container %s is exited instead of started" % name)
    stack._wait_ready = not_ready  # pylint: disable=protected-access
    stack._awaited_at_end = [("bb", "bb", 5, True, 0.0), ("aa", "aa", 5, True, 0.0)]  # pylint: disable=protected-access
    errors = stack._await_the_rest()  # pylint: disable=protected-access
    assert errors == {"aa": "container aa is exited instead of started", "bb": "container bb is exited instead of started"}
    with pytest.raises(ClockworkError) as error:
        stack._raise_failed(errors, [])  # pylint: disable=protected-access
    assert error.value.msg == ("stack shop: 2 resources failed:\n- container aa is exited instead of started\n"
                               "- container bb is exited instead of started")


class RunningEngine(object):
    """A container that runs, as inspect reports it; counts the inspects. Its clock is its own
    (the gateway's interface): sleeping on it takes no time."""

    def __init__(self):
        self.inspects = 0
        self.now = 0.0

    def container_now(self, name):
        self.inspects += 1
        return {"State": {"Status": "running", "Running": True}}

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def forecast(self, name):
        return False


def test_settling_counts_from_the_start_not_from_the_wait():
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_wait import SETTLE_SECONDS, wait_for
    engine = RunningEngine()
    began = engine.monotonic()
    # Started long enough ago: one look is enough, however many leaves are awaited one after another.
    for _leaf in range(20):
        wait_for(engine, "w", "started", 5, just_started=True, since=began - SETTLE_SECONDS)
    assert engine.inspects == 20, "a leaf that settled long ago was waited for"
    # Just started: it is looked at again until it has run SETTLE_SECONDS, on the engine's clock.
    wait_for(engine, "w", "started", 5, just_started=True, since=engine.monotonic())
    assert engine.inspects > 21
    assert engine.monotonic() - began >= SETTLE_SECONDS


def test_a_container_a_dry_run_made_is_not_settled_for():
    """A forecast (engine.forecast) cannot crash: one look, no time spent settling."""
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_wait import wait_for
    engine = RunningEngine()
    engine.forecast = lambda name: True
    began = engine.monotonic()
    wait_for(engine, "w", "started", 5, just_started=True)
    assert engine.inspects == 1 and engine.monotonic() == began


def test_a_moment_read_on_another_clock_counts_as_the_start_of_the_wait():
    """`since` ahead of the engine's clock (the process's, read by a caller): settled from now."""
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_wait import SETTLE_SECONDS, wait_for
    engine = RunningEngine()
    wait_for(engine, "w", "started", 5, just_started=True, since=engine.monotonic() + 10000)
    assert SETTLE_SECONDS <= engine.monotonic() < 5
