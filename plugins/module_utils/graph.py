# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack as a graph: validation, deployment order, and a Mermaid picture.

Pure functions on the declared data: the stack module, the deployment_order filter
and the role use the same ones."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, env_name

RESOURCE_TYPES = ("container", "file", "volume")
CONNECTION_TYPES = ("dependency", "database", "network", "file", "service_mesh")


def connection_ends(connection):
    return connection.get("from") or connection.get("from_resource"), connection.get("to") or connection.get("to_resource")


def describe_connection(index, connection):
    source, target = connection_ends(connection)
    return "connection #%d (%s %s -> %s)" % (index + 1, connection.get("type"), source, target)


def validate(resources, connections):
    """Every problem of the declaration at once, each naming its entry; raises ClockworkError."""
    problems = []
    kinds = {}
    for index, resource in enumerate(resources):
        name = resource.get("name")
        if not name:
            problems.append("resource #%d has no name" % (index + 1))
            continue
        if name in kinds:
            problems.append("resource %s is declared twice" % name)
        kind = resource.get("type", "container")
        if kind not in RESOURCE_TYPES:
            problems.append("resource %s has unknown type %s (known: %s)" % (name, kind, ", ".join(RESOURCE_TYPES)))
        kinds[name] = kind
    for index, connection in enumerate(connections):
        where = describe_connection(index, connection)
        if connection.get("type") not in CONNECTION_TYPES:
            problems.append("%s has unknown type %s (known: %s)" % (where, connection.get("type"),
                                                                    ", ".join(CONNECTION_TYPES)))
        source, target = connection_ends(connection)
        for end, name in (("from", source), ("to", target)):
            if name not in kinds:
                problems.append("%s: unknown resource %s in %s" % (where, name, end))
        if source in kinds and kinds[source] != "container":
            problems.append("%s: from must be a container, %s is a %s" % (where, source, kinds[source]))
        if target in kinds and kinds[target] != "container" and connection.get("type") != "file":
            problems.append("%s: to must be a container, %s is a %s" % (where, target, kinds[target]))
    if problems:
        raise ClockworkError("invalid stack: " + "; ".join(problems))
    cycle = find_cycle([r["name"] for r in resources], connections)
    if cycle:
        raise ClockworkError("invalid stack: the connections form a cycle: %s" % " -> ".join(cycle))


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
    shapes = {"container": '["%s"]', "file": '[/"%s"/]', "volume": '[("%s")]'}
    lines = ["flowchart TD"]
    for resource in resources:
        kind = resource.get("type", "container")
        label = resource["name"]
        lines.append("    %s%s" % (_node_id(resource["name"]), shapes[kind] % label))
    for index, connection in enumerate(connections):
        source, target = connection_ends(connection)
        details = list(env_by_connection.get(index) or [])
        if connection["type"] == "file":
            details = [p for p in (connection.get("volume_name"), connection.get("mount_path")) if p]
        elif connection["type"] == "network" and connection.get("network_name"):
            details.insert(0, connection["network_name"])
        label = "<br/>".join([connection["type"]] + details)
        lines.append('    %s -->|"%s"| %s' % (_node_id(source), label, _node_id(target)))
    return "\n".join(lines) + "\n"


def injected_env(connection):
    """The env names a connection gives its `from` container, as the modules name them."""
    kind = connection.get("type")
    _source, target = connection_ends(connection)
    if kind == "network":
        return [env_name(target) + "_HOST"]
    if kind == "database":
        return [connection.get("env_var_name") or ("REDIS_URL" if connection.get("engine") == "redis" else "DATABASE_URL")]
    if kind == "service_mesh":
        prefix = env_name(connection.get("service_name") or target)
        return [prefix + "_URL"] + ([prefix + "_CA_FILE"] if connection.get("tls_enabled") else [])
    return []


def diagram_document(stack, resources, connections):
    """The Markdown file the stack writes: a heading and the Mermaid flowchart."""
    chart = mermaid(resources, connections, dict((i, injected_env(c)) for i, c in enumerate(connections)))
    return ("# Stack %s\n\nWritten by clockwork.connections: resources, connections and the env they inject."
            "\n\n```mermaid\n%s```\n" % (stack, chart))
