# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container as declared and as running: the argument spec, the normalised wanted
configuration (ContainerSpec), the running one read back from an inspect, and the drift
between them that makes a recreate, with the reasons masked."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    KEPT_MOUNTS_LABEL, PORTS_LABEL, env_dict, owner_labels, ports_from_labels)
from ansible_collections.clockwork.connections.plugins.module_utils.differences import differences, entries, value
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import container_state
from ansible_collections.clockwork.connections.plugins.module_utils.options.registry import BY_NAME, TABLE, argument_spec
from ansible_collections.clockwork.connections.plugins.module_utils.options.table import Body, Context, unset
# Callers import these from here too: the parsers live with their options.
from ansible_collections.clockwork.connections.plugins.module_utils.options.table import duration_ns
from ansible_collections.clockwork.connections.plugins.module_utils.options.core import (
    image_healthcheck, normalise_healthcheck, parse_port)
from ansible_collections.clockwork.connections.plugins.module_utils.options.security import (
    ENGINE_IPC_MODES, capability, device_text, parse_device)
from ansible_collections.clockwork.connections.plugins.module_utils.options.storage import mount_body, normalise_mount

__all__ = ["CONTAINER_ARGS", "GRANTS", "ENGINE_IPC_MODES", "ContainerSpec", "capability", "create_body", "describe",
           "device_text", "drift", "duration_ns", "in_place_update", "image_healthcheck", "keep_connection_mounts", "kept_targets",
           "mount_body", "normalise_healthcheck", "normalise_mount", "parse_device", "parse_port", "running_config",
           "spec_from_container"]


# The argument spec shared by the container module and the stack module's resources: the option
# table's (options/registry.py), and how the module runs the container.
CONTAINER_ARGS = dict(
    name=dict(type="str", required=True),
    **dict(argument_spec(), **dict(
        state=dict(type="str", default="started", choices=["present", "started", "stopped", "absent"]),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=60),
    ))
)

# The grants of the host, as the spec keeps them; one unset on both sides is neither compared nor shown.
GRANTS = ("privileged", "cap_add", "cap_drop", "devices", "pid_mode", "ipc_mode", "userns_mode")
# The options drift compares, in the order its reasons are given.
_COMPARED = tuple(o for o in TABLE if o.compare)


class ContainerSpec(object):
    """The wanted configuration of one container, normalised for comparison: one attribute per
    option of the table, in its normal form."""

    def __init__(self, params, stack, base_dir=None):
        self.name = params["name"]
        self.stack = stack
        ctx = Context(self.name, base_dir)
        for option in TABLE:
            setattr(self, option.name, option.normal(params.get(option.name), ctx))
        self.labels.update(owner_labels(stack, self.name))
        self.labels[PORTS_LABEL] = ",".join(p[0] for p in self.ports)
        self.state = params.get("state", "started")
        self.wait = params.get("wait", True)
        self.timeout = params.get("timeout", 60)
        self.secret_env = set()
        # How a changed container is replaced (rolling.py); the stack sets these per resource.
        self.alias = self.name             # the DNS name its clients use: the resource's
        self.update_order = "stop-first"   # or "start-first", or "auto" (decided by rolling.resolved_order)
        # seconds `docker stop` waits before it kills
        self.stop_grace = 10 if self.stop_grace_period is None else self.stop_grace_period

    def declared_ports(self):
        return [p[0] for p in self.ports]

    def comparable(self, image_attrs, running=None):
        """The wanted settings in the same normal form as `running_config`. `running`: the running
        container's, whose engine-chosen values (an ipc mode) an undeclared option takes."""
        wanted = {}
        for option in _COMPARED:
            setting = option.wanted(getattr(self, option.name), image_attrs, self)
            if unset(setting) and option.accepts and option.name in (running or {}) \
                    and option.accepts(running[option.name]):
                setting = running[option.name]
            if not (option.optional and unset(setting)):
                wanted[option.name] = setting
        return wanted


def running_config(attrs):
    """An inspected container's settings in the normal form of `ContainerSpec.comparable`; an
    optional one unset is left out."""
    running = {}
    for option in _COMPARED:
        setting = option.read(attrs)
        if not (option.optional and unset(setting)):
            running[option.name] = setting
    return running


def create_body(spec, anonymous=None):
    """The create call of a container of `spec`, from the table: a Body whose `config` holds
    create_container's arguments and `host` create_host_config's. `anonymous`: target -> the
    anonymous volume a recreate carries over to a declared anonymous mount."""
    body = Body()
    for option in TABLE:
        if option.body is not None:
            option.body(getattr(spec, option.name), body)
    if anonymous:
        body.host["mounts"] = [mount_body(m, anonymous.get(m["target"]) if m["type"] == "volume" and not m["source"]
                                          else None) for m in spec.mounts]
    return body


def _compared(option):
    """An optional setting differs when it is set on one side only, or set otherwise."""
    if option.compare == "entries":
        return entries(option.name)
    if option.optional:
        return option.name, lambda wanted, actual: option.name if wanted.get(option.name) != actual.get(option.name) \
            else None
    return value(option.name)


# What makes a container drift, in the order its reasons are given.
DRIFT_RULES = [_compared(option) for option in _COMPARED]


# What `docker update` takes (the gateway's update_container), as create_host_config names it.
_UPDATE_KEYWORDS = ("mem_limit", "mem_reservation", "cpu_shares", "nano_cpus", "pids_limit")
# Limits the engine takes away in place (PidsLimit -1: none); any other limit taken away recreates.
_UNSET_IN_PLACE = {"pids_limit": -1}


def in_place_update(engine, spec, wanted, reasons):
    """update_container's arguments that make a running container what `wanted` says, when every
    reason is an option the engine changes in place (restart policy, memory, CPUs, CPU shares, pids)
    and the gateway can send it; None when the container must be recreated. A limit taken away
    recreates (`docker update` cannot set one back to none), but for the pids limit."""
    if not hasattr(engine, "update_container"):
        return None
    for reason in reasons:
        option = BY_NAME.get(reason)
        if option is None or not option.update or reason != "restart_policy" and unset(wanted.get(reason)) \
                and reason not in _UNSET_IN_PLACE:
            return None
    body = Body()
    for reason in reasons:
        BY_NAME[reason].body(getattr(spec, reason), body)
    update = dict((key, body.host[key]) for key in _UPDATE_KEYWORDS if key in body.host)
    for reason, none in _UNSET_IN_PLACE.items():
        if reason in reasons and unset(getattr(spec, reason)):
            update[reason] = none
    if "restart_policy" in reasons:
        update["restart_policy"] = {"Name": spec.restart_policy}
    if "mem_limit" in update:
        update["memswap_limit"] = 2 * update["mem_limit"]   # the swap a new container gets: as much again
    return update


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
    hc = image_healthcheck(config)
    healthcheck = None if not hc else dict(
        test=hc["test"], retries=hc["retries"],
        **dict((k, "%dms" % (hc[k] // 10 ** 6)) for k in ("interval", "timeout", "start_period")))
    running = running_config(attrs)
    params = {
        "name": attrs["Name"].lstrip("/"), "image": config.get("Image"), "command": config.get("Cmd"),
        "env": env_dict(config.get("Env")), "ports": ports,
        "mounts": running["mounts"], "healthcheck": healthcheck,
        "restart_policy": running["restart_policy"],
        "labels": labels, "state": "started" if attrs["State"].get("Running") else "present",
    }
    # The other settings: their normal forms are declarations too; one the engine chose is not one.
    for option in _COMPARED:
        if option.optional and option.name in running and not (option.accepts and option.accepts(running[option.name])):
            params[option.name] = running[option.name]
    return ContainerSpec(params, stack)
