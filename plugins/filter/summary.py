# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""stack_summary: the stack module's result as lines a person reads."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

PAST = {"create": "created", "recreate": "recreated", "start": "started", "stop": "stopped", "remove": "removed"}


def _entry_line(entry, check_mode):
    actions = entry.get("actions") or []
    if not entry.get("changed"):
        state = "; ".join(actions) if actions else "unchanged"
    else:
        words = [PAST.get(a, a) for a in actions]
        state = ", ".join(words)
        if check_mode:
            state = "would be " + state if all(a in PAST for a in actions) else "would: " + ", ".join(actions)
        if entry.get("reasons"):
            state += " (%s)" % ", ".join(entry["reasons"])
    return "%s %s: %s" % (entry["kind"], entry["name"], state)


def stack_summary(result, check_mode=False):
    lines = []
    if result.get("order"):
        lines.append("order: " + ", ".join(result["order"]))
    lines.extend(_entry_line(e, check_mode) for e in result.get("entries") or [])
    for check in result.get("checks") or []:
        if "ok" in check:
            mark = {True: "ok", False: "FAILED", None: "not run"}[check["ok"]]
            lines.append("check %s [%s]: %s" % (check["connection"], mark, check["msg"]))
    return lines


class FilterModule(object):
    def filters(self):
        return {"stack_summary": stack_summary}
