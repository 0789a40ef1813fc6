# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""In front of file_connection: a relative source_path resolves against the playbook."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.plugin_utils.connection_action import ConnectionAction


class ActionModule(ConnectionAction):
    pass
