# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""In front of the database_connection module.

The module never returns the password: Ansible masks it (no_log) wherever it appears,
the connection string included. The registered result must carry the real connection
string for the container, so it is rendered again here, on the controller, with the
same code, and the result is marked no_log so that no output ever shows it. A line
without secrets says what was done.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.database.client_env import given_values
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import resolved_settings
from ansible_collections.clockwork.connections.plugins.plugin_utils.connection_action import (
    ConnectionAction, display)


class ActionModule(ConnectionAction):
    def after_module(self, args, result):
        database = result.get("database")
        if not database:
            return
        # From the task's own arguments: masking may have touched any returned string
        # that happens to contain the password.
        settings = resolved_settings(args, int(database["port"]))
        to_name = args.get("to_resource") or args.get("to")
        env = result["contribution"]["env"]
        for name, value in given_values(args, settings, to_name).items():
            if name in env:   # not a password file's <NAME>_FILE
                env[name] = value
        result["_ansible_no_log"] = True
        summary = ", ".join(result.get("actions") or []) or "nothing to do"
        if result.get("pending") and not result.get("actions"):
            summary = "pending: " + ", ".join(result["pending"])
        display.display("%s: %s (result hidden: it holds %s)" % (
            result["connection"], summary, ", ".join(sorted(env)) or "nothing"))
