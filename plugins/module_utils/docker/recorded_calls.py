# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's create of a container from the engine's own create body, as a release recorded it
(releases/recreate.py create_body: Config's fields, HostConfig, NetworkingConfig; the image by ID):
what a return to a release makes (apply/docker_rollback.py). `RecordedCalls` is the gateway's part
(gateway.py composes it); the memory engine answers it in memory_containers.py (a dry run inherits it)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class RecordedCalls(object):
    """The write: recorded and forgotten like every other (DockerGateway._wrote)."""

    def create_from_body(self, name, body):
        """A container `name` from the engine's create body `body`; the engine's answer ({"Id": ...})."""
        made = self.api.create_container_from_config(body, name=name)
        self._wrote("create container %s" % name, ("container", name))
        self._names_changed(name)
        return made
