# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""In front of the stack module: paths in connections resolve like Ansible's `src`
(the role's or playbook's files/, then the playbook's directory), and everything else
relative resolves against the playbook's directory."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.plugin_utils.connection_action import ConnectionAction

CONNECTION_PATHS = ("schema_file", "migrations_dir", "source_path")


class ActionModule(ConnectionAction):

    def prepare_args(self, args):
        args.setdefault("base_dir", self._loader.get_basedir())
        args["connections"] = [self.resolve_paths(dict(c), CONNECTION_PATHS) for c in args.get("connections") or []]
        return args
