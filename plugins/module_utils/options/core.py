# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options every container has: image, command, env, ports, healthcheck, restart policy,
labels. Always compared and shown, set or not."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import shlex

from ansible_collections.clockwork.connections.plugins.module_utils.apply.build import BUILD_OPTION_SPEC
from ansible_collections.clockwork.connections.plugins.module_utils.common import REPLICA_LABEL, ClockworkError, env_dict
from ansible_collections.clockwork.connections.plugins.module_utils.options.table import CONFIG, HOST, Option, duration_ns


def _image_config(image_attrs):
    return (image_attrs or {}).get("Config") or {}


# -- command ---------------------------------------------------------------------------------------

def _command(value, _ctx):
    return shlex.split(value) if isinstance(value, str) else value


def _wanted_command(value, image_attrs, spec):
    if value is not None:
        return value
    if getattr(spec, "entrypoint", None) is not None:
        return []   # a declared entrypoint drops the image's command, as the engine does
    return _image_config(image_attrs).get("Cmd") or []


def _command_body(value, body):
    body.config["command"] = value


# -- env ---------------------------------------------------------------------------------------------

def _env(value, _ctx):
    return dict((k, "" if v is None else str(v)) for k, v in (value or {}).items())


def _wanted_env(value, image_attrs, _spec):
    env = env_dict(_image_config(image_attrs).get("Env"))
    env.update(value)
    return env


def _env_body(value, body):
    body.config["environment"] = value


# -- ports -------------------------------------------------------------------------------------------

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


def _ports(value, _ctx):
    return [parse_port(p) for p in value or []]


def _wanted_ports(value, _image_attrs, _spec):
    return sorted("%s|%s|%s" % p for p in value if p[2] is not None)


def _read_ports(attrs):
    ports = []
    for container_port, bindings in (((attrs.get("HostConfig") or {}).get("PortBindings")) or {}).items():
        for binding in bindings or []:
            ports.append("%s|%s|%s" % (container_port, binding.get("HostIp") or "", binding.get("HostPort") or ""))
    return sorted(ports)


def _ports_body(value, body):
    bindings = {}
    for container_port, host_ip, host_port in value:
        if host_port is not None:  # "" publishes on a random host port
            binding = (host_ip, host_port or None) if host_ip else (host_port or None)
            bindings.setdefault(container_port, []).append(binding)
    body.config["ports"] = [tuple(p[0].split("/")) for p in value] or None
    body.host["port_bindings"] = bindings


# -- healthcheck -------------------------------------------------------------------------------------

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


def image_healthcheck(config):
    """A Config's healthcheck (a container's or an image's) in normal form; None without one."""
    hc = config.get("Healthcheck")
    if not hc or not hc.get("Test") or hc["Test"] == ["NONE"]:
        return None
    return {"test": hc["Test"], "interval": hc.get("Interval", 0) or duration_ns("30s"),
            "timeout": hc.get("Timeout", 0) or duration_ns("30s"),
            "retries": hc.get("Retries", 0) or 3, "start_period": hc.get("StartPeriod", 0)}


def _healthcheck_body(value, body):
    body.config["healthcheck"] = dict((k, value[k]) for k in (
        "test", "interval", "timeout", "retries", "start_period")) if value else None


# -- labels ------------------------------------------------------------------------------------------

def _labels(value, _ctx):
    return dict((k, str(v)) for k, v in (value or {}).items())


def _wanted_labels(value, image_attrs, _spec):
    labels = dict(_image_config(image_attrs).get("Labels") or {})
    labels.update(value)
    labels.pop(REPLICA_LABEL, None)
    return labels


def _labels_body(value, body):
    body.config["labels"] = value


def _config(attrs):
    return attrs.get("Config") or {}


OPTIONS = [
    Option("image", dict(type="str"), "Image reference. Pulled when absent locally; a pull failure names the image.",
           where=CONFIG, optional=False, compose=("image",), swarm="ContainerSpec.Image",
           details=("Required unless O(state=absent).",),
           wanted=lambda value, image_attrs, _spec: (image_attrs or {}).get("Id", value),
           read=lambda attrs: attrs.get("Image")),
    Option("build", dict(type="dict", options=BUILD_OPTION_SPEC), "Build the image on the Docker host's engine from a "
           "context on the controller (a stack's resource only: the container module refuses it).", where=CONFIG,
           compare=None, swarm="the service's image, built on the manager",
           details=("Without O(image), the image is tagged C(<stack>-<resource>:clockwork). It is rebuilt only when the "
                    "context, the Dockerfile or the arguments change (a content hash as the image's label); a rebuilt "
                    "image changes the container's image, which recreates it.",
                    "The files the stack writes into the context's directory (its diagram C(<stack>.stack.md), "
                    "C(clockwork.lock.yml)) are no part of the context. An image the stack built is removed once no "
                    "tag names it, no container is made from it and no kept release runs it."),
           subdocs=dict(
               context="The build context, a directory on the controller (relative to the playbook's directory, or "
                       "its files/).",
               dockerfile="The Dockerfile's path inside the context.",
               target="The build stage to build.",
               args="Build arguments (a value whose name says secret is masked in output).",
               labels="Labels of the image (not io.clockwork.*).",
               archive="Set by the stack action plugin (where the context's tar is on the Docker host); never set it.",
               content_hash="Set by the stack action plugin (the context's content hash); never set it.")),
    Option("command", dict(type="raw"), "Command, as a list or a string split like a shell would. Defaults to the "
           "image's.", where=CONFIG, optional=False, normal=_command, wanted=_wanted_command, body=_command_body,
           read=lambda attrs: _config(attrs).get("Cmd") or [], compose=("command",), swarm="ContainerSpec.Args",
           secret=True),
    Option("env", dict(type="dict", default={}), "Environment variables. Values are turned into strings.",
           where=CONFIG, optional=False, compare="entries", normal=_env, wanted=_wanted_env, body=_env_body,
           read=lambda attrs: env_dict(_config(attrs).get("Env")), compose=("environment", "env_file"),
           swarm="ContainerSpec.Env", secret=True),
    Option("ports", dict(type="list", elements="raw", default=[]),
           "Container ports, declared and optionally published on the host.", where=HOST, optional=False,
           normal=_ports, wanted=_wanted_ports, body=_ports_body, read=_read_ports, compose=("ports", "expose"),
           swarm="EndpointSpec.Ports",
           details=("C(8000) or C(8000/udp) declares a port without publishing it; C(8080:80) or C(127.0.0.1:8080:80) "
                    "also publishes it; a dict with C(container_port), C(host_port), C(host_ip) and C(protocol) is "
                    "accepted too.",
                    "Declared ports are what M(clockwork.connections.service_mesh_connection) discovers.")),
    Option("healthcheck", dict(type="dict", options=dict(
        test=dict(type="raw", required=True),
        interval=dict(type="str", default="30s"),
        timeout=dict(type="str", default="30s"),
        retries=dict(type="int", default=3),
        start_period=dict(type="str", default="0s"),
    )), "A healthcheck, as in a Dockerfile. Without it, the image's healthcheck applies.", where=CONFIG,
        optional=False, normal=lambda value, _ctx: normalise_healthcheck(value), body=_healthcheck_body,
        wanted=lambda value, image_attrs, _spec: value if value else image_healthcheck(_image_config(image_attrs)),
        read=lambda attrs: image_healthcheck(_config(attrs)), compose=("healthcheck",),
        swarm="ContainerSpec.Healthcheck", subdocs=dict(
            test="A shell command string, or a list (C(CMD) is prepended unless it starts with C(CMD), C(CMD-SHELL) "
                 "or C(NONE)).",
            interval="Time between checks, like C(30s) or C(1m30s).",
            timeout="Time one check may take.",
            retries="Consecutive failures before the container is unhealthy.",
            start_period="Grace period after start during which failures do not count.")),
    Option("restart_policy", dict(type="str", default="no", choices=["no", "always", "on-failure", "unless-stopped"]),
           "Docker restart policy.", where=HOST, optional=False, update=True,
           normal=lambda value, _ctx: value or "no",
           body=lambda value, body: body.host.update(restart_policy={"Name": value} if value != "no" else None),
           read=lambda attrs: ((attrs.get("HostConfig") or {}).get("RestartPolicy") or {}).get("Name") or "no",
           compose=("restart", "deploy.restart_policy"), swarm="TaskTemplate.RestartPolicy"),
    Option("labels", dict(type="dict", default={}), "Extra labels; the ownership labels are always added.",
           where=CONFIG, optional=False, compare="entries", normal=_labels, wanted=_wanted_labels, body=_labels_body,
           read=lambda attrs: dict((k, v) for k, v in (_config(attrs).get("Labels") or {}).items()
                                   if k != REPLICA_LABEL),
           compose=("labels",), swarm="Labels",
           details=("A label with the prefix C(io.clockwork.) is refused before anything is changed, as those labels "
                    "are the collection's own.",)),
]
