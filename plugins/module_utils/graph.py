# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack as a graph: validation, deployment order, and a Mermaid picture.

Pure functions on the declared data: the stack module, the deployment_order filter
and the role use the same ones."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    ClockworkError, Problems, connection_ends)
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES
from ansible_collections.clockwork.connections.plugins.module_utils.resource_types import (
    DEFAULT_KIND, RESOURCE_KINDS, kind_of)

RESOURCE_TYPES = tuple(RESOURCE_KINDS)


def connection_labels(connections):
    """How messages name each connection: `connection database api -> db`, with `#N`
    added where two connections would read the same."""
    labels = []
    for connection in connections:
        source, target = connection_ends(connection)
        labels.append("connection %s %s -> %s" % (connection.get("type"), source, target))
    return [label + (" (#%d)" % (index + 1) if labels.count(label) > 1 else "")
            for index, label in enumerate(labels)]


def structure_problems(resources, connections, problems):
    """Names, types and ends of the declaration, into `problems`. Returns name -> kind."""
    kinds = {}
    for index, resource in enumerate(resources):
        name = resource.get("name")
        if not name:
            problems.add("resource #%d" % (index + 1), "name: is required")
            continue
        if name in kinds:
            problems.add("resource %s" % name, "name: declared twice")
        kind = resource.get("type") or DEFAULT_KIND
        if kind not in RESOURCE_KINDS:
            problems.add("resource %s" % name, "type: unknown type %s (known: %s)" % (kind, ", ".join(RESOURCE_TYPES)))
        kinds[name] = kind
    for label, connection in zip(connection_labels(connections), connections):
        kind = CONNECTION_TYPES.get(connection.get("type"))
        if kind is None:
            known = ", ".join(sorted(CONNECTION_TYPES))
            problems.add(label, "type: unknown type %s (known: %s)" % (connection.get("type"), known))
        source, target = connection_ends(connection)
        for end, name in (("from", source), ("to", target)):
            if name not in kinds:
                problems.add(label, "%s: unknown resource %s" % (end, name))
        if source in kinds and kinds[source] in RESOURCE_KINDS and not RESOURCE_KINDS[kinds[source]].runs_containers:
            problems.add(label, "from: must be a container, %s is a %s" % (source, kinds[source]))
        if kind is not None and target in kinds and kinds[target] not in kind.to_kinds:
            problems.add(label, "to: must be a %s, %s is a %s" % (" or ".join(kind.to_kinds), target, kinds[target]))
    return kinds


def validate(resources, connections):
    """Every problem of the declaration's structure at once, each naming its entry; raises ClockworkError."""
    problems = Problems()
    structure_problems(resources, connections, problems)
    if not problems.items:
        cycle = find_cycle([r["name"] for r in resources], connections)
        if cycle:
            problems.add(None, "the connections form a cycle: %s" % " -> ".join(cycle))
    problems.raise_if_any("invalid stack")


def _dependencies(names, connections):
    """name -> the names it depends on (`from` depends on `to`), in declaration order."""
    needs = dict((name, []) for name in names)
    for connection in connections:
        source, target = connection_ends(connection)
        if source in needs and target in needs and target not in needs[source]:
            needs[source].append(target)
    return needs


def find_cycle(names, connections):
    """A cycle spelled out, like ['api', 'cache', 'api'], or None."""
    needs = _dependencies(names, connections)
    state = {}

    def visit(name, path):
        state[name] = "visiting"
        for target in needs[name]:
            if state.get(target) == "visiting":
                return path[path.index(target):] + [target] if target in path else [name, target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[name] = "done"
        return None

    for name in names:
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return None


def deployment_order(names, connections):
    """Topological order (a resource after what it connects to), ties by declaration order."""
    needs = _dependencies(names, connections)
    cycle = find_cycle(names, connections)
    if cycle:
        raise ClockworkError("the connections form a cycle: %s" % " -> ".join(cycle))
    placed, order = set(), []
    while len(order) < len(names):
        for name in names:
            if name not in placed and all(n in placed for n in needs[name]):
                placed.add(name)
                order.append(name)
                break
    return order


def _node_id(name):
    return "n_" + "".join(c if c.isalnum() else "_" for c in name)


def mermaid(resources, connections, env_by_connection=None):
    """A Mermaid flowchart: resources as nodes, connections as labelled edges with their env."""
    env_by_connection = env_by_connection or {}
    lines = ["flowchart TD"]
    for resource in resources:
        lines.append("    %s%s" % (_node_id(resource["name"]), kind_of(resource).shape % resource["name"]))
    for index, connection in enumerate(connections):
        source, target = connection_ends(connection)
        details = CONNECTION_TYPES[connection["type"]].diagram_details(connection) + list(
            env_by_connection.get(index) or [])
        label = "<br/>".join([connection["type"]] + details)
        lines.append('    %s -->|"%s"| %s' % (_node_id(source), label, _node_id(target)))
    return "\n".join(lines) + "\n"


def injected_env(connection):
    """The env names a connection gives its `from` container, as its type names them."""
    return CONNECTION_TYPES[connection["type"]].injected_env(connection, connection_ends(connection)[1])


def diagram_document(stack, resources, connections):
    """The Markdown file the stack writes: a heading and the Mermaid flowchart."""
    chart = mermaid(resources, connections, dict((i, injected_env(c)) for i, c in enumerate(connections)))
    return ("# Stack %s\n\nWritten by clockwork.connections: resources, connections and the env they inject."
            "\n\n```mermaid\n%s```\n" % (stack, chart))
