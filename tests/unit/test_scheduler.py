"""The dependency-ordered scheduler: what starts when, the bound, and a failure stops new work.
Workers synchronise on events, not on sleeps, so no assertion depends on timing."""
import threading

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.apply.scheduler import run_ordered


class Recorder:
    """A worker that records starts and ends, and can hold a name until released."""

    def __init__(self, fail=(), hold=()):
        self.lock = threading.Lock()
        self.events, self.active, self.most = [], 0, 0
        self.fail = set(fail)
        self.gates = dict((name, threading.Event()) for name in hold)

    def __call__(self, name):
        with self.lock:
            self.events.append(("start", name))
            self.active += 1
            self.most = max(self.most, self.active)
        if name in self.gates:
            assert self.gates[name].wait(10)
        with self.lock:
            self.events.append(("end", name))
            self.active -= 1
        return "resource %s: broken" % name if name in self.fail else None

    def started(self):
        return [n for kind, n in self.events if kind == "start"]


def test_a_name_starts_only_after_what_it_needs_and_ties_in_plan_order():
    work = Recorder()
    needs = {"api": {"db", "cache"}, "web": {"api"}, "db": set(), "cache": set()}
    errors, left = run_ordered(["db", "cache", "api", "web"], needs, work, parallel=1)
    assert (errors, left) == ({}, [])
    assert work.started() == ["db", "cache", "api", "web"]
    position = dict((event, i) for i, event in enumerate(work.events))
    assert position[("end", "db")] < position[("start", "api")] > position[("end", "cache")]
    assert position[("end", "api")] < position[("start", "web")]


def test_independent_names_overlap_up_to_the_bound():
    names = ["a", "b", "c", "d", "e"]
    work = Recorder(hold=names)
    ticks = []

    def tick(done):
        ticks.append(done)
        with work.lock:
            # Release a held name only once the bound is reached: proves `parallel` run together.
            if work.active == 3 or len(work.started()) == len(names):
                for gate in work.gates.values():
                    if not gate.is_set():
                        gate.set()
                        break

    errors, left = run_ordered(names, {}, work, parallel=3, tick=tick)
    assert (errors, left) == ({}, [])
    assert work.most == 3
    assert work.started()[:3] == ["a", "b", "c"]
    assert ticks and ticks[-1] == set(names)


def test_after_a_failure_nothing_new_starts_and_what_runs_finishes():
    work = Recorder(fail=["db"], hold=["cache"])
    needs = {"api": {"db"}}

    def tick(done):
        # cache is still running when db has failed: release it, it must finish.
        if ("end", "db") in work.events:
            work.gates["cache"].set()

    errors, left = run_ordered(["db", "cache", "api", "other"], needs, work, parallel=2, tick=tick)
    assert errors == {"db": "resource db: broken"}
    assert ("end", "cache") in work.events
    assert "api" not in work.started() and "other" not in work.started()
    assert left == ["api", "other"]


def test_every_failure_is_returned():
    work = Recorder(fail=["a", "b"])
    errors, left = run_ordered(["a", "b", "c"], {"c": {"a"}}, work, parallel=2)
    assert errors == {"a": "resource a: broken", "b": "resource b: broken"} and left == ["c"]


def test_a_need_outside_the_names_is_ignored_and_a_bug_is_raised():
    work = Recorder()
    assert run_ordered(["api"], {"api": {"volume-only"}}, work, parallel=4) == ({}, [])

    def bug(name):
        raise ValueError("bug in %s" % name)

    with pytest.raises(ValueError):
        run_ordered(["a", "b"], {}, bug, parallel=2)


def test_a_step_error_names_its_resource_once_and_the_report_lists_all_in_plan_order():
    from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.scheduler import failure_report, step_error

    def fails(message):
        raise ClockworkError(message)

    assert step_error("api", lambda: None) is None
    assert step_error("api", fails, "no image") == "resource api: no image"
    assert step_error("api", fails, "connection a -> b: refused") == "connection a -> b: refused"
    assert failure_report("shop", ["db", "api", "web"], {"api": "resource api: x", "db": "resource db: y"},
                          ["web"]) == ("stack shop: 2 resources failed:\n- resource db: y\n- resource api: x\n"
                                       "not converged, as they wait for those or came after: web")
