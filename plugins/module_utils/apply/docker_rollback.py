# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `docker` target's way back to a release (issue 35 parts 2 and 3): every container of the
stack brought to the release's record of it, the record being what `docker inspect` read back
when the release was made (releases/record.py), created again by image ID (releases/recreate.py).

A container that differs from its record is replaced start-first where two of it may run at once
(rolling.py: no client finds nobody home), else stop-first with the old one set aside and put
back on failure (as container.py recreates); one the release had and the stack lacks is created;
one the release did not have is taken out (off its networks first, stopped with its grace
period, removed; its volumes stay). Anonymous volumes are data: a container made again gets the
current container's, as a recreate carries them, and they are no difference from the record.

The same calls run on a dry run's gateway (check mode), which records them and changes nothing."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import (
    ANONYMOUS_VOLUME, ContainerConverger, aside_name, carried_volumes)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_wait import (
    condition_reached, has_healthcheck, wait_for)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import NetworkConverger, wanted_settings
from ansible_collections.clockwork.connections.plugins.module_utils.apply.rolling import (
    DEFAULT_GRACE_SECONDS, MARK, next_name, remove_gracefully, repair_next, serve_then_swap, stop_and_remove)
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, owned_by
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionResult
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import engine_words
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError
from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import (
    container_record, stack_containers)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.recreate import create_body
from ansible_collections.clockwork.connections.plugins.module_utils.releases.view import (
    container_view, record_drift, scrub, secrets_of)

# How long a container made again from its record may take to become ready (healthy, with a
# healthcheck) when no declaration says: a rollback has none.
DEFAULT_TIMEOUT = 120
START_FIRST, STOP_FIRST = "start-first", "stop-first"


class Named(object):
    """What the repairs of an interrupted replacement (rolling.repair_next, container.py) read of a spec."""

    def __init__(self, name, stack, grace):
        self.name, self.stack, self.stop_grace, self.state = name, stack, grace, "started"


def grace_of(record):
    timeout = (record.get("config") or {}).get("StopTimeout")
    return timeout if isinstance(timeout, int) and not isinstance(timeout, bool) and timeout >= 0 \
        else DEFAULT_GRACE_SECONDS


def _source(bind):
    return str(bind).split(":", 1)[0]


def _target(bind):
    parts = str(bind).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _anonymous(bind):
    return bool(ANONYMOUS_VOLUME.match(_source(bind)))


def differences(record, attrs):
    """The fields in which the running container `attrs` differs from its record, by name. A
    container the release ran that does not run now differs; one that had exited (a one-shot) and
    runs again does not (nothing is stopped for it)."""
    changes = record_drift(record, container_record(attrs))
    return [c for c in changes if not c.startswith("state (") or record["state"] == "running"]


def update_order(record, attrs, image_attrs, declared=None):
    """start-first, unless two of it must not run at once (rolling.resolved_order's rule, read
    from the record): a volume, a fixed host port or address; or it is not meant to run."""
    if record["state"] != "running":
        return STOP_FIRST
    if declared in (START_FIRST, STOP_FIRST):
        return declared
    host = record["host_config"]
    volumes = any(m.get("Type") == "volume" for m in host.get("Mounts") or []) \
        or any(not _source(b).startswith("/") for b in host.get("Binds") or []) \
        or bool(((image_attrs or {}).get("Config") or {}).get("Volumes")) \
        or any(m.get("Type") == "volume" for m in (attrs or {}).get("Mounts") or [])
    fixed_port = any((b or {}).get("HostPort") for bound in (host.get("PortBindings") or {}).values()
                     for b in bound or [])
    fixed_address = any((e.get("IPAMConfig") or {}).get("IPv4Address") or (e.get("IPAMConfig") or {}).get("IPv6Address")
                        for e in record["endpoints"].values())
    return STOP_FIRST if volumes or fixed_port or fixed_address else START_FIRST


def _message(exc):
    return exc.msg if isinstance(exc, ClockworkError) else engine_words(exc)


def _connect_options(endpoint):
    ipam = endpoint.get("IPAMConfig") or {}
    options = {"aliases": endpoint.get("Aliases") or None}
    for key, option in (("IPv4Address", "ipv4_address"), ("IPv6Address", "ipv6_address")):
        if ipam.get(key):
            options[option] = ipam[key]
    if endpoint.get("Links"):
        options["links"] = endpoint["Links"]
    if endpoint.get("DriverOpts"):
        options["driver_opt"] = endpoint["DriverOpts"]
    return options


def networks_back(ctx, release):
    """The networks the release's containers are on that are gone since, made again as the release
    recorded them (their declared settings; what the engine chose then, it chooses again):
    [(name, changed, actions)]. An external one is not recorded, so it is refused before (rollback.py)."""
    made = []
    used = set(n for record in release["containers"].values() for n in record["endpoints"])
    for name, settings in sorted((release.get("networks") or {}).items()):
        if name in used and ctx.engine.network(name) is None:
            result = ConnectionResult("network", ctx.stack, name)
            NetworkConverger(ctx).ensure(name, wanted_settings(settings), result)
            made.append((name, result.changed, result.actions))
    return made


class ContainersBack(object):
    """Brings the containers of `stack` to release `release` through the gateway `engine`.
    `order`: resources in deploy order (the plan's, else the release's); `declared`: resource ->
    its declared update order; `timeouts`: resource -> seconds to become ready."""

    def __init__(self, engine, stack, release, order=None, declared=None, timeouts=None, say=None):
        self.engine, self.stack, self.release = engine, stack, release
        self.records = release["containers"]
        rank = dict((r, i) for i, r in enumerate(order or release.get("order") or []))
        self.names = sorted(self.records, key=lambda n: (rank.get(self.records[n]["resource"], len(rank)), n))
        self.declared = declared or {}
        self.timeouts = timeouts or {}
        self.say = say or (lambda line, verbosity=0: None)
        self.secrets = secrets_of(release)

    # -- what differs ----------------------------------------------------------------------

    def steps(self):
        """[(container, action, reasons)]: what a return does, in order: first what the release did
        not have goes, then each container of the release in deploy order."""
        running = stack_containers(self.engine, self.stack)
        steps = [(name, "remove", ["not in release %d" % self.release["number"]])
                 for name in sorted(running) if name not in self.records]
        for name in self.names:
            attrs = running.get(name)
            if attrs is None:
                steps.append((name, "create", ["missing"]))
                continue
            changes = differences(self.records[name], attrs)
            if changes:
                image = self.engine.image(attrs.get("Image") or "")
                order = update_order(self.records[name], attrs, image, self.declared.get(self.records[name]["resource"]))
                steps.append((name, "replace start-first" if order == START_FIRST else "recreate", changes))
        return steps

    def repair(self):
        """What an interrupted replacement or return left (`<name>_clockwork_...` containers of the
        stack): completed or dropped for the release's containers, removed for any other. Its words."""
        repairs = []
        for name in self.names:
            named = Named(name, self.stack, grace_of(self.records[name]))
            try:
                attrs = ContainerConverger(self.engine)._repair_interrupted(  # pylint: disable=protected-access
                    named, self.engine.container_now(name), repairs)
                repair_next(self.engine, named, attrs, repairs)
            except APIError as exc:
                raise ClockworkError("cannot repair container %s: %s" % (name, _message(exc)))
        for found in self.engine.containers_named(MARK):
            name = (found.get("Names") or ["/"])[0].lstrip("/")
            if MARK not in name or not owned_by(found.get("Labels"), self.stack) \
                    or name.split(MARK, 1)[0] in self.records:
                continue
            repairs.append("remove %s, left by an interrupted run" % name)
            try:
                self.engine.remove_container(found["Id"], force=True)
            except APIError as exc:
                raise ClockworkError("cannot remove container %s: %s" % (name, _message(exc)))
        return repairs

    # -- doing it --------------------------------------------------------------------------

    def diff(self, name, action):
        """Before and after of one container, masked (releases/view.py), for --diff."""
        attrs = self.engine.container(name)
        now = container_record(attrs) if attrs else None
        before = scrub(container_view(now), self.secrets | secrets_of({"containers": {name: now}})) if now else {}
        after = {} if action == "remove" else scrub(container_view(self.records[name]), self.secrets)
        return before, after

    def run(self, steps):
        """Do `steps` (self.steps()); [(container, action, reasons, before, after)] as done."""
        done = []
        for name, action, reasons in steps:
            before, after = self.diff(name, action)
            self.say("%s: %s (back to release %d)" % (name, action, self.release["number"]))
            if action == "remove":
                attrs = self.engine.container_now(name)
                grace = grace_of(container_record(attrs)) if attrs else DEFAULT_GRACE_SECONDS
                remove_gracefully(self.engine, name, attrs["Id"], grace)
            elif action == "create":
                self._create_started(name)
            elif action == "recreate":
                self._stop_first(name)
            else:
                self._start_first(name)
            done.append((name, action, reasons, before, after))
        return done

    def _timeout(self, name):
        return self.timeouts.get(self.records[name]["resource"]) or DEFAULT_TIMEOUT

    def _make(self, name, attrs, as_name=None, serving_alias=False):
        """Create the container of record `name` (as `as_name`), with the anonymous volumes of
        `attrs`, the container it replaces; returns its id."""
        record = self.records[name]
        body, later = create_body(record)
        host = body["HostConfig"]
        carried = dict((_target(b), b) for b in carried_volumes(attrs, self.engine.image(attrs.get("Image") or ""), ())) \
            if attrs else {}
        binds = []
        for bind in host.get("Binds") or []:
            if not _anonymous(bind):
                binds.append(bind)
            elif _target(bind) in carried:
                binds.append(carried.pop(_target(bind)))
            elif self.engine.volume(_source(bind)) is not None:
                binds.append(bind)
        taken = set(_target(b) for b in binds) | set(m.get("Target") for m in host.get("Mounts") or [])
        binds += [b for target, b in sorted(carried.items()) if target not in taken]
        host["Binds"] = binds or None
        endpoints = dict(body["NetworkingConfig"]["EndpointsConfig"], **later)
        if serving_alias:
            # Beside the old one under another name: the resource's name answers for both meanwhile.
            for endpoint in endpoints.values():
                endpoint["Aliases"] = sorted(set(endpoint.get("Aliases") or []) | set([record["resource"]]))
        primary = dict((n, e) for n, e in endpoints.items() if n in body["NetworkingConfig"]["EndpointsConfig"])
        body["NetworkingConfig"]["EndpointsConfig"] = primary
        made_as = as_name or name
        try:
            new_id = self.engine.create_from_body(made_as, body)["Id"]
        except APIError as exc:
            raise ClockworkError("cannot create container %s as release %d ran it: %s"
                                 % (name, self.release["number"], _message(exc)))
        try:
            for network in sorted(n for n in endpoints if n not in primary):
                self.engine.connect(new_id, network, **_connect_options(endpoints[network]))
        except APIError as exc:
            self.engine.remove_container(new_id, force=True, volumes=True)
            raise ClockworkError("cannot attach container %s to network %s: %s" % (name, network, _message(exc)))
        return new_id

    def _await(self, name, as_name=None):
        who = as_name or name
        healthy = has_healthcheck(self.engine.container_now(who))
        try:
            wait_for(self.engine, who, "healthy" if healthy else "started", self._timeout(name), just_started=True,
                     who="container %s" % who)
        except ClockworkError:
            if healthy or not condition_reached(self.engine.container(who), "completed_successfully"):
                raise

    def _create_started(self, name):
        new_id = self._make(name, None)
        if self.records[name]["state"] == "running":
            self.engine.start(new_id)
            self._await(name)

    def _start_first(self, name):
        attrs = self.engine.container_now(name)
        temporary = next_name(name, attrs["Id"])
        new_id = self._make(name, attrs, as_name=temporary, serving_alias=True)
        serve_then_swap(self.engine, name, temporary, new_id, attrs["Id"], self._timeout(name),
                        grace_of(self.records[name]))

    def _stop_first(self, name):
        """The old container renamed aside and stopped, the recorded one made and started; on any
        failure the new one goes and the old one is back under its name, running as it was."""
        attrs = self.engine.container_now(name)
        old_id, aside = attrs["Id"], aside_name(name, attrs["Id"])
        was_running = (attrs.get("State") or {}).get("Status") in ("running", "restarting", "paused")
        grace = grace_of(container_record(attrs))
        self.engine.rename(old_id, aside)
        new_id = None
        try:
            if was_running:
                self.engine.stop(old_id, timeout=grace)
            new_id = self._make(name, attrs)
            if self.records[name]["state"] == "running":
                self.engine.start(new_id)
                self._await(name)
        except (ClockworkError, APIError) as exc:
            try:
                if new_id is not None:
                    self.engine.remove_container(new_id, force=True, volumes=True)
                self.engine.rename(old_id, name)
                if was_running:
                    self.engine.start(old_id)
            except APIError as again:
                raise ClockworkError("container %s could not go back to release %d: %s; putting the previous one "
                                     "back failed too (%s): it is kept as %s, and the next run restores it" % (
                                         name, self.release["number"], _message(exc), _message(again), aside))
            raise ClockworkError("container %s could not go back to release %d, so the previous one is back under "
                                 "its name: %s" % (name, self.release["number"], _message(exc)))
        try:
            stop_and_remove(self.engine, old_id, grace, networks=False)
        except APIError:
            pass   # set aside: the next run removes it
