# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names, labels and errors shared by every part of the collection."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

# Ownership labels: destroy and takeover decisions rest on these alone.
STACK_LABEL = "io.clockwork.stack"
RESOURCE_LABEL = "io.clockwork.resource"
# Which replica of its resource a container is (1 for the only one); its name says it too, so a
# container renamed on scaling (`api` <-> `api-1`) does not drift for it.
REPLICA_LABEL = "io.clockwork.replica"
# Declared container ports, so that port discovery reads what the user declared.
PORTS_LABEL = "io.clockwork.ports"
# Mounts that connections added to a container after its creation (file, TLS).
KEPT_MOUNTS_LABEL = "io.clockwork.connection-mounts"
# Ownership, replicas, kept mounts, spec hashes: labels the collection alone sets; a declared one
# could adopt or keep what the declaration no longer says.
RESERVED_LABEL_PREFIX = "io.clockwork."


class ClockworkError(Exception):
    """A failure the user can act on; the message names the problem and the place."""

    def __init__(self, msg, **details):
        super(ClockworkError, self).__init__(msg)
        self.msg = msg
        self.details = details


# Docker's rule for container and volume names (at least 2 characters); networks may have 1.
DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# Compose's rule for project names, which a stack name follows.
STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")   # an environment variable's name


def docker_name_problem(value, shortest=2):
    """Why `value` cannot be a Docker container or volume name (a network name with
    shortest=1), or None."""
    if not isinstance(value, str) or not DOCKER_NAME.match(value) or len(value) < shortest:
        return "%r is not a valid Docker name (a letter or digit, then letters, digits, '_', '.' or '-'%s)" % (
            value, "; at least %d characters" % shortest if shortest > 1 else "")
    return None


# A stack's release records are tagged <stack>.<n> (releases/shelf.py): a tag is at most 128 characters.
STACK_NAME_MAX = 100


def stack_name_problem(value):
    if not isinstance(value, str) or not STACK_NAME.match(value):
        return "stack name %r must be lower-case letters, digits, '-' and '_', starting with a letter or " \
               "digit (Compose's project-name rule)" % (value,)
    if len(value) > STACK_NAME_MAX:
        return "stack name %r is %d characters long, more than %d (its release records are tagged " \
               "<name>.<number>, and a tag is at most 128)" % (value, len(value), STACK_NAME_MAX)
    return None


def port_number(port):
    """`8000/tcp` (or 8000) -> 8000."""
    return int(str(port).split("/", 1)[0])


def ports_from_labels(labels):
    """The declared container ports recorded on a container, like ['8000/tcp']."""
    return [p for p in (labels or {}).get(PORTS_LABEL, "").split(",") if p]


def env_dict(items):
    """Docker's env list (`["A=1", "B"]`) -> {"A": "1", "B": ""}."""
    result = {}
    for item in items or []:
        name, _sep, value = item.partition("=")
        result[name] = value
    return result


def connection_ends(connection):
    """(from, to) of a connection given either as from/to or as from_resource/to_resource."""
    return (connection.get("from_resource") or connection.get("from"),
            connection.get("to_resource") or connection.get("to"))


def env_name(resource_name):
    """`backend-api` -> `BACKEND_API`: upper case, anything outside A-Z0-9 becomes `_`."""
    return re.sub(r"[^A-Z0-9]", "_", resource_name.upper())


def chosen_env_name(params, default):
    """The env var a connection sets in `from`: its `env_var_name` when given ("" for none), else
    the type's default name (an app that reads `WP_REDIS_HOST` gets it under that name)."""
    name = params.get("env_var_name")
    return default if name is None else name


def env_var_name_problems(params):
    name = params.get("env_var_name")
    if name and not ENV_NAME.match(name):
        return [("env_var_name", "%s is not an environment variable name" % name)]
    return []


def owner_labels(stack, resource):
    return {STACK_LABEL: stack, RESOURCE_LABEL: resource}


def owned_by(labels, stack):
    return (labels or {}).get(STACK_LABEL) == stack


class Problems(object):
    """Every problem found in a declaration, each naming its entry and field; raised all at once."""

    def __init__(self):
        self.items = []

    def add(self, where, message):
        self.items.append("%s: %s" % (where, message) if where else message)

    def extend(self, where, messages):
        for message in messages:
            self.add(where, message)

    def raise_if_any(self, heading):
        if self.items:
            raise ClockworkError("%s: %d problem%s found, nothing was changed:\n- %s" % (
                heading, len(self.items), "" if len(self.items) == 1 else "s", "\n- ".join(self.items)),
                problems=list(self.items))
