# -*- coding: utf-8 -*-
# Test-only callback: writes every task result of a run to the JSON file named by
# CLOCKWORK_RESULTS_FILE, so that tests assert on results rather than on screen text.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: clockwork_results
type: aggregate
short_description: Write task results to a JSON file (tests only)
description: Writes every task result to the file named by E(CLOCKWORK_RESULTS_FILE).
requirements: [enable in configuration]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "clockwork_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self.results = []

    def _record(self, result, status):
        data = dict(result._result)
        data["_task"] = result._task.get_name()
        data["_status"] = status
        self.results.append(data)

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("CLOCKWORK_RESULTS_FILE")
        if path:
            with open(path, "w") as handle:
                json.dump(self.results, handle, default=str)
