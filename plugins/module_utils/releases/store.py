# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stack's releases: how they are numbered, kept, written and read.

They are kept in the Docker engine the stack runs on (releases/shelf.py: an image per record), not
on the controller: another controller, or a lost laptop, finds them, and so does every way of
reaching the engine. A release holds each container's full create config, env values included,
as Docker's own record of a container does; nothing of it goes into a label.

    index      {"format", "stack", "releases": [numbers kept], "current", "last"}
    <n>        one release (schema.py)

A release is written before the index names it; a release the index no longer names is removed
after the index is written. Every write goes through the gateway (check mode's dry run keeps it to
itself). Writers hold the stack's lock (apply/lock.py): one at a time.

Every record is read as untrusted data: bounded, JSON, checked against schema.py; what is not a
release is refused with one message naming it, never a traceback."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, stack_name_problem
from ansible_collections.clockwork.connections.plugins.module_utils.releases.schema import (
    FORMAT, check_index, check_release)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.shelf import EngineShelf

DEFAULT_KEPT = 5
MAX_KEPT = 100
INDEX = "index"


def kept_count(value):
    """`releases_kept` as a number of releases, refused when it is not one."""
    if value is None:
        return DEFAULT_KEPT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_KEPT:
        raise ClockworkError("releases_kept must be a whole number from 1 to %d, not %r" % (MAX_KEPT, value))
    return value


def parse(where, data):
    """A record's JSON, or a clear error naming it."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ClockworkError("%s is not a release record (not JSON: %s): someone else wrote it; move it away "
                             "and run again" % (where, str(exc).partition(":")[0]))


def dumps(document):
    return (json.dumps(document, sort_keys=True, indent=1, separators=(",", ": ")) + "\n").encode("utf-8")


class ReleaseStore(object):
    """The releases of one stack, in the engine of `gateway` (a DockerGateway; a dry run's keeps its
    writes to itself)."""

    def __init__(self, gateway, stack):
        problem = stack_name_problem(stack)
        if problem:   # it becomes an image's tag: nothing that names another
            raise ClockworkError("name: %s" % problem)
        self.stack = stack
        self.shelf = EngineShelf(gateway, stack)
        self.images = self.shelf.reference("*")   # the images that hold its records, for people

    def release_path(self, number):
        """Where release `number` is, in words (an image's reference)."""
        return self.shelf.reference(number)

    def _read(self, name):
        data = self.shelf.read(name)
        return None if data is None else parse(self.shelf.where(name), data)

    # -- reads --------------------------------------------------------------------------

    def index(self):
        """{"releases": [kept numbers, oldest first], "current": n or None, "last": n} (empty when none)."""
        document = self._read(INDEX)
        if document is None:
            return {"format": FORMAT, "stack": self.stack, "releases": [], "current": None, "last": 0}
        return check_index(document, self.stack, self.shelf.where(INDEX))

    def release(self, number):
        """Release `number`, None when its record is gone."""
        document = self._read(number)
        if document is None:
            return None
        return check_release(document, self.stack, number, self.shelf.where(number))

    def releases(self):
        """(the kept releases, oldest first; the numbers the index names whose record is gone)."""
        index = self.index()
        found, missing = [], []
        for number in index["releases"]:
            release = self.release(number)
            if release is None:
                missing.append(number)
            else:
                found.append(release)
        return found, missing

    def resolve(self, which):
        """The release `which` names: `current`, `previous` (the one before the current), or a
        number; refused, naming it, when there is none or it is no longer kept (what a rollback,
        issue 35 part 3, asks first, before any change)."""
        index = self.index()
        numbers, current = index["releases"], index["current"]
        kept = "the kept releases are %s" % (", ".join(str(n) for n in numbers) if numbers else "none")
        if which in ("current", "previous"):
            if current is None:
                raise ClockworkError("stack %s has no release yet: an apply that changes something records one"
                                     % self.stack)
            earlier = [n for n in numbers if n < current]
            if which == "previous" and not earlier:
                raise ClockworkError("stack %s has no release before its current one (%d); %s" % (
                    self.stack, current, kept))
            number = current if which == "current" else earlier[-1]
        elif isinstance(which, int) and not isinstance(which, bool):
            number = which
            if number not in numbers:
                gone = "was pruned" if 0 < number <= index["last"] else "was never recorded"
                raise ClockworkError("release %d of stack %s %s; %s" % (number, self.stack, gone, kept))
        else:
            raise ClockworkError("a release is `current`, `previous` or a number, not %r" % (which,))
        release = self.release(number)
        if release is None:
            raise ClockworkError("release %d of stack %s is in its index but its record (%s) is gone" % (
                number, self.stack, self.shelf.where(number)))
        return release

    # -- writes -------------------------------------------------------------------------

    def add(self, release, kept=DEFAULT_KEPT):
        """Write `release` as the next number, make it current, keep the last `kept`; returns
        (its number, the numbers pruned)."""
        kept = kept_count(kept)
        index = self.index()
        number = index["last"] + 1
        release = dict(release, number=number, stack=self.stack, format=FORMAT)
        check_release(release, self.stack, number, self.shelf.where(number))   # never write what is not read back
        self.shelf.write(number, dumps(release))
        numbers = index["releases"] + [number]
        pruned, numbers = numbers[:-kept], numbers[-kept:]
        self.shelf.write(INDEX, dumps({
            "format": FORMAT, "stack": self.stack, "releases": numbers, "current": number, "last": number}))
        for old in pruned:
            self.shelf.remove(old)
        return number, pruned
