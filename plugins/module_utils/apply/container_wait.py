# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for a container to reach a condition (started, healthy, completed), bounded, on
the engine's answers."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import container_state


# A container without a healthcheck that we just started must still run this long
# after the start: one that crashes on start-up is then caught, not reported ready.
SETTLE_SECONDS = 0.3


def condition_reached(attrs, condition):
    """`started`, `healthy` or `completed_successfully` (a one-shot container exited 0)."""
    status, health = container_state(attrs)
    if condition == "completed_successfully":
        return status == "exited" and attrs["State"].get("ExitCode") == 0
    if condition == "healthy":
        return status == "running" and health == "healthy"
    return status == "running"


def condition_lost(attrs, condition):
    """A state from which the condition cannot be reached any more."""
    status, health = container_state(attrs)
    if condition == "completed_successfully":
        return status in ("absent", "dead") or (status == "exited" and attrs["State"].get("ExitCode") != 0)
    return status in ("exited", "dead", "absent") or (condition == "healthy" and health == "unhealthy")


def wait_for(engine, name, condition, timeout, just_started=False, who=None, since=None):
    """Poll, with backoff and no fixed sleep, until the container reaches `condition`, on the
    engine's clock (the gateway's: an engine in memory has its own, so a wait on it takes none).
    A container `just_started` (at `since`, an engine.monotonic(); else now) must have run
    SETTLE_SECONDS since; one a dry run made (engine.forecast) cannot crash: no settling.

    Fails with its state and last log lines when the condition is lost or time runs out.
    """
    monotonic, sleep = engine.monotonic, engine.sleep
    started = monotonic()
    deadline = started + timeout
    # A moment ahead of the engine's clock was read on another one (the process's): now, then.
    since = started if since is None or since > started else since
    delay = 0.05
    # First what this run read of it already (every write forgets what it changed): an unchanged
    # stack's waits ask the engine nothing (50 Swarm services: 150 requests). Then afresh.
    known = None if just_started else engine.container(name)
    while True:
        attrs = known if known and condition_reached(known, condition) else engine.container_now(name)
        known = None
        settled = not just_started or monotonic() - since >= SETTLE_SECONDS or engine.forecast(name)
        if attrs and condition_reached(attrs, condition) and (settled or condition != "started"):
            return container_state(attrs)
        if condition_lost(attrs, condition) or monotonic() >= deadline:
            status, health = container_state(attrs)
            what = "did not become %s within %ss" % (condition.replace("_", " "), timeout)
            if condition_lost(attrs, condition):
                what = "is %s%s instead of %s" % (
                    status, " (%s)" % health if health else "", condition.replace("_", " "))
            raise ClockworkError("%s%s %s (state %s, health %s); last log lines:\n%s" % (
                who + ": " if who else "", name, what, status, health, engine.logs_tail(name)))
        unsettled = SETTLE_SECONDS - (monotonic() - since) if attrs and condition == "started" and \
            condition_reached(attrs, condition) else 0
        # Running but not settled: nothing to learn before it has (fewer inspects for a busy engine).
        sleep(max(delay, unsettled))
        delay = min(delay * 2, 0.5)


def has_healthcheck(attrs):
    test = (((attrs or {}).get("Config") or {}).get("Healthcheck") or {}).get("Test")
    return bool(test) and test != ["NONE"]
