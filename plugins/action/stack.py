# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""In front of the stack module: paths in connections resolve like Ansible's `src`
(the role's or playbook's files/, then the playbook's directory), and everything else
relative resolves against the playbook's directory."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.plugin_utils import completion, llm
from ansible_collections.clockwork.connections.plugins.plugin_utils.connection_action import ConnectionAction

CONNECTION_PATHS = ("schema_file", "migrations_dir", "source_path")


class ActionModule(ConnectionAction):

    def prepare_args(self, args):
        args.setdefault("base_dir", self._loader.get_basedir())
        args["connections"] = [self.resolve_paths(dict(c), CONNECTION_PATHS) for c in args.get("connections") or []]
        return args

    def complete(self, args, lock):
        """Complete every connection that needs it, in one pass, before the one module call."""
        resources = dict((r.get("name"), r) for r in args.get("resources") or [])
        endpoint = llm.settings(args.get("llm"))
        reports, connections = {}, []
        for connection in args.get("connections") or []:
            kind = connection.get("type")
            source = connection.get("from_resource") or connection.get("from")
            target = connection.get("to_resource") or connection.get("to")
            to = resources.get(target) or {}
            params = dict(connection, from_resource=source, to_resource=target, to_kind=to.get("type", "container"))
            params.pop("from", None)
            params.pop("to", None)
            context = {"from": completion.endpoint_context(resources.get(source)),
                       "to": completion.endpoint_context(to or None), "to_env": to.get("env") or {}}
            name = "%s %s -> %s" % (kind, source, target)
            done, report = completion.complete(kind, params, context, lock, endpoint, self._task.check_mode, name)
            done.pop("to_kind")
            connections.append(done)
            if report:
                reports[name] = report
        args["connections"] = connections
        return args, reports or None
