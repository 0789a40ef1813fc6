# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the checks that prove connections work, from inside the containers.

A check is a plain dict that a connection puts in its contribution, so it can be
returned, stored and run later: ``{"kind": ..., "connection": ..., "container": ...}``.
Each connection type defines its check functions in its own file and lists them in its
`TYPE`; the registry gathers them. Checks only read: they never change Docker, a
database or a file.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CHECKS


def run_checks(engine, checks, retries_for=0.0, check_mode=False, parallel=1):
    """Run every check (not only until the first failure), `parallel` at once; retry failing
    ones for `retries_for` s. Reports come in the order of the checks.

    In check mode a check whose container does not exist yet is reported as not run
    (ok is None): a dry run on an empty engine has nothing to prove yet.
    """
    for check in checks:
        if CHECKS.get(check.get("kind")) is None:
            raise ClockworkError("unknown check kind %r in %s" % (check.get("kind"), check.get("connection")))
    if parallel <= 1 or len(checks) <= 1:
        return [_run_check(engine, check, retries_for, check_mode) for check in checks]
    with ThreadPoolExecutor(max_workers=min(parallel, len(checks))) as pool:
        return list(pool.map(lambda check: _run_check(engine, check, retries_for, check_mode), checks))


def _run_check(engine, check, retries_for, check_mode):
    runner = CHECKS[check["kind"]]
    container = check.get("container") or check.get("target")
    report = {"connection": check.get("connection"), "kind": check["kind"]}
    if check_mode and container and engine.container(container) is None:
        report.update(ok=None, msg="not run: %s does not exist yet (check mode)" % container)
        return report
    deadline = time.monotonic() + max(retries_for, check.get("retry_for") or 0)
    while True:
        ok, message = runner(engine, check)
        if ok or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
        if container:
            engine.container_now(container)   # what the check reads of it, afresh
    report.update(ok=ok, msg=message)
    return report
