# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files on the Docker host: written only when their content differs (in place, keeping the
inode that bind mounts hold), then mode and owner as asked. A file holding a secret, and each
directory on its way, is never reached through a symbolic link.

What is compared and said is the same in a real run and a dry run: every change goes through
a `HostFiles` (the gateway's `files`), whose dry-run kind, `DryRunFiles`, makes none."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import shutil
import stat

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError


def stack_home(stack):
    """The stack's own directory on the Docker host, in the home of the user the module runs
    as: TLS material and password files live under it."""
    return os.path.join(os.path.expanduser("~"), ".clockwork", stack)


def stack_secrets(stack):
    """Where the stack's password files are: written by its runs, removed by its destroy."""
    return os.path.join(stack_home(stack), "secrets")


def read_text(path):
    """A UTF-8 text file's content."""
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8")


def file_mode(mode):
    """`0644`, `644` or 0o644 -> 0o644."""
    if mode is None:
        return None
    if isinstance(mode, int):
        return mode
    try:
        return int(str(mode), 8)
    except ValueError:
        raise ClockworkError("mode %r is not an octal file mode like 0644" % (mode,))


class HostFiles(object):
    """The Docker host's files, read and changed for real."""

    # -- reads ----------------------------------------------------------------------------

    def read(self, path):
        """A file's bytes, None when it does not exist."""
        if not os.path.exists(path):
            return None
        with open(path, "rb") as handle:
            return handle.read()

    def status(self, path):
        """(permission bits, owner's uid) of a file, None when it does not exist."""
        if not os.path.exists(path):
            return None
        info = os.stat(path)
        return info.st_mode & 0o7777, info.st_uid

    def read_private(self, path):
        """read_private_file: a file that holds a secret, reached without a link."""
        return read_private_file(path)

    # -- changes --------------------------------------------------------------------------

    def directory(self, directory):
        """An open descriptor of the directory of a file holding a secret, made if missing."""
        return directory_fd(directory, create=True)

    def replace(self, path, data):
        """`data` in `path`, in place (same inode), its missing directories made."""
        parent = os.path.dirname(path)
        if parent and not os.path.isdir(parent):
            os.makedirs(parent)
        with open(path, "wb") as handle:
            handle.write(data)

    def chmod(self, path, mode):
        os.chmod(path, mode)

    def chown(self, path, uid):
        os.chown(path, uid, -1)

    def replace_secret(self, dir_fd, name, path, data, current, mode):
        """A file holding a secret: `data` at mode 0400 (`current`, `mode`: what is there now)."""
        if current != data and current is not None:
            _fchmod_at(dir_fd, name, path, 0o600)   # writable for a moment to its owner only (a non-root module)
        if current != data:
            fd = open_in(dir_fd, name, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                os.fchmod(handle.fileno(), 0o400)
        elif mode != 0o400:
            _fchmod_at(dir_fd, name, path, 0o400)

    def write_private(self, path, data, mode):
        """write_private_file: TLS material, `mode` from its creation on, never through a link."""
        write_private_file(path, data, mode)

    def remove_tree(self, path):
        shutil.rmtree(path)


class DryRunFiles(HostFiles):
    """Check mode's files: everything is read as it is, every change only said. A file it would
    write or change is then read as that change left it (its content, mode and owner), so that a
    run which writes a file, then sets its mode, says what the real run does."""

    def __init__(self):
        self._would = {}   # path -> {"data", "mode", "uid"} as the run would leave it

    def read(self, path):
        if path in self._would:
            return self._would[path]["data"]
        return HostFiles.read(self, path)

    def status(self, path):
        if path in self._would:
            return self._would[path]["mode"], self._would[path]["uid"]
        return HostFiles.status(self, path)

    def read_private(self, path):
        if path in self._would:
            read_private_file(path)   # a link on the way is refused, as the write would refuse it
            return self._would[path]["data"]
        return HostFiles.read_private(self, path)

    def _change(self, path, **changes):
        if path not in self._would:
            current = HostFiles.status(self, path)
            mode, uid = current if current else (0o666 & ~_umask(), os.geteuid())   # as a new file is made
            self._would[path] = {"data": HostFiles.read(self, path), "mode": mode, "uid": uid}
        self._would[path].update(changes)

    def directory(self, directory):
        return directory_fd(directory, create=False)   # None when missing: nothing there to read

    def replace(self, path, data):
        self._change(path, data=data)

    def chmod(self, path, mode):
        self._change(path, mode=mode)

    def chown(self, path, uid):
        self._change(path, uid=uid)

    def replace_secret(self, dir_fd, name, path, data, current, mode):
        pass

    def write_private(self, path, data, mode):
        read_private_file(path)   # a link on the way or at the file is refused, as the write refuses it
        self._would[path] = {"data": data, "mode": mode, "uid": os.geteuid()}

    def remove_tree(self, path):
        pass


def _umask():
    """The process's umask, read without changing it (os.umask would, for every thread at once)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (IOError, OSError, ValueError):
        pass
    return 0o022


def host_files_for(files):
    """`files` as a HostFiles: callers that still pass check mode's flag get the matching kind."""
    if isinstance(files, HostFiles):
        return files
    return DryRunFiles() if files else HostFiles()


def write_file(path, content, mode, owner, files, result):
    """Write `content` to a host path only when it differs; then mode and owner as asked.

    The file is rewritten in place, keeping its inode, so that containers with a
    bind mount of it see the new content."""
    files = host_files_for(files)
    data = content.encode("utf-8")
    current = files.read(path)
    if current != data:
        result.act("write %s" % path)
        result.before["content"] = None if current is None else current.decode("utf-8", "replace")
        result.after["content"] = content
        files.replace(path, data)
    set_mode_and_owner(path, mode, owner, files, result)


def set_mode_and_owner(path, mode, owner, files, result):
    files = host_files_for(files)
    status = files.status(path)   # None when missing: a dry run does not make it
    wanted_mode = file_mode(mode)
    if wanted_mode is not None and (status is None or status[0] != wanted_mode):
        result.act("chmod %o %s" % (wanted_mode, path))
        files.chmod(path, wanted_mode)
    if owner:
        import pwd  # pylint: disable=import-outside-toplevel
        try:
            uid = int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
        except KeyError:
            raise ClockworkError("owner %s is not a user on the Docker host" % owner)
        if status is None or status[1] != uid:
            result.act("chown %s %s" % (owner, path))
            files.chown(path, uid)


def write_secret_file(path, content, files, result):
    """A file holding a secret: mode 0400 from its creation on (no moment where others could
    read it), in a directory of mode 0700, rewritten in place when its content differs. Neither
    content is recorded anywhere: the action names the path only. True when it changed.

    Nothing on the way is a symbolic link: each directory is checked (lstat) and opened without
    following one, from the user's home down, the file opened with O_NOFOLLOW in it; a link
    where a directory or the file is expected is refused, naming it, and nothing is written."""
    files = host_files_for(files)
    data = content.encode("utf-8")
    directory, name = os.path.split(path)
    dir_fd = files.directory(directory)
    try:
        current, mode = _read_secret(dir_fd, name, path)
        changed = current != data
        if changed:
            result.act("write %s (mode 0400)" % path)
        elif mode != 0o400:
            result.act("chmod 400 %s" % path)
        files.replace_secret(dir_fd, name, path, data, current, mode)
        return changed
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def secret_path_problem(path):
    """What write_secret_file would refuse about `path` as the host is now (a link, something
    else than a directory or a file), without changing anything; None when nothing. For a
    pre-flight that refuses before the first change."""
    dir_fd = None
    try:
        dir_fd = directory_fd(os.path.dirname(path), create=False)
        _read_secret(dir_fd, os.path.basename(path), path)
    except ClockworkError as exc:
        return exc.msg
    except OSError:
        return None   # unreadable is the write's to report, with the engine's words
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
    return None


def read_private_file(path):
    """The bytes of a file that holds a secret (a password file, a private key), None when it or
    a directory on its way is missing; reached as write_secret_file reaches it, so a link on the
    way is refused (ClockworkError), never followed."""
    dir_fd = directory_fd(os.path.dirname(path), create=False)
    try:
        return _read_secret(dir_fd, os.path.basename(path), path)[0]
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


def write_private_file(path, data, mode):
    """Write `data` (bytes) to `path` with `mode` from its creation on, in place (same inode, so a
    bind mount of it sees the new content), its missing directories made 0700; reached as
    write_secret_file reaches it: a link on the way or at the file is refused, nothing written."""
    directory, name = os.path.split(path)
    dir_fd = directory_fd(directory, create=True)
    try:
        _regular_file(dir_fd, name, path)   # no open of a FIFO or a device, which could block
        fd = open_in(dir_fd, name, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            os.fchmod(handle.fileno(), mode)
    finally:
        os.close(dir_fd)


def secrets_to_remove(stack):
    """The stack's password-file directory when destroy may remove it (a real directory, reached
    without a link from the home down), None when there is none. A link on the way or where it
    is expected is refused (ClockworkError), so that destroy never removes through one."""
    path = stack_secrets(stack)
    dir_fd = directory_fd(os.path.dirname(path), create=False)
    if dir_fd is None:
        return None
    try:
        info = os.stat(os.path.basename(path), dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    finally:
        os.close(dir_fd)
    if stat.S_ISLNK(info.st_mode):
        raise ClockworkError("%s is a symbolic link where the stack's password-file directory is expected: destroy "
                             "never removes through a link; remove the link and run again" % path)
    return path if stat.S_ISDIR(info.st_mode) else None   # not a directory: nothing the stack wrote


def _link_refused(path, expected):
    return ClockworkError("%s is a symbolic link where %s is expected: a file holding a secret and its directories "
                          "are never written through a link; remove it and run again" % (path, expected))


def _trusted_base(path):
    """Where the checks start: the user's home for a path in it (the home itself may be a link,
    /home -> /var/home), else the root."""
    home = os.path.expanduser("~").rstrip(os.sep)
    return home if home and path.startswith(home + os.sep) else os.sep


def directory_fd(directory, create):
    """An open descriptor of `directory`, each component under the trusted base lstat-checked,
    opened with O_NOFOLLOW and, when `create`, made (0700) if missing; None when one is missing
    and not `create` (check mode)."""
    directory = os.path.abspath(directory)
    base = _trusted_base(directory)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    current = base
    try:
        for part in [p for p in os.path.relpath(directory, base).split(os.sep) if p not in ("", ".")]:
            current = os.path.join(current, part)
            try:
                info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    return None
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass   # a concurrent run made it: checked below like any other
                info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                raise _link_refused(current, "a directory")
            if not stat.S_ISDIR(info.st_mode):
                raise ClockworkError("%s is not a directory, where the directory of a file holding a secret is "
                                     "expected" % current)
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):   # replaced by a link since the lstat
                    raise _link_refused(current, "a directory")
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_in(dir_fd, name, path, flags, mode=0o400):
    """os.open of `name` in `dir_fd`, never following a link."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _link_refused(path, "a file")
        raise


def _regular_file(dir_fd, name, path):
    """True when `name` in `dir_fd` is a regular file, False when absent; a link or anything
    else is refused."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode):
        raise _link_refused(path, "a file")
    if not stat.S_ISREG(info.st_mode):
        raise ClockworkError("%s is not a regular file, where a file holding a secret is expected" % path)
    return True


def _read_secret(dir_fd, name, path):
    """(content, permission bits) of a secret file, (None, None) when absent."""
    if dir_fd is None or not _regular_file(dir_fd, name, path):
        return None, None
    with os.fdopen(open_in(dir_fd, name, path, os.O_RDONLY), "rb") as handle:
        return handle.read(), os.fstat(handle.fileno()).st_mode & 0o7777


def _fchmod_at(dir_fd, name, path, mode):
    fd = open_in(dir_fd, name, path, os.O_RDONLY)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
