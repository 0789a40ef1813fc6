# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files on the Docker host: written only when their content differs (in place, keeping the
inode that bind mounts hold), then mode and owner as asked."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

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


def write_file(path, content, mode, owner, check_mode, result):
    """Write `content` to a host path only when it differs; then mode and owner as asked.

    The file is rewritten in place, keeping its inode, so that containers with a
    bind mount of it see the new content."""
    data = content.encode("utf-8")
    current = None
    if os.path.exists(path):
        with open(path, "rb") as handle:
            current = handle.read()
    if current != data:
        result.act("write %s" % path)
        result.before["content"] = None if current is None else current.decode("utf-8", "replace")
        result.after["content"] = content
        if not check_mode:
            parent = os.path.dirname(path)
            if parent and not os.path.isdir(parent):
                os.makedirs(parent)
            with open(path, "wb") as handle:
                handle.write(data)
    set_mode_and_owner(path, mode, owner, check_mode, result)


def set_mode_and_owner(path, mode, owner, check_mode, result):
    exists = os.path.exists(path)
    wanted_mode = file_mode(mode)
    if wanted_mode is not None and (not exists or (os.stat(path).st_mode & 0o7777) != wanted_mode):
        result.act("chmod %o %s" % (wanted_mode, path))
        if not check_mode:
            os.chmod(path, wanted_mode)
    if owner:
        import pwd  # pylint: disable=import-outside-toplevel
        try:
            uid = int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
        except KeyError:
            raise ClockworkError("owner %s is not a user on the Docker host" % owner)
        if not exists or os.stat(path).st_uid != uid:
            result.act("chown %s %s" % (owner, path))
            if not check_mode:
                os.chown(path, uid, -1)


def write_secret_file(path, content, check_mode, result):
    """A file holding a secret: mode 0400 from its creation on (no moment where others could
    read it), in a directory of mode 0700, rewritten in place when its content differs. Neither
    content is recorded anywhere: the action names the path only. True when it changed."""
    data = content.encode("utf-8")
    current = None
    if os.path.exists(path):
        with open(path, "rb") as handle:
            current = handle.read()
    changed = current != data
    if changed:
        result.act("write %s (mode 0400)" % path)
    elif os.stat(path).st_mode & 0o7777 != 0o400:
        result.act("chmod 400 %s" % path)
    if check_mode:
        return changed
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o700)
    if changed:
        if current is not None:
            os.chmod(path, 0o600)   # writable for a moment to its owner only (a non-root module)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400), "wb") as handle:
            handle.write(data)
    os.chmod(path, 0o400)
    return changed
