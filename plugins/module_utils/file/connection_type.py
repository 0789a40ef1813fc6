# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""FileConnection: a file or directory of the Docker host bind-mounted into `from`
(written first when the connection carries its content), or a named volume mounted
into `from` and, when `to` is a container, into `to` at the same path.

Volumes are created here but never recreated or removed: they hold data."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os
import posixpath
import uuid

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, docker_name_problem
from ansible_collections.clockwork.connections.plugins.module_utils.connection import (
    ConnectionType, required_field)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import ensure_mounted
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import exec_arg, exec_in, exec_path
from ansible_collections.clockwork.connections.plugins.module_utils.apply.volumes import ensure_volume
from ansible_collections.clockwork.connections.plugins.module_utils.file.completion import COMPLETION
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import file_mode, read_text, set_mode_and_owner, write_file

FILE_ARGS = dict(
    mount_path=dict(type="str"),
    source_path=dict(type="path"),
    content=dict(type="str"),
    mode=dict(type="raw"),
    owner=dict(type="str"),
    volume_name=dict(type="str"),
    read_only=dict(type="bool", default=False),
    create_volume=dict(type="bool", default=True),
    volume_driver=dict(type="str", default="local"),
)


def validate(params):
    problems = []
    mount_path = params.get("mount_path")
    if not mount_path:
        problems.append(("mount_path", "is required (or a description to complete it from)"))
    elif not posixpath.isabs(mount_path):
        problems.append(("mount_path", "%s must be an absolute path inside the container" % mount_path))
    elif posixpath.normpath(mount_path) != mount_path.rstrip("/") or "//" in mount_path:
        problems.append(("mount_path", "%s is not in normal form (%s)" % (mount_path, posixpath.normpath(mount_path))))
    if params.get("volume_name") and params.get("source_path"):
        problems.append(("volume_name", "give volume_name (a volume) or source_path (a host file), not both"))
    elif not params.get("volume_name") and not params.get("source_path"):
        problems.append(("source_path", "give volume_name (a volume) or source_path (a host file or directory)"))
    if params.get("volume_name") and docker_name_problem(params["volume_name"]):
        problems.append(("volume_name", docker_name_problem(params["volume_name"])))
    try:
        file_mode(params.get("mode"))
    except ClockworkError as exc:
        problems.append(("mode", exc.msg))
    return problems


def adopt(params, to_resource):
    """A connection to a file or volume resource takes its path, content or volume from it."""
    params = dict(params, to_kind=to_resource.get("type") or "container")
    if to_resource.get("type") == "file":
        params.update(source_path=to_resource["path"], content=to_resource.get("content"),
                      mode=to_resource.get("mode"), owner=to_resource.get("owner"))
    elif to_resource.get("type") == "volume" and not params.get("volume_name"):
        params["volume_name"] = to_resource.get("volume_name") or to_resource["name"]
    return params


def shares_volume_with_to(params):
    """A volume connection to a container mounts the volume into both."""
    return bool(params.get("volume_name")) and (params.get("to_kind") or "container") == "container"


def prepare(ctx, params, result):
    """The volume, or the host file with its content, mode and owner, before any mount of it."""
    if params.get("volume_name"):
        ensure_volume(ctx, params["volume_name"], params.get("volume_driver") or "local",
                      params.get("create_volume", True), result)
    elif params.get("source_path") and ctx.first_time(("file", params["source_path"])):
        source = params["source_path"]
        if params.get("content") is not None:
            write_file(source, params["content"], params.get("mode"), params.get("owner"), ctx.engine.files, result)
        elif os.path.exists(source):
            set_mode_and_owner(source, params.get("mode"), params.get("owner"), ctx.engine.files, result)


def volumes(params):
    """(name, driver, create) of the named volume the connection mounts."""
    if not params.get("volume_name"):
        return []
    return [(params["volume_name"], params.get("volume_driver") or "local", params.get("create_volume", True))]


def written_files(params, _stack):
    """The host file the run writes before anything mounts it, with its content."""
    if params.get("source_path") and params.get("content") is not None:
        return {params["source_path"]: params["content"]}
    return {}


def preflight(engine, _plan, params, _images, written):
    """A bind source the run does not write must exist; a volume it may not create must too."""
    problems = []
    source = params.get("source_path")
    if source and params.get("content") is None and source not in written and not os.path.exists(source):
        problems.append(("source_path", "%s does not exist on the Docker host" % source))
    for name, _driver, create in volumes(params):
        if not create and engine.volume(name) is None:
            problems.append(("volume_name", "volume %s does not exist and create_volume is false" % name))
    return problems


def claimed_mounts(params, to_is_container):
    if not params.get("mount_path"):
        return []
    source = params.get("volume_name") or params.get("source_path")
    ends = ("from", "to") if not params.get("source_path") and to_is_container else ("from",)
    return [(end, params["mount_path"], source) for end in ends]


def ship_files(params, find, local):
    """A relative source_path found on the controller is bind-mounted from where it is when the
    Docker host is this machine; for a remote one its content is shipped and written there,
    under the stack's base_dir. An absolute source_path is a path on the Docker host."""
    path = params.get("source_path")
    if not path or os.path.isabs(os.path.expanduser(path)):
        return params
    resolved = find(path)
    if local:
        params["source_path"] = resolved
    elif os.path.isfile(resolved) and params.get("content") is None:
        params["content"] = read_text(resolved)
    return params


def to_contribution(params, _stack):
    if not shares_volume_with_to(params):
        return {"mounts": [], "networks": []}
    return {"mounts": [{"type": "volume", "source": params["volume_name"], "target": params["mount_path"],
                        "read_only": False}], "networks": []}


def converge(ctx, params, result):
    from_name, to_name = params["from_resource"], params["to_resource"]
    mount_path = required_field(params, "mount_path", result.name)
    problems = validate(params)
    if problems:
        raise ClockworkError("%s: %s" % (result.name, "; ".join("%s: %s" % p for p in problems)))
    read_only = bool(params.get("read_only"))
    check = {"connection": result.name, "container": from_name, "path": mount_path, "read_only": read_only}

    if params.get("volume_name"):
        volume = params["volume_name"]
        mount = {"type": "volume", "source": volume, "target": mount_path, "read_only": read_only}
        to = ctx.endpoint(to_name)
        if to.exists or to.spec is not None:
            params = dict(params, to_kind="container")
        if shares_volume_with_to(params) and (to.exists or to.spec is not None):
            # `to` is a container: it shares the volume, read-write, at the same path.
            ctx.require_to(to_name, result.name)
            if not ctx.in_stack:
                ensure_mounted(ctx, to, to_contribution(params, ctx.stack)["mounts"], result)
            check.update(kind="shared_volume", peer=to_name)
        else:
            check.update(kind="file", directory=True)
        result.extra["file"] = {"kind": "volume", "source": volume, "mount_path": mount_path}
    else:
        source = params["source_path"]
        if params.get("content") is not None:
            check["sha256"] = hashlib.sha256(params["content"].encode("utf-8")).hexdigest()
        elif not os.path.exists(source):
            raise ClockworkError("%s: source_path %s does not exist on the Docker host" % (result.name, source))
        mount = {"type": "bind", "source": source, "target": mount_path, "read_only": read_only}
        check.update(kind="file", directory=os.path.isdir(source))
        result.extra["file"] = {"kind": "bind", "source": source, "mount_path": mount_path}
    result.contribution.mounts.append(mount)
    result.contribution.checks.append(check)


# -- checks, run inside the containers ------------------------------------------

def check_file(engine, check):
    """Readable with the expected content, and read-only when asked: one exec when the
    content is known (sha256sum reads the file, so it fails on a missing or unreadable one),
    the mount's own read-only flag from the inspect."""
    path, container = check["path"], check["container"]
    if check.get("sha256") and not check.get("directory"):
        # `path` is absolute, so no program can take it for an option.
        code, out = exec_in(engine, container, ["sha256sum", path])
        if code != 0:
            return False, "%s is not readable in %s %s" % (path, container, out)
        if out.split()[0] != check["sha256"]:
            return False, "%s in %s does not have the expected content (%s)" % (path, container, out)
    else:
        # -e, not -f: a bind may be a socket or a device (an allowed Docker socket), readable all the same.
        code, out = exec_in(engine, container, ["test", "-d" if check.get("directory") else "-e", path, "-a", "-r", path])
        if code != 0:
            return False, "%s is not readable in %s %s" % (path, container, out)
    if check.get("read_only") and _writable(engine, container, path):
        return False, "%s is writable in %s, but the mount should be read-only" % (path, container)
    details = (" with the expected content" if check.get("sha256") else "") + (
        ", read-only" if check.get("read_only") else "")
    return True, "%s is readable in %s%s" % (path, container, details)


def _writable(engine, container, path):
    """Whether the mount that holds `path` in the container is writable: the engine says so
    for the mount itself; a path outside every mount is asked in the container (access(W_OK)
    answers EROFS on a read-only file system, even for root; nothing is written)."""
    mounts = ((engine.container(container) or {}).get("Mounts") or [])
    holding = [m for m in mounts if m.get("Destination") and
               (path == m["Destination"] or path.startswith(m["Destination"].rstrip("/") + "/"))]
    if holding:
        return bool(max(holding, key=lambda m: len(m["Destination"])).get("RW"))
    code, _out = exec_in(engine, container, ["test", "-w", path])
    return code == 0


def sha256_hex(value):
    if not isinstance(value, str) or len(value) != 64 or set(value) - set("0123456789abcdef"):
        raise ValueError("%r is not a sha256 in lower-case hex" % (value,))
    return value


check_file.fields = dict(container=dict(type=exec_arg, required=True), path=dict(type=exec_path, required=True),
                         directory=dict(type="bool", default=False), read_only=dict(type="bool", default=False),
                         sha256=dict(type=sha256_hex))


def check_shared_volume(engine, check):
    """A probe file of a random name created in `from` is seen in the peer: the peer removes
    it, which it can only do when it sees it. A peer that may not remove it (a read-only
    mount, another user) looks for it instead, and `from` removes it."""
    probe = posixpath.join(check["path"], ".clockwork-probe-%s" % uuid.uuid4().hex)
    writer, reader = check["container"], check["peer"]
    code, out = exec_in(engine, writer, ["touch", probe])
    if code != 0:
        return False, "cannot write in %s at %s: %s" % (writer, check["path"], out)
    code, out = exec_in(engine, reader, ["rm", probe])
    if code != 0 and "no such file" not in out.lower():
        try:
            code, out = exec_in(engine, reader, ["test", "-f", probe])
        finally:
            exec_in(engine, writer, ["rm", "-f", probe])
    elif code != 0:
        exec_in(engine, writer, ["rm", "-f", probe])
    if code != 0:
        return False, "a file written in %s at %s is not seen by %s%s" % (
            writer, check["path"], reader, ": %s" % out if out else "")
    return True, "a file written in %s at %s is read back in %s" % (writer, check["path"], reader)


check_shared_volume.fields = dict(container=dict(type=exec_arg, required=True), path=dict(type=exec_path, required=True),
                                  peer=dict(type=exec_arg, required=True), read_only=dict(type="bool", default=False))


TYPE = ConnectionType(
    "file", FILE_ARGS, converge,
    checks={"file": check_file, "shared_volume": check_shared_volume},
    injected_env=lambda params, to_name: [],
    validate=validate,
    completable=("mount_path", "volume_name"),
    prepare=prepare,
    to_contribution=to_contribution,
    to_kinds=("container", "file", "volume"),
    controller_files=("source_path",),
    adopt=adopt,
    diagram_details=lambda params: [p for p in (params.get("volume_name"), params.get("mount_path")) if p],
    mount_targets=lambda params: [params.get("mount_path")],
    volumes=volumes,
    written_files=written_files,
    preflight=preflight,
    claimed_mounts=claimed_mounts,
    ship_files=ship_files,
    completion=COMPLETION,
)
