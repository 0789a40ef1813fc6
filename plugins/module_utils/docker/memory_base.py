# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What memory.py and memory_swarm.py share: the engine's answers as Docker Engine 20.10 shapes
them (seen on a live engine: fields, defaults, words of errors), the recording of every call, and
the failures a test scripts."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import copy
import datetime
import functools
import hashlib
import re
import shlex

from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import api_error
from ansible_collections.clockwork.connections.plugins.module_utils.docker.unix_http import LOCAL_BASE_URL

API_VERSION = "1.41"
ZERO_TIME = "0001-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")
REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error",
           503: "Service Unavailable"}
NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this '
               'node to swarm and try again.')

# An exec result that says the container has no such program (the engine's and `timeout`'s words follow).
MISSING = "missing program"
# An exec result that never ends: its stream stays open (the gateway's reader times out).
HANG = "hangs"

PREDEFINED = ("bridge", "host", "none")

# One call made to the engine: the method's name and its arguments, as the caller passed them.
Call = collections.namedtuple("Call", "method args kwargs")


def refuse(status, explanation, path=""):
    """The engine's error answer, the type and text the live path gives (errors.api_error)."""
    raise api_error(status, REASONS.get(status, "Error"), "%s/v%s%s" % (LOCAL_BASE_URL, API_VERSION, path),
                    explanation)


def api_method(method):
    """An Engine API method: recorded in `calls`, failed when a test scripted it (fail_next), run
    under the engine's lock, its answer a copy (a caller that changes it changes no state). A call
    from inside another (restart's stop and start, a dry run's override) is part of the outer one."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        depth = getattr(self._local, "depth", 0)
        if depth:
            return method(self, *args, **kwargs)
        with self._lock:
            self.calls.append(Call(method.__name__, args, dict(kwargs)))
            self._local.depth = 1
            try:
                self._injected(method.__name__, args, kwargs)
                return _copied(method(self, *args, **kwargs))
            finally:
                self._local.depth = 0
    return call


def _copied(value):
    """A copy of an answer's data; a stream or socket as it is."""
    if isinstance(value, (dict, list)):
        return copy.deepcopy(value)
    return tuple(_copied(v) for v in value) if isinstance(value, tuple) else value


class Failure(object):
    """A failure a test scripted: the next `times` calls of `method` whose arguments `match` fail
    with `status` and the engine's words `message`, after `before(engine)` ran (a concurrent run
    that made the object meanwhile, say)."""

    def __init__(self, method, status, message, match=None, before=None, times=1):
        self.method, self.status, self.message = method, status, message
        self.match, self.before, self.times = match, before, times

    def applies(self, method, args, kwargs):
        if method != self.method or self.times <= 0:
            return False
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(*args, **kwargs))
        first = args[0] if args else kwargs.get("name", kwargs.get("container"))
        return self.match in (first, kwargs.get("name"))


def now(seconds=False):
    """A timestamp as the engine writes it (RFC 3339, UTC)."""
    moment = datetime.datetime.now(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if seconds else "%Y-%m-%dT%H:%M:%S.%fZ")


def unix_time(stamp):
    try:
        return int(datetime.datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=datetime.timezone.utc).timestamp())
    except (TypeError, ValueError):
        return 0


def digest(*parts):
    """A 64-hex id, the same for the same parts (runs of a test are reproducible)."""
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode("utf-8")).hexdigest()


def plain(value):
    """`value` as plain dicts and lists (the SDK's types are dict subclasses)."""
    if isinstance(value, dict):
        return dict((k, plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def as_filters(filters):
    """Filters as the API reads them: each key a list of strings."""
    result = {}
    for key, value in (filters or {}).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        values = value if isinstance(value, (list, tuple)) else [value]
        result[key] = [v if isinstance(v, str) else str(v) for v in values]
    return result


def labels_match(labels, wanted):
    """Every `key` or `key=value` of `wanted` holds for `labels`."""
    labels = labels or {}
    for entry in wanted:
        key, sep, value = entry.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def env_merged(image_env, env):
    """A container's Env: its own entries, then the image's it does not set (the engine's merge)."""
    env = list(env or [])
    names = set(e.partition("=")[0] for e in env)
    return env + [e for e in image_env or [] if e.partition("=")[0] not in names]


# -- images ------------------------------------------------------------------------------

IMAGE_CONFIG = {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
                "AttachStderr": False, "ExposedPorts": None, "Tty": False, "OpenStdin": False, "StdinOnce": False,
                "Env": [PATH_ENV], "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
                "OnBuild": None, "Labels": None}


def image_attrs(image_id, refs, config):
    """An image's inspect: `config` (Env, Cmd, Entrypoint, Healthcheck, Volumes, ExposedPorts,
    Labels, WorkingDir, User, StopSignal) over an empty image's."""
    config = dict(IMAGE_CONFIG, **plain(config or {}))
    for key in ("Volumes", "ExposedPorts"):
        if isinstance(config.get(key), (list, tuple)):
            config[key] = dict((k, {}) for k in config[key])
    return {"Id": image_id, "RepoTags": list(refs), "RepoDigests": [], "Parent": "", "Comment": "",
            "Created": now(), "Container": "", "ContainerConfig": dict(config), "DockerVersion": "20.10.24",
            "Author": "", "Config": config, "Architecture": "amd64", "Os": "linux", "Size": 1024,
            "VirtualSize": 1024, "GraphDriver": {"Data": None, "Name": "overlay2"},
            "RootFS": {"Type": "layers", "Layers": []}, "Metadata": {"LastTagTime": ZERO_TIME}}


def image_summary(attrs):
    return {"Containers": -1, "Created": unix_time(attrs["Created"]), "Id": attrs["Id"],
            "Labels": attrs["Config"].get("Labels"), "ParentId": attrs.get("Parent", ""), "RepoDigests": None,
            "RepoTags": attrs["RepoTags"] or None, "SharedSize": -1, "Size": attrs["Size"],
            "VirtualSize": attrs["VirtualSize"]}


def full_reference(ref):
    """A reference with its tag (`:latest` when none), as the engine names images."""
    if "@" in ref or ref.startswith("sha256:"):
        return ref
    name, sep, tag = ref.rpartition(":")
    return ref if sep and "/" not in tag else ref + ":latest"


# -- containers --------------------------------------------------------------------------

HOST_CONFIG = {"Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
               "NetworkMode": "default", "PortBindings": None, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
               "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
               "CgroupnsMode": "host", "Dns": None, "DnsOptions": None, "DnsSearch": None, "ExtraHosts": None,
               "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
               "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None,
               "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864, "Runtime": "runc", "Isolation": "",
               "Devices": None, "Mounts": None, "Tmpfs": None}
STATE = {"Status": "created", "Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
         "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


def endpoint(aliases=None):
    """A container's entry in one network, before it runs (no address yet)."""
    return {"IPAMConfig": None, "Links": None, "Aliases": list(aliases) if aliases else None, "NetworkID": "",
            "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}


def network_settings(networks):
    return {"Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "", "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": networks}


def container_config(cid, body, image):
    """Config of a new container: what the request set, over its image's."""
    base = image["Config"]
    config = dict((k, copy.deepcopy(base.get(k))) for k in IMAGE_CONFIG)
    config.update({"Hostname": body.get("Hostname") or cid[:12], "AttachStdout": True, "AttachStderr": True,
                   "Image": body["Image"], "Env": env_merged(base.get("Env"), body.get("Env"))})
    for key in ("User", "WorkingDir", "Tty", "OpenStdin", "StdinOnce", "Domainname"):
        if body.get(key):
            config[key] = body[key]
    if body.get("Entrypoint") is not None:
        config["Entrypoint"] = body["Entrypoint"] or None
        config["Cmd"] = body.get("Cmd") or None   # a new entrypoint drops the image's Cmd
    elif body.get("Cmd"):
        config["Cmd"] = body["Cmd"]
    for key in ("ExposedPorts", "Volumes", "Labels"):
        merged = dict(base.get(key) or {}, **(body.get(key) or {}))
        config[key] = merged or (None if key != "Labels" else {})
    health = body.get("Healthcheck") or base.get("Healthcheck")
    if health:
        config["Healthcheck"] = dict((k, v) for k, v in health.items() if v)   # zero values are left out
    for key in ("StopSignal", "StopTimeout"):
        if body.get(key) or base.get(key):
            config[key] = body.get(key) or base.get(key)
    return config


def host_config(requested):
    """HostConfig as the engine keeps it: the request's over the defaults; a mount's false
    fields left out."""
    host = copy.deepcopy(HOST_CONFIG)
    host.update(dict((k, v) for k, v in (requested or {}).items() if v is not None))
    policy = host.get("RestartPolicy") or {}
    host["RestartPolicy"] = {"Name": policy.get("Name") or "", "MaximumRetryCount": policy.get("MaximumRetryCount", 0)}
    if host.get("Mounts"):
        host["Mounts"] = [dict((k, v) for k, v in m.items() if v not in (None, False, "", {}, []))
                          for m in host["Mounts"]]
    host["IpcMode"] = host.get("IpcMode") or "private"
    return host


def command_line(config):
    words = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    return " ".join(shlex.quote(w) for w in words)


def health_words(state):
    health = (state.get("Health") or {}).get("Status")
    return {"healthy": " (healthy)", "unhealthy": " (unhealthy)", "starting": " (health: starting)"}.get(health, "")


def container_summary(attrs):
    """A container as `GET /containers/json` lists it."""
    state, config = attrs["State"], attrs["Config"]
    status = {"created": "Created", "running": "Up Less than a second" + health_words(state),
              "exited": "Exited (%d) Less than a second ago" % state["ExitCode"]}.get(state["Status"], state["Status"])
    ports = []
    for port, bindings in sorted((attrs["NetworkSettings"].get("Ports") or {}).items()):
        number, _sep, proto = port.partition("/")
        for binding in bindings or [None]:
            entry = {"PrivatePort": int(number), "Type": proto or "tcp"}
            if binding:
                entry = {"IP": binding["HostIp"], "PrivatePort": int(number), "PublicPort": int(binding["HostPort"]),
                         "Type": proto or "tcp"}
            ports.append(entry)
    networks = dict((name, dict(e, Aliases=None)) for name, e in attrs["NetworkSettings"]["Networks"].items())
    return {"Id": attrs["Id"], "Names": [attrs["Name"]], "Image": config["Image"], "ImageID": attrs["Image"],
            "Command": command_line(config), "Created": unix_time(attrs["Created"]), "Ports": ports,
            "Labels": config.get("Labels") or {}, "State": state["Status"], "Status": status,
            "HostConfig": {"NetworkMode": attrs["HostConfig"]["NetworkMode"]},
            "NetworkSettings": {"Networks": networks},
            "Mounts": sorted(attrs["Mounts"], key=lambda m: m["Destination"])}


def container_matches(attrs, filters):
    """Whether a container passes `GET /containers/json`'s filters (label, name, id, status,
    volume, network; values of one key are alternatives, keys all hold)."""
    name = attrs["Name"]
    tests = {
        "label": lambda vs: labels_match(attrs["Config"].get("Labels"), vs),
        "name": lambda vs: any(re.search(v, name) or re.search(v, name[1:]) for v in vs),
        "id": lambda vs: any(attrs["Id"].startswith(v) for v in vs),
        "status": lambda vs: attrs["State"]["Status"] in vs,
        "volume": lambda vs: any(m.get("Name") in vs or m["Destination"] in vs for m in attrs["Mounts"]),
        "network": lambda vs: any(n in vs or (e.get("NetworkID") and e["NetworkID"] in vs)
                                  for n, e in attrs["NetworkSettings"]["Networks"].items()),
    }
    return all(tests[k](vs) for k, vs in as_filters(filters).items() if k in tests)


def frames(output, stream=1):
    """An exec's output as the engine streams a non-TTY exec: 8-byte headers, then the bytes."""
    data = output if isinstance(output, bytes) else (output or "").encode("utf-8")
    return (stream.to_bytes(1, "big") + b"\x00\x00\x00" + len(data).to_bytes(4, "big") + data) if data else b""


# -- networks and volumes ----------------------------------------------------------------

def network_attrs(nid, name, driver, subnet, gateway, options):
    """A network's inspect; `Containers` is filled by whoever answers (the running endpoints)."""
    return {"Name": name, "Id": nid, "Created": now(), "Scope": "swarm" if driver == "overlay" else "local",
            "Driver": driver, "EnableIPv6": bool(options.get("enable_ipv6")),
            "IPAM": {"Driver": "default", "Options": None,
                     "Config": [{"Subnet": subnet, "Gateway": gateway}] if subnet else []},
            "Internal": bool(options.get("internal")), "Attachable": bool(options.get("attachable")),
            "Ingress": bool(options.get("ingress")), "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
            "Containers": {}, "Options": plain(options.get("options") or {}), "Labels": plain(options.get("labels") or {})}


def network_matches(attrs, filters):
    tests = {"name": lambda vs: any(v in attrs["Name"] for v in vs),
             "id": lambda vs: any(attrs["Id"].startswith(v) for v in vs),
             "label": lambda vs: labels_match(attrs.get("Labels"), vs),
             "driver": lambda vs: attrs["Driver"] in vs, "scope": lambda vs: attrs["Scope"] in vs,
             "type": lambda vs: ("builtin" if attrs["Name"] in ("bridge", "host", "none") else "custom") in vs}
    return all(tests[k](vs) for k, vs in as_filters(filters).items() if k in tests)


def volume_attrs(name, driver, labels, options):
    return {"CreatedAt": now(seconds=True), "Driver": driver or "local", "Labels": plain(labels) or None,
            "Mountpoint": "/var/lib/docker/volumes/%s/_data" % name, "Name": name,
            "Options": plain(options) or None, "Scope": "local"}


def volume_matches(attrs, filters, used):
    tests = {"name": lambda vs: any(v in attrs["Name"] for v in vs),
             "label": lambda vs: labels_match(attrs.get("Labels"), vs),
             "driver": lambda vs: attrs["Driver"] in vs,
             "dangling": lambda vs: (not used) == (vs[0] in ("true", "1"))}
    return all(tests[k](vs) for k, vs in as_filters(filters).items() if k in tests)
