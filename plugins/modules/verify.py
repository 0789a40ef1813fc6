#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: verify
short_description: Prove that connections work, from inside the containers
version_added: 0.1.0
description:
  - Runs the checks that connection modules return in C(contribution.checks), such as DNS and TCP
    from inside a container, an internal network's isolation, a container's state, and the
    checks of the other connection types.
  - Runs every check, not only until the first failure, and fails listing each failed one.
  - A check is data from outside, so each one is validated before any runs, against the fields
    its kind defines (for example C(file) takes C(container), C(path), C(directory), C(read_only)
    and C(sha256)); an unknown kind, an unknown field, a missing field or a wrong type fails the
    task naming the check and the field, and runs nothing.
  - Checks run programs inside the containers with each value as its own argument, never through
    a shell.
  - Only reads; never reports a change.
author:
  - Clockwork Connections developers (@clockwork-connections)
requirements:
  - docker (the Docker SDK for Python) >= 7.0
options:
  checks:
    description:
      - Checks, as returned by connection modules in C(contribution.checks).
      - Each has a C(kind) (C(database), C(dns_tcp), C(file), C(http), C(no_route_out), C(running),
        C(shared_volume)), optionally C(connection) and C(retry_for), and the fields of its kind.
    type: list
    elements: dict
    required: true
  retry_for:
    description: Seconds during which a failing check is retried, for services still starting.
    type: float
    default: 0
attributes:
  check_mode:
    support: full
    description:
      - Checks only read, so they run in check mode too.
      - A check in a container that does not exist yet, or about a container that the run would create or change,
        is reported as not run.
  diff_mode:
    support: none
    description: Checks change nothing, so there is nothing to show.
"""

EXAMPLES = r"""
- name: Prove the network connection
  clockwork.connections.verify:
    checks: "{{ backend.contribution.checks }}"
"""

RETURN = r"""
checks:
  description: One report per check.
  returned: always
  type: list
  elements: dict
  sample:
    - {connection: network api -> redis, kind: dns_tcp, ok: true, msg: redis resolves and redis:6379 accepts TCP from api}
  contains:
    ok:
      description: true when the check passed, false when it failed, null when it was not run (check mode).
      type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ansible_collections.clockwork.connections.plugins.module_utils.apply.checks import CHECKS, run_checks
from ansible_collections.clockwork.connections.plugins.module_utils.module_runner import run_module

# Fields every check has, whatever its kind.
COMMON_FIELDS = dict(kind=dict(type="str", required=True), connection=dict(type="str"),
                     retry_for=dict(type="float"))


def check_fields(kind):
    """The fields a check kind takes, or None for a kind no connection type defines."""
    runner = CHECKS.get(kind)
    if runner is None:
        return None
    fields = getattr(runner, "fields", None)
    return dict(COMMON_FIELDS, **(fields or {}))


def validated_checks(checks):
    """(checks with their values converted, [problems]): each check against its kind's fields."""
    valid, problems = [], []
    for index, check in enumerate(checks):
        kind = check.get("kind")
        fields = check_fields(kind) if isinstance(kind, str) else None
        where = "checks[%d]%s" % (index, " (%s)" % check["connection"] if check.get("connection") else "")
        if fields is None:
            problems.append("%s: unknown check kind %r; the kinds are %s" % (where, kind, ", ".join(sorted(CHECKS))))
            continue
        result = ArgumentSpecValidator(fields).validate(dict(check))
        if result.unsupported_parameters:
            problems.append("%s: a %s check has no field %s; its fields are %s" % (
                where, kind, ", ".join(sorted(result.unsupported_parameters)), ", ".join(sorted(fields))))
        problems.extend("%s: %s check: %s" % (where, kind, error) for error in result.errors
                        if not isinstance(error, UnsupportedError))
        valid.append(dict((k, v) for k, v in result.validated_parameters.items() if v is not None))
    return valid, problems


def main():
    module = AnsibleModule(argument_spec=dict(checks=dict(type="list", elements="dict", required=True),
                                              retry_for=dict(type="float", default=0)),
                           supports_check_mode=True)
    checks, problems = validated_checks(module.params["checks"])
    if problems:
        module.fail_json(msg="invalid checks, none was run: %d problem%s:\n- %s" % (
            len(problems), "" if len(problems) == 1 else "s", "\n- ".join(problems)), problems=problems)

    def verify(engine):
        # In check mode `engine` is a dry run's (module_runner): checks it cannot answer are not run.
        reports = run_checks(engine, checks, module.params["retry_for"])
        failed = [r for r in reports if r["ok"] is False]
        if failed:
            module.fail_json(msg="%d of %d checks failed: %s" % (
                len(failed), len(reports), "; ".join("%s: %s" % (r["connection"], r["msg"]) for r in failed)),
                checks=reports)
        return dict(changed=False, checks=reports)

    run_module(module, verify)


if __name__ == "__main__":
    main()
