# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deployment_order and stack_diagram: the stack module's graph logic as filters."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.graph import (
    deployment_order as order_of, injected_env, mermaid, validate)


def deployment_order(resources, connections=None):
    try:
        validate(resources, connections or [])
        return order_of([r["name"] for r in resources], connections or [])
    except ClockworkError as exc:
        raise AnsibleFilterError(exc.msg)


def stack_diagram(resources, connections=None):
    connections = connections or []
    try:
        validate(resources, connections)
    except ClockworkError as exc:
        raise AnsibleFilterError(exc.msg)
    return mermaid(resources, connections, dict((i, injected_env(c)) for i, c in enumerate(connections)))


class FilterModule(object):
    def filters(self):
        return {"deployment_order": deployment_order, "stack_diagram": stack_diagram}
