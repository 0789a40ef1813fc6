# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker engine, seen through one client and one inspect per object per run."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import select
import threading
import time

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.clockwork.connections.plugins.module_utils.docker.engine_api import (
    DEFAULT_SOCKET, MAX_POOL_SIZE, EngineAPI, local_socket)
from ansible_collections.clockwork.connections.plugins.module_utils.docker import errors as _errors
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import DryRunFiles, HostFiles
from ansible_collections.clockwork.connections.plugins.module_utils.docker.container_calls import ContainerCalls
from ansible_collections.clockwork.connections.plugins.module_utils.docker.image_calls import ImageCalls
from ansible_collections.clockwork.connections.plugins.module_utils.docker.network_calls import NetworkCalls
from ansible_collections.clockwork.connections.plugins.module_utils.docker.recorded_calls import RecordedCalls
from ansible_collections.clockwork.connections.plugins.module_utils.docker.swarm_calls import SwarmCalls
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import HAS_DOCKER, SDK_NAME

# What callers catch: the engine's errors, whichever way the request went (docker/errors.py).
APIError, NotFound = _errors.APIError, _errors.NotFound

# Why the SDK could not be imported: known once an import was tried (docker/errors.py load_sdk).
DOCKER_IMPORT_ERROR = None


def require_docker(module):
    """Without the SDK, Ansible's missing_required_lib message: at once when the engine is not
    a local socket (every request goes through the SDK then). On a local socket, what a no-op
    asks (reads, the stack's lock, the checks' execs) needs no SDK (docker/engine_api.py): a run
    that changes nothing works without it, and the first change that needs it fails with the
    same message (docker/errors.py load_sdk)."""
    if not HAS_DOCKER and local_socket() is None:
        module.fail_json(msg=missing_required_lib(SDK_NAME), exception=DOCKER_IMPORT_ERROR)


_UNREAD = object()   # a cache entry not read yet (None is an answer: the engine has no such object)


class DockerGateway(ContainerCalls, NetworkCalls, SwarmCalls, ImageCalls, RecordedCalls):
    """The only way to the Docker engine: every read and write the collection makes.

    Behind it is an engine that speaks the SDK's `APIClient` shape: the live one
    (engine_api.EngineAPI, which `DockerGateway(environment=...)` makes), an in-memory one
    (memory.MemoryEngine: tests script it), or a dry run's (dry_run.DryRunEngine: reads
    through to the live one, writes kept in memory), so check mode and tests run the same
    code as a real run.

    Reads of one container, network, volume, image or service are cached for the run; every
    write forgets what it changed, here and nowhere else. Every write is recorded in
    `actions` ("create container web", "connect container web to network shop_default"),
    so a test or a dry run can say what a run did or would do. Errors are errors.py's types:
    `APIError` with the status and the engine's words, `NotFound` for a 404.
    """

    def __init__(self, client=None, environment=None, api=None):
        self.api = api if api is not None else EngineAPI(environment=environment, client=client,
                                                         max_pool_size=MAX_POOL_SIZE)
        self._cache = {}
        self._reading = {}                  # (kind, name) -> the lock of its first read
        self._reading_lock = threading.Lock()
        self.actions = []                   # every write, in words, in the order made
        self._actions_lock = threading.Lock()
        # The Docker host's files (the module runs there): a dry run's change none.
        self.files = DryRunFiles() if self.dry_run else HostFiles()

    @property
    def client(self):
        """The SDK's DockerClient, made on first use (other transports' callers; swarm nodes)."""
        return self.api.client

    # -- time: an engine in memory (tests, a dry run) has its own, so waits on it take no time --

    def monotonic(self):
        return getattr(self.api, "monotonic", time.monotonic)()

    def sleep(self, seconds):
        getattr(self.api, "sleep", time.sleep)(seconds)

    @property
    def dry_run(self):
        """Whether writes are only recorded (check mode)."""
        return bool(getattr(self.api, "dry_run", False))

    def forecast(self, container):
        """Whether a container is only what this run would make of it (a dry run created or changed
        it): its answers are a forecast, nothing real can be asked of it (checks, a database's
        contents). Never on an engine."""
        return self.dry_run and self.api.forecast(container)

    # -- reads, cached for the run ------------------------------------------------------

    def _inspect(self, kind, name):
        key = (kind, name)
        attrs = self._cache.get(key, _UNREAD)
        if attrs is _UNREAD:
            # Workers that ask for one object at once (the pre-flight's images) wait for one read.
            with self._reading_lock:
                reading = self._reading.setdefault(key, threading.Lock())
            with reading:
                attrs = self._cache.get(key, _UNREAD)
                if attrs is _UNREAD:
                    attrs = self._cache[key] = self.api.inspect_or_none(kind, name)
        return attrs

    def container(self, name):
        return self._inspect("container", name)

    def network(self, name):
        return self._inspect("network", name)

    def volume(self, name):
        return self._inspect("volume", name)

    def image(self, name):
        return self._inspect("image", name)

    def remember(self, kind, name, attrs):
        """What an object is without asking the engine again (a list just read says it)."""
        self._cache[(kind, name)] = attrs

    def forget(self, kind, name):
        """Read `name` afresh next time: something outside this gateway changed it (another node's
        engine, a container's own restart policy)."""
        self._cache.pop((kind, name), None)
        if kind == "container":
            for key, attrs in list(self._cache.items()):
                if key[0] == "container" and attrs and (attrs.get("Id") or "").startswith(name):
                    self._cache.pop(key, None)

    def _wrote(self, words, *forget):
        """Record one write and forget what it changed: (kind, name) pairs."""
        with self._actions_lock:
            self.actions.append(words)
        for kind, name in forget:
            if name:
                self.forget(kind, name)

    def containers(self, all=False, filters=None):  # pylint: disable=redefined-builtin
        return self.api.containers(all=all, filters=filters)

    def networks(self, names=None, filters=None):
        return self.api.networks(names=names, filters=filters)

    def images(self):
        return self.api.images()

    def info(self):
        return self.api.info()

    @property
    def api_version(self):
        return self.api.api_version

    @property
    def is_local(self):
        """Whether the engine is on this machine (a Unix socket)."""
        return (self.api.base_url or "").startswith("http+docker://local")

    @property
    def address(self):
        """Where the engine is reached (http+docker://localhost, http://host:2375, ...), for messages."""
        return self.api.base_url

    def files_reach_engine(self):
        """Whether the files this process writes (password files, TLS material, file resources' content)
        are the Docker host's, for its containers to mount: the engine runs on this machine (its Unix
        socket, or tcp:// or ssh:// to the engine this machine's own socket answers for: the same ID).
        Asked once per run."""
        known = self.__dict__.get("_files_reach_engine", self.api.files_here)   # in memory: True (tests' own home)
        if known is None:
            known = self.is_local or self._same_engine_as_local_socket()
        self._files_reach_engine = known
        return known

    def _same_engine_as_local_socket(self):
        if not os.path.exists(DEFAULT_SOCKET):
            return False
        here = EngineAPI(environment={"DOCKER_HOST": "unix://" + DEFAULT_SOCKET})
        try:
            ident = here.info().get("ID")
            return bool(ident) and ident == self.info().get("ID")
        except Exception:  # pylint: disable=broad-except  # no engine answers here: not this machine's
            return False
        finally:
            here.close()

    def logs(self, name, tail=20):
        return self.api.logs(name, tail=tail)

    def logs_tail(self, name, lines=20):
        try:
            raw = self.logs(name, tail=lines)
        except APIError:
            return ""
        return raw.decode("utf-8", "replace").strip()

    def get_archive(self, container, path):
        """(stream of a tar, stat) of `path` in a container."""
        return self.api.get_archive(container, path)

    def inspect_distribution(self, image):
        return self.api.inspect_distribution(image)

    # -- execs ---------------------------------------------------------------------------

    def exec_create(self, container, argv, **options):
        return self.api.exec_create(container, argv, **options)

    def exec_start(self, exec_id, **options):
        return self.api.exec_start(exec_id, **options)

    def exec_inspect(self, exec_id):
        return self.api.exec_inspect(exec_id)

    def run(self, container, argv, timeout=10, env=None):
        """exec_in on this gateway: (exit code, output)."""
        return exec_in(self, container, argv, timeout=timeout, env=env)


def container_state(attrs):
    """(status, health) of an inspected container; health is None without a healthcheck."""
    if not attrs:
        return "absent", None
    state = attrs.get("State") or {}
    return state.get("Status"), (state.get("Health") or {}).get("Status")


# Exit codes of a command run in a container, as `timeout` and shells report them.
EXEC_TIMED_OUT = 124
EXEC_NOT_FOUND = 127
# What an exec keeps of a command's output: checks need the first lines, not a whole body.
EXEC_OUTPUT_LIMIT = 64 * 1024
_MISSING_PROGRAM = re.compile(r"executable file not found|no such file or directory|failed to run command|permission denied",
                              re.IGNORECASE)


def exec_in(engine, container, argv, timeout=10, env=None):
    """Run the program `argv` (a list of strings, never a shell script) inside a container,
    bounded by `timeout` seconds; returns (exit code, output: stdout and stderr).

    Every value is its own argv entry, so no shell ever parses a name, a path or a URL;
    secrets go in `env`, which is not part of the command line. The program runs under
    the image's `timeout` when it has one (so it is killed in the container), and we stop
    waiting after `timeout` seconds either way: exit code 124, as `timeout` reports. A
    program the container does not have gives 127, as a shell would.
    """
    if isinstance(argv, (str, bytes)) or not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError("exec_in takes an argv list of strings, not %r" % (argv,))
    argv = list(argv)
    seconds = max(1, int(timeout))
    bare = ("exec-without-timeout", container)
    if not engine._cache.get(bare):   # pylint: disable=protected-access  # the engine's per-run memory
        code, out = _exec(engine, container, ["timeout", str(seconds)] + argv, seconds + 2, env)
        # `timeout`'s own complaints start with "timeout:"; the engine's mean it is missing.
        if not (code in (126, 127) and _MISSING_PROGRAM.search(out) and not out.startswith("timeout:")):
            return _named(code, out, argv, container, seconds)
        # The image has no `timeout`: bounded on our side alone from now on.
        engine._cache[bare] = True   # pylint: disable=protected-access
    code, out = _exec(engine, container, argv, seconds, env)
    return _named(code, out, argv, container, seconds)


def _named(code, out, argv, container, seconds):
    """Missing program and time-out, said in words that name the command."""
    if code in (126, 127) and _MISSING_PROGRAM.search(out):
        return EXEC_NOT_FOUND, "%s is not in container %s" % (argv[0], container)
    if code == EXEC_TIMED_OUT:
        return code, ("%s timed out after %ds in %s %s" % (argv[0], seconds, container, out)).strip()
    return code, out


def _exec(engine, container, argv, seconds, env):
    """One exec, its output read by us until `seconds` have passed: (exit code, output). While
    checks run, one with no env of its own may share an exec with others (docker/exec_batch.py)."""
    batch = getattr(engine, "exec_batch", None)
    if batch is None:
        return exec_alone(engine, container, argv, seconds, env)
    if env:   # env of its own (a secret): an exec of its own, the others not held up meanwhile
        return batch.aside(exec_alone, engine, container, argv, seconds, env)
    return batch.run(container, argv, seconds)


def exec_alone(engine, container, argv, seconds, env=None):
    """One exec of its own (see _exec)."""
    try:
        exec_id = engine.exec_create(container, argv, environment=env)["Id"]
        sock = engine.exec_start(exec_id, socket=True)
    except APIError as exc:
        return 126, str(exc.explanation or exc)
    deadline = time.monotonic() + seconds
    try:
        raw, finished = _read_stream(sock, deadline)
    finally:
        _close(sock)
    output = _demultiplex(raw).decode("utf-8", "replace").strip()
    if not finished:
        return EXEC_TIMED_OUT, output
    try:
        state = engine.exec_inspect(exec_id)
        # The stream ends a moment before the engine records the exit code.
        while state.get("Running") and time.monotonic() < deadline:
            time.sleep(0.01)
            state = engine.exec_inspect(exec_id)
    except APIError as exc:
        return 126, str(exc.explanation or exc)
    if state.get("Running"):
        return EXEC_TIMED_OUT, output
    return state.get("ExitCode"), output


def _read_stream(sock, deadline):
    """Bytes of an exec's stream until it ends (True) or the deadline passes (False)."""
    raw = getattr(sock, "_sock", sock)
    chunks, size = [], 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), False
        try:
            ready = select.select([raw], [], [], remaining)[0]
            if not ready:
                continue
            chunk = raw.recv(65536) if hasattr(raw, "recv") else raw.read(65536)
        except (OSError, ValueError):
            return b"".join(chunks), True
        if not chunk:
            return b"".join(chunks), True
        if size < EXEC_OUTPUT_LIMIT + 8:
            chunks.append(chunk)
            size += len(chunk)


def _demultiplex(raw):
    """stdout and stderr frames of a non-TTY exec (8-byte headers), in order, as one text."""
    out, offset = [], 0
    while offset + 8 <= len(raw):
        length = int.from_bytes(raw[offset + 4:offset + 8], "big")
        out.append(raw[offset + 8:offset + 8 + length])
        offset += 8 + length
    return b"".join(out)[:EXEC_OUTPUT_LIMIT]


def _close(sock):
    for closable in (sock, getattr(sock, "_response", None)):
        try:
            if closable is not None:
                closable.close()
        except Exception:   # pylint: disable=broad-except  # closing a finished stream: nothing to report
            pass


def exec_first(engine, container, candidates, timeout=10, env=None):
    """Run the first of `candidates` (argv lists) whose program the container has: images
    differ in what they ship (nc or bash, curl or wget). Returns (exit code, output, program);
    when none is there, (127, a message naming them all, None)."""
    memory = engine._cache   # pylint: disable=protected-access  # the engine's per-run memory
    for argv in candidates:
        if memory.get(("missing-program", container, argv[0])):
            continue   # this run already found the container without it
        code, out = exec_in(engine, container, argv, timeout=timeout, env=env)
        if code != EXEC_NOT_FOUND:
            return code, out, argv[0]
        memory[("missing-program", container, argv[0])] = True
    return EXEC_NOT_FOUND, "none of %s is in container %s" % (", ".join(a[0] for a in candidates), container), None


def exec_arg(value):
    """A value that is passed to a program as one argv entry: a non-empty string without
    NUL that does not start with `-`, so no program can take it for an option. Used as an
    argument-spec type for the fields of checks."""
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string, got %r" % (value,))
    if "\x00" in value or value.startswith("-"):
        raise ValueError("%r cannot be passed to a command: it starts with '-' or holds a NUL" % (value,))
    return value


def exec_path(value):
    """An absolute path inside a container, for an argument spec (see exec_arg)."""
    value = exec_arg(value)
    if not value.startswith("/"):
        raise ValueError("%r must be an absolute path inside the container" % (value,))
    return value
