# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's calls on networks and volumes (gateway.py composes them)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class NetworkCalls(object):
    """Create and remove networks and volumes, connect and disconnect containers."""

    def network_now(self, name):
        """The network as it is now (a concurrent run may be merging duplicates of its name)."""
        self.forget("network", name)
        return self.network(name)

    # -- writes: networks and volumes ----------------------------------------------------

    def create_network(self, name, **options):
        made = self.api.create_network(name, **options)
        self._wrote("create network %s" % name, ("network", name))
        return made

    def remove_network(self, network):
        self.api.remove_network(network)
        self._wrote("remove network %s" % network, ("network", network))

    def connect(self, container, network, aliases=None, **options):
        self.api.connect_container_to_network(container, network, aliases=aliases or None, **options)
        self._wrote("connect container %s to network %s" % (container, network),
                    ("container", container), ("network", network))

    def disconnect(self, container, network, force=False):
        self.api.disconnect_container_from_network(container, network, force=force)
        self._wrote("disconnect container %s from network %s" % (container, network),
                    ("container", container), ("network", network))

    def create_volume(self, name, driver=None, labels=None):
        made = self.api.create_volume(name, driver=driver, labels=labels)
        self._wrote("create volume %s" % name, ("volume", name))
        return made

    def remove_volume(self, name):
        self.api.remove_volume(name)
        self._wrote("remove volume %s" % name, ("volume", name))
