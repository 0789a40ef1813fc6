# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's calls on Swarm: services, tasks, nodes, secrets and configs."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class SwarmCalls(object):
    """Swarm's objects. Services and tasks change on their own: never cached."""

    # -- Swarm ---------------------------------------------------------------------------

    def services(self, filters=None):
        return self.api.services(filters=filters)

    def service(self, name):
        return self.api.inspect_service(name)

    def tasks(self, filters=None):
        return self.api.tasks(filters=filters)

    def nodes(self):
        return self.api.nodes()

    def secrets(self):
        return self.api.secrets()

    def configs(self):
        return self.api.configs()

    def create_service(self, task_template, name, **options):
        made = self.api.create_service(task_template, name=name, **options)
        self._wrote("create service %s" % name)
        return made

    def update_service(self, service, version, name, **options):
        self.api.update_service(service, version, name=name, **options)
        self._wrote("update service %s" % name)

    def remove_service(self, service):
        self.api.remove_service(service)
        self._wrote("remove service %s" % service)

    def create_secret(self, name, data, labels=None):
        made = self.api.create_secret(name, data, labels=labels)
        self._wrote("create secret %s" % name)
        return made

    def create_config(self, name, data, labels=None):
        made = self.api.create_config(name, data, labels=labels)
        self._wrote("create config %s" % name)
        return made

    def remove_secret(self, ident):
        self.api.remove_secret(ident)
        self._wrote("remove secret %s" % ident)

    def remove_config(self, ident):
        self.api.remove_config(ident)
        self._wrote("remove config %s" % ident)
