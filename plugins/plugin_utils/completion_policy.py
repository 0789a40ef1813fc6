# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The policy every completed value passes before anything uses it, whoever produced it:
a model, the local completer, or a lock file entry being reused.

A model and a lock file are outside parties: on top of the argument spec's types and
choices, a connection string keeps its host and port as placeholders, a mount path stays
out of the system's paths and off the container's other mounts, and a volume or network
is new or this stack's own."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import posixpath
import re
import string

from ansible_collections.clockwork.connections.plugins.module_utils.common import STACK_LABEL, docker_name_problem
from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import PLACEHOLDERS
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway

# A mount there, under there, or over one of them (`/`, `/var`) would hide or expose the system.
SYSTEM_PATHS = ("/etc", "/bin", "/sbin", "/usr", "/proc", "/sys", "/dev", "/boot", "/run", "/var/run",
                "/var/run/docker.sock", "/run/docker.sock")
SYSTEM_PREFIXES = ("/lib",)   # /lib, /lib32, /lib64, /libx32, ...
# Each engine's URL schemes, and the query options a completed template may carry (none that
# could move the login elsewhere).
SCHEMES = dict((name, engine.schemes) for name, engine in ENGINES.items())
QUERY_KEYS = dict((name, engine.query_keys) for name, engine in ENGINES.items())
URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:(?P<userinfo>[^@/?#]*)@)?(?P<hostport>[^@/?#]*)"
                 r"(?P<path>/[^?#]*)?(?:\?(?P<query>[^#]*))?$")
URL_TEXT = re.compile(r"^[A-Za-z0-9._~%!$&'()*+,;=:-]*$")
DB_WORD = re.compile(r"^[^\s\x00-\x1f\x7f]{1,63}$")


class Situation(object):
    """What a connection's completed values are judged against.

    occupied: the other mounts of the containers this connection mounts into, as
    (path, source, what) tuples; reserved: names a service alias must not take;
    engine: an EngineView, or None when no engine can be asked."""

    def __init__(self, stack, params=None, occupied=(), reserved=(), engine=None):
        self.stack = stack or "default"
        self.params = params or {}
        self.occupied = list(occupied)
        self.reserved = set(reserved)
        self.engine = engine

    @property
    def db_engine(self):
        return self.params.get("engine") or "postgresql"


def problems(kind, values, situation):
    """[(field, why)] for every value that breaks the policy; empty when all pass."""
    found = []
    for field, value in values.items():
        why = check(kind, field, value, values, situation)
        if why:
            found.append((field, why))
    return found


def check(kind, field, value, values, situation):
    """Why `value` may not be used for `field`, or None."""
    if field == "connection_string_template":
        return template_problem(value, situation.db_engine)
    if field in ("username", "database_name"):
        names = ENGINES[situation.db_engine].database_names
        if names and field == "database_name":
            return None if re.match(names[0], str(value)) else "%r is not %s" % (value, names[1])
        return None if DB_WORD.match(str(value)) else \
            "%r must be 1 to 63 characters without spaces or control characters" % (value,)
    if field == "mount_path":
        return mount_path_problem(value, values, situation)
    if field in ("volume_name", "network_name"):
        what = field.split("_")[0]
        return name_problem(value) or owner_problem(what, value, situation)
    if field == "service_name":
        if name_problem(value):
            return name_problem(value)
        if value in situation.reserved:
            return "%r is the name of another resource of the stack: its DNS name would be taken over" % value
        return None
    if field == "port":
        return None if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536 else \
            "%r is not a port number (1 to 65535)" % (value,)
    return None


def template_problem(template, db_engine):
    """A template for `db_engine`: scheme://[userinfo@]{host}:{port}[/db][?allowed options]."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return "%r is not a template (%s)" % (template, exc)
    for _text, name, spec, conversion in parsed:
        if name is not None and (name not in PLACEHOLDERS or spec or conversion):
            return "%r has the placeholder {%s%s%s}; the known ones are %s" % (
                template, name, "!" + conversion if conversion else "", ":" + spec if spec else "",
                ", ".join("{%s}" % p for p in PLACEHOLDERS))
    shape = URL.match(template)
    if not shape:
        return "%r is not a connection URL of the form scheme://user:password@{host}:{port}/database" % template
    if shape.group("scheme").lower() not in SCHEMES[db_engine]:
        return "%r has the scheme %s; %s takes %s" % (
            template, shape.group("scheme"), db_engine, " or ".join(SCHEMES[db_engine]))
    if shape.group("hostport") != "{host}:{port}":
        return "%r names the server %r: the host and port must be the placeholders {host}:{port}, which are " \
               "the connection's `to` container" % (template, shape.group("hostport"))
    rest = {"userinfo": (shape.group("userinfo") or "", ("{user}", "{password}")),
            "path": ((shape.group("path") or "")[1:], ("{database}",))}
    for part, (text, allowed) in rest.items():
        for placeholder in allowed:
            text = text.replace(placeholder, "")
        if not URL_TEXT.match(text) or (part == "path" and "/" in text):
            return "%r has %r in its %s: only %s and URL characters belong there" % (
                template, shape.group(part) if part == "userinfo" else shape.group("path"), part, " and ".join(allowed))
    for option in (shape.group("query") or "").split("&") if shape.group("query") else []:
        key, _sep, value = option.partition("=")
        if key not in QUERY_KEYS[db_engine] or not URL_TEXT.match(value) or "{" in value:
            return "%r has the option %r; %s" % (template, option, (
                "the allowed options are " + ", ".join(QUERY_KEYS[db_engine])) if QUERY_KEYS[db_engine] else
                "%s takes no options" % db_engine)
    return None


def is_system_path(path):
    """True for a system path, a path under one, and a parent of one (`/`, `/var`)."""
    for system in SYSTEM_PATHS:
        if path == system or path.startswith(system + "/") or system.startswith(path.rstrip("/") + "/"):
            return True
    top = path.split("/")[1] if path.count("/") else ""
    return any(("/" + top).startswith(prefix) for prefix in SYSTEM_PREFIXES)


def nested(a, b):
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def mount_path_problem(path, values, situation):
    if not isinstance(path, str) or not posixpath.isabs(path):
        return "%r is not an absolute path" % (path,)
    if any(ord(c) < 32 or c in ":," for c in path) or posixpath.normpath(path) != path or path.startswith("//"):
        return "%r is not a normalised path (one slash between names, no . or .., no : or ,)" % path
    if is_system_path(path):
        return "%r is a system path (or under or above one: %s, /lib*)" % (path, ", ".join(SYSTEM_PATHS))
    source = values.get("volume_name") or situation.params.get("volume_name") or situation.params.get("source_path")
    for other, other_source, what in situation.occupied:
        if other and nested(path, other) and (source is None or other_source != source):
            return "%r collides with %s mounted at %s" % (path, what, other)
    return None


def name_problem(name):
    """Docker's rule, and no longer than a DNS label: a completed name becomes a DNS alias."""
    problem = docker_name_problem(name)
    if problem is None and len(name) > 63:
        problem = "%r is not a valid Docker name for a DNS alias: longer than 63 characters" % (name,)
    return problem


def owner_problem(what, name, situation):
    if situation.engine is None:
        return None
    labels = situation.engine.labels(what, name)
    if labels is None:   # new, or no engine to ask: the connection creates it with this stack's label
        return None
    if labels.get(STACK_LABEL) != situation.stack:
        owner = labels.get(STACK_LABEL)
        return "%s %s exists and is %s, not stack %s's (label %s=%s)" % (
            what, name, "stack %s's" % owner if owner else "not the collection's", situation.stack,
            STACK_LABEL, situation.stack)
    return None


class EngineView(object):
    """The Docker engine this controller sees, through a DockerGateway, asked lazily and once per object.

    gateway: the one to ask; without one, the engine of this controller's environment (DOCKER_HOST,
    else the local socket), reached on the first question. Unreachable (no engine, a remote target):
    every answer is None."""

    def __init__(self, gateway=None):
        self._gateway = gateway
        self._tried = gateway is not None
        self._cache = {}

    @property
    def gateway(self):
        if not self._tried:
            self._tried = True
            try:
                self._gateway = DockerGateway()
            except Exception:  # pylint: disable=broad-except  # no SDK or no engine here
                self._gateway = None
        return self._gateway

    def _ask(self, key, call):
        if key not in self._cache:
            self._cache[key] = None
            if self.gateway is not None:
                try:
                    self._cache[key] = call(self.gateway)
                except Exception:  # pylint: disable=broad-except  # the engine went away, or refused
                    pass
        return self._cache[key]

    def labels(self, what, name):
        """The labels of an existing volume or network ({} if it has none); None when absent or unknown."""
        inspect = {"volume": lambda gateway: gateway.volume(name), "network": lambda gateway: gateway.network(name)}
        attrs = self._ask((what, name), inspect[what])
        return None if attrs is None else (attrs.get("Labels") or {})

    def container(self, name):
        return self._ask(("container", name), lambda gateway: gateway.container(name))

    def stack_containers(self, stack):
        """Names of the containers labelled as this stack's."""
        found = self._ask(("stack", stack), lambda gateway: gateway.containers(
            all=True, filters={"label": "%s=%s" % (STACK_LABEL, stack)}))
        return [c["Names"][0].lstrip("/") for c in found or [] if c.get("Names")]
