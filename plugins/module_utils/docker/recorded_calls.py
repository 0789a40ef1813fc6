# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's create of a container from the engine's own create body, as a release recorded it
(releases/recreate.py create_body: Config's fields, HostConfig, NetworkingConfig; the image by ID):
what a return to a release makes (apply/docker_rollback.py). `RecordedCalls` is the gateway's part
(gateway.py composes it), `RecordedMemory` the memory engine's (memory.py; a dry run inherits it)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy

from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_base import api_method


class RecordedCalls(object):
    """The write: recorded and forgotten like every other (DockerGateway._wrote)."""

    def create_from_body(self, name, body):
        """A container `name` from the engine's create body `body`; the engine's answer ({"Id": ...})."""
        made = self.api.create_container_from_config(body, name=name)
        self._wrote("create container %s" % name, ("container", name))
        self._names_changed(name)
        return made


class RecordedMemory(object):
    """The memory engine's side (the SDK's APIClient.create_container_from_config)."""

    @api_method
    def create_container_from_config(self, config, name=None, platform=None):  # pylint: disable=unused-argument
        return {"Id": self._create(copy.deepcopy(config), name, "/containers/create?name=%s" % (name or ""))["Id"],
                "Warnings": []}


def create_from_body(gateway, name, body):
    """`gateway.create_from_body`, also on a gateway or an engine that do not compose these yet."""
    if hasattr(gateway, "create_from_body"):
        return gateway.create_from_body(name, body)
    if not hasattr(gateway.api, "create_container_from_config"):
        gateway.api.create_container_from_config = RecordedMemory.create_container_from_config.__get__(gateway.api)
    return RecordedCalls.create_from_body(gateway, name, body)
