# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""In front of the stack module: paths in connections resolve like Ansible's `src`
(the role's or playbook's files/, then the playbook's directory), and everything else
relative resolves against the playbook's directory.

When the target is this controller itself (the local connection, no become), the stack
converges right here, with the module's own code, arguments and masking: a module process
costs more than the whole convergence of an unchanged stack. Elsewhere, or when this
Python lacks the libraries, the module runs on the target as usual.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.clockwork.connections.plugins.plugin_utils import completion, llm
from ansible_collections.clockwork.connections.plugins.plugin_utils.connection_action import ConnectionAction

CONNECTION_PATHS = ("schema_file", "migrations_dir", "source_path")


IN_PROCESS_ENV = "CLOCKWORK_STACK_IN_PROCESS"   # "never" forces the module on the target


class ActionModule(ConnectionAction):

    def execute(self, args, task_vars):
        stack = self.in_process_stack()
        if stack is None:
            return super(ActionModule, self).execute(args, task_vars)
        from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError  # pylint: disable=import-outside-toplevel
        from ansible_collections.clockwork.connections.plugins.module_utils.docker_client import Engine  # pylint: disable=import-outside-toplevel
        validation = ArgumentSpecValidator(stack.STACK_ARGUMENT_SPEC).validate(args)
        if validation.error_messages:
            return {"failed": True, "msg": "; ".join(validation.error_messages)}
        params = validation.validated_parameters
        secrets = validation._no_log_values  # pylint: disable=protected-access  # what AnsibleModule masks too
        try:
            result = stack.run_stack(Engine(), params, self._task.check_mode, self._task.diff)
        except ClockworkError as exc:
            result = dict(exc.details, failed=True, msg=exc.msg)
        result["invocation"] = {"module_args": params}
        return remove_values(result, secrets)

    def in_process_stack(self):
        """The stack module_utils when converging here is right, else None."""
        if os.environ.get(IN_PROCESS_ENV, "auto") == "never":
            return None
        if getattr(self._connection, "transport", None) != "local" or self._play_context.become:
            return None
        try:
            from ansible_collections.clockwork.connections.plugins.module_utils import (  # pylint: disable=import-outside-toplevel
                docker_client, stack)
        except ImportError:
            return None
        return stack if docker_client.HAS_DOCKER else None

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
