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

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    connection_ends, env_dict, ports_from_labels)
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES, type_of_module
from ansible_collections.clockwork.connections.plugins.plugin_utils import completion, controller_files, llm
from ansible_collections.clockwork.connections.plugins.plugin_utils.completion_policy import EngineView, Situation
from ansible_collections.clockwork.connections.plugins.plugin_utils.lock_file import (
    LOCK_NAME, DryRunLockFile, LockFile, LockFileError, vault_of)

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

    The controller files its type names (`controller_files`) are read in by the type's
    `ship_files`; relative paths resolve like Ansible's own `src`: the role's or the
    playbook's `files/`, then the playbook's directory.
    """

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(ConnectionAction, self).run(tmp, task_vars)
        # module_defaults (the llm endpoint, the lock file) are needed before the module runs.
        args = _apply_action_arg_defaults(self._task.resolved_action, self._task, dict(self._task.args),
                                          self._templar)
        args = self.prepare_args(args)
        # Check mode is chosen here, once: a dry run's lock file records its writes and makes none.
        opened = DryRunLockFile if self._task.check_mode else LockFile
        lock = opened(self.lock_path(args), vault=vault_of(self._loader))
        try:
            args, completed = self.complete(args, lock)
        except (completion.CompletionError, LockFileError) as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(self.execute(args, task_vars))
        if result.get("failed"):
            return result
        if completed:
            result["completion"] = completed
            if completion.warnings(completed):
                result.setdefault("warnings", []).extend(completion.warnings(completed))
            if self._task.diff:
                diffs = result.get("diff") or []
                result["diff"] = (diffs if isinstance(diffs, list) else [diffs]) + [{
                    "before_header": "fields given", "after_header": "fields completed", "before": {},
                    "after": completed}]
        try:
            lock.save()
        except LockFileError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        self.after_module(args, result)
        return result

    def execute(self, args, task_vars):
        """Hook: run the work; by default, the module of the same name on the target."""
        return self._execute_module(module_name=self._task.resolved_action, module_args=args, task_vars=task_vars)

    def lock_path(self, args):
        path = args.get("lock_file") or os.environ.get("CLOCKWORK_LOCK_FILE") or LOCK_NAME
        return os.path.join(self._loader.get_basedir(), os.path.expanduser(path))

    def complete(self, args, lock):
        """Fill missing fields of this one connection; returns (args, report or None)."""
        connection_type = type_of_module(self._task.resolved_action)
        kind = connection_type.name if connection_type is not None and connection_type.completion else None
        source, target = connection_ends(args)
        params = dict(args, from_resource=source, to_resource=target)
        if kind is None or not completion.needs_completion(kind, params):
            return args, None
        engine = EngineView()
        stack = args.get("stack") or "default"
        context = engine_context(engine, params["from_resource"], params["to_resource"])
        context["stack"] = stack
        rules = CONNECTION_TYPES[kind].completion
        situation = Situation(stack, params, occupied_mounts(engine, rules, params),
                              reserved=set(engine.stack_containers(stack)) - {params["to_resource"]}
                              if rules.reserves_container_names() else (), engine=engine)
        name = "%s %s -> %s" % (kind, params["from_resource"], params["to_resource"])
        completed, report = completion.complete(kind, params, context, lock, llm.settings(args.get("llm")), name,
                                                situation)
        for key in ("from_resource", "to_resource"):
            if key not in args:
                completed.pop(key)
        return completed, report

    def prepare_args(self, args):
        """Hook: the module's arguments, prepared on the controller: the files its type names,
        which live beside the playbook, are read into them."""
        local = getattr(self._connection, "transport", None) == "local"
        return controller_files.ship(args, type_of_module(self._task.resolved_action), self.local_path, local)

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


def engine_context(engine, from_name, to_name):
    """The endpoints as the Docker engine on this controller sees them; names only without one."""
    context = {"from": {"name": from_name}, "to": {"name": to_name}}
    for end, name in (("from", from_name), ("to", to_name)):
        attrs = engine.container(name)
        if not attrs:
            continue   # not created yet, or no engine here
        config = attrs.get("Config") or {}
        env = env_dict(config.get("Env"))
        ports = ports_from_labels(config.get("Labels")) or sorted(config.get("ExposedPorts") or {})
        context[end] = completion.endpoint_context({"name": name, "image": config.get("Image"), "ports": ports, "env": env})
        if end == "to":
            context["to_env"] = env   # for the local completer and password references; never sent to a model
    return context


def occupied_mounts(engine, rules, params):
    """(path, source, what) of the mounts the containers a completed mount path goes into have now."""
    ends = {"from": params["from_resource"], "to": params["to_resource"]}
    into = [ends[end] for end in rules.mounts_into(params, True)]
    found = []
    for name in into:
        for mount in (engine.container(name) or {}).get("Mounts") or []:
            found.append((mount.get("Destination"), mount.get("Name") or mount.get("Source"), "%s's mount" % name))
    return found
