# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shape of a release record and of the releases index, checked on every read (a file on
the host is untrusted data: a run killed while writing, or someone else, may have left it) and
before every write (nothing is written that would not be read back).

A release (format 1):

    format, stack, number      1, the stack's name, its number (1, 2, ...: never reused)
    time                       UTC, ISO 8601 (2026-12-06T18:00:00Z)
    controller                 user@host of the controller that ran the apply
    plan_digest                sha256 of the plan as plain data (plan.as_dict)
    target                     docker | swarm
    containers                 name -> {resource, name, id, image, image_id, state, config, host_config,
                                        endpoints, labels, secret_env}: what `docker inspect` read
                                        back after the apply, enough to create it again as it ran
    services                   name -> {id, version, spec, networks (optional: network id -> its name)}: the
                                        Swarm target's services
    databases                  connection label -> {to, engine, database, migrations: [{kind, name,
                                        sha256, applied_here}], migrations_from, snapshots: [...]}
    checks                     the checks the connections name (apply/checks.py), for stack_info's health
    order (optional)           the resources in the order they deploy: a return to the release goes so
    rolled_back_to (optional)  the release a rollback returned to, when a rollback made this one
    restored_data (optional)   true when that rollback also restored the databases (restore_data)
    networks (optional)        name -> the settings the plan wanted of each of the stack's networks
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError

FORMAT = 1
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
TARGETS = ("docker", "swarm")
# Bounds on what a file may hold, so that a hostile one cannot make a run do unbounded work.
MAX_ITEMS = 1000
MAX_TEXT = 4096


class Invalid(Exception):
    """One field that is not what a release holds: `where` names it."""


def _type(value, kinds, where, name):
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise Invalid("%s: %s expected, not a boolean" % (where, name))
    if not isinstance(value, kinds):
        raise Invalid("%s: %s expected, not %s" % (where, name, type(value).__name__))
    return value


def _text(value, where, pattern=None, limit=MAX_TEXT):
    _type(value, str, where, "a string")
    if len(value) > limit:
        raise Invalid("%s: longer than %d characters" % (where, limit))
    if pattern is not None and not pattern.match(value):
        raise Invalid("%s: %r is not of the form %s" % (where, value[:80], pattern.pattern))
    return value


def _number(value, where, lowest=0):
    _type(value, int, where, "a whole number")
    if value < lowest:
        raise Invalid("%s: %d is below %d" % (where, value, lowest))
    return value


def _mapping(value, where, limit=MAX_ITEMS):
    _type(value, dict, where, "a mapping")
    if len(value) > limit:
        raise Invalid("%s: more than %d entries" % (where, limit))
    for key in value:
        _text(key, "%s key" % where)
    return value


def _items(value, where, limit=MAX_ITEMS):
    _type(value, list, where, "a list")
    if len(value) > limit:
        raise Invalid("%s: more than %d entries" % (where, limit))
    return value


def _fields(value, where, required, optional=()):
    _mapping(value, where)
    missing = [k for k in required if k not in value]
    if missing:
        raise Invalid("%s: %s missing" % (where, ", ".join(missing)))
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        raise Invalid("%s: unknown field %s" % (where, ", ".join(unknown)))
    return value


def _container(value, where):
    _fields(value, where, ("resource", "name", "id", "image", "image_id", "state", "config", "host_config",
                           "endpoints", "labels", "secret_env"))
    for key in ("resource", "name", "id", "image", "image_id", "state"):
        _text(value[key], "%s.%s" % (where, key))
    _mapping(value["config"], where + ".config")
    _mapping(value["host_config"], where + ".host_config")
    for network, endpoint in _mapping(value["endpoints"], where + ".endpoints").items():
        _mapping(endpoint, "%s.endpoints.%s" % (where, network))
    for key, label in _mapping(value["labels"], where + ".labels").items():
        _text(label, "%s.labels.%s" % (where, key))
    for index, name in enumerate(_items(value["secret_env"], where + ".secret_env")):
        _text(name, "%s.secret_env[%d]" % (where, index))


def _service(value, where):
    _fields(value, where, ("id", "version", "spec"), ("networks",))
    _text(value["id"], where + ".id")
    for target, name in _mapping(value.get("networks", {}), where + ".networks").items():
        _text(name, "%s.networks.%s" % (where, target))
    _number(value["version"], where + ".version")
    _mapping(value["spec"], where + ".spec")


def _database(value, where):
    _fields(value, where, ("to", "engine", "database", "migrations", "migrations_from", "snapshots"))
    for key in ("to", "engine", "database", "migrations_from"):
        _text(value[key], "%s.%s" % (where, key))
    for index, step in enumerate(_items(value["migrations"], where + ".migrations")):
        at = "%s.migrations[%d]" % (where, index)
        _fields(step, at, ("kind", "name", "sha256", "applied_here"))
        _text(step["kind"], at + ".kind")
        _text(step["name"], at + ".name")
        _text(step["sha256"], at + ".sha256", SHA256)
        _type(step["applied_here"], bool, at + ".applied_here", "true or false")
    for index, snapshot in enumerate(_items(value["snapshots"], where + ".snapshots")):
        _fields(snapshot, "%s.snapshots[%d]" % (where, index), ("name",), ("created", "size", "volume", "kind"))
        _text(snapshot["name"], "%s.snapshots[%d].name" % (where, index))


def release_problem(document, stack, number):
    """What makes `document` not release `number` of `stack`; None when it is one."""
    try:
        _fields(document, "release", ("format", "stack", "number", "time", "controller", "plan_digest", "target",
                                      "containers", "services", "databases", "checks"),
                ("order", "rolled_back_to", "restored_data", "networks"))
        if document["format"] != FORMAT:
            raise Invalid("format: %r, where this collection reads %d" % (document["format"], FORMAT))
        if document["stack"] != stack:
            raise Invalid("stack: %r, not %r" % (document["stack"], stack))
        if _number(document["number"], "number", 1) != number:
            raise Invalid("number: %d, where its place says %d" % (document["number"], number))
        _text(document["time"], "time", TIME)
        _text(document["controller"], "controller", limit=512)
        if document["plan_digest"]:
            _text(document["plan_digest"], "plan_digest", SHA256)
        if document["target"] not in TARGETS:
            raise Invalid("target: %r, not one of %s" % (document["target"], ", ".join(TARGETS)))
        for name, container in _mapping(document["containers"], "containers").items():
            _container(container, "containers.%s" % name)
        for name, service in _mapping(document["services"], "services").items():
            _service(service, "services.%s" % name)
        for label, database in _mapping(document["databases"], "databases").items():
            _database(database, "databases.%s" % label)
        for index, check in enumerate(_items(document["checks"], "checks")):
            _mapping(check, "checks[%d]" % index)
        for index, name in enumerate(_items(document.get("order", []), "order")):
            _text(name, "order[%d]" % index)
        if "rolled_back_to" in document:
            _number(document["rolled_back_to"], "rolled_back_to", 1)
        for name, settings in _mapping(document.get("networks", {}), "networks").items():
            _fields(settings, "networks.%s" % name, (), ("driver", "internal", "enable_ipv6", "subnet", "gateway"))
        if "restored_data" in document:
            _type(document["restored_data"], bool, "restored_data", "true or false")
    except Invalid as exc:
        return str(exc)
    return None


def check_release(document, stack, number, path):
    """`document` when it is release `number` of `stack`, else a clear error naming `path`."""
    problem = release_problem(document, stack, number)
    if problem:
        raise ClockworkError("%s is not release %d of stack %s (%s): move it away and run again"
                             % (path, number, stack, problem))
    return document


def check_index(document, stack, path):
    """The releases index when it is one of `stack`, else a clear error naming `path`."""
    try:
        _fields(document, "index", ("format", "stack", "releases", "current", "last"))
        if document["format"] != FORMAT or document["stack"] != stack:
            raise Invalid("format %r of stack %r, where format %d of stack %r is read"
                          % (document["format"], document["stack"], FORMAT, stack))
        numbers = [_number(n, "releases[%d]" % i, 1) for i, n in enumerate(_items(document["releases"], "releases"))]
        if numbers != sorted(set(numbers)):
            raise Invalid("releases: %s is not in increasing order" % numbers)
        last = _number(document["last"], "last")
        if numbers and last < numbers[-1]:
            raise Invalid("last: %d, below release %d" % (last, numbers[-1]))
        if document["current"] is not None and _number(document["current"], "current", 1) not in numbers:
            raise Invalid("current: %d is not a kept release" % document["current"])
    except Invalid as exc:
        raise ClockworkError("%s is not the releases index of stack %s (%s): move it away and run again"
                             % (path, stack, exc))
    return document
