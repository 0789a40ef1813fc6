# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security options: the grants of the host (privileged, capabilities, devices, the PID, IPC and
user namespaces), a read-only root file system and security options. A grant unset is neither
compared nor shown."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.options.table import Option, SwarmField

# What the engine gives a container that declares no ipc_mode (it depends on the engine's version
# and settings): any of them is what an undeclared ipc_mode finds.
ENGINE_IPC_MODES = ("", "private", "shareable")
NAMESPACE_MODES = {"pid_mode": ("host",), "ipc_mode": ("none", "private", "shareable", "host"),
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


def _host(attrs):
    return attrs.get("HostConfig") or {}


def _capabilities(key):
    def normal(value, ctx):
        caps = sorted(set(capability(c) for c in value or []))
        bad = [c for c in caps if not _CAPABILITY.match(c)]
        if bad:
            raise ClockworkError("container %s: %s: %s is not a capability name (like NET_ADMIN or CAP_CHOWN)"
                                 % (ctx.name, key, ", ".join(bad)))
        return caps
    return normal


def _read_capabilities(api_key):
    return lambda attrs: sorted(set(capability(c) for c in _host(attrs).get(api_key) or []))


def _devices(value, ctx):
    try:
        return sorted(set(device_text(*parse_device(d)) for d in value or []))
    except ClockworkError as exc:
        raise ClockworkError("container %s: devices: %s" % (ctx.name, exc.msg))


def _read_devices(attrs):
    return sorted(set(device_text(d.get("PathOnHost"), d.get("PathInContainer") or d.get("PathOnHost"),
                                  d.get("CgroupPermissions")) for d in _host(attrs).get("Devices") or []))


def _devices_body(value, body):
    body.host["devices"] = [dict(zip(("PathOnHost", "PathInContainer", "CgroupPermissions"), parse_device(d)))
                            for d in value] or None


def _namespace(key):
    modes = NAMESPACE_MODES[key]

    def normal(mode, ctx):
        mode = mode or None
        shared = key != "userns_mode" and mode is not None and mode.startswith("container:") and len(mode) > 10
        if mode is not None and mode not in modes and not shared:
            raise ClockworkError("container %s: %s: %r is not one of %s" % (
                ctx.name, key, mode, ", ".join(modes + (() if key == "userns_mode" else ("container:<name>",)))))
        return mode
    return normal


def _namespace_option(key, api_key, doc, details, accepts=None):
    return Option(key, dict(type="str"), doc, normal=_namespace(key), read=lambda attrs: _host(attrs).get(api_key),
                  body=lambda value, body: body.host.update({key: value}), accepts=accepts,
                  compose=(key.replace("_mode", ""),) if key != "userns_mode" else ("userns_mode",),
                  grant="host_namespaces", details=details)


def _security_opt(value, _ctx):
    return sorted(set(str(v) for v in value or []))


# The engine adds this to a container that is privileged or shares the host's PID or IPC namespace
# (it turns its SELinux labels off): not a declaration, on either side.
ENGINE_SECURITY_OPTS = ("label=disable", "label:disable")


def _without_engine_opts(opts, privileged, pid_mode, ipc_mode):
    if privileged or pid_mode == "host" or ipc_mode == "host":
        return [o for o in opts if o not in ENGINE_SECURITY_OPTS]
    return list(opts)


def _read_security_opt(attrs):
    host = _host(attrs)
    return _without_engine_opts(sorted(set(host.get("SecurityOpt") or [])), host.get("Privileged"),
                                host.get("PidMode"), host.get("IpcMode"))


def _wanted_security_opt(value, _image_attrs, spec):
    return _without_engine_opts(value, spec.privileged, spec.pid_mode, spec.ipc_mode)


# A service's SELinux labels (API 1.41: TaskTemplate.ContainerSpec.Privileges.SELinuxContext), the
# only security options a service takes on this API: `label=user:X`, `role:`, `type:`, `level:`, `disable`.
_SELINUX_KEYS = (("user", "User"), ("role", "Role"), ("type", "Type"), ("level", "Level"))


def _selinux_part(option):
    """`label=type:x` or `label:type:x` -> ("type", "x"); `label=disable` -> ("disable", ""); else None."""
    text = str(option)
    if not (text.startswith("label=") or text.startswith("label:")):
        return None
    key, _sep, value = text[len("label="):].partition(":")
    if key == "disable" and not value:
        return "disable", ""
    return (key, value) if key in dict(_SELINUX_KEYS) and value else None


def _selinux_context(options):
    parts = dict(_selinux_part(o) for o in options)
    if "disable" in parts:
        return {"Disable": True}
    return dict((api, parts[key]) for key, api in _SELINUX_KEYS if key in parts)


def _selinux_options(context):
    if (context or {}).get("Disable"):
        return ["label=disable"]
    return sorted("label=%s:%s" % (key, context[api]) for key, api in _SELINUX_KEYS if (context or {}).get(api))


def _swarm_security_opt_problem(value):
    others = [str(o) for o in value or [] if _selinux_part(o) is None]
    if others:
        return ("%s: a service takes SELinux labels only (label=user:, label=role:, label=type:, label=level:, "
                "label=disable; the engine's API 1.41 has no other security option for a service's tasks)"
                % ", ".join(others))
    return None


OPTIONS = [
    Option("privileged", dict(type="bool", default=False), "Run the container privileged, as C(docker run "
           "--privileged). This grants the container the host, with every capability and every device of the host.",
           normal=lambda value, _ctx: bool(value), read=lambda attrs: bool(_host(attrs).get("Privileged")),
           body=lambda value, body: body.host.update(privileged=value), compose=("privileged",), grant="privileged",
           details=("Not on Swarm (engine swarm of M(clockwork.connections.stack) refuses it before any change).",)),
    Option("cap_add", dict(type="list", elements="str", default=[]), "Linux capabilities added to the container's, "
           "like C(NET_BIND_SERVICE) or C(CHOWN); C(ALL) for every one.", normal=_capabilities("cap_add"),
           read=_read_capabilities("CapAdd"), body=lambda value, body: body.host.update(cap_add=value or None),
           compose=("cap_add",), grant="capabilities", swarm="ContainerSpec.CapabilityAdd",
           details=("Each grants the container part of the host's power (C(SYS_ADMIN), C(NET_ADMIN) and C(SYS_PTRACE) "
                    "much of it).",
                    "A name is the same with or without C(CAP_) and in any case; the order does not matter.",
                    "Engine swarm of M(clockwork.connections.stack), the service's capabilities (Docker API 1.41, "
                    "engine 20.10, or newer).")),
    Option("cap_drop", dict(type="list", elements="str", default=[]), "Linux capabilities taken from the container, "
           "like C(ALL) or C(NET_RAW); named as in O(cap_add).", normal=_capabilities("cap_drop"),
           read=_read_capabilities("CapDrop"), body=lambda value, body: body.host.update(cap_drop=value or None),
           compose=("cap_drop",), swarm="ContainerSpec.CapabilityDrop",
           details=("C(ALL) dropped with a short O(cap_add) gives the container only what it needs.",)),
    Option("devices", dict(type="list", elements="str", default=[]), "Devices of the host given to the container, as "
           "C(/dev/x), C(/dev/x:/dev/y) (at another path inside) or C(/dev/x:/dev/y:rwm) (cgroup permissions, "
           "default C(rwm)).", normal=_devices, read=_read_devices, body=_devices_body, compose=("devices",),
           grant="devices", details=("Each grants the container that device of the host. Not on Swarm.",)),
    _namespace_option("pid_mode", "PidMode", "The container's PID namespace.", (
        "C(host) shares the host's, which grants the container a view of every process of the host (and the power "
        "to signal them); C(container:<name>) shares another container's.",
        "Not set, the container has a namespace of its own. Not on Swarm.")),
    _namespace_option("ipc_mode", "IpcMode", "The container's IPC namespace.", (
        "C(host) shares the host's, which grants the container the host's shared memory; also C(none), C(private), "
        "C(shareable) or C(container:<name>).",
        "Not set, the engine's default (C(private) or C(shareable), by engine), which is then never compared. Not on "
        "Swarm."), accepts=lambda running: running in ENGINE_IPC_MODES),
    _namespace_option("userns_mode", "UsernsMode", "C(host) runs the container outside the engine's user namespace "
                      "remapping (C(userns-remap)), which grants the container's root the host's root.",
                      ("Not set, the engine's. Not on Swarm.",)),
    Option("read_only", dict(type="bool"), "Mount the container's root file system read-only.",
           normal=lambda value, _ctx: bool(value), read=lambda attrs: bool(_host(attrs).get("ReadonlyRootfs")),
           body=lambda value, body: body.host.update(read_only=True) if value else None, compose=("read_only",),
           swarm=SwarmField(("TaskTemplate", "ContainerSpec", "ReadOnly"))),
    Option("security_opt", dict(type="list", elements="str"), "Security options, like C(no-new-privileges:true) or "
           "C(apparmor=profile).", normal=_security_opt, wanted=_wanted_security_opt, read=_read_security_opt,
           body=lambda value, body: body.host.update(security_opt=value) if value else None,
           compose=("security_opt",), grant="privileged",
           swarm=SwarmField(("TaskTemplate", "ContainerSpec", "Privileges", "SELinuxContext"), to_api=_selinux_context,
                            from_api=lambda context: _selinux_options(context) or None,
                            normal=lambda value: _selinux_options(_selinux_context(value)),
                            refuse=_swarm_security_opt_problem),
           details=("C(seccomp=unconfined), C(apparmor=unconfined) or C(label=disable) take a confinement away: a "
                    "grant of the host, as O(privileged) is.",
                    "On Swarm, SELinux labels only (C(label=type:...), C(label=disable) ...): the service's "
                    "C(Privileges.SELinuxContext); any other is refused.")),
]
