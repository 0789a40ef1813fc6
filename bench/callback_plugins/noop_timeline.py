# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark only (bench/noop_profile.py): when each task of a playbook started and ended,
as wall-clock times, appended as JSON lines to the file CLOCKWORK_TIMELINE names."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = """
name: noop_timeline
type: aggregate
short_description: task start and end times for bench/noop_profile.py
description: Writes when the playbook, each task and the stats happened, to the file CLOCKWORK_TIMELINE names.
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "noop_timeline"
    CALLBACK_NEEDS_ENABLED = True

    def _note(self, event, name=None):
        path = os.environ.get("CLOCKWORK_TIMELINE")
        if path:
            with open(path, "a") as handle:
                handle.write(json.dumps({"t": time.time(), "event": event, "name": name}) + "\n")

    def v2_playbook_on_start(self, playbook):
        self._note("playbook")

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._note("task", task.get_name())

    def _done(self, result, *_args, **_kwargs):
        self._note("done", result._task.get_name())   # pylint: disable=protected-access

    v2_runner_on_ok = v2_runner_on_skipped = v2_runner_on_failed = _done

    def v2_playbook_on_stats(self, stats):
        self._note("stats")
