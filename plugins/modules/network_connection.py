#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: network_connection
short_description: Connect two containers through a named Docker network with DNS discovery
version_added: 0.1.0
description:
  - Creates the network O(network_name) when missing, with the stack's ownership labels, the driver,
    O(internal), IPv6, and an IPAM O(subnet) and O(gateway) when given.
  - A network the stack owns whose settings differ is recreated, and its containers re-attached,
    only when no container outside the stack is attached; otherwise the task fails naming them.
    A network the stack does not own is used as it is when its settings match, and never changed.
  - Attaches O(to_resource) with its name as DNS alias, and O(from_resource) too if it already exists.
  - Contributes to O(from_resource) the network (so it is kept when the container is recreated) and
    C(<TO>_HOST=<to>), where C(<TO>) is the resource name upper-cased with every character outside
    C(A-Z0-9) turned into C(_), for example C(REDIS_HOST=redis).
  - Its checks, for M(clockwork.connections.verify), resolve O(to_resource) and open its first
    declared port over TCP from inside O(from_resource); with O(internal=true), they also prove that
    the network gives no route out.
author:
  - Clockwork Connections developers (@clockwork-connections)
requirements:
  - docker (the Docker SDK for Python) >= 7.0
extends_documentation_fragment:
  - clockwork.connections.connection
  - clockwork.connections.connection.completion
options:
  network_name:
    description: Name of the Docker network. Required unless completed from O(description).
    type: str
  driver:
    description: Network driver, such as C(bridge) or C(overlay).
    type: str
    default: bridge
  internal:
    description: An internal network has no route out of the host.
    type: bool
    default: false
  enable_ipv6:
    description: Enable IPv6 on the network (give an IPv6 O(subnet) on engines without a default IPv6 pool).
    type: bool
    default: false
  subnet:
    description: IPAM subnet in CIDR form, like C(172.28.0.0/16). Left to the engine when not given.
    type: str
  gateway:
    description: IPAM gateway address inside O(subnet).
    type: str
  aliases:
    description: Extra DNS aliases for O(to_resource) on the network.
    type: list
    elements: str
    default: []
  env_var_name:
    description:
      - Env variable contributed to O(from_resource), holding the name of O(to_resource). Defaults to
        C(<TO>_HOST) (the O(to_resource) name upper-cased, every character outside C(A-Z0-9) turned into C(_)).
      - Name the variable the application reads, for example C(WP_REDIS_HOST); an empty string contributes none.
    type: str
"""

EXAMPLES = r"""
- name: Put api and redis on backend-network; api gets REDIS_HOST=redis
  clockwork.connections.network_connection:
    from: api
    to: redis
    network_name: backend-network
    stack: shop
  register: backend

- name: An internal network with a fixed subnet
  clockwork.connections.network_connection:
    from: api
    to: postgres
    network_name: db-internal
    internal: true
    subnet: 172.28.5.0/24
    gateway: 172.28.5.1
    stack: shop

- name: Create api with the contribution merged in
  clockwork.connections.container:
    name: api
    image: nginx:1.27
    contributions: ["{{ backend.contribution }}"]
    stack: shop
"""

RETURN = r"""
network:
  description: The network and the port of O(to_resource) that the checks use.
  returned: always
  type: dict
  sample: {name: backend-network, to_port: 6379/tcp}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clockwork.connections.plugins.module_utils.module_runner import (
    connection_spec, run_connection)
from ansible_collections.clockwork.connections.plugins.module_utils.network import connection_type as network


def main():
    module = AnsibleModule(argument_spec=connection_spec(network.TYPE.args), supports_check_mode=True,
                           required_by={"gateway": ["subnet"]})
    run_connection(module, network.TYPE)


if __name__ == "__main__":
    main()
