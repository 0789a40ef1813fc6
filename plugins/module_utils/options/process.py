# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Process options: who the main process runs as, where and how it starts and stops, and how its
image is found (pull_policy, platform)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import shlex

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.options.table import (
    CONFIG, HOST, Option, SwarmField, checked, duration_ns)

# The seconds `docker stop` waits before it kills, when nothing says otherwise.
DEFAULT_STOP_SECONDS = 10


def _config(attrs):
    return attrs.get("Config") or {}


def _image_config(image_attrs):
    return (image_attrs or {}).get("Config") or {}


def _text(value, _ctx):
    return None if value is None or value == "" else str(value)


def _from_image(key, convert=None):
    """The wanted value: the declared one, else the image's (what the engine gives the container)."""
    convert = convert or (lambda v: v or None)
    return lambda value, image_attrs, _spec: value if value is not None else convert(_image_config(image_attrs).get(key))


def _config_body(api_key):
    def body(value, made):
        if value is not None:
            made.config[api_key] = value
    return body


def _entrypoint(value, ctx):
    if value is None:
        return None
    if not isinstance(value, (str, list, tuple)):
        raise ClockworkError("container %s: entrypoint: give a list of words or a string, not %r" % (ctx.name, value))
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _platforms(platform):
    """A platform (`os/arch`) as a service's placement takes it: the nodes its tasks may run on."""
    os_name, _sep, arch = platform.partition("/")
    return [dict([("OS", os_name)] + ([("Architecture", arch)] if arch else []))]


def _platform_of(platforms):
    return ",".join("/".join(p for p in (entry.get("OS") or "", entry.get("Architecture") or "") if p)
                    for entry in platforms or []) or None


def _swarm_platform_problem(value):
    if value and str(value).count("/") > 1:
        os_arch = "/".join(str(value).split("/")[:2])
        return ("%s: a service's placement takes an OS and an architecture, not a variant (give %s: each node "
                "pulls its own variant)" % (value, os_arch))
    return None


def signal_name(value):
    """A stop signal as compared: `SIGTERM` for `term`, `TERM` or `SIGTERM`; a number stays one."""
    if value is None or value == "":
        return None
    text = str(value).strip().upper()
    return text if text.isdigit() or text.startswith("SIG") else "SIG" + text


def _stop_grace(value, ctx):
    if value is None:
        return None
    seconds = max(0, int(round(checked(STOP_GRACE, ctx, duration_ns, value) / 1e9)))
    return None if seconds == DEFAULT_STOP_SECONDS else seconds


def _read_stop_grace(attrs):
    seconds = _config(attrs).get("StopTimeout")
    return None if seconds is None or seconds == DEFAULT_STOP_SECONDS else seconds


STOP_GRACE = Option(
    "stop_grace_period", dict(type="str"), "How long C(docker stop) waits after the stop signal before it kills the "
    "container, like C(30s) or C(1m30s) (the engine's default 10s).", where=CONFIG, normal=_stop_grace,
    read=_read_stop_grace, body=lambda value, made: made.config.update(stop_timeout=value) if value is not None else None,
    compose=("stop_grace_period",), swarm="ContainerSpec.StopGracePeriod",
    details=("A recreate, a scale-down and O(state=absent) wait that long for the old container. Engine swarm of "
             "M(clockwork.connections.stack), the service's stop grace period.",))


OPTIONS = [
    Option("user", dict(type="str"), "The user (and group) the main process runs as, C(name), C(uid) or C(uid:gid). "
           "Not set, the image's.", where=CONFIG, normal=_text, wanted=_from_image("User"),
           read=lambda attrs: _config(attrs).get("User") or None, body=_config_body("user"), compose=("user",),
           swarm=SwarmField(("TaskTemplate", "ContainerSpec", "User"))),
    Option("working_dir", dict(type="str"), "The directory the main process starts in. Not set, the image's.",
           where=CONFIG, normal=_text, wanted=_from_image("WorkingDir"),
           read=lambda attrs: _config(attrs).get("WorkingDir") or None, body=_config_body("working_dir"),
           compose=("working_dir",), swarm=SwarmField(("TaskTemplate", "ContainerSpec", "Dir"))),
    Option("entrypoint", dict(type="raw"), "The entrypoint, as a list or a string split like a shell would. Not set, "
           "the image's.", where=CONFIG, normal=_entrypoint, wanted=_from_image("Entrypoint"),
           read=lambda attrs: _config(attrs).get("Entrypoint") or None, body=_config_body("entrypoint"),
           compose=("entrypoint",), swarm=SwarmField(("TaskTemplate", "ContainerSpec", "Command")),
           details=("A declared entrypoint drops the image's command, as C(docker run --entrypoint) does: declare "
                    "O(command) with it when one is needed.",)),
    Option("init", dict(type="bool"), "Run an init process (C(docker-init)) as PID 1 that forwards signals and reaps "
           "zombies.", normal=lambda value, _ctx: True if value else None,
           read=lambda attrs: True if (attrs.get("HostConfig") or {}).get("Init") else None,
           body=lambda value, made: made.host.update(init=True) if value else None, compose=("init",),
           swarm=SwarmField(("TaskTemplate", "ContainerSpec", "Init"))),
    Option("stop_signal", dict(type="str"), "The signal that stops the container, like C(SIGINT) or C(SIGQUIT). Not "
           "set, the image's (else C(SIGTERM)).", where=CONFIG, normal=lambda value, _ctx: signal_name(value),
           wanted=_from_image("StopSignal", signal_name), read=lambda attrs: signal_name(_config(attrs).get("StopSignal")),
           body=_config_body("stop_signal"), compose=("stop_signal",),
           swarm=SwarmField(("TaskTemplate", "ContainerSpec", "StopSignal"), from_api=signal_name)),
    STOP_GRACE,
    Option("group_add", dict(type="list", elements="str"), "Supplementary groups of the main process, by name or id.",
           where=HOST, normal=lambda value, _ctx: sorted(set(str(g) for g in value or [])),
           read=lambda attrs: sorted(set(str(g) for g in (attrs.get("HostConfig") or {}).get("GroupAdd") or [])),
           body=lambda value, made: made.host.update(group_add=value) if value else None, compose=("group_add",),
           swarm=SwarmField(("TaskTemplate", "ContainerSpec", "Groups"), from_api=lambda groups: sorted(set(str(g) for g in groups)))),
    Option("pull_policy", dict(type="str", choices=["missing", "always", "never"]), "When the image is pulled: "
           "C(missing) (the default) when it is not on the Docker host, C(always) on every run, C(never) (an image "
           "not there is an error).", where=CONFIG, compare=None, compose=("pull_policy",),
           details=("A pulled image that is another than the container's recreates it (its image drifted).",)),
    Option("platform", dict(type="str"), "The platform of the image, like C(linux/amd64), for an engine that runs "
           "several.", where=CONFIG, compare=None, body=_config_body("platform"), compose=("platform",),
           swarm=SwarmField(("TaskTemplate", "Placement", "Platforms"), to_api=_platforms, from_api=_platform_of,
                            refuse=_swarm_platform_problem),
           details=("Given to the create call; not compared on a container: the engine keeps no platform of a "
                    "container (its inspect says the OS only), the platform chooses the image, and the image is "
                    "compared by its id (another platform's image is a changed image).",
                    "On Swarm, the nodes the tasks may run on (each pulls the image for its own platform): "
                    "C(os/arch), no variant.")),
]
