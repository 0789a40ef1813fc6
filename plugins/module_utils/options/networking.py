# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Networking options: the networks a container joins (attached by the converger, not compared
as drift: a connection may attach more), its network mode, names and DNS."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.options.table import NETWORKING, Option


def normal_network(network):
    """A network to join in normal form: name, sorted aliases, and only when set: ipv4_address, priority."""
    normal = {"name": network["name"], "aliases": sorted(network.get("aliases") or [])}
    for key in ("ipv4_address", "priority"):
        if network.get(key) is not None:
            normal[key] = network[key]
    return normal


def _networks(value, _ctx):
    networks = [normal_network(n) for n in value or []]
    # Compose's priority: the network of the highest is joined first (at creation); a stable sort
    # keeps the declared order among equals.
    return sorted(networks, key=lambda n: -(n.get("priority") or 0))


OPTIONS = [
    Option("networks", dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True),
        aliases=dict(type="list", elements="str", default=[]),
        ipv4_address=dict(type="str"),
        priority=dict(type="int"),
    )), "Networks to join, each with DNS aliases. The first is joined at creation, the others after.",
        where=NETWORKING, optional=False, compare=None, normal=_networks, compose=("networks",),
        swarm="TaskTemplate.Networks",
        details=("A missing attachment is added without recreating the container.",
                 "O(networks[].ipv4_address) is the container's address on that network (a network with a subnet); "
                 "the network of the highest O(networks[].priority) is joined first.")),
]
