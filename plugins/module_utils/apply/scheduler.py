# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bounded, dependency-ordered scheduler, shared by both engines.

Each name starts as soon as every name it needs has finished without error, at most
`parallel` at once; ties start in plan order. After a failure nothing new starts, what runs
finishes, and every failure is returned. Results are by name, so callers report in plan order
whatever the order of completion."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from ansible_collections.clockwork.connections.plugins.module_utils.failures import failure_message

# How often the tick callback runs while workers are busy (progress lines reach the user).
TICK_SECONDS = 0.2


def run_ordered(names, needs, work, parallel, tick=None):
    """Run `work(name)` for every name of `names` (plan order), each after `needs[name]`.

    `work` returns an error message or None (an exception it raises is re-raised here, after
    the running ones finish). `tick(done)` is called while waiting and at the end, with the
    set of names finished without error. Returns (errors by name, names left unstarted)."""
    needs = dict((name, set(needs.get(name) or ()) & set(names)) for name in names)
    running, done, errors, raised = {}, set(), {}, []
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(names) or 1))) as pool:
        while True:
            if not errors and not raised:
                for name in names:
                    if len(running) >= parallel:
                        break
                    if name not in running and name not in done and needs[name] <= done:
                        running[name] = pool.submit(work, name)
            if not running:
                break
            finished, _pending = wait(list(running.values()), timeout=TICK_SECONDS, return_when=FIRST_COMPLETED)
            for name in [n for n, future in running.items() if future in finished]:
                future = running.pop(name)
                if future.exception() is not None:
                    raised.append(future.exception())
                    continue
                error = future.result()
                if error:
                    errors[name] = error
                else:
                    done.add(name)
            if tick:
                tick(set(done))
    if raised:
        raise raised[0]
    return errors, [n for n in names if n not in done and n not in errors]


def step_error(name, step, *args):
    """Run one step of a resource; the error message it ends with, or None (a worker's answer).
    An exception failure_message does not know is a bug, and is raised."""
    try:
        step(*args)
        return None
    except Exception as exc:  # pylint: disable=broad-except  # sorted by failure_message; bugs re-raised
        message = failure_message(exc)
        if message is None:
            raise
        return message if message.startswith(("resource ", "connection ", "container ")) \
            else "resource %s: %s" % (name, message)


def failure_report(stack, names, errors, left):
    """One message for every failed name (in plan order) and the names left unstarted."""
    failed = [n for n in names if n in errors]
    return "stack %s: %d resource%s failed:\n- %s%s" % (
        stack, len(failed), "" if len(failed) == 1 else "s", "\n- ".join(errors[n] for n in failed),
        "\nnot converged, as they wait for those or came after: %s" % ", ".join(left) if left else "")
