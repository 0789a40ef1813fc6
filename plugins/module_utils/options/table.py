# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container resource's options, each declared once (the idea of community.docker's
`Option`): its argument spec and documentation, its normal form from a declaration, how it goes
into the create call, how it is read back from an inspect into the same normal form (so drift is
a comparison of two normal forms), whether a change needs a recreate or `docker update` can make
it, its Swarm service field (or none: refused on Swarm), its Compose keys, and whether it is a
grant of the host or may hold a secret.

The themes (process.py, security.py, ...) declare the options; registry.py puts them in order."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError

# Where an option goes in the create call: the container's config (create_container's arguments),
# its host config (create_host_config's), or its networks (the converger attaches them).
CONFIG, HOST, NETWORKING = "config", "host", "networking"


def unset(value):
    """Whether a normal form says "not set": what a container that declares nothing has."""
    return value is None or value is False or value == [] or value == {} or value == ""


class Context(object):
    """What normalising a declaration may need: the container's name (for messages) and the
    directory relative host paths resolve against."""

    def __init__(self, name, base_dir=None):
        self.name = name
        self.base_dir = base_dir


class Body(object):
    """The create call being built: `config` holds create_container's keyword arguments,
    `host` create_host_config's."""

    def __init__(self):
        self.config = {}
        self.host = {}


def _identity(value, *_args):
    return value


class SwarmField(object):
    """Where an option is in a Swarm service's spec (`path`: its keys from the spec's root), and how its
    normal form is written there (`to_api`) and read back (`from_api`, to the same normal form);
    `refuse`: (declared value) -> why a service cannot have that value (None: it can), said in the plan;
    `normal`: (the option's normal form) -> the same as the service holds it (a spelling the engine does
    not keep, made the one it gives back).
    services.py maps every option that has one; an option with none is not on Swarm."""

    def __init__(self, path, to_api=None, from_api=None, refuse=None, normal=None):
        self.path = tuple(path)
        self.to_api = to_api or (lambda value: value)
        self.from_api = from_api or (lambda value: value)
        self.refuse = refuse or (lambda value: None)
        self.normal = normal or (lambda value: value)

    def __str__(self):
        return ".".join(self.path)

    def get(self, service_spec):
        """The normal form of the option in a service's spec; None when it is not set there."""
        found = service_spec
        for key in self.path:
            found = (found or {}).get(key)
        value = None if found is None else self.from_api(found)
        return None if unset(value) else value

    def put(self, service_spec, value):
        """Write the option's normal form into a service's spec (None: take it out)."""
        parent = service_spec
        for key in self.path[:-1]:
            parent = parent.setdefault(key, {})
        if unset(value):
            parent.pop(self.path[-1], None)
        else:
            parent[self.path[-1]] = self.to_api(value)


class Option(object):
    """One field of the container resource.

    name      the field's name in a declaration (the container module's option)
    spec      its argument spec (type, elements, options, default, choices)
    doc       one line for the module documentation; `details`: more lines
    where     CONFIG, HOST or NETWORKING: the part of the create call it goes into
    normal    (declared value, Context) -> normal form; raises ClockworkError naming container and field
    body      (normal form, Body): puts it into the create call (nothing for None)
    read      (inspect attrs) -> normal form, as `normal` gives it for the same setting
    wanted    (normal form, image attrs, spec) -> what is compared (the image's default for one not declared)
    accepts   (running normal form) -> whether an undeclared option takes the running value as its own
              (one the engine chose: an ipc mode, a hostname)
    compare   "value" (the field is the reason), "entries" (a mapping: the keys that differ are), None
    optional  left out of both sides of a comparison and a diff when unset (so a container that sets
              none of them compares and shows as it did before the option existed)
    update    a change is made in place (`docker update`), no recreate
    swarm     the Swarm service field it becomes: a SwarmField (services.py maps it from the table) or the
              name of one services.py maps by hand; None: not on Swarm (refused before any change)
    compose   the Compose service keys it is imported from and exported to
    grant     the grant of the host it is (the compose import's opt-in names: privileged,
              capabilities, devices, host_namespaces ...), or None
    secret    its values may hold secrets (masked in every output)
    subdocs   suboption -> its one line of documentation (an option with `options` in its spec)
    """

    def __init__(self, name, spec, doc, where=HOST, normal=None, body=None, read=None, wanted=None, accepts=None,
                 compare="value", optional=True, update=False, swarm=None, compose=(), grant=None, secret=False,
                 details=(), subdocs=None):
        self.name, self.spec, self.doc, self.details = name, spec, doc, tuple(details)
        self.subdocs = dict(subdocs or {})
        self.where = where
        self.normal = normal or _identity
        self.body = body
        self.read = read
        self.wanted = wanted or _identity
        self.accepts = accepts
        self.compare = compare
        self.optional = optional
        self.update = update
        self.swarm = swarm
        self.compose = tuple(compose)
        self.grant = grant
        self.secret = secret

    def __repr__(self):
        return "Option(%s)" % self.name

    def problem(self, ctx, text):
        """The error of an invalid value: it names the container and the field."""
        return ClockworkError("container %s: %s: %s" % (ctx.name, self.name, text))


# -- parsers the options share ------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNIT_NS = {"us": 10 ** 3, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}


def duration_ns(value):
    """`30s`, `1m30s`, `500ms` or a number of seconds -> nanoseconds, as Docker keeps them."""
    if isinstance(value, (int, float)) or str(value).isdigit():
        return int(float(value) * 10 ** 9)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ClockworkError("invalid duration %r: use forms like 30s, 1m30s or 500ms" % value)
    return int(sum(float(n) * _UNIT_NS[u] for n, u in parts))


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$", re.IGNORECASE)
_UNIT_BYTES = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def size_bytes(value):
    """`512m`, `1g`, `64MiB`, `100000` or a number -> bytes (binary units, as Docker and Compose read them)."""
    if isinstance(value, bool):
        raise ClockworkError("invalid size %r: use forms like 512m, 1g or a number of bytes" % (value,))
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value).strip())
    if not match:
        raise ClockworkError("invalid size %r: use forms like 512m, 1g or a number of bytes" % (value,))
    return int(float(match.group(1)) * _UNIT_BYTES[match.group(2).lower()])


def checked(option, ctx, convert, value):
    """convert(value), its error said as the option's."""
    try:
        return convert(value)
    except ClockworkError as exc:
        raise option.problem(ctx, exc.msg)
    except (TypeError, ValueError) as exc:
        raise option.problem(ctx, str(exc))
