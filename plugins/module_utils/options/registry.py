# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option table: every option of the container resource, in the order drift gives its
reasons (the core settings, then the others by theme, the mappings env and labels last).

    for option in TABLE: option.name, option.spec, option.compose, option.swarm, option.grant ...
    BY_NAME["user"]            one option
    argument_spec()            the options' argument spec (CONTAINER_ARGS adds name, state, wait, timeout)
    not_on_swarm()             the names of the options a Swarm service cannot have
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.options import (
    core, networking, process, resources, security, storage)

_CORE_ORDER = ("image", "command", "ports", "mounts", "healthcheck", "restart_policy")


def _ordered(options):
    first = [o for name in _CORE_ORDER for o in options if o.name == name]
    last = [o for o in options if o.compare == "entries"]
    return first + [o for o in options if o not in first and o not in last] + last


TABLE = tuple(_ordered(core.OPTIONS + storage.OPTIONS + networking.OPTIONS + security.OPTIONS + process.OPTIONS
                       + resources.OPTIONS))
BY_NAME = dict((o.name, o) for o in TABLE)
if len(BY_NAME) != len(TABLE):
    raise TypeError("an option of the container table is declared twice")


def argument_spec():
    """The options' argument spec, in the table's order (each a copy)."""
    return dict((o.name, dict(o.spec)) for o in TABLE)


def not_on_swarm():
    """The options a Swarm service's tasks cannot be given, in the table's order."""
    return tuple(o.name for o in TABLE if o.swarm is None)


def grants():
    """The options that grant the container part of the host, in the table's order."""
    return tuple(o.name for o in TABLE if o.grant)
