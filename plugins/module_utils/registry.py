# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connection types. Each type's file ends with its `TYPE`; a new type is one file
and one line here. The stack, the single modules, the checks, the diagram and field
completion all read this table."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.database import connection_type as database
from ansible_collections.clockwork.connections.plugins.module_utils.dependency import connection_type as dependency
from ansible_collections.clockwork.connections.plugins.module_utils.file import connection_type as file
from ansible_collections.clockwork.connections.plugins.module_utils.network import connection_type as network
from ansible_collections.clockwork.connections.plugins.module_utils.service_mesh import connection_type as service_mesh

CONNECTION_TYPES = dict((t.name, t) for t in (
    dependency.TYPE,
    database.TYPE,
    network.TYPE,
    file.TYPE,
    service_mesh.TYPE,
))


def type_of_module(action):
    """The connection type whose single module `action` is (`clockwork.connections.<type>_connection`), or None."""
    prefix, _sep, name = (action or "").rpartition(".")
    if prefix != "clockwork.connections" or not name.endswith("_connection"):
        return None
    return CONNECTION_TYPES.get(name[:-len("_connection")])


# Every check kind any type defines -> the function that runs it.
CHECKS = dict((kind, runner) for t in CONNECTION_TYPES.values() for kind, runner in t.checks.items())
