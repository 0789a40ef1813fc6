# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each connection's health, as stack_info sees it: the checks the connections named when the
current release was made (apply/checks.py), run again against the stack as it runs now, once each,
without the retries a deploy grants a server that just started. A check read from a release file is
data from the host, so it passes the fields its kind defines before any runs (as the verify module
does): a check that does not is reported as not run, naming the field."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.clockwork.connections.plugins.module_utils.apply.checks import run_checks
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CHECKS

COMMON_FIELDS = dict(kind=dict(type="str", required=True), connection=dict(type="str"),
                     retry_for=dict(type="float"))


def checked(check):
    """(the check with its values converted and no retry, None) or (None, what is wrong with it)."""
    kind = check.get("kind")
    runner = CHECKS.get(kind) if isinstance(kind, str) else None
    if runner is None:
        return None, "unknown check kind %r" % (kind,)
    fields = dict(COMMON_FIELDS, **(getattr(runner, "fields", None) or {}))
    result = ArgumentSpecValidator(fields).validate(dict(check))
    if result.error_messages:
        return None, "; ".join(result.error_messages)
    valid = dict((k, v) for k, v in result.validated_parameters.items() if v is not None)
    valid.pop("retry_for", None)
    return valid, None


def connection_health(engine, checks, parallel=4):
    """One report per recorded check: {connection, kind, ok, msg}; ok None when it was not run."""
    runnable, reports = [], []
    for check in checks:
        valid, problem = checked(check if isinstance(check, dict) else {})
        if valid is None:
            reports.append({"connection": check.get("connection") if isinstance(check, dict) else None,
                            "kind": check.get("kind") if isinstance(check, dict) else None,
                            "ok": None, "msg": "not run: the release records it wrongly (%s)" % problem})
        else:
            runnable.append(valid)
    return run_checks(engine, runnable, parallel=parallel) + reports
