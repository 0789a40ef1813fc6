# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A per-stack lock held on the Docker engine itself, so that runs of one stack serialise
whichever controller they come from (a file lock only covers one machine).

The lock is a container named `clockwork-lock-<stack>`: the engine creates a name once,
atomically, so whoever creates it holds the lock. It is never started, has no network,
and carries who holds it and since when. It is not labelled as part of the stack, so a
destroy never sees it. A lock whose holder is gone is taken over: at once when the holder
ran on this machine and its process is dead, otherwise once it is older than STALE_AFTER.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import hashlib
import io
import os
import re
import socket
import tarfile
import time

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    CONFLICT, NOT_FOUND, engine_words, status_of)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError
from ansible_collections.clockwork.connections.plugins.module_utils.releases.shelf import OWNER_LABEL as RELEASES_LABEL

LOCK_LABEL = "io.clockwork.lock"              # the stack it locks
OWNER_LABEL = "io.clockwork.lock.owner"       # host:pid, for people
PROCESS_LABEL = "io.clockwork.lock.process"   # the holding process, for the staleness test
SINCE_LABEL = "io.clockwork.lock.since"       # seconds since the epoch

DEFAULT_TIMEOUT = 120
TIMEOUT_ENV = "CLOCKWORK_LOCK_TIMEOUT"    # seconds to wait for the lock, instead of DEFAULT_TIMEOUT
# No run of a stack holds its lock longer than this; a lock this old was left by a killed run.
STALE_AFTER = 15 * 60
# Only when the engine has no image at all: an empty one to create the lock container from.
EMPTY_IMAGE = ("clockwork/lock", "empty")


def lock_name(stack):
    """`clockwork-lock-<stack>`; a stack name that is not a valid container name is made one."""
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "_", stack)
    if safe != stack:
        safe += "-" + hashlib.sha256(stack.encode("utf-8")).hexdigest()[:8]
    return "clockwork-lock-" + safe


def process_id(pid):
    """What tells one live process apart, or None off Linux: the boot, the pid namespace, the
    pid and its start time. A process that died, or whose pid was reused, no longer matches."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
        namespace = os.readlink("/proc/%d/ns/pid" % pid)
        with open("/proc/%d/stat" % pid) as handle:
            started = handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
    return "%s/%s/%d/%s" % (boot, namespace, pid, started)


def _same_machine(process, mine):
    """Both processes ran under this boot and pid namespace, so the pid can be checked here."""
    return bool(process and mine) and process.rsplit("/", 2)[0] == mine.rsplit("/", 2)[0]


class StackLock(object):
    """The lock of one stack; `waited` is how long taking it took, in seconds."""

    def __init__(self, engine, stack):
        self.engine = engine
        self.stack = stack
        self.name = lock_name(stack)
        self.id = None
        self.waited = 0.0
        self.holder = None       # who held it while we waited
        self.took_over = None    # a stale holder whose lock we removed

    def acquire(self, timeout):
        # The gateway's clock: a wait on an engine in memory takes none of the process's time.
        started = self.engine.monotonic()
        delay = 0.05
        image = self._image()
        pid = os.getpid()
        labels = {LOCK_LABEL: self.stack, OWNER_LABEL: "%s:%d" % (socket.gethostname(), pid),
                  SINCE_LABEL: "%d" % time.time(), PROCESS_LABEL: process_id(pid) or ""}
        while True:
            try:
                created = self.engine.create_container(
                    self.name, image, host_config={"network_mode": "none"}, command=["clockwork-lock"],
                    labels=labels)
                self.id = created["Id"]
                if self.holder:
                    self.waited = round(self.engine.monotonic() - started, 1)
                return
            except APIError as exc:
                if status_of(exc) != CONFLICT:
                    raise ClockworkError("cannot take the lock of stack %s (container %s): %s"
                                         % (self.stack, self.name, engine_words(exc)))
            held = self._held()
            if held is None:        # released meanwhile: try again at once
                continue
            owner, since, process = held["owner"], held["since"], held["process"]
            self.holder = owner
            age = time.time() - since if since else 0
            if self._stale(process, age):
                self._remove(held["id"])
                self.took_over = owner
                continue
            if self.engine.dry_run:
                # A dry run's lock is its own, in its memory: it says what a run would do to the stack
                # as it is now, and never waits for a run that holds the engine's lock.
                return
            waited = self.engine.monotonic() - started
            if waited >= timeout:
                raise ClockworkError(
                    "stack %s is being converged by another run (%s, for %ds now): waited %ds for it to "
                    "finish. Run again once it has; if no run is going on, remove its lock with "
                    "`docker rm %s` (it is taken over by itself after %d minutes)"
                    % (self.stack, owner, age, waited, self.name, STALE_AFTER // 60))
            self.engine.sleep(min(delay, max(0.01, timeout - waited)))
            delay = min(delay * 2, 1.0)

    def release(self):
        if self.id is not None:
            # By id: a lock taken over meanwhile is someone else's now and stays.
            self._remove(self.id)
            self.id = None

    def _held(self):
        """The current lock: its id, owner, start time and process; None when there is none."""
        try:
            attrs = self.engine.container_now(self.name)
        except APIError as exc:
            raise ClockworkError("cannot read the lock of stack %s: %s" % (self.stack, engine_words(exc)))
        if attrs is None:
            return None
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        if labels.get(LOCK_LABEL) != self.stack:
            raise ClockworkError("container %s exists but is not the lock of stack %s; remove or rename it"
                                 % (self.name, self.stack))
        try:
            since = int(labels.get(SINCE_LABEL) or 0)
        except ValueError:
            since = 0
        return {"id": attrs["Id"], "owner": labels.get(OWNER_LABEL) or "unknown",
                "since": since, "process": labels.get(PROCESS_LABEL) or None}

    @staticmethod
    def _stale(process, age):
        mine = process_id(os.getpid())
        if _same_machine(process, mine):
            pid = int(process.rsplit("/", 2)[1])
            return process_id(pid) != process
        return age > STALE_AFTER

    def _remove(self, container_id):
        try:
            # v: an image with a VOLUME gives even a never-started container an anonymous
            # volume; it is the lock's own, and goes with it.
            self.engine.remove_container(container_id, force=True, volumes=True)
        except APIError as exc:
            if status_of(exc) != NOT_FOUND:
                raise ClockworkError("cannot remove the lock of stack %s: %s" % (self.stack, engine_words(exc)))

    def _image(self):
        """Any local image serves: the container is never started. The smallest is taken, but a release
        record's (releases/shelf.py): a container made from it would keep it from being pruned."""
        try:
            images = [i for i in self.engine.images() if (i.get("RepoTags") or i.get("Id"))
                      and RELEASES_LABEL not in (i.get("Labels") or {})]
            if images:
                return sorted(images, key=lambda i: (i.get("Size") or 0, i["Id"]))[0]["Id"]
            empty = io.BytesIO()
            tarfile.open(fileobj=empty, mode="w").close()
            self.engine.import_image(empty.getvalue(), EMPTY_IMAGE[0], EMPTY_IMAGE[1])
            return "%s:%s" % EMPTY_IMAGE
        except APIError as exc:
            raise ClockworkError("cannot take the lock of stack %s: no image to create it from: %s"
                                 % (self.stack, engine_words(exc)))


@contextlib.contextmanager
def stack_lock(engine, stack, timeout=None):
    """Hold the lock of `stack` for the duration of the block (a dry run's gateway takes and
    releases it in its own memory). Without `timeout`, waits CLOCKWORK_LOCK_TIMEOUT seconds,
    else DEFAULT_TIMEOUT."""
    lock = StackLock(engine, stack)
    if timeout is None:
        try:
            timeout = float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT)
        except ValueError:
            raise ClockworkError("%s must be a number of seconds, not %r" % (TIMEOUT_ENV, os.environ[TIMEOUT_ENV]))
    lock.acquire(timeout)
    try:
        yield lock
    finally:
        lock.release()
