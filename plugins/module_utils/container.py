# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge one container: normalise the wanted and the running configuration,
compare them, and leave it alone, create it, or recreate it saying what drifted."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import shlex
import time

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    KEPT_MOUNTS_LABEL, PORTS_LABEL, ClockworkError, env_dict, owned_by, owner_labels, ports_from_labels)
from ansible_collections.clockwork.connections.plugins.module_utils.masking import masked_command, masked_env
from ansible_collections.clockwork.connections.plugins.module_utils.docker_client import (
    APIError, container_state)


# The argument spec shared by the container module and the stack module's resources.
CONTAINER_ARGS = dict(
    name=dict(type="str", required=True),
    image=dict(type="str"),
    command=dict(type="raw"),
    env=dict(type="dict", default={}),
    ports=dict(type="list", elements="raw", default=[]),
    mounts=dict(type="list", elements="dict", default=[], options=dict(
        type=dict(type="str", choices=["bind", "volume"], default="volume"),
        source=dict(type="str", required=True),
        target=dict(type="str", required=True),
        read_only=dict(type="bool", default=False),
    )),
    networks=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True),
        aliases=dict(type="list", elements="str", default=[]),
    )),
    healthcheck=dict(type="dict", options=dict(
        test=dict(type="raw", required=True),
        interval=dict(type="str", default="30s"),
        timeout=dict(type="str", default="30s"),
        retries=dict(type="int", default=3),
        start_period=dict(type="str", default="0s"),
    )),
    restart_policy=dict(type="str", default="no",
                        choices=["no", "always", "on-failure", "unless-stopped"]),
    labels=dict(type="dict", default={}),
    state=dict(type="str", default="started", choices=["present", "started", "stopped", "absent"]),
    wait=dict(type="bool", default=True),
    timeout=dict(type="int", default=60),
)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_NS = {"ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}


def duration_ns(value):
    """`30s`, `1m30s`, `500ms` or a number of seconds -> nanoseconds, as Docker keeps them."""
    if isinstance(value, (int, float)) or str(value).isdigit():
        return int(float(value) * 10 ** 9)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ClockworkError("invalid duration %r: use forms like 30s, 1m30s or 500ms" % value)
    return int(sum(float(n) * _UNIT_NS[u] for n, u in parts))


def parse_port(port):
    """One port declaration -> (container_port/proto, host_ip, host_port).

    Accepts 8000, "8000/udp", "8080:80", "127.0.0.1:8080:80/tcp" or a dict with
    container_port, host_port, host_ip and protocol. host_port is None for a port that is
    declared but not published, and "" for one published on a random host port.
    """
    if isinstance(port, dict):
        if "container_port" not in port:
            raise ClockworkError("port %r needs container_port" % (port,))
        proto = port.get("protocol", "tcp")
        published = port.get("host_port") is not None or bool(port.get("host_ip"))
        return ("%s/%s" % (port["container_port"], proto), str(port.get("host_ip") or ""),
                str(port.get("host_port") or "") if published else None)
    text = str(port)
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
    fields = text.rsplit(":", 2) if text.count(":") <= 2 else None
    if not fields or not all(f.isdigit() for f in fields[-2:] if f) or not fields[-1].isdigit():
        raise ClockworkError("invalid port %r: use 80, 8080:80 or 127.0.0.1:8080:80[/udp]" % port)
    if proto not in ("tcp", "udp", "sctp"):
        raise ClockworkError("invalid protocol in port %r" % port)
    container_port = "%s/%s" % (fields[-1], proto)
    if len(fields) == 1:
        return container_port, "", None
    if len(fields) == 2:
        return container_port, "", fields[0]
    return container_port, fields[0], fields[1]


def normalise_healthcheck(healthcheck):
    if not healthcheck:
        return None
    test = healthcheck["test"]
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    elif test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        test = ["CMD"] + list(test)
    return {
        "test": list(test),
        "interval": duration_ns(healthcheck.get("interval", "30s")),
        "timeout": duration_ns(healthcheck.get("timeout", "30s")),
        "retries": int(healthcheck.get("retries", 3)),
        "start_period": duration_ns(healthcheck.get("start_period", "0s")),
    }


def normalise_mount(mount, base_dir=None):
    source = mount["source"]
    kind = mount.get("type", "volume")
    if kind == "bind" and not os.path.isabs(source):
        source = os.path.normpath(os.path.join(base_dir or os.getcwd(), source))
    return {"type": kind, "source": source, "target": mount["target"],
            "read_only": bool(mount.get("read_only", False))}


class ContainerSpec(object):
    """The wanted configuration of one container, normalised for comparison."""

    def __init__(self, params, stack, base_dir=None):
        self.name = params["name"]
        self.stack = stack
        self.image = params.get("image")
        command = params.get("command")
        self.command = shlex.split(command) if isinstance(command, str) else command
        self.env = dict((k, "" if v is None else str(v)) for k, v in (params.get("env") or {}).items())
        self.ports = [parse_port(p) for p in params.get("ports") or []]
        self.mounts = [normalise_mount(m, base_dir) for m in params.get("mounts") or []]
        self.networks = [{"name": n["name"], "aliases": sorted(n.get("aliases") or [])}
                         for n in params.get("networks") or []]
        self.healthcheck = normalise_healthcheck(params.get("healthcheck"))
        self.restart_policy = params.get("restart_policy") or "no"
        self.labels = dict((k, str(v)) for k, v in (params.get("labels") or {}).items())
        self.labels.update(owner_labels(stack, self.name))
        self.labels[PORTS_LABEL] = ",".join(p[0] for p in self.ports)
        self.state = params.get("state", "started")
        self.wait = params.get("wait", True)
        self.timeout = params.get("timeout", 60)
        self.secret_env = set()
        targets = [m["target"] for m in self.mounts]
        if len(set(targets)) != len(targets):
            raise ClockworkError("container %s mounts the same target twice" % self.name)

    def declared_ports(self):
        return [p[0] for p in self.ports]

    def comparable(self, image_attrs):
        """The wanted settings in the same normal form as `running_config`."""
        config = (image_attrs or {}).get("Config") or {}
        env = env_dict(config.get("Env"))
        env.update(self.env)
        labels = dict(config.get("Labels") or {})
        labels.update(self.labels)
        return {
            "image": (image_attrs or {}).get("Id", self.image),
            "command": self.command if self.command is not None else (config.get("Cmd") or []),
            "env": env,
            "ports": sorted("%s|%s|%s" % p for p in self.ports if p[2] is not None),
            "mounts": sorted(self.mounts, key=lambda m: m["target"]),
            "healthcheck": self.healthcheck if self.healthcheck else _image_healthcheck(config),
            "restart_policy": self.restart_policy,
            "labels": labels,
        }


def _image_healthcheck(config):
    hc = config.get("Healthcheck")
    if not hc or not hc.get("Test") or hc["Test"] == ["NONE"]:
        return None
    return {"test": hc["Test"], "interval": hc.get("Interval", 0) or duration_ns("30s"),
            "timeout": hc.get("Timeout", 0) or duration_ns("30s"),
            "retries": hc.get("Retries", 0) or 3, "start_period": hc.get("StartPeriod", 0)}


def running_config(attrs):
    """An inspected container's settings in the normal form of `ContainerSpec.comparable`."""
    config = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    ports = []
    for container_port, bindings in (host.get("PortBindings") or {}).items():
        for binding in bindings or []:
            ports.append("%s|%s|%s" % (container_port, binding.get("HostIp") or "",
                                       binding.get("HostPort") or ""))
    mounts = [{"type": m.get("Type", "volume"), "source": m.get("Source"), "target": m.get("Target"),
               "read_only": bool(m.get("ReadOnly", False))} for m in host.get("Mounts") or []]
    return {
        "image": attrs.get("Image"),
        "command": config.get("Cmd") or [],
        "env": env_dict(config.get("Env")),
        "ports": sorted(ports),
        "mounts": sorted(mounts, key=lambda m: m["target"]),
        "healthcheck": _image_healthcheck(config),
        "restart_policy": (host.get("RestartPolicy") or {}).get("Name") or "no",
        "labels": dict(config.get("Labels") or {}),
    }


def drift(wanted, running):
    """The names of the settings that differ, with a short reason for each."""
    reasons = []
    for key in ("image", "command", "ports", "mounts", "healthcheck", "restart_policy"):
        if wanted[key] != running[key]:
            reasons.append(key)
    for kind in ("env", "labels"):
        changed = sorted(k for k in set(wanted[kind]) | set(running[kind])
                         if wanted[kind].get(k) != running[kind].get(k))
        if changed:
            reasons.append("%s %s" % (kind, ", ".join(changed)))
    return reasons


def masked(config, secret_env):
    """A container's settings as a diff may show them: secret env values masked, by name too,
    so that a previous value, which no declaration holds any more, is never shown."""
    if not config:
        return config
    shown = dict(config)
    shown["env"] = masked_env(config["env"], secret_env)
    shown["command"] = masked_command(config.get("command"))
    return shown


def describe(engine, name):
    """What the modules return about a container: id, image, state, health, ports, addresses."""
    attrs = engine.container(name)
    if not attrs:
        return {"name": name, "state": "absent"}
    status, health = container_state(attrs)
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    declared = ports_from_labels(labels)
    return {
        "id": attrs["Id"], "name": name, "image": attrs["Config"].get("Image"),
        "image_id": attrs.get("Image"), "state": status, "health": health,
        "ports": declared,
        "exposed_ports": sorted((attrs["Config"].get("ExposedPorts") or {}).keys()),
        "networks": dict((net, info.get("IPAddress"))
                         for net, info in (attrs["NetworkSettings"].get("Networks") or {}).items()),
    }


def _kept_targets(labels):
    return [t for t in (labels or {}).get(KEPT_MOUNTS_LABEL, "").split(",") if t]


def keep_connection_mounts(spec, attrs):
    """Mounts that connections added to a running container (listed in a label) stay,
    as attached networks do, so that converging the container's own declaration
    neither drops them nor reports drift."""
    kept = _kept_targets((attrs.get("Config") or {}).get("Labels"))
    declared = set(m["target"] for m in spec.mounts)
    carried = [m for m in running_config(attrs)["mounts"] if m["target"] in kept and m["target"] not in declared]
    spec.mounts.extend(carried)
    targets = set(_kept_targets(spec.labels)) | set(m["target"] for m in carried)
    if targets:
        spec.labels[KEPT_MOUNTS_LABEL] = ",".join(sorted(targets))


def spec_from_container(attrs, stack):
    """The declaration that would give this running container, for changing one setting."""
    config, host = attrs["Config"], attrs["HostConfig"]
    labels = config.get("Labels") or {}
    bindings = host.get("PortBindings") or {}
    ports = []
    for port in ports_from_labels(labels):
        published = bindings.get(port) or [None]
        ports.extend("%s:%s:%s" % (b.get("HostIp") or "", b.get("HostPort") or "", port) if b else port
                     for b in published)
    hc = _image_healthcheck(config)
    healthcheck = None if not hc else dict(
        test=hc["test"], retries=hc["retries"],
        **dict((k, "%dms" % (hc[k] // 10 ** 6)) for k in ("interval", "timeout", "start_period")))
    params = {
        "name": attrs["Name"].lstrip("/"), "image": config.get("Image"), "command": config.get("Cmd"),
        "env": env_dict(config.get("Env")), "ports": ports,
        "mounts": running_config(attrs)["mounts"], "healthcheck": healthcheck,
        "restart_policy": (host.get("RestartPolicy") or {}).get("Name") or "no",
        "labels": labels, "state": "started" if attrs["State"].get("Running") else "present",
    }
    return ContainerSpec(params, stack)


def ensure_mounted(ctx, endpoint, mounts, result):
    """Mount into an existing container of the stack (one recreation for all), unless it already is.

    Used for what a connection puts into its `to` container: a shared volume, TLS files.
    A container that does not exist yet gets the mounts when the stack declares it.
    Returns True when the container is (or, in check mode, would be) recreated for them.
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
    if not missing or ctx.check_mode:
        return bool(missing)
    spec = spec_from_container(endpoint.attrs, ctx.stack)
    spec.mounts.extend(missing)
    spec.labels[KEPT_MOUNTS_LABEL] = ",".join(sorted(set(_kept_targets(spec.labels)) | set(m["target"] for m in missing)))
    ContainerConverger(ctx.engine).converge(spec)
    return True


# -- safe recreation: helpers of ContainerConverger ---------------------------------

# A container being replaced waits under this name until its successor runs; a run killed
# half-way leaves it behind, and the next run puts things right.
ASIDE_MARK = "_clockwork_old_"
ASIDE_LIST = ("containers-aside",)   # the engine's memory of them, for one run
_ANONYMOUS_VOLUME = re.compile(r"^[0-9a-f]{64}$")
# The old container is stopped as `docker stop` does, then the new one may use its volumes.
STOP_SECONDS = 10


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
        if _ANONYMOUS_VOLUME.match(name) or target in image_paths:
            binds.append("%s:%s:%s" % (name, target, "rw" if mount.get("RW", True) else "ro"))
    return sorted(binds)


def _api_message(exc):
    if isinstance(exc, ClockworkError):
        return exc.msg
    return getattr(exc, "explanation", None) or str(exc)


class ContainerConverger(object):
    """Brings one container to its wanted state. `check_mode` changes nothing.

    A container is replaced without a gap that loses anything: the old one is renamed aside
    and stopped, the new one created (with the old one's anonymous volumes) and started, and
    the old one removed only once the new one runs, and is healthy when it has a healthcheck.
    On any failure the new one goes and the old one comes back as it was."""

    def __init__(self, engine, check_mode=False):
        self.engine = engine
        self.check_mode = check_mode

    def converge(self, spec):
        attrs = self.engine.container(spec.name)
        if attrs and not owned_by(attrs["Config"].get("Labels"), spec.stack):
            raise ClockworkError(
                "container %s exists but is not owned by stack %s (no label io.clockwork.stack=%s): "
                "refusing to take it over" % (spec.name, spec.stack, spec.stack))
        repairs = []
        attrs = self._repair_interrupted(spec, attrs, repairs)
        if spec.state == "absent":
            result = self._remove(spec, attrs)
            result["actions"][:0] = repairs
            result["changed"] |= bool(repairs)
            return result

        if attrs:
            keep_connection_mounts(spec, attrs)
        image_attrs = self._image(spec)
        wanted = spec.comparable(image_attrs)
        before = running_config(attrs) if attrs else None
        result = {"changed": bool(repairs), "actions": list(repairs), "reasons": [],
                  "diff": {"before": masked(before, spec.secret_env) or {},
                           "after": masked(wanted, spec.secret_env)}}

        changes = []
        if attrs is None:
            changes.append("create")
        else:
            reasons = drift(wanted, before)
            if reasons:
                changes.append("recreate")
                result["reasons"] = reasons
        if changes:
            result["changed"] = True
            result["actions"].extend(changes)
            if not self.check_mode:
                if attrs:
                    self._recreate(spec, attrs, image_attrs, result)
                else:
                    self._create(spec, [])
                attrs = self.engine.container(spec.name)
        elif attrs is not None:
            result["changed"] |= self._attach_missing_networks(spec, attrs, result)

        # A recreated container is a new one: in check mode too, it would need starting.
        recreated_in_check = self.check_mode and "recreate" in result["actions"]
        result["changed"] |= self._run_state(spec, None if recreated_in_check else attrs, result)
        result["container"] = describe(self.engine, spec.name)
        return result

    # -- pieces -----------------------------------------------------------------

    def _image(self, spec):
        if not spec.image:
            raise ClockworkError("container %s needs an image" % spec.name)
        attrs = self.engine.image(spec.image)
        if attrs is not None or self.check_mode:
            return attrs
        repository, _sep, tag = spec.image.partition(":") if "@" not in spec.image else (spec.image, "", "")
        try:
            self.engine.api.pull(repository, tag=tag or "latest")
        except APIError as exc:
            raise ClockworkError("image %s is not present locally and could not be pulled: %s"
                                 % (spec.image, exc.explanation or exc))
        self.engine.forget("image", spec.image)
        return self.engine.image(spec.image)

    def _create(self, spec, keep_networks, binds=None):
        """Create the container (not started); returns its id. A container of the same name
        that a concurrent run created is used when it is ours and matches the spec."""
        api = self.engine.api
        networks = list(spec.networks)
        wanted_names = set(n["name"] for n in networks)
        networks += [n for n in keep_networks if n["name"] not in wanted_names]
        port_bindings = {}
        for container_port, host_ip, host_port in spec.ports:
            if host_port is not None:  # "" publishes on a random host port
                binding = (host_ip, host_port or None) if host_ip else (host_port or None)
                port_bindings.setdefault(container_port, []).append(binding)
        from docker.types import Mount  # pylint: disable=import-outside-toplevel
        host_config = api.create_host_config(
            port_bindings=port_bindings,
            binds=binds or None,
            mounts=[Mount(m["target"], m["source"], type=m["type"], read_only=m["read_only"])
                    for m in spec.mounts],
            restart_policy={"Name": spec.restart_policy} if spec.restart_policy != "no" else None,
            network_mode=networks[0]["name"] if networks else None,
        )
        networking_config = None
        if networks:
            networking_config = api.create_networking_config({
                networks[0]["name"]: api.create_endpoint_config(aliases=networks[0]["aliases"] or None)})
        healthcheck = None
        if spec.healthcheck:
            hc = spec.healthcheck
            healthcheck = {"test": hc["test"], "interval": hc["interval"], "timeout": hc["timeout"],
                           "retries": hc["retries"], "start_period": hc["start_period"]}
        try:
            created = api.create_container(
                spec.image, command=spec.command, name=spec.name, environment=spec.env,
                ports=[tuple(p[0].split("/")) for p in spec.ports] or None, labels=spec.labels,
                healthcheck=healthcheck, host_config=host_config, networking_config=networking_config)
        except APIError as exc:
            if getattr(exc, "status_code", None) == 409:
                existing = self._created_meanwhile(spec)
                if existing is not None:
                    return existing["Id"]
                raise ClockworkError(
                    "cannot create container %s: another container took the name meanwhile (%s); it is "
                    "not this stack's or has other settings, so it is left alone" % (spec.name, _api_message(exc)))
            raise ClockworkError("cannot create container %s: %s" % (spec.name, _api_message(exc)))
        try:
            for network in networks[1:]:
                api.connect_container_to_network(created["Id"], network["name"],
                                                 aliases=network["aliases"] or None)
        except APIError as exc:
            self._remove_new(created["Id"])
            raise ClockworkError("cannot attach container %s to network %s: %s"
                                 % (spec.name, network["name"], _api_message(exc)))
        self.engine.forget("container", spec.name)
        return created["Id"]

    def _created_meanwhile(self, spec):
        """After a 409 on create: the container another run created, when it is ours and matches.
        The engine reserves the name before the container can be inspected, and the other run may
        still be attaching its networks: it gets a moment (MEANWHILE_SECONDS) to finish."""
        deadline = time.monotonic() + MEANWHILE_SECONDS
        while True:
            self.engine.forget("container", spec.name)
            attrs = self.engine.container(spec.name)
            if attrs and not owned_by((attrs.get("Config") or {}).get("Labels"), spec.stack):
                return None
            if attrs and not drift(spec.comparable(self.engine.image(spec.image)), running_config(attrs)):
                return attrs
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def _recreate(self, spec, attrs, image_attrs, result):
        """Replace the container `attrs` by one of `spec`; the name never stays without one."""
        old_id = attrs["Id"]
        aside = aside_name(spec.name, old_id)
        was_running = container_state(attrs)[0] in ("running", "restarting", "paused")
        binds = carried_volumes(attrs, image_attrs, set(m["target"] for m in spec.mounts))
        keep_networks = self._attached_networks(attrs)
        try:
            self.engine.api.rename(old_id, aside)
        except APIError as exc:
            raise ClockworkError("cannot recreate container %s: renaming it aside to %s failed: %s"
                                 % (spec.name, aside, _api_message(exc)))
        self._forget(spec.name, aside)
        new_id = None
        try:
            if was_running:
                self.engine.api.stop(old_id, timeout=STOP_SECONDS)
            new_id = self._create(spec, keep_networks, binds)
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

    def _await_replacement(self, spec):
        """The new container runs (healthy, when it has a healthcheck), bounded by spec.timeout.

        Waited for here even when the caller defers its waits: the old container goes only then."""
        self.engine.forget("container", spec.name)
        healthy = has_healthcheck(self.engine.container(spec.name))
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
            self.engine.api.rename(old_id, name)
        except APIError as exc:
            problems.append("renaming %s back to %s: %s" % (aside, name, _api_message(exc)))
        else:
            if was_running:
                try:
                    self.engine.api.start(old_id)
                    self._forget(name, aside)
                    wait_for(self.engine, name, "healthy" if has_healthcheck(self.engine.container(name))
                             else "started", spec.timeout)
                except (APIError, ClockworkError) as exc:
                    problems.append("starting it again: %s" % _api_message(exc))
        self._forget(name, aside)
        return problems

    def _remove_new(self, container_id):
        # Its own anonymous volumes go with it; carried ones are binds and stay.
        self.engine.api.remove_container(container_id, force=True, v=True)

    def _discard(self, old_id, aside):
        """Remove the replaced container. Its volumes stay: the carried ones are in use, and
        any other one is data that is kept, as Compose keeps it. When removal fails, the next
        run removes it (see `_repair_interrupted`)."""
        try:
            self.engine.api.remove_container(old_id, force=True)
        except APIError:
            pass
        self._forget(aside)

    def _leftovers(self, spec):
        """Containers of this stack that an interrupted recreate left aside, newest first."""
        prefix = "/" + spec.name + ASIDE_MARK
        # One list of every container set aside serves the whole run (a stack asks once per
        # container); whatever renames or removes one forgets it (`_forget`).
        listed = self.engine._cache.get(ASIDE_LIST)  # pylint: disable=protected-access  # the engine's per-run memory
        if listed is None:
            try:
                listed = self.engine.api.containers(all=True, filters={"name": ASIDE_MARK})
            except APIError as exc:
                raise ClockworkError("cannot list containers of %s: %s" % (spec.name, _api_message(exc)))
            self.engine._cache[ASIDE_LIST] = listed  # pylint: disable=protected-access
        found = [c for c in listed
                 if any(n.startswith(prefix) for n in c.get("Names") or [])
                 and owned_by(c.get("Labels"), spec.stack)]
        return sorted(found, key=lambda c: c.get("Created") or 0, reverse=True)

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
            if self.check_mode:
                attrs = self.engine.container(aside)
            else:
                try:
                    if attrs is not None:
                        # Any volume it made stays: it may hold data written since.
                        self.engine.api.remove_container(attrs["Id"], force=True)
                    self.engine.api.rename(newest["Id"], spec.name)
                except APIError as exc:
                    raise ClockworkError("cannot restore container %s from %s: %s"
                                         % (spec.name, aside, _api_message(exc)))
                self._forget(spec.name, aside)
                attrs = self.engine.container(spec.name)
        else:
            older = leftovers
        for container in older:
            name = container["Names"][0].lstrip("/")
            repairs.append("remove %s, left by an interrupted run" % name)
            if not self.check_mode:
                self._discard(container["Id"], name)
        return attrs

    def _forget(self, *names):
        for name in names:
            self.engine.forget("container", name)
        self.engine._cache.pop(ASIDE_LIST, None)  # pylint: disable=protected-access  # see _leftovers

    def _start(self, name):
        try:
            self.engine.api.start(name)
        except APIError as exc:
            raise ClockworkError("cannot start container %s: %s\n%s" % (
                name, _api_message(exc), self.engine.logs_tail(name)))
        self.engine.forget("container", name)

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
            if have is not None and set(network["aliases"]) <= set(have.get("Aliases") or []):
                continue
            changed = True
            result["actions"].append("attach %s" % network["name"])
            if self.check_mode:
                continue
            try:
                if have is not None:  # aliases can only be set on connect
                    self.engine.api.disconnect_container_from_network(spec.name, network["name"])
                self.engine.api.connect_container_to_network(
                    spec.name, network["name"], aliases=network["aliases"] or None)
            except APIError as exc:
                raise ClockworkError("cannot attach container %s to network %s: %s"
                                     % (spec.name, network["name"], exc.explanation or exc))
            self.engine.forget("container", spec.name)
        return changed

    def _run_state(self, spec, attrs, result):
        status = container_state(attrs)[0] if attrs else "absent"
        running = status in ("running", "restarting")
        if spec.state == "started" and not running:
            result["actions"].append("start")
            if not self.check_mode:
                self._start(spec.name)
            changed = True
        elif spec.state == "stopped" and running:
            result["actions"].append("stop")
            if not self.check_mode:
                try:
                    self.engine.api.stop(spec.name)
                except APIError as exc:
                    raise ClockworkError("cannot stop container %s: %s" % (spec.name, _api_message(exc)))
                self.engine.forget("container", spec.name)
            changed = True
        else:
            changed = False
        if spec.state == "started" and spec.wait and not self.check_mode:
            attrs = self.engine.container(spec.name)
            wait_for(self.engine, spec.name, "healthy" if has_healthcheck(attrs) else "started",
                     spec.timeout, just_started=changed)
        return changed

    def _remove(self, spec, attrs):
        result = {"changed": attrs is not None, "actions": ["remove"] if attrs else [], "reasons": [],
                  "diff": {"before": masked(running_config(attrs), spec.secret_env) if attrs else {},
                           "after": {}},
                  "container": {"name": spec.name, "state": "absent"}}
        if attrs and not self.check_mode:
            self._force_remove(spec.name)
        return result

    def _force_remove(self, name):
        try:
            self.engine.api.remove_container(name, force=True)
        except APIError as exc:
            raise ClockworkError("cannot remove container %s: %s" % (name, exc.explanation or exc))
        self.engine.forget("container", name)


# How long a container another run is creating under the same name may take to become visible
# and complete, before it counts as someone else's.
MEANWHILE_SECONDS = 5

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
    """Poll, with backoff and no fixed sleep, until the container reaches `condition`.
    A container `just_started` (at `since`, a time.monotonic(); else now) must have run
    SETTLE_SECONDS since.

    Fails with its state and last log lines when the condition is lost or time runs out.
    """
    started = time.monotonic()
    deadline = started + timeout
    since = started if since is None else since
    delay = 0.05
    while True:
        engine.forget("container", name)
        attrs = engine.container(name)
        settled = not just_started or time.monotonic() - since >= SETTLE_SECONDS
        if attrs and condition_reached(attrs, condition) and (settled or condition != "started"):
            return container_state(attrs)
        if condition_lost(attrs, condition) or time.monotonic() >= deadline:
            status, health = container_state(attrs)
            what = "did not become %s within %ss" % (condition.replace("_", " "), timeout)
            if condition_lost(attrs, condition):
                what = "is %s%s instead of %s" % (
                    status, " (%s)" % health if health else "", condition.replace("_", " "))
            raise ClockworkError("%s%s %s (state %s, health %s); last log lines:\n%s" % (
                who + ": " if who else "", name, what, status, health, engine.logs_tail(name)))
        unsettled = SETTLE_SECONDS - (time.monotonic() - since) if attrs and condition == "started" and \
            condition_reached(attrs, condition) else 0
        # Running but not settled: nothing to learn before it has (fewer inspects for a busy engine).
        time.sleep(max(delay, unsettled))
        delay = min(delay * 2, 0.5)


def has_healthcheck(attrs):
    test = (((attrs or {}).get("Config") or {}).get("Healthcheck") or {}).get("Test")
    return bool(test) and test != ["NONE"]
