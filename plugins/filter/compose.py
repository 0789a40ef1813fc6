# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""from_compose: a Docker Compose file as the stack's resources and connections (plugin_utils/compose_import.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.clockwork.connections.plugins.plugin_utils.compose_import import ComposeError
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose_import import from_compose as read_compose


def from_compose(text, project_name=None, env=None, profiles=None, base_dir=None, source="compose file"):
    try:
        return read_compose(text, project_name=project_name, env=env, profiles=profiles, base_dir=base_dir,
                            source=source)
    except ComposeError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"from_compose": from_compose}
