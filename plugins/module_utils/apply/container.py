# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge one container: leave it alone when it matches its spec, create it, or recreate
it saying what drifted, safely (the old one set aside and put back on failure, its
anonymous volumes carried over)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    KEPT_MOUNTS_LABEL, RESERVED_LABEL_PREFIX, ClockworkError, owned_by)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import (
    create_body, kept_targets, describe, drift, in_place_update, keep_connection_mounts, running_config,
    spec_from_container)
from ansible_collections.clockwork.connections.plugins.module_utils.options.networking import NETWORK_MODES
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_wait import condition_reached, has_healthcheck, wait_for
from ansible_collections.clockwork.connections.plugins.module_utils.differences import masked_diff
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import CONFLICT, engine_words, status_of
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError, container_state
from ansible_collections.clockwork.connections.plugins.module_utils.apply.rolling import (
    MARK, marked_leftovers, repair_next, remove_gracefully, replace_start_first,
    resolved_order)


# How long a container another run is creating under the same name may take to become visible
# and complete, before it counts as someone else's.
MEANWHILE_SECONDS = 5


def reserved_label_problem(name, labels):
    """The container module refuses a declared label of the collection's own prefix, as the plan does."""
    reserved = sorted(str(k) for k in labels or {} if str(k).startswith(RESERVED_LABEL_PREFIX))
    return "container %s: labels: %s" % (name, "; ".join(
        "%s: the %s prefix is reserved for the labels the collection sets itself" % (label, RESERVED_LABEL_PREFIX)
        for label in reserved)) if reserved else None


def ensure_mounted(ctx, endpoint, mounts, result):
    """Mount into an existing container of the stack (one recreation for all), unless it already is.

    Used for what a connection puts into its `to` container: a shared volume, TLS files.
    A container that does not exist yet gets the mounts when the stack declares it.
    Returns True when the container is recreated for them (on a dry run: would be).
    """
    if not endpoint.exists:
        return False
    have = dict((m["target"], m) for m in running_config(endpoint.attrs)["mounts"])
    missing = []
    for mount in mounts:
        present = have.get(mount["target"])
        if present is None:
            missing.append(mount)
            result.act("mount %s into %s at %s" % (mount["source"], endpoint.name, mount["target"]))
        elif present["source"] != mount["source"]:
            raise ClockworkError("%s: %s already mounts %s at %s" % (
                result.name, endpoint.name, present["source"], mount["target"]))
    if not missing:
        return False
    spec = spec_from_container(endpoint.attrs, ctx.stack)
    spec.mounts.extend(missing)
    spec.labels[KEPT_MOUNTS_LABEL] = ",".join(sorted(set(kept_targets(spec.labels)) | set(m["target"] for m in missing)))
    ContainerConverger(ctx.engine).converge(spec)
    return True


# -- safe recreation: helpers of ContainerConverger ---------------------------------

# A container being replaced waits under this name until its successor runs; a run killed
# half-way leaves it behind, and the next run puts things right.
ASIDE_MARK = MARK + "old_"
ANONYMOUS_VOLUME = re.compile(r"^[0-9a-f]{64}$")
# A start-first replacement says so among its actions (stop-first says "recreate").
START_FIRST = "replace start-first"


def restart_to_read(engine, name, outcome, reasons, state):
    """A running container that was not (re)created restarts when files it reads at start got
    new content (`reasons`: why, as "for its new certificate"); `outcome` says so."""
    fresh = any(action in ("create", "recreate") for action in outcome["actions"])
    if not reasons or fresh or state != "started" or not engine.container(name):
        return
    outcome["changed"] = True
    outcome["actions"].append("restart " + " and ".join(reasons))
    engine.restart(name)


def aside_name(name, container_id):
    return "%s%s%s" % (name, ASIDE_MARK, container_id[:12])


def carried_volumes(attrs, image_attrs, declared_targets):
    """Binds `volume:target:mode` that give a new container the old one's anonymous volumes,
    and the volumes at its image's VOLUME paths, wherever no declared mount takes the target.

    As Compose does: passed as binds, they stay out of the declared mounts that drift compares,
    so the container is not seen as drifted afterwards."""
    image_paths = set((attrs.get("Config") or {}).get("Volumes") or {})
    image_paths |= set(((image_attrs or {}).get("Config") or {}).get("Volumes") or {})
    binds = []
    for mount in attrs.get("Mounts") or []:
        name, target = mount.get("Name"), mount.get("Destination")
        if mount.get("Type") != "volume" or not name or target in declared_targets:
            continue
        if ANONYMOUS_VOLUME.match(name) or target in image_paths:
            binds.append("%s:%s:%s" % (name, target, "rw" if mount.get("RW", True) else "ro"))
    return sorted(binds)


def kept_anonymous(attrs, spec):
    """Target -> the old container's anonymous volume there, for each anonymous mount the spec
    declares (Compose's `- /path`): the new container keeps its data, as it keeps undeclared ones."""
    declared = set(m["target"] for m in spec.mounts if m["type"] == "volume" and not m["source"])
    return dict((m.get("Destination"), m.get("Name")) for m in attrs.get("Mounts") or []
                if m.get("Type") == "volume" and m.get("Destination") in declared
                and ANONYMOUS_VOLUME.match(m.get("Name") or ""))


def _endpoint(network):
    """A network's endpoint settings as the SDK's endpoint config and connect take them."""
    settings = {"aliases": network["aliases"] or None}
    if network.get("ipv4_address"):
        settings["ipv4_address"] = network["ipv4_address"]
    return settings


def _api_message(exc):
    if isinstance(exc, ClockworkError):
        return exc.msg
    return engine_words(exc)


class ContainerConverger(object):
    """Brings one container to its wanted state, with the same calls on a dry run (check mode),
    whose gateway records them instead of making them.

    A container is replaced without a gap that loses anything: the old one is renamed aside
    and stopped, the new one created (with the old one's anonymous volumes) and started, and
    the old one removed only once the new one runs, and is healthy when it has a healthcheck.
    On any failure the new one goes and the old one comes back as it was."""

    def __init__(self, engine):
        self.engine = engine

    def converge(self, spec):
        attrs = self.engine.container(spec.name)
        if attrs and not owned_by(attrs["Config"].get("Labels"), spec.stack):
            raise ClockworkError(
                "container %s exists but is not owned by stack %s (no label io.clockwork.stack=%s): "
                "refusing to take it over" % (spec.name, spec.stack, spec.stack))
        repairs = []
        attrs = self._repair_interrupted(spec, attrs, repairs)
        attrs = repair_next(self.engine, spec, attrs, repairs)
        if spec.state == "absent":
            result = self._remove(spec, attrs)
            result["actions"][:0] = repairs
            result["changed"] |= bool(repairs)
            return result

        if attrs:
            keep_connection_mounts(spec, attrs)
        image_attrs = self._image(spec)
        before = running_config(attrs) if attrs else None
        wanted = spec.comparable(image_attrs, before)
        result = {"changed": bool(repairs), "actions": list(repairs), "reasons": [],
                  "diff": masked_diff(before, wanted, spec.secret_env)}

        changes = []
        start_first = False
        update = None
        if attrs is None:
            changes.append("create")
        else:
            reasons = drift(wanted, before)
            update = in_place_update(self.engine, spec, wanted, reasons) if reasons else None
            if update is not None:
                changes.append("update")
                result["reasons"] = reasons
            elif reasons:
                start_first = spec.state == "started" and resolved_order(spec, image_attrs, attrs) == "start-first"
                changes.append(START_FIRST if start_first else "recreate")
                result["reasons"] = reasons
        if changes:
            result["changed"] = True
            result["actions"].extend(changes)
            if update is not None:
                self._update(spec, update)
            elif attrs and start_first:
                self._replace(spec, attrs, image_attrs, result)
            elif attrs:
                self._recreate(spec, attrs, image_attrs, result)
            else:
                self._create(spec, [])
            attrs = self.engine.container(spec.name)
        elif attrs is not None:
            result["changed"] |= self._attach_missing_networks(spec, attrs, result)

        result["changed"] |= self._run_state(spec, attrs, result)
        result["container"] = describe(self.engine, spec.name)
        return result

    # -- pieces -----------------------------------------------------------------

    def _image(self, spec):
        if not spec.image:
            raise ClockworkError("container %s needs an image" % spec.name)
        policy = getattr(spec, "pull_policy", None) or "missing"
        if policy == "always":
            self._pull(spec)
        attrs = self.engine.image(spec.image)
        if attrs is not None:
            return attrs
        if policy == "never":
            raise ClockworkError("container %s: image %s is not on the Docker host, and pull_policy is never"
                                 % (spec.name, spec.image))
        self._pull(spec)
        return self.engine.image(spec.image)

    def _pull(self, spec):
        try:
            self.engine.pull(spec.image)
        except APIError as exc:
            raise ClockworkError("image %s is not present locally and could not be pulled: %s"
                                 % (spec.image, engine_words(exc)))

    def _create(self, spec, keep_networks, binds=None, anonymous=None):
        """Create the container (not started); returns its id. A container of the same name
        that a concurrent run created is used when it is ours and matches the spec.
        `anonymous`: target -> the old container's anonymous volume a declared anonymous mount keeps."""
        engine = self.engine
        anonymous = anonymous if anonymous is not None else getattr(spec, "kept_anonymous", None)
        networks = list(spec.networks)
        wanted_names = set(n["name"] for n in networks)
        # A network mode (host, none, another container's) is no network: one the old container
        # had in such a mode is not carried, and a container in one joins none.
        networks += [n for n in keep_networks if n["name"] not in wanted_names and n["name"] not in NETWORK_MODES]
        if getattr(spec, "network_mode", None):
            networks = []
        body = create_body(spec, anonymous)
        host_config = dict(body.host, binds=binds or None,
                           network_mode=networks[0]["name"] if networks else getattr(spec, "network_mode", None))
        networking_config = None
        if networks:
            networking_config = engine.networking_config({
                networks[0]["name"]: engine.endpoint_config(**_endpoint(networks[0]))})
        try:
            created = engine.create_container(spec.name, spec.image, host_config=host_config,
                                              networking_config=networking_config, **body.config)
        except APIError as exc:
            if status_of(exc) == CONFLICT:
                existing = self._created_meanwhile(spec)
                if existing is not None:
                    return existing["Id"]
                raise ClockworkError(
                    "cannot create container %s: another container took the name meanwhile (%s); it is "
                    "not this stack's or has other settings, so it is left alone" % (spec.name, _api_message(exc)))
            raise ClockworkError("cannot create container %s: %s" % (spec.name, _api_message(exc)))
        try:
            for network in networks[1:]:
                engine.connect(created["Id"], network["name"], **_endpoint(network))
        except APIError as exc:
            self._remove_new(created["Id"])
            raise ClockworkError("cannot attach container %s to network %s: %s"
                                 % (spec.name, network["name"], _api_message(exc)))
        return created["Id"]

    def _created_meanwhile(self, spec):
        """After a 409 on create: the container another run created, when it is ours and matches.
        The engine reserves the name before the container can be inspected, and the other run may
        still be attaching its networks: it gets a moment (MEANWHILE_SECONDS) to finish."""
        deadline = self.engine.monotonic() + MEANWHILE_SECONDS
        while True:
            attrs = self.engine.container_now(spec.name)
            if attrs and not owned_by((attrs.get("Config") or {}).get("Labels"), spec.stack):
                return None
            running = running_config(attrs) if attrs else None
            if attrs and not drift(spec.comparable(self.engine.image(spec.image), running), running):
                return attrs
            if self.engine.monotonic() >= deadline:
                return None
            self.engine.sleep(0.1)

    def _recreate(self, spec, attrs, image_attrs, result):
        """Replace the container `attrs` by one of `spec`; the name never stays without one."""
        old_id = attrs["Id"]
        aside = aside_name(spec.name, old_id)
        was_running = container_state(attrs)[0] in ("running", "restarting", "paused")
        binds = carried_volumes(attrs, image_attrs, set(m["target"] for m in spec.mounts))
        keep_networks = self._attached_networks(attrs)
        try:
            self.engine.rename(old_id, aside)
        except APIError as exc:
            raise ClockworkError("cannot recreate container %s: renaming it aside to %s failed: %s"
                                 % (spec.name, aside, _api_message(exc)))
        new_id = None
        try:
            if was_running:
                self.engine.stop(old_id, timeout=spec.stop_grace)
            new_id = self._create(spec, keep_networks, binds, kept_anonymous(attrs, spec))
            if spec.state == "started":
                result["actions"].append("start")
                self._start(spec.name)
                self._await_replacement(spec)
        except (ClockworkError, APIError) as exc:
            cause = _api_message(exc)
            problems = self._put_back(spec, old_id, aside, new_id, was_running)
            if problems:
                kept = self.engine.container(aside) is not None
                raise ClockworkError(
                    "container %s could not be recreated: %s\nPutting the previous container back did not "
                    "fully work either (%s); it is kept, with its volumes, %s" % (
                        spec.name, cause, "; ".join(problems),
                        "as %s, and the next run restores it" % aside if kept else "under its name"))
            raise ClockworkError(
                "container %s could not be recreated, so the previous one is back under its name%s, with "
                "its volumes; nothing else changed. Cause: %s"
                % (spec.name, " and running" if was_running else "", cause))
        self._discard(old_id, aside)

    def _replace(self, spec, attrs, image_attrs, result):
        """Start-first (rolling.py): the new container serves before the old one goes."""
        binds = carried_volumes(attrs, image_attrs, set(m["target"] for m in spec.mounts))
        spec.kept_anonymous = kept_anonymous(attrs, spec)   # the new one shares them while both run
        replace_start_first(self, spec, attrs, binds, self._attached_networks(attrs))
        result["actions"].append("start")

    def _await_replacement(self, spec):
        """The new container runs (healthy, when it has a healthcheck), bounded by spec.timeout.

        Waited for here even when the caller defers its waits: the old container goes only then."""
        healthy = has_healthcheck(self.engine.container_now(spec.name))
        try:
            wait_for(self.engine, spec.name, "healthy" if healthy else "started", spec.timeout,
                     just_started=True)
        except ClockworkError:
            # A one-shot container that completed successfully did what it is for.
            if healthy or not condition_reached(self.engine.container(spec.name), "completed_successfully"):
                raise

    def _put_back(self, spec, old_id, aside, new_id, was_running):
        """Undo a failed recreate, and wait until the old container serves again;
        returns what could not be undone."""
        name = spec.name
        problems = []
        if new_id is not None:
            try:
                self._remove_new(new_id)
            except APIError as exc:
                problems.append("removing the new container: %s" % _api_message(exc))
        try:
            self.engine.rename(old_id, name)
        except APIError as exc:
            problems.append("renaming %s back to %s: %s" % (aside, name, _api_message(exc)))
        else:
            if was_running:
                try:
                    self.engine.start(old_id)
                    wait_for(self.engine, name, "healthy" if has_healthcheck(self.engine.container(name))
                             else "started", spec.timeout)
                except (APIError, ClockworkError) as exc:
                    problems.append("starting it again: %s" % _api_message(exc))
        return problems

    def _remove_new(self, container_id):
        # Its own anonymous volumes go with it; carried ones are binds and stay.
        self.engine.remove_container(container_id, force=True, volumes=True)

    def _discard(self, old_id, aside):
        """Remove the replaced container. Its volumes stay: the carried ones are in use, and
        any other one is data that is kept, as Compose keeps it. When removal fails, the next
        run removes it (see `_repair_interrupted`)."""
        try:
            self.engine.remove_container(old_id, force=True)
        except APIError:
            pass

    def _leftovers(self, spec):
        """Containers of this stack that an interrupted recreate left aside, newest first."""
        return marked_leftovers(self.engine, spec, ASIDE_MARK)

    def _repair_interrupted(self, spec, attrs, repairs):
        """Put right what a run killed in the middle of a recreate left: the previous container
        renamed aside, alone or beside a replacement. Returns the container under the name."""
        leftovers = self._leftovers(spec)
        if not leftovers:
            return attrs
        newest, older = leftovers[0], leftovers[1:]
        aside = newest["Names"][0].lstrip("/")
        status = container_state(attrs)[0] if attrs else "absent"
        if attrs is None or (spec.state == "started" and status not in ("running", "restarting")):
            # The replacement never ran (or was never made): the previous container comes back,
            # and the convergence replaces it again, safely.
            repairs.append("restore %s from %s, left by an interrupted run" % (spec.name, aside))
            try:
                if attrs is not None:
                    # Any volume it made stays: it may hold data written since.
                    self.engine.remove_container(attrs["Id"], force=True)
                self.engine.rename(newest["Id"], spec.name)
            except APIError as exc:
                raise ClockworkError("cannot restore container %s from %s: %s"
                                     % (spec.name, aside, _api_message(exc)))
            attrs = self.engine.container(spec.name)
        else:
            older = leftovers
        for container in older:
            name = container["Names"][0].lstrip("/")
            repairs.append("remove %s, left by an interrupted run" % name)
            self._discard(container["Id"], name)
        return attrs

    def _update(self, spec, update):
        """`docker update`: a restart policy or a limit changed in place, the container kept as it runs."""
        try:
            self.engine.update_container(spec.name, **update)
        except APIError as exc:
            raise ClockworkError("cannot update container %s: %s" % (spec.name, _api_message(exc)))

    def _start(self, name):
        try:
            self.engine.start(name)
        except APIError as exc:
            raise ClockworkError("cannot start container %s: %s\n%s" % (
                name, _api_message(exc), self.engine.logs_tail(name)))

    def _attached_networks(self, attrs):
        """Networks attached by connections after creation; carried over on recreation."""
        networks = []
        for name, info in (attrs["NetworkSettings"].get("Networks") or {}).items():
            short_id = attrs["Id"][:12]
            aliases = [a for a in info.get("Aliases") or [] if a != short_id]
            networks.append({"name": name, "aliases": sorted(aliases)})
        return networks

    def _attach_missing_networks(self, spec, attrs, result):
        attached = attrs["NetworkSettings"].get("Networks") or {}
        changed = False
        for network in spec.networks:
            have = attached.get(network["name"])
            address = ((have or {}).get("IPAMConfig") or {}).get("IPv4Address")
            if have is not None and set(network["aliases"]) <= set(have.get("Aliases") or []) \
                    and network.get("ipv4_address") in (None, address):
                continue
            changed = True
            result["actions"].append("attach %s" % network["name"])
            try:
                if have is not None:  # aliases can only be set on connect
                    self.engine.disconnect(spec.name, network["name"])
                self.engine.connect(spec.name, network["name"], **_endpoint(network))
            except APIError as exc:
                raise ClockworkError("cannot attach container %s to network %s: %s"
                                     % (spec.name, network["name"], engine_words(exc)))
        return changed

    def _run_state(self, spec, attrs, result):
        status = container_state(attrs)[0] if attrs else "absent"
        running = status in ("running", "restarting")
        if spec.state == "started" and not running:
            result["actions"].append("start")
            self._start(spec.name)
            changed = True
        elif spec.state == "stopped" and running:
            result["actions"].append("stop")
            try:
                self.engine.stop(spec.name)
            except APIError as exc:
                raise ClockworkError("cannot stop container %s: %s" % (spec.name, _api_message(exc)))
            changed = True
        else:
            changed = False
        if spec.state == "started" and spec.wait:
            attrs = self.engine.container(spec.name)
            wait_for(self.engine, spec.name, "healthy" if has_healthcheck(attrs) else "started",
                     spec.timeout, just_started=changed)
        return changed

    def _remove(self, spec, attrs):
        running = bool(attrs) and container_state(attrs)[0] in ("running", "restarting")
        actions = (["stop"] if running else []) + (["remove"] if attrs else [])
        result = {"changed": attrs is not None, "actions": actions, "reasons": [],
                  "diff": masked_diff(running_config(attrs) if attrs else None, None, spec.secret_env),
                  "container": {"name": spec.name, "state": "absent"}}
        if attrs:
            # Stopped first, as `docker stop` does (its stop signal, SIGKILL after the grace period):
            # `docker rm -f` would kill it at once.
            remove_gracefully(self.engine, spec.name, attrs["Id"], spec.stop_grace, networks=False)
        return result
