# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start-first replacement of one container, so that its clients never find nobody home.

The new container starts beside the old one under a temporary name, with the same network
aliases, so Docker's DNS answers the resource's name with both. Once it is ready (healthy
with a healthcheck, else running for the settle time) the old one leaves its networks first
(no new client is sent to it), is stopped with its grace period and removed, and the new one
takes the name. A new container that does not become ready is removed and the old one keeps
serving, untouched. A run killed half-way leaves a `<name>_clockwork_next_<id>` container,
which the next run completes or drops (`repair_next`).

Stop-first (the container renamed aside, put back on failure: container.py) stays for what
two containers must not run at once: a data directory (a volume) or a fixed host port.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, owned_by
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_wait import (
    condition_reached, has_healthcheck, wait_for)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import engine_words
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError, container_state

# Containers set aside during a replacement carry MARK in their name: `_clockwork_old_` (stop-first,
# container.py) and `_clockwork_next_` (start-first, here).
MARK = "_clockwork_"
NEXT_MARK = MARK + "next_"
DEFAULT_GRACE_SECONDS = 10          # as `docker stop`


def resolved_order(spec, image_attrs, attrs):
    """The update order of `spec`: as declared, or for "auto" stop-first where two containers
    must not run at once (a volume, declared, carried or from the image; a fixed host port)."""
    if spec.update_order != "auto":
        return spec.update_order
    image_volumes = ((image_attrs or {}).get("Config") or {}).get("Volumes") or {}
    volumes = any(m["type"] == "volume" for m in spec.mounts) or bool(image_volumes) or any(
        m.get("Type") == "volume" for m in (attrs or {}).get("Mounts") or [])
    fixed_port = any(host_port for _port, _ip, host_port in spec.ports)
    return "stop-first" if volumes or fixed_port else "start-first"


def next_name(name, container_id):
    return "%s%s%s" % (name, NEXT_MARK, container_id[:12])


def _message(exc):
    if isinstance(exc, ClockworkError):
        return exc.msg
    return engine_words(exc)


def stop_and_remove(engine, container_id, grace, networks=True, volumes=False):
    """Take a container out of service: off its networks first (DNS stops naming it), then
    stopped with its grace period, then removed. Its volumes stay (`volumes`: its anonymous ones go)."""
    if networks:
        attrs = engine.container_now(container_id) or {}
        for network in sorted((attrs.get("NetworkSettings") or {}).get("Networks") or {}):
            try:
                engine.disconnect(container_id, network)
            except APIError:
                pass   # already off it; stopping takes it off anyway
    engine.stop(container_id, timeout=grace)
    engine.remove_container(container_id, force=True, volumes=volumes)


def remove_gracefully(engine, name, container_id, grace, networks=True):
    """stop_and_remove, its engine error one message naming the container (destroy, scale-down)."""
    try:
        stop_and_remove(engine, container_id, grace, networks=networks)
    except APIError as exc:
        raise ClockworkError("cannot remove container %s: %s" % (name, _message(exc)))


def replace_start_first(converger, spec, attrs, binds, keep_networks):
    """Replace the container `attrs` by one of `spec`, the new one serving before the old goes."""
    engine = converger.engine
    temporary = copy.copy(spec)
    temporary.name = next_name(spec.name, attrs["Id"])
    temporary.networks = [dict(n, aliases=sorted(set(n["aliases"]) | set([spec.alias])))
                          for n in spec.networks]
    keep_networks = [dict(n, aliases=sorted(set(n["aliases"]) | set([spec.alias]))) for n in keep_networks]
    new_id = converger._create(temporary, keep_networks, binds)  # pylint: disable=protected-access
    serve_then_swap(engine, spec.name, temporary.name, new_id, attrs["Id"], spec.timeout, spec.stop_grace)


def serve_then_swap(engine, name, temporary, new_id, old_id, timeout, grace):
    """The second half of a start-first replacement: the new container `new_id`, created as
    `temporary` beside the old one `old_id`, started and awaited; then the old one taken out
    and the new one given the name. A new one that does not become ready is removed and the
    old one keeps serving. (A return to a release creates its container from the record.)"""
    try:
        engine.start(new_id)
        _await_ready(engine, temporary, timeout)
    except (ClockworkError, APIError) as exc:
        attrs_new = engine.container(temporary)
        status, health = container_state(attrs_new)
        logs = engine.logs_tail(temporary)
        try:
            # Out of service as the old one would go (off its networks first): a client that reached it
            # while it served (it answers, unhealthy) is not cut off by a kill.
            stop_and_remove(engine, new_id, grace, volumes=True)
        except APIError:
            pass   # the next run removes it (repair_next)
        raise ClockworkError(
            "container %s: its replacement did not become ready (state %s%s), so it was removed and the "
            "previous container keeps serving, unchanged. Cause: %s%s" % (
                name, status, ", health %s" % health if health else "",
                _message(exc).split("; last log lines:")[0].split("\n")[0],
                "\nlast log lines of the replacement:\n%s" % logs if logs else ""))
    try:
        stop_and_remove(engine, old_id, grace)
        engine.rename(new_id, name)
    except APIError as exc:
        raise ClockworkError("container %s: its replacement %s serves, but taking the previous one out failed: "
                             "%s; the next run completes it" % (name, temporary, _message(exc)))


def _await_ready(engine, name, timeout):
    """Healthy with a healthcheck, else running for the settle time; a one-shot container
    that completed successfully did what it is for."""
    healthy = has_healthcheck(engine.container(name))
    try:
        wait_for(engine, name, "healthy" if healthy else "started", timeout, just_started=True)
    except ClockworkError:
        if healthy or not condition_reached(engine.container(name), "completed_successfully"):
            raise


def marked_leftovers(engine, spec, mark):
    """Containers of this stack that an interrupted replacement left as `<name><mark><id>`,
    newest first. One listing of every marked container serves the whole run, until a write
    renames or removes one (the gateway's containers_named)."""
    try:
        listed = engine.containers_named(MARK)
    except APIError as exc:
        raise ClockworkError("cannot list containers of %s: %s" % (spec.name, _message(exc)))
    prefix = "/" + spec.name + mark
    found = [c for c in listed if any(n.startswith(prefix) for n in c.get("Names") or [])
             and owned_by(c.get("Labels"), spec.stack)]
    return sorted(found, key=lambda c: c.get("Created") or 0, reverse=True)


def repair_next(engine, spec, attrs, repairs):
    """Complete or drop what a start-first replacement killed half-way left. A replacement
    beside a running container is dropped (the convergence replaces it again); one whose
    predecessor is gone or stopped takes the name. Returns the container under the name."""
    leftovers = marked_leftovers(engine, spec, NEXT_MARK)
    if not leftovers:
        return attrs
    newest, older = leftovers[0], leftovers[1:]
    newest_name = newest["Names"][0].lstrip("/")
    running = attrs is not None and container_state(attrs)[0] in ("running", "restarting")
    if running or newest.get("State") != "running":
        older = leftovers
    else:
        repairs.append("complete the replacement of %s by %s, left by an interrupted run" % (spec.name, newest_name))
        try:
            if attrs is not None:
                stop_and_remove(engine, attrs["Id"], spec.stop_grace)
            engine.rename(newest["Id"], spec.name)
        except APIError as exc:
            raise ClockworkError("cannot complete the replacement of container %s by %s: %s"
                                 % (spec.name, newest_name, _message(exc)))
        attrs = engine.container(spec.name)
    for container in older:
        name = container["Names"][0].lstrip("/")
        repairs.append("remove %s, left by an interrupted run" % name)
        try:
            engine.remove_container(container["Id"], force=True, volumes=True)
        except APIError as exc:
            raise ClockworkError("cannot remove container %s: %s" % (name, _message(exc)))
    return attrs
