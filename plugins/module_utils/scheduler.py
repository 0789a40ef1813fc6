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
