# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container resource's build context, read on the controller (the only place it exists) into
the tar stream the Engine API's POST /build takes, with a content hash that says whether the
image must be built again.

The context is foreign input, read as data: `.dockerignore` is honoured as the Docker CLI reads
it (the Dockerfile and `.dockerignore` are always sent); nothing outside the context directory is
ever read (the walk holds directory descriptors and opens every file with O_NOFOLLOW: a symbolic
link is sent as a link, never followed, and a Dockerfile outside the context is refused); FIFOs,
sockets and devices are left out unread; the bytes read are bounded (MAX_CONTEXT_BYTES, and
MAX_CONTEXT_ENTRIES entries), each limit an error naming the resource and field.

The files a stack writes itself beside its playbook or compose file (its diagram `<stack>.stack.md`, the
lock file clockwork.lock.yml: OWN_FILES, and the paths the action names) are never part of a context: a
`build: .` there would otherwise change with every run that writes them, and rebuild.

The hash covers each sent entry's name, kind, permission bits, and bytes or link target, the
Dockerfile's path, the build args, the target and the labels; not times or owners (a checkout
anew is the same context). Entries are hashed in the order of their names, so it is the same
wherever and however often the context is read.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import os
import posixpath
import re
import stat
import tarfile
import tempfile

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, Problems

# What a stack writes beside its playbook (the diagram, diagram_path's default, and the lock file), as
# .dockerignore patterns: left out of every context, wherever in it they are.
OWN_FILES = ("**/*.stack.md", "**/clockwork.lock.yml")
MAX_CONTEXT_BYTES = 256 * 1024 * 1024
MAX_CONTEXT_ENTRIES = 50000
IGNORE_FILE = ".dockerignore"
_CHUNK = 1024 * 1024


class BuildContextError(ClockworkError):
    """A build context that cannot be sent: the message names the resource and field."""


# -- .dockerignore, as moby/patternmatcher reads and matches it ------------------------------

def ignore_patterns(text):
    """The patterns of a .dockerignore's text: comments and blank lines dropped, each pattern
    cleaned (no leading `/`, `.` and `..` resolved), an exception keeping its `!`."""
    patterns = []
    for line in text.splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern.lstrip("/")
        patterns.append(("!" if invert else "") + pattern)
    return patterns


def _pattern_regex(pattern):
    """A pattern as a regex over a slash-separated path: `*` and `?` stay inside one name, `**`
    spans names, `[...]` is a class, `\\` escapes."""
    out, index = ["^"], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            if pattern[index + 1:index + 2] == "*":
                index += 1
                if pattern[index + 1:index + 2] == "/":
                    index += 1
                out.append(".*" if index + 1 >= len(pattern) else "(?:.*/)?")
            else:
                out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1:end]
                out.append("[" + ("^" + body[1:] if body.startswith("^") else body).replace("\\", "\\\\") + "]")
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    out.append("$")
    return re.compile("".join(out), re.DOTALL)


class IgnoreMatcher(object):
    """Whether a path of the context is excluded: the last pattern that matches it, or one of its
    parent directories, decides (an exception `!` includes again)."""

    def __init__(self, patterns):
        self.rules = []
        for pattern in patterns:
            exclusion = pattern.startswith("!")
            body = pattern[1:] if exclusion else pattern
            try:
                self.rules.append((exclusion, _pattern_regex(body)))
            except re.error:
                raise ValueError("%r is not a valid pattern" % pattern)
        self.has_exceptions = any(rule[0] for rule in self.rules)

    def excluded(self, path):
        parts = path.split("/")
        parents = ["/".join(parts[:i + 1]) for i in range(len(parts) - 1)]
        matched = False
        for exclusion, regex in self.rules:
            if exclusion != matched:
                continue
            if regex.match(path) or any(regex.match(parent) for parent in parents):
                matched = not exclusion
        return matched


# -- reading the context ---------------------------------------------------------------------

class BuildContext(object):
    """A context read: `archive` (the tar's path on the controller), `content_hash`, `size`
    (the bytes of the files sent) and `entries` (their number)."""

    def __init__(self, archive, content_hash, size, entries):
        self.archive, self.content_hash, self.size, self.entries = archive, content_hash, size, entries


def dockerfile_in_context(dockerfile, where):
    """The Dockerfile's path relative to the context, slash-separated; refused when it leaves it."""
    dockerfile = str(dockerfile or "Dockerfile").replace(os.sep, "/")
    relative = posixpath.normpath(dockerfile.lstrip("/")) if not dockerfile.startswith("/") else None
    if relative is None or relative == "." or relative == ".." or relative.startswith("../") or "\x00" in dockerfile:
        raise BuildContextError("%s: build.dockerfile: %r is not a file inside the build context (a path relative to "
                                "the context, without .. leading out of it)" % (where, dockerfile))
    return relative


def content_hash(manifest, dockerfile, args=None, target=None, labels=None):
    """The hash of a context's entries (name -> (kind, mode, digest or link target)) and the
    build's settings: the same for the same content, whatever order it was read in."""
    digest = hashlib.sha256()
    for name in sorted(manifest):
        digest.update(json.dumps([name] + list(manifest[name])).encode("utf-8") + b"\n")
    build_args = dict((str(k), None if v is None else str(v)) for k, v in (args or {}).items())
    settings = {"dockerfile": dockerfile, "args": build_args, "target": target or "",
                "labels": dict((str(k), str(v)) for k, v in (labels or {}).items())}
    digest.update(json.dumps(settings, sort_keys=True).encode("utf-8"))
    return "sha256:" + digest.hexdigest()


class _Reader(object):
    """A file's bytes for the tar, hashed on the way, never more than `size` of them."""

    def __init__(self, fd, size):
        self.fd, self.left = fd, size
        self.digest = hashlib.sha256()

    def read(self, count=-1):
        count = self.left if count is None or count < 0 else min(count, self.left)
        data = os.read(self.fd, min(count, _CHUNK)) if count else b""
        self.left -= len(data)
        self.digest.update(data)
        return data


def read_context(context, dockerfile="Dockerfile", args=None, target=None, labels=None, where="build",
                 directory=None, max_bytes=MAX_CONTEXT_BYTES, max_entries=MAX_CONTEXT_ENTRIES, exclude=()):
    """Read the directory `context` into a tar in `directory` (a new temporary one when None).
    `where` names the resource in errors ("resource web"); `exclude`: patterns left out whatever
    .dockerignore says (the stack's own files). Returns a BuildContext."""
    relative_dockerfile = dockerfile_in_context(dockerfile, where)
    context = os.path.realpath(context)   # the directory the user named; nothing below it is followed
    try:
        top = os.open(context, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BuildContextError("%s: build.context: %s is not a directory that can be read: %s" % (
            where, context, exc.strerror or exc))
    try:
        matcher = IgnoreMatcher(ignore_patterns(_small_file(top, IGNORE_FILE, where)) + list(exclude) +
                                ["!" + relative_dockerfile, "!" + IGNORE_FILE])
    except ValueError as exc:
        raise BuildContextError("%s: build.context: %s in %s: %s" % (where, IGNORE_FILE, context, exc))
    finally:
        os.close(top)
    _check_dockerfile(context, relative_dockerfile, where)
    handle, archive = tempfile.mkstemp(prefix="clockwork-build-", suffix=".tar", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            manifest, size = _write_tar(out, context, matcher, where, max_bytes, max_entries)
    except BaseException:
        os.unlink(archive)
        raise
    return BuildContext(archive, content_hash(manifest, relative_dockerfile, args, target, labels), size, len(manifest))


def _small_file(dir_fd, name, where, limit=1024 * 1024):
    """The text of a small regular file in a directory (its .dockerignore); "" when there is none."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return ""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return ""
        if info.st_size > limit:
            raise BuildContextError("%s: build.context: its %s is over %d bytes" % (where, name, limit))
        return os.read(fd, limit).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _check_dockerfile(context, relative, where):
    """The Dockerfile is a regular file of the context, reached through no link."""
    fd = os.open(context, os.O_RDONLY | os.O_DIRECTORY)
    try:
        parts = relative.split("/")
        for part in parts[:-1]:
            try:
                fd_next = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                fd_next = None
            os.close(fd)
            fd = fd_next
            if fd is None:
                break
        info = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False) if fd is not None else None
    except OSError:
        info = None
    finally:
        if fd is not None:
            os.close(fd)
    if info is None or not stat.S_ISREG(info.st_mode):
        raise BuildContextError("%s: build.dockerfile: %s is not a regular file in the build context %s%s" % (
            where, relative, context, " (a symbolic link is not followed)" if info is not None and
            stat.S_ISLNK(info.st_mode) else ""))


def _write_tar(out, context, matcher, where, max_bytes, max_entries):
    """Every entry of the context not excluded, into the tar `out`: (manifest, bytes of files)."""
    manifest, size = {}, 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames, dir_fd in os.fwalk(context, follow_symlinks=False):
            base = os.path.relpath(dirpath, context).replace(os.sep, "/")
            base = "" if base == "." else base + "/"
            dirnames.sort()
            descend = []
            for name in sorted(dirnames + filenames):
                path = base + name
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                is_dir = stat.S_ISDIR(info.st_mode)
                if matcher.excluded(path):
                    if is_dir and matcher.has_exceptions:
                        descend.append(name)   # an exception may include something inside
                    continue
                if is_dir:
                    descend.append(name)
                if len(manifest) >= max_entries:
                    raise BuildContextError("%s: build.context: %s holds more than %d entries (after %s); "
                                            "exclude what the build does not need" % (
                                                where, context, max_entries, IGNORE_FILE))
                entry = _tar_entry(tar, dir_fd, name, path, info, (max_bytes, size), where, context)
                if entry is not None:
                    manifest[path] = entry[0]
                    size += entry[1]
            dirnames[:] = [d for d in dirnames if d in descend]
    return manifest, size


def _tar_entry(tar, dir_fd, name, path, info, budget, where, context):
    """One entry into the tar: ((kind, mode, digest or target), bytes) or None (left out).
    `budget`: (the bytes allowed, the bytes sent so far)."""
    limit, room = budget[0], budget[0] - budget[1]
    mode = stat.S_IMODE(info.st_mode)
    member = tarfile.TarInfo(path)
    member.mode, member.mtime, member.uid, member.gid = mode, int(info.st_mtime), 0, 0
    if stat.S_ISDIR(info.st_mode):
        member.type = tarfile.DIRTYPE
        tar.addfile(member)
        return ("dir", mode, ""), 0
    if stat.S_ISLNK(info.st_mode):
        member.type, member.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
        tar.addfile(member)
        return ("link", mode, member.linkname), 0
    if not stat.S_ISREG(info.st_mode):
        return None   # a FIFO, socket or device: nothing a build can copy, and reading one could block
    if info.st_size > room:
        raise _too_big(where, context, path, limit)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), dir_fd=dir_fd)
    except OSError as exc:
        raise BuildContextError("%s: build.context: %s in %s cannot be read: %s" % (
            where, path, context, exc.strerror or exc))
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            return None   # replaced meanwhile by something that is no file
        if opened.st_size > room:
            raise _too_big(where, context, path, limit)
        member.size = opened.st_size
        reader = _Reader(fd, opened.st_size)
        tar.addfile(member, reader)
    except OSError as exc:
        raise BuildContextError("%s: build.context: %s in %s cannot be read: %s" % (
            where, path, context, getattr(exc, "strerror", None) or exc))
    finally:
        os.close(fd)
    return ("file", mode, reader.digest.hexdigest()), member.size


def _too_big(where, context, path, limit):
    return BuildContextError("%s: build.context: %s holds more than %s (at %s, after %s); exclude what the build "
                             "does not need" % (where, context, _amount(limit), path, IGNORE_FILE))


def _amount(size):
    return "%d MiB" % (size // (1024 * 1024)) if size >= 1024 * 1024 else "%d bytes" % size


# -- what the stack action calls -------------------------------------------------------------

def own_patterns(context, own_files=()):
    """The patterns that leave the stack's own files out of the context directory `context`: OWN_FILES,
    and each of `own_files` (absolute paths: the action's diagram_path and lock file) inside it."""
    patterns = list(OWN_FILES)
    context = os.path.realpath(context)
    for path in own_files or ():
        if not path or not os.path.isabs(path):
            continue
        relative = os.path.relpath(os.path.realpath(path), context)
        if relative not in (".", "..") and not relative.startswith(".." + os.sep):
            pattern = re.sub(r"([*?\[\\])", r"\\\1", relative.replace(os.sep, "/"))
            if pattern not in patterns:
                patterns.append(pattern)
    return patterns


def ship_builds(resources, find, transfer, heading="the build contexts cannot be read", own_files=()):
    """`resources` (copies) with every container's build context read here, on the controller:
    its `build` gets `archive`, the path the module reads the tar from (`transfer(local tar path)`
    returns it: the remote tmp dir's copy, see action_transfer), and `content_hash`. `find(path)`
    resolves a relative context like Ansible's `src` (the playbook's files/, then its directory).
    A value the user gave for either is dropped: they are the controller's. A `build` that is no
    mapping, or has no context, is left to the plan to report. Every unreadable context is
    reported at once; the local tars are removed before this returns. `own_files`: the files the stack
    writes (its diagram_path, its lock_file), left out of a context they are in (own_patterns)."""
    if not isinstance(resources, list) or not any(isinstance(r, dict) and r.get("build") for r in resources):
        return resources   # nothing to read (or no list: the argument spec says so)
    problems = Problems()
    shipped = []
    with tempfile.TemporaryDirectory(prefix="clockwork-build-") as work:
        for resource in resources:
            build = resource.get("build") if isinstance(resource, dict) else None
            if isinstance(build, str):
                build = {"context": build}   # Compose's short form: the context alone
            if not isinstance(build, dict):
                shipped.append(resource)
                continue
            build = dict((k, v) for k, v in build.items() if k not in ("archive", "content_hash"))
            resource = dict(resource, build=build)
            shipped.append(resource)
            if not isinstance(build.get("context"), str) or not build["context"]:
                continue
            where = "resource %s" % resource.get("name")
            try:
                context = find(os.path.expanduser(build["context"]))
                read = read_context(context, build.get("dockerfile") or "Dockerfile", build.get("args"),
                                    build.get("target"), build.get("labels"), where=where, directory=work,
                                    exclude=own_patterns(context, own_files))
                build["archive"], build["content_hash"] = transfer(read.archive), read.content_hash
            except BuildContextError as exc:
                problems.add(None, exc.msg)
    if problems.items:
        try:
            problems.raise_if_any(heading)
        except ClockworkError as exc:
            raise BuildContextError(exc.msg, **exc.details)
    return shipped


def action_transfer(action):
    """`transfer` for ship_builds in an action plugin: the tar put into the task's remote tmp dir
    (made if need be; removed with it when the task ends) with the connection's put_file, readable
    by the become user; on the local connection that is a directory of this machine, so an
    in-process run reads it there too."""
    def transfer(local_path):
        # pylint: disable=protected-access  # ActionBase's own helpers, as its file-transferring actions use them
        tmpdir = action._connection._shell.tmpdir or action._make_tmp_path()
        remote = action._connection._shell.join_path(tmpdir, os.path.basename(local_path))
        action._transfer_file(local_path, remote)
        action._fixup_perms2((tmpdir, remote))
        return remote
    return transfer
