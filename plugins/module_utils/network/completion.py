# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Completing a network connection: `backend network for ...` -> backend-network, bridge."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.completion_rules import (
    STOP_WORDS, TypeCompletion, docker_like_name, words)


class NetworkCompletion(TypeCompletion):
    narrower_choices = {"driver": ("bridge", "overlay")}

    def candidates(self, params, context):
        said = words(params.get("description"))
        stack = context.get("stack") or params.get("stack")
        source, target = params.get("from_resource"), params.get("to_resource")
        named = [said[i - 1] for i, w in enumerate(said) if w == "network" and i > 0 and said[i - 1] not in STOP_WORDS]
        first = "%s-network" % named[0] if named else "%s-%s-net" % (source, target)
        return {"network_name": [first, docker_like_name(stack, first), docker_like_name(stack, source, target, "net")],
                "driver": ["overlay" if {"overlay", "swarm"} & set(said) else "bridge"]}


COMPLETION = NetworkCompletion()
