# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Execs into one container that are asked for at the same moment, run as one exec.

Most of an exec's cost is the engine's (a process started in the container's namespaces: about
40 ms of a 2-core machine); the checks of a stack often run several programs in one container at
once (the showcase: three in `api`). While the checks run (apply/checks.py), each exec they ask
for waits until every check still running is waiting too; then the waiting ones are run, one
exec per container: a fixed `sh` script that runs each program in turn and marks where its
output ends and with which exit code. The programs and their arguments reach the script as its
positional parameters, never as script text: no value is parsed by the shell (each is expanded
as one quoted word). A container without `sh` gets each program as its own exec, as before;
so does a program that needs env (a secret) of its own.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import threading
import uuid

# Arguments: a boundary, then for each program its argument count and its arguments. For each
# program, what it writes (stdout and stderr), then a line "<boundary> <exit code>". A program
# the container lacks is said as the engine says it ("executable file not found"), exit code 127.
SCRIPT = (
    'b=$1; shift\n'
    'while [ $# -gt 0 ]; do\n'
    '  n=$1; shift; c=; i=1\n'
    '  while [ "$i" -le "$n" ]; do c="$c \\"\\${$i}\\""; i=$((i + 1)); done\n'
    '  if command -v "$1" >/dev/null 2>&1; then eval "$c" 2>&1; code=$?\n'
    '  else printf \'exec: "%s": executable file not found in $PATH\' "$1"; code=127; fi\n'
    '  printf \'\\n%s %s\\n\' "$b" "$code"\n'
    '  shift "$n"\n'
    'done\n')


def batch_argv(boundary, programs):
    """The one exec's argv running `programs` (argv lists) in turn."""
    argv = ["sh", "-c", SCRIPT, "clockwork-exec-batch", boundary]
    for program in programs:
        argv += [str(len(program))] + list(program)
    return argv


def split_batch(argv):
    """(boundary, programs) of a batch's argv, None for any other argv (the memory engine answers
    a batch program by program, as the script runs them)."""
    if list(argv[:3]) != ["sh", "-c", SCRIPT] or len(argv) < 5:
        return None
    rest, programs = list(argv[5:]), []
    while rest:
        count = int(rest[0])
        programs.append(rest[1:1 + count])
        rest = rest[1 + count:]
    return argv[4], programs


def batch_output(boundary, results):
    """What the script writes for `results` [(exit code, output)]."""
    return "".join("%s\n%s %d\n" % (output, boundary, code) for code, output in results)


def parse_output(boundary, output, count):
    """[(exit code, output)] of the programs a batch ran, None when its output is not whole
    (the exec was cut short): then each program runs on its own."""
    # The exec's output comes stripped: the first program's may have lost the newline before its mark.
    results, rest = [], "\n" + output
    for _index in range(count):
        at = rest.find("\n%s " % boundary)
        if at < 0:
            return None
        end = rest.find("\n", at + 1 + len(boundary))
        line = rest[at + 1:] if end < 0 else rest[at + 1:end]
        try:
            code = int(line.split(" ", 1)[1])
        except (IndexError, ValueError):
            return None
        results.append((code, rest[:at].strip()))
        rest = "" if end < 0 else rest[end + 1:]
    return results


class ExecBatch(object):
    """The execs of concurrent runners (the checks), run one exec per container whenever every
    runner still running is waiting for one. `run_alone(container, argv, seconds)` runs one exec
    (docker/gateway.py's); a runner's work goes inside `with batch.runner():`, and a runner that
    sleeps between tries, or runs an exec of its own, does it through `aside`, so that the others
    do not wait for it."""

    def __init__(self, run_alone, runners=0):
        self.run_alone = run_alone
        self._cond = threading.Condition()
        # The `runners` about to start count as busy from the outset: the first to ask for an exec
        # does not find itself alone because the others' threads have not started yet.
        self._active = self._expected = runners
        self._waiting = []

    def runner(self):
        return _Runner(self)

    def _enter(self):
        with self._cond:
            if self._expected:
                self._expected -= 1   # counted already
            else:
                self._active += 1

    def _leave(self):
        with self._cond:
            self._active -= 1
            ready = self._take_if_all_wait()
        self._flush(ready)

    def aside(self, work, *args):
        """`work(*args)` (a sleep between tries, an exec of its own) without holding the others up."""
        self._leave()
        try:
            return work(*args)
        finally:
            self._enter()

    def run(self, container, argv, seconds):
        """(exit code, output) of `argv` in `container`, run with the others waiting meanwhile."""
        request = {"container": container, "argv": list(argv), "seconds": seconds, "result": None}
        with self._cond:
            self._waiting.append(request)
            ready = self._take_if_all_wait()
        self._flush(ready)
        with self._cond:
            while request["result"] is None:
                self._cond.wait()
        return request["result"]

    def _take_if_all_wait(self):
        """Under the lock: the waiting requests when no runner is busy elsewhere."""
        if self._waiting and len(self._waiting) >= self._active:
            ready, self._waiting = self._waiting, []
            return ready
        return []

    def _flush(self, requests):
        """Each container's requests as one exec, the containers at once (a thread each)."""
        by_container = {}
        for request in requests:
            by_container.setdefault(request["container"], []).append(request)
        for group in by_container.values():
            threading.Thread(target=self._run_group, args=(group,), name="clockwork-exec-batch",
                             daemon=True).start()

    def _run_group(self, group):
        try:
            results = self._results(group)
        except Exception as exc:  # pylint: disable=broad-except  # said by each waiting runner
            results = [(126, "exec failed: %s" % exc)] * len(group)
        with self._cond:
            for request, result in zip(group, results):
                request["result"] = result
            self._cond.notify_all()

    def _results(self, group):
        container = group[0]["container"]
        if len(group) > 1:
            boundary = uuid.uuid4().hex
            code, output = self.run_alone(container, batch_argv(boundary, [r["argv"] for r in group]),
                                          sum(r["seconds"] for r in group) + 2)
            results = parse_output(boundary, output, len(group)) if code == 0 else None
            if results is not None:
                return results
        # One program, or a container without sh (or a batch cut short): each on its own.
        return [self.run_alone(container, r["argv"], r["seconds"]) for r in group]


class _Runner(object):
    def __init__(self, batch):
        self.batch = batch

    def __enter__(self):
        self.batch._enter()   # pylint: disable=protected-access
        return self

    def __exit__(self, *_exc):
        self.batch._leave()   # pylint: disable=protected-access
        return False


class BatchedGateway(object):
    """A gateway whose execs without env of their own go through `batch`; everything else is the
    gateway's."""

    def __init__(self, gateway, batch):
        self._gateway = gateway
        self.exec_batch = batch

    def __getattr__(self, name):
        return getattr(self._gateway, name)

    def sleep(self, seconds):
        self.exec_batch.aside(self._gateway.sleep, seconds)
