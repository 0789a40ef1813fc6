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
  - Only reads; never reports a change.
author:
  - Clockwork Connections developers (@clockwork-connections)
requirements:
  - docker (the Docker SDK for Python) >= 7.0
options:
  checks:
    description: Checks, as returned by connection modules in C(contribution.checks).
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
    description: Checks only read, so they run in check mode too; those whose container does not exist yet are reported as not run.
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

from ansible_collections.clockwork.connections.plugins.module_utils.checks import run_checks
from ansible_collections.clockwork.connections.plugins.module_utils.module_runner import run_module


def main():
    module = AnsibleModule(argument_spec=dict(checks=dict(type="list", elements="dict", required=True),
                                              retry_for=dict(type="float", default=0)),
                           supports_check_mode=True)

    def verify(engine):
        reports = run_checks(engine, module.params["checks"], module.params["retry_for"], module.check_mode)
        failed = [r for r in reports if r["ok"] is False]
        if failed:
            module.fail_json(msg="%d of %d checks failed: %s" % (
                len(failed), len(reports), "; ".join("%s: %s" % (r["connection"], r["msg"]) for r in failed)),
                checks=reports)
        return dict(changed=False, checks=reports)

    run_module(module, verify)


if __name__ == "__main__":
    main()
