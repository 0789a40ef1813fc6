# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deployment_order and stack_diagram: the stack module's graph logic as filters.

The graph code (and with it every connection type) is imported when one of these filters runs:
Ansible loads every filter file of the collection to find any one of its filters."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _on_valid_graph(resources, connections, work):
    """work(module_utils/graph.py) once the declaration is valid; its errors as the filter's."""
    from ansible_collections.clockwork.connections.plugins.module_utils import graph  # pylint: disable=import-outside-toplevel
    from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError  # pylint: disable=import-outside-toplevel
    try:
        graph.validate(resources, connections)
        return work(graph)
    except ClockworkError as exc:
        raise AnsibleFilterError(exc.msg)


def deployment_order(resources, connections=None):
    connections = connections or []
    return _on_valid_graph(resources, connections, lambda graph: graph.deployment_order(
        [r["name"] for r in resources], connections))


def stack_diagram(resources, connections=None):
    connections = connections or []
    return _on_valid_graph(resources, connections, lambda graph: graph.mermaid(
        resources, connections, dict((i, graph.injected_env(c)) for i, c in enumerate(connections))))


class FilterModule(object):
    def filters(self):
        return {"deployment_order": deployment_order, "stack_diagram": stack_diagram}
