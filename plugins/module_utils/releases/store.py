# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a stack's releases live, and how they are written and read.

On the Docker host, never on the controller (another controller, or a lost laptop, must find
them): `~/.clockwork/<stack>/releases/` in the home of the user the module runs as there, the
stack's own directory that already holds its password files and TLS material (host_files.stack_home).
A release holds each container's full create config, env values included, as Docker's own record
of a container does (/var/lib/docker/containers/<id>/config.v2.json, root's, mode 0600): so the
directories are 0700 and the files 0600, reached without following a link, and nothing of a
release goes into a label.

    releases/index.json          {"format", "stack", "releases": [numbers kept], "current", "last"}
    releases/<n>/release.json    one release (schema.py)

Every write goes through the gateway's host files (host_files.HostFiles; check mode's DryRunFiles
writes nothing) and is atomic: a temporary file in the same directory, then a rename over the
old one, so a run killed half-way leaves the previous file whole. A release's file is written
before the index names it; a release the index no longer names is removed after the index is
written. Writers hold the stack's lock (apply/lock.py): one at a time.

Every file is read as untrusted data: at most MAX_BYTES, JSON, checked against schema.py; what
is not a release is refused with one message naming the file, never a traceback."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import stat

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, stack_name_problem
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import (
    DryRunFiles, directory_fd, open_in, stack_home)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.schema import (
    FORMAT, check_index, check_release)

DEFAULT_KEPT = 5
MAX_KEPT = 100
# A release of a large stack is tens of kilobytes; anything this big was not written by us.
MAX_BYTES = 8 * 1024 * 1024
INDEX = "index.json"
RELEASE = "release.json"
FILE_MODE = 0o600


def releases_home(stack):
    """The stack's releases directory on the Docker host."""
    return os.path.join(stack_home(stack), "releases")


def kept_count(value):
    """`releases_kept` as a number of releases, refused when it is not one."""
    if value is None:
        return DEFAULT_KEPT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_KEPT:
        raise ClockworkError("releases_kept must be a whole number from 1 to %d, not %r" % (MAX_KEPT, value))
    return value


def read_bounded(path):
    """The bytes of a root-only file, None when it or its directory is missing. Reached as the
    password files are (no link followed on the way or at the file); refused over MAX_BYTES."""
    dir_fd = directory_fd(os.path.dirname(path), create=False)
    if dir_fd is None:
        return None
    try:
        try:
            fd = open_in(dir_fd, os.path.basename(path), path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_BYTES:
            os.close(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ClockworkError("%s is not a regular file, where a release record is expected; move it away "
                                     "and run again" % path)
            raise ClockworkError("%s holds %d bytes, more than a release record ever does (%d): it was not "
                                 "written by clockwork; move it away and run again" % (path, info.st_size, MAX_BYTES))
        with os.fdopen(fd, "rb") as handle:
            return handle.read(MAX_BYTES + 1)
    finally:
        os.close(dir_fd)


def parse(path, data):
    """A file's JSON, or a clear error naming it."""
    if len(data) > MAX_BYTES:
        raise ClockworkError("%s grew past %d bytes while read: move it away and run again" % (path, MAX_BYTES))
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ClockworkError("%s is not a release record (not JSON: %s): a run was interrupted while writing it, or "
                             "someone else wrote it; move it away and run again" % (path, str(exc).partition(":")[0]))


def write_atomic(files, path, data):
    """`data` in `path` (0600, its directories 0700), all of it or nothing: a temporary file
    beside it, then a rename over it. Through `files`: check mode's writes nothing."""
    temporary = "%s.tmp-%d" % (path, os.getpid())
    files.write_private(temporary, data, FILE_MODE)
    rename = getattr(files, "rename", None)   # the host files' own, once host_files.py has it
    if rename is not None:
        rename(temporary, path)
    elif not isinstance(files, DryRunFiles):   # check mode wrote no temporary file: nothing to move
        dir_fd = directory_fd(os.path.dirname(path), create=False)
        try:
            os.rename(os.path.basename(temporary), os.path.basename(path), src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        finally:
            os.close(dir_fd)


def dumps(document):
    return (json.dumps(document, sort_keys=True, indent=1, separators=(",", ": ")) + "\n").encode("utf-8")


class ReleaseStore(object):
    """The releases of one stack, through the gateway's host files `files`."""

    def __init__(self, files, stack):
        problem = stack_name_problem(stack)
        if problem:   # it becomes a directory's name: nothing that leads elsewhere
            raise ClockworkError("name: %s" % problem)
        self.files = files
        self.stack = stack
        self.home = releases_home(stack)
        self.index_path = os.path.join(self.home, INDEX)

    def release_path(self, number):
        return os.path.join(self.home, str(number), RELEASE)

    # -- reads --------------------------------------------------------------------------

    def index(self):
        """{"releases": [kept numbers, oldest first], "current": n or None, "last": n} (empty when none)."""
        data = read_bounded(self.index_path)
        if data is None:
            return {"format": FORMAT, "stack": self.stack, "releases": [], "current": None, "last": 0}
        return check_index(parse(self.index_path, data), self.stack, self.index_path)

    def release(self, number):
        """Release `number`, None when its file is gone."""
        path = self.release_path(number)
        data = read_bounded(path)
        if data is None:
            return None
        return check_release(parse(path, data), self.stack, number, path)

    def releases(self):
        """(the kept releases, oldest first; the numbers the index names whose file is gone)."""
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
            raise ClockworkError("release %d of stack %s is in its index but its file %s is gone" % (
                number, self.stack, self.release_path(number)))
        return release

    # -- writes -------------------------------------------------------------------------

    def add(self, release, kept=DEFAULT_KEPT):
        """Write `release` as the next number, make it current, keep the last `kept`; returns
        (its number, the numbers pruned)."""
        kept = kept_count(kept)
        index = self.index()
        number = index["last"] + 1
        release = dict(release, number=number, stack=self.stack, format=FORMAT)
        check_release(release, self.stack, number, self.release_path(number))   # never write what is not read back
        write_atomic(self.files, self.release_path(number), dumps(release))
        numbers = index["releases"] + [number]
        pruned, numbers = numbers[:-kept], numbers[-kept:]
        write_atomic(self.files, self.index_path, dumps({
            "format": FORMAT, "stack": self.stack, "releases": numbers, "current": number, "last": number}))
        for old in pruned:
            directory = os.path.join(self.home, str(old))
            # A directory only, never through a link (a link here was not made by us: left alone).
            if os.path.isdir(directory) and not os.path.islink(directory):
                self.files.remove_tree(directory)
        return number, pruned
