# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""stack_summary: the stack module's result as lines a person reads."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

PAST = {"create": "created", "recreate": "recreated", "start": "started", "stop": "stopped", "remove": "removed",
        "build": "built"}


def _entry_line(entry, dry_run):
    actions = entry.get("actions") or []
    if not entry.get("changed"):
        state = "; ".join(actions) if actions else "unchanged"
    else:
        words = [PAST.get(a, a) for a in actions]
        state = ", ".join(words)
        if dry_run:
            state = "would be " + state if all(a in PAST for a in actions) else "would: " + ", ".join(actions)
        if entry.get("reasons"):
            state += " (%s)" % ", ".join(entry["reasons"])
    return "%s %s: %s" % (entry["kind"], entry["name"], state)


def stack_summary(result, dry_run=False, check_mode=False):
    """`dry_run`: word the lines as what would be done (the result of a --check run). The option's
    former name, check_mode, is still taken, as playbooks may pass it by name."""
    dry_run = dry_run or check_mode
    lines = []
    if result.get("order"):
        lines.append("order: " + ", ".join(result["order"]))
    lines.extend(_entry_line(e, dry_run) for e in result.get("entries") or [])
    for check in result.get("checks") or []:
        if "ok" in check:
            mark = {True: "ok", False: "FAILED", None: "not run"}[check["ok"]]
            lines.append("check %s [%s]: %s" % (check["connection"], mark, check["msg"]))
    release = result.get("release")
    if isinstance(release, dict) and release.get("number"):
        lines.append(_release_line(release, result.get("rolled_back_to") or release.get("rolled_back_to"), dry_run))
    return lines


def _release_line(release, rolled_back_to, dry_run):
    """The release a run made (issue 35: the report names it), as stack_info lists it."""
    line = ("would record release %s" if dry_run else "release %s recorded") % release["number"]
    notes = ["back on release %s" % rolled_back_to] if rolled_back_to else []
    if release.get("pruned"):
        notes.append("%s %s pruned" % ("releases" if len(release["pruned"]) > 1 else "release",
                                       ", ".join(str(n) for n in release["pruned"])))
    return line + (" (%s)" % "; ".join(notes) if notes else "")


class FilterModule(object):
    def filters(self):
        return {"stack_summary": stack_summary}
