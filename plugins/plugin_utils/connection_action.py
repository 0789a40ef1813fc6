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
        args = self.prepare_args(dict(self._task.args))
        result.update(self._execute_module(module_name=self._task.resolved_action, module_args=args,
                                           task_vars=task_vars))
        if not result.get("failed"):
            self.after_module(args, result)
        return result

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
