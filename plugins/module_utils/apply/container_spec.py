# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container as declared and as running: the argument spec, the normalised wanted
configuration (ContainerSpec), the running one read back from an inspect, and the drift
between them that makes a recreate, with the reasons masked."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import shlex

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    KEPT_MOUNTS_LABEL, PORTS_LABEL, REPLICA_LABEL, ClockworkError, env_dict, owner_labels, ports_from_labels)
from ansible_collections.clockwork.connections.plugins.module_utils.differences import differences, entries, value
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import container_state


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
    # Each grants the container part of the host; on Swarm only cap_add and cap_drop exist.
    privileged=dict(type="bool", default=False),
    cap_add=dict(type="list", elements="str", default=[]),
    cap_drop=dict(type="list", elements="str", default=[]),
    devices=dict(type="list", elements="str", default=[]),
    pid_mode=dict(type="str"),
    ipc_mode=dict(type="str"),
    userns_mode=dict(type="str"),
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


# The grants of the host, as the spec keeps them; one unset on both sides is neither compared nor shown.
GRANTS = ("privileged", "cap_add", "cap_drop", "devices", "pid_mode", "ipc_mode", "userns_mode")
# What the engine gives a container that declares no ipc_mode (it depends on the engine's version
# and settings): any of them is what an undeclared ipc_mode finds.
ENGINE_IPC_MODES = ("", "private", "shareable")
_NAMESPACE_MODES = {"pid_mode": ("host",), "ipc_mode": ("none", "private", "shareable", "host"),
                    "userns_mode": ("host",)}
_CAPABILITY = re.compile(r"^(ALL|CAP_[A-Z0-9_]+)$")


def capability(name):
    """A capability as compared: upper case with the CAP_ prefix (ALL stays ALL), as the engine
    takes `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` alike."""
    text = str(name).strip().upper()
    return text if text == "ALL" or text.startswith("CAP_") else "CAP_" + text


def parse_device(device):
    """`/dev/x[:/dev/y][:rwm]`, as `docker run --device` and Compose take it ->
    (path on the host, path in the container, cgroup permissions)."""
    parts = str(device).split(":")
    host, inside, permissions = parts[0], parts[0], "rwm"
    if len(parts) == 2 and parts[1] and set(parts[1]) <= set("rwm"):
        permissions = parts[1]
    elif len(parts) in (2, 3):
        inside = parts[1]
        permissions = parts[2] if len(parts) == 3 else permissions
    if len(parts) > 3 or not host.startswith("/") or not inside.startswith("/") or not permissions \
            or not set(permissions) <= set("rwm") or len(set(permissions)) != len(permissions):
        raise ClockworkError("invalid device %r: use /dev/x, /dev/x:/dev/y or /dev/x:/dev/y:rwm" % (device,))
    return host, inside, permissions


def device_text(host, inside, permissions):
    return "%s:%s:%s" % (host, inside, permissions or "rwm")


def normalise_grants(params, name):
    """The grants of a declaration in normal form; an invalid one names the container and the field."""
    grants = {"privileged": bool(params.get("privileged"))}
    for key in ("cap_add", "cap_drop"):
        caps = sorted(set(capability(c) for c in params.get(key) or []))
        bad = [c for c in caps if not _CAPABILITY.match(c)]
        if bad:
            raise ClockworkError("container %s: %s: %s is not a capability name (like NET_ADMIN or CAP_CHOWN)"
                                 % (name, key, ", ".join(bad)))
        grants[key] = caps
    try:
        grants["devices"] = sorted(set(device_text(*parse_device(d)) for d in params.get("devices") or []))
    except ClockworkError as exc:
        raise ClockworkError("container %s: devices: %s" % (name, exc.msg))
    for key, modes in _NAMESPACE_MODES.items():
        mode = params.get(key) or None
        shared = key != "userns_mode" and mode is not None and mode.startswith("container:") and len(mode) > 10
        if mode is not None and mode not in modes and not shared:
            raise ClockworkError("container %s: %s: %r is not one of %s" % (
                name, key, mode, ", ".join(modes + (() if key == "userns_mode" else ("container:<name>",)))))
        grants[key] = mode
    return grants


def _set_grants(settings):
    """Settings with the grants that are unset left out: a container that has none compares and
    shows as it did before these fields existed."""
    return dict((k, v) for k, v in settings.items() if v)


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
        for key, grant in normalise_grants(params, self.name).items():
            setattr(self, key, grant)
        self.state = params.get("state", "started")
        self.wait = params.get("wait", True)
        self.timeout = params.get("timeout", 60)
        self.secret_env = set()
        # How a changed container is replaced (rolling.py); the stack sets these per resource.
        self.alias = self.name             # the DNS name its clients use: the resource's
        self.update_order = "stop-first"   # or "start-first", or "auto" (decided by rolling.resolved_order)
        self.stop_grace = 10               # seconds `docker stop` waits before it kills
        targets = [m["target"] for m in self.mounts]
        if len(set(targets)) != len(targets):
            raise ClockworkError("container %s mounts the same target twice" % self.name)

    def declared_ports(self):
        return [p[0] for p in self.ports]

    def comparable(self, image_attrs, running=None):
        """The wanted settings in the same normal form as `running_config`. `running`: the running
        container's, whose engine-chosen ipc mode an undeclared ipc_mode takes."""
        config = (image_attrs or {}).get("Config") or {}
        env = env_dict(config.get("Env"))
        env.update(self.env)
        labels = dict(config.get("Labels") or {})
        labels.update(self.labels)
        labels.pop(REPLICA_LABEL, None)
        grants = _set_grants(dict((key, getattr(self, key)) for key in GRANTS))
        if not self.ipc_mode and (running or {}).get("ipc_mode") in ENGINE_IPC_MODES:
            grants["ipc_mode"] = running["ipc_mode"]
        return dict(grants, **{
            "image": (image_attrs or {}).get("Id", self.image),
            "command": self.command if self.command is not None else (config.get("Cmd") or []),
            "env": env,
            "ports": sorted("%s|%s|%s" % p for p in self.ports if p[2] is not None),
            "mounts": sorted(self.mounts, key=lambda m: m["target"]),
            "healthcheck": self.healthcheck if self.healthcheck else _image_healthcheck(config),
            "restart_policy": self.restart_policy,
            "labels": labels,
        })


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
    return dict(running_grants(host), **{
        "image": attrs.get("Image"),
        "command": config.get("Cmd") or [],
        "env": env_dict(config.get("Env")),
        "ports": sorted(ports),
        "mounts": sorted(mounts, key=lambda m: m["target"]),
        "healthcheck": _image_healthcheck(config),
        "restart_policy": (host.get("RestartPolicy") or {}).get("Name") or "no",
        "labels": dict((k, v) for k, v in (config.get("Labels") or {}).items() if k != REPLICA_LABEL),
    })


def running_grants(host):
    """The grants of an inspected container's HostConfig, in normal form, the unset ones left out."""
    return _set_grants({
        "privileged": bool(host.get("Privileged")),
        "cap_add": sorted(set(capability(c) for c in host.get("CapAdd") or [])),
        "cap_drop": sorted(set(capability(c) for c in host.get("CapDrop") or [])),
        "devices": sorted(set(device_text(d.get("PathOnHost"), d.get("PathInContainer") or d.get("PathOnHost"),
                                          d.get("CgroupPermissions")) for d in host.get("Devices") or [])),
        "pid_mode": host.get("PidMode"), "ipc_mode": host.get("IpcMode"), "userns_mode": host.get("UsernsMode"),
    })


def _grant(key):
    """A grant differs when it is set on one side only, or set otherwise."""
    return key, lambda wanted, actual: key if wanted.get(key) != actual.get(key) else None


# What makes a container drift, in the order its reasons are given.
DRIFT_RULES = [value(key) for key in ("image", "command", "ports", "mounts", "healthcheck", "restart_policy")] + \
    [_grant(key) for key in GRANTS] + [entries("env"), entries("labels")]


def drift(wanted, running):
    """The names of the settings that differ, with a short reason for each."""
    return differences(wanted, running, DRIFT_RULES)


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


def kept_targets(labels):
    return [t for t in (labels or {}).get(KEPT_MOUNTS_LABEL, "").split(",") if t]


def keep_connection_mounts(spec, attrs):
    """Mounts that connections added to a running container (listed in a label) stay,
    as attached networks do, so that converging the container's own declaration
    neither drops them nor reports drift."""
    kept = kept_targets((attrs.get("Config") or {}).get("Labels"))
    declared = set(m["target"] for m in spec.mounts)
    carried = [m for m in running_config(attrs)["mounts"] if m["target"] in kept and m["target"] not in declared]
    spec.mounts.extend(carried)
    targets = set(kept_targets(spec.labels)) | set(m["target"] for m in carried)
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
    params.update(running_grants(host))
    if params.get("ipc_mode") in ENGINE_IPC_MODES:
        params.pop("ipc_mode")   # the engine's choice, not a declaration
    return ContainerSpec(params, stack)
