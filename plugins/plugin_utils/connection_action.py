# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the action plugins in front of the connection modules share."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.clockwork.connections.plugins.plugin_utils import completion, llm

try:  # ansible-core 2.19 and later
    from ansible.executor.module_common import _apply_action_arg_defaults
except ImportError:  # 2.17, 2.18
    from ansible.executor.module_common import get_action_args_with_defaults

    def _apply_action_arg_defaults(action, task, action_args, templar):
        return get_action_args_with_defaults(action, action_args, task.module_defaults, templar,
                                             action_groups=task._parent._play._action_groups)

display = Display()


class ConnectionAction(ActionBase):
    """Runs the module of the same name, after controller-side preparation.

    Relative paths in `PATH_ARGS` resolve like Ansible's own `src`: the role's or the
    playbook's `files/`, then the playbook's directory.
    """

    TRANSFERS_FILES = False
    PATH_ARGS = ()

    def run(self, tmp=None, task_vars=None):
        result = super(ConnectionAction, self).run(tmp, task_vars)
        # module_defaults (the llm endpoint, the lock file) are needed before the module runs.
        args = _apply_action_arg_defaults(self._task.resolved_action, self._task, dict(self._task.args),
                                          self._templar)
        args = self.prepare_args(args)
        lock = completion.LockFile(self.lock_path(args))
        try:
            args, completed = self.complete(args, lock)
        except completion.CompletionError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(self.execute(args, task_vars))
        if result.get("failed"):
            return result
        if completed:
            result["completion"] = completed
            if self._task.diff:
                diffs = result.get("diff") or []
                result["diff"] = (diffs if isinstance(diffs, list) else [diffs]) + [{
                    "before_header": "fields given", "after_header": "fields completed", "before": {},
                    "after": completed}]
        if not self._task.check_mode:
            lock.save()
        self.after_module(args, result)
        return result

    def execute(self, args, task_vars):
        """Hook: run the work; by default, the module of the same name on the target."""
        return self._execute_module(module_name=self._task.resolved_action, module_args=args, task_vars=task_vars)

    def lock_path(self, args):
        path = args.get("lock_file") or os.environ.get("CLOCKWORK_LOCK_FILE") or completion.LOCK_NAME
        return os.path.join(self._loader.get_basedir(), os.path.expanduser(path))

    def complete(self, args, lock):
        """Fill missing fields of this one connection; returns (args, report or None)."""
        kind = completion.MODULE_TYPES.get(self._task.resolved_action)
        if kind is None or not completion.missing_fields(kind, args) and not (kind == "database" and args.get("description")):
            return args, None
        params = dict(args, from_resource=args.get("from_resource") or args.get("from"),
                      to_resource=args.get("to_resource") or args.get("to"))
        context = engine_context(params["from_resource"], params["to_resource"])
        name = "%s %s -> %s" % (kind, params["from_resource"], params["to_resource"])
        completed, report = completion.complete(kind, params, context, lock, llm.settings(args.get("llm")),
                                                self._task.check_mode, name)
        for key in ("from_resource", "to_resource"):
            if key not in args:
                completed.pop(key)
        return completed, report

    def prepare_args(self, args):
        """Hook: the module's arguments, prepared on the controller."""
        return self.resolve_paths(args, self.PATH_ARGS)

    def resolve_paths(self, args, keys):
        for key in keys:
            if args.get(key):
                args[key] = self.local_path(args[key])
        return args

    def local_path(self, path):
        path = os.path.expanduser(path)
        if os.path.isabs(path):
            return path
        try:
            return self._find_needle("files", path)
        except AnsibleError:
            return os.path.join(self._loader.get_basedir(), path)

    def after_module(self, args, result):
        """Hook: adjust a successful result on the controller."""


def engine_context(from_name, to_name):
    """The endpoints as the Docker engine on this controller sees them; names only without one."""
    context = {"from": {"name": from_name}, "to": {"name": to_name}}
    try:
        import docker  # pylint: disable=import-outside-toplevel
        client = docker.from_env(timeout=5)
    except Exception:  # pylint: disable=broad-except  # no SDK or no engine here: names are enough
        return context
    for end, name in (("from", from_name), ("to", to_name)):
        try:
            attrs = client.api.inspect_container(name)
        except Exception:  # pylint: disable=broad-except  # not created yet
            continue
        config = attrs.get("Config") or {}
        env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
        labels = config.get("Labels") or {}
        ports = [p for p in labels.get("io.clockwork.ports", "").split(",") if p] or sorted(config.get("ExposedPorts") or {})
        context[end] = completion.endpoint_context({"name": name, "image": config.get("Image"), "ports": ports, "env": env})
        if end == "to":
            context["to_env"] = env   # for the local completer only; never sent to a model
    return context
