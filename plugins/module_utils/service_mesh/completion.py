# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Completing a service mesh connection: the port `to` declares, and its name as the service."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.completion_rules import TypeCompletion


class ServiceMeshCompletion(TypeCompletion):

    def candidates(self, params, context):
        ports = (context.get("to") or {}).get("ports") or []
        port = int(str(ports[0]).split("/", maxsplit=1)[0].split(":")[-1]) if ports else 80
        return {"port": [port], "service_name": [params.get("to_resource")]}

    def reserves_container_names(self):
        return True   # a service name is an alias on the stack's networks


COMPLETION = ServiceMeshCompletion()
