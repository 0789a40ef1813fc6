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

import re
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.exec_batch import BatchedGateway, ExecBatch
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import exec_alone
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CHECKS

# The fields of a check that name a container (replicas.CONTAINER_KEYS), and an http URL's host.
NAMED = ("container", "target", "env_from", "host", "peer")
_URL_HOST = re.compile(r"^https?://([^/:]+)")


def run_checks(engine, checks, retries_for=0.0, parallel=1):
    """Run every check (not only until the first failure), `parallel` at once; retry failing
    ones for `retries_for` s. Reports come in the order of the checks.

    A check that a dry run cannot answer is reported as not run (ok is None): one about a container
    the dry run would make or change (engine.forecast: nothing real runs there yet), or in one that
    does not exist on a dry run (a task before it would create it). Any other runs, on a dry run too.
    """
    for check in checks:
        if CHECKS.get(check.get("kind")) is None:
            raise ClockworkError("unknown check kind %r in %s" % (check.get("kind"), check.get("connection")))
    if parallel <= 1 or len(checks) <= 1:
        return [_run_check(engine, check, retries_for) for check in checks]
    # Programs run in one container at the same moment share one exec (docker/exec_batch.py):
    # most of an exec's cost is the engine's, and checks often meet in a container.
    workers = min(parallel, len(checks))
    batch = ExecBatch(lambda container, argv, seconds: exec_alone(engine, container, argv, seconds), workers)
    batched = BatchedGateway(engine, batch)

    def run(check):
        with batch.runner():
            return _run_check(batched, check, retries_for)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, checks))


def not_yet(engine, check):
    """The container a dry run cannot answer the check about, or None (see run_checks)."""
    if not engine.dry_run:
        return None
    container = check.get("container") or check.get("target")
    if container and engine.container(container) is None:
        return container
    url = _URL_HOST.match(check.get("url") or "")
    named = [check.get(key) for key in NAMED] + [url.group(1) if url else None]
    return next((name for name in named if name and engine.forecast(name)), None)


def _run_check(engine, check, retries_for):
    runner = CHECKS[check["kind"]]
    container = check.get("container") or check.get("target")
    report = {"connection": check.get("connection"), "kind": check["kind"]}
    missing = not_yet(engine, check)
    if missing:
        report.update(ok=None, msg="not run: %s does not exist yet (check mode)" % missing)
        return report
    # On the engine's clock: a retry on an engine in memory takes none of the process's time.
    deadline = engine.monotonic() + max(retries_for, check.get("retry_for") or 0)
    while True:
        ok, message = runner(engine, check)
        if ok or engine.monotonic() >= deadline:
            break
        engine.sleep(0.5)
        if container:
            engine.container_now(container)   # what the check reads of it, afresh
    report.update(ok=ok, msg=message)
    return report
