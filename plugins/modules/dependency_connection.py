#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: dependency_connection
short_description: Wait, bounded, until a container is started, healthy or completed
version_added: 0.1.0
description:
  - Ordering only, like the seed's DependencyConnection. It waits until O(to_resource) reaches
    O(condition), then lets the play go on to O(from_resource).
  - It changes nothing, so it always reports C(changed=false), in check mode too, where a
    O(to_resource) that does not exist yet is reported rather than failed on.
  - On time-out, or when O(to_resource) exits or turns unhealthy, it fails with its state and last log lines.
author:
  - Clockwork Connections developers (@clockwork-connections)
requirements:
  - docker (the Docker SDK for Python) >= 7.0
extends_documentation_fragment:
  - clockwork.connections.connection
options:
  condition:
    description:
      - C(started) waits until it runs; C(healthy) until its healthcheck passes;
        C(completed_successfully) until a one-shot container has exited with code 0.
      - Defaults to C(healthy) when O(to_resource) has a healthcheck, else C(started).
    type: str
    choices: [started, healthy, completed_successfully]
  timeout:
    description: Seconds to wait.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: Start frontend only once redis runs
  clockwork.connections.dependency_connection:
    from: frontend
    to: redis
    stack: shop

- name: Wait for a migration job to finish
  clockwork.connections.dependency_connection:
    from: api
    to: migrate
    condition: completed_successfully
    timeout: 300
    stack: shop
"""

RETURN = r"""
dependency:
  description: The condition waited for and the state O(to_resource) was found in.
  returned: always
  type: dict
  sample: {condition: healthy, state: running, health: healthy}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clockwork.connections.plugins.module_utils.dependency import connection_type as dependency
from ansible_collections.clockwork.connections.plugins.module_utils.module_runner import (
    connection_spec, run_connection)


def main():
    module = AnsibleModule(argument_spec=connection_spec(dependency.TYPE.args, completion=False), supports_check_mode=True)
    run_connection(module, dependency.TYPE)


if __name__ == "__main__":
    main()
