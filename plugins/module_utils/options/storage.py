# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage options: mounts (bind, named volume, anonymous volume, tmpfs), tmpfs paths, the size
of /dev/shm."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.options.table import (
    HOST, Option, checked, size_bytes)

# The name the engine gives an anonymous volume.
ANONYMOUS_VOLUME = re.compile(r"^[0-9a-f]{64}$")
PROPAGATIONS = ["private", "rprivate", "shared", "rshared", "slave", "rslave"]
# What the engine gives a container that asks for no shm_size (67108864 bytes).
DEFAULT_SHM_SIZE = 64 * 1024 ** 2


def normalise_mount(mount, base_dir=None):
    """A mount in normal form: type, source ("" for an anonymous volume or a tmpfs), target,
    read_only, and only when set: propagation (bind), nocopy (volume), tmpfs_size, tmpfs_mode."""
    kind = mount.get("type") or "volume"
    source = mount.get("source") or ""
    if kind == "bind" and not source:
        raise ClockworkError("a bind mount at %s needs a source (a path on the Docker host)" % mount.get("target"))
    if kind == "tmpfs" and source:
        raise ClockworkError("a tmpfs mount at %s takes no source" % mount.get("target"))
    if kind == "bind" and not os.path.isabs(source):
        source = os.path.normpath(os.path.join(base_dir or os.getcwd(), source))
    normal = {"type": kind, "source": source, "target": mount["target"],
              "read_only": bool(mount.get("read_only", False))}
    extras = {"propagation": "bind", "nocopy": "volume", "tmpfs_size": "tmpfs", "tmpfs_mode": "tmpfs"}
    for key, only in sorted(extras.items()):
        if mount.get(key) in (None, False):
            continue
        if kind != only:
            raise ClockworkError("%s is for a %s mount, and the mount at %s is a %s mount" % (
                key, only, mount["target"], kind))
        normal[key] = size_bytes(mount[key]) if key == "tmpfs_size" else mount[key]
    if normal.get("tmpfs_mode") is not None:
        mode = normal["tmpfs_mode"]
        try:
            normal["tmpfs_mode"] = int(mode, 8) if isinstance(mode, str) else int(mode)
        except (TypeError, ValueError):
            raise ClockworkError("tmpfs_mode %r of the mount at %s is not a file mode (like 1777)" % (mode, mount["target"]))
    return normal


def _mounts(value, ctx):
    try:
        mounts = [normalise_mount(m, ctx.base_dir) for m in value or []]
    except ClockworkError as exc:
        raise ClockworkError("container %s: mounts: %s" % (ctx.name, exc.msg))
    targets = [m["target"] for m in mounts]
    if len(set(targets)) != len(targets):
        raise ClockworkError("container %s mounts the same target twice" % ctx.name)
    return mounts


def mount_body(mount, source=None):
    """A mount as the create call's HostConfig.Mounts takes it; `source`: an anonymous volume's
    name when a recreate gives the new container the old one's."""
    made = {"Target": mount["target"], "Source": source or mount["source"], "Type": mount["type"],
            "ReadOnly": mount["read_only"]}
    if not made["Source"]:
        del made["Source"]
    if mount.get("propagation"):
        made["BindOptions"] = {"Propagation": mount["propagation"]}
    if mount.get("nocopy"):
        made["VolumeOptions"] = {"NoCopy": True}
    tmpfs = dict((api, mount[key]) for key, api in (("tmpfs_size", "SizeBytes"), ("tmpfs_mode", "Mode"))
                 if mount.get(key) is not None)
    if tmpfs:
        made["TmpfsOptions"] = tmpfs
    return made


def read_mount(made):
    """One of HostConfig.Mounts in normal form (the engine's name of an anonymous volume read as none)."""
    kind = made.get("Type", "volume")
    source = made.get("Source") or ""
    if kind == "volume" and ANONYMOUS_VOLUME.match(source):
        source = ""
    normal = {"type": kind, "source": source, "target": made.get("Target"), "read_only": bool(made.get("ReadOnly", False))}
    if (made.get("BindOptions") or {}).get("Propagation"):
        normal["propagation"] = made["BindOptions"]["Propagation"]
    if (made.get("VolumeOptions") or {}).get("NoCopy"):
        normal["nocopy"] = True
    for key, api in (("tmpfs_size", "SizeBytes"), ("tmpfs_mode", "Mode")):
        if (made.get("TmpfsOptions") or {}).get(api) is not None:
            normal[key] = made["TmpfsOptions"][api]
    return normal


def _read_mounts(attrs):
    mounts = [read_mount(m) for m in (attrs.get("HostConfig") or {}).get("Mounts") or []]
    return sorted(mounts, key=lambda m: m["target"])


# -- tmpfs, shm_size ----------------------------------------------------------------------------------

def _tmpfs(value, ctx):
    paths = [value] if isinstance(value, str) else list(value or [])
    normal = {}
    for entry in paths:
        path, _sep, options = str(entry).partition(":")
        if not path.startswith("/"):
            raise ClockworkError("container %s: tmpfs: %s is not an absolute path inside the container"
                                 % (ctx.name, path))
        normal[path] = options
    return sorted("%s:%s" % (p, o) if o else p for p, o in normal.items())


def tmpfs_mount(entry):
    """One entry of the tmpfs option's normal form (`/path` or `/path:options`) as a tmpfs mount in
    normal form, as a Swarm service has it: its tmpfs mounts take a size, a mode and read-only only
    (API 1.41); ClockworkError naming another option."""
    path, _sep, options = entry.partition(":")
    mount = {"type": "tmpfs", "source": "", "target": path, "read_only": False}
    for option in [o.strip() for o in options.split(",") if o.strip()]:
        key, sep, value = option.partition("=")
        if key == "size" and sep:
            mount["tmpfs_size"] = size_bytes(value)
        elif key == "mode" and sep:
            try:
                mount["tmpfs_mode"] = int(value, 8)
            except ValueError:
                raise ClockworkError("%s: mode=%s is not a file mode (like 1777)" % (path, value))
        elif option in ("ro", "rw"):
            mount["read_only"] = option == "ro"
        else:
            raise ClockworkError("%s: a service's tmpfs mount takes size, mode and ro only, not %s" % (path, option))
    return mount


def _read_tmpfs(attrs):
    tmpfs = (attrs.get("HostConfig") or {}).get("Tmpfs") or {}
    return sorted("%s:%s" % (p, o) if o else p for p, o in tmpfs.items())


def _tmpfs_body(value, body):
    if value:
        body.host["tmpfs"] = dict((entry.partition(":")[0], entry.partition(":")[2]) for entry in value)


def _shm_size(value, ctx):
    if value is None:
        return None
    size = checked(BY_NAME["shm_size"], ctx, size_bytes, value)
    return None if size == DEFAULT_SHM_SIZE else size


def _read_shm_size(attrs):
    size = (attrs.get("HostConfig") or {}).get("ShmSize")
    return None if not size or size == DEFAULT_SHM_SIZE else size


def _shm_body(value, body):
    if value:
        body.host["shm_size"] = value


OPTIONS = [
    Option("mounts", dict(type="list", elements="dict", default=[], options=dict(
        type=dict(type="str", choices=["bind", "volume", "tmpfs"], default="volume"),
        source=dict(type="str"),
        target=dict(type="str", required=True),
        read_only=dict(type="bool", default=False),
        propagation=dict(type="str", choices=PROPAGATIONS),
        nocopy=dict(type="bool"),
        tmpfs_size=dict(type="raw"),
        tmpfs_mode=dict(type="raw"),
    )), "Bind mounts, named volumes, anonymous volumes and tmpfs mounts.", where=HOST, optional=False,
        normal=_mounts, wanted=lambda value, _image, _spec: sorted(value, key=lambda m: m["target"]),
        body=lambda value, body: body.host.update(mounts=[mount_body(m) for m in value]), read=_read_mounts,
        compose=("volumes",), swarm="ContainerSpec.Mounts", grant="host_paths", subdocs=dict(
            type="C(bind) for a host path, C(volume) for a named or anonymous volume, C(tmpfs) for a tmpfs.",
            source="Host path (relative paths resolve against the current directory) or volume name; none for an "
                   "anonymous volume or a tmpfs.",
            target="Absolute path inside the container.",
            read_only="Mount read-only.",
            propagation="A bind mount's propagation.",
            nocopy="A volume mount: do not copy the image's files at the target into a new volume.",
            tmpfs_size="A tmpfs mount's size, like C(64m) (bytes when a number).",
            tmpfs_mode="A tmpfs mount's file mode, like C(1777) (octal as a string) or 1023."),
        details=("A volume mount without a source is an anonymous volume (Compose's C(- /path)): a recreate gives the "
                 "new container the old one's.",
                 "O(mounts[].propagation) is a bind mount's (Compose's C(bind.propagation)), O(mounts[].nocopy) a "
                 "volume's (C(volume.nocopy)), O(mounts[].tmpfs_size) and O(mounts[].tmpfs_mode) a tmpfs mount's.")),
    Option("tmpfs", dict(type="list", elements="str"), "Paths inside the container that are tmpfs mounts, each as "
           "C(/path) or C(/path:options) (C(size=64m,mode=1777)).", normal=_tmpfs, read=_read_tmpfs,
           body=_tmpfs_body, compose=("tmpfs",), swarm="ContainerSpec.Mounts (tmpfs mounts)",
           details=("On Swarm, tmpfs mounts of the service (services.py): options C(size), C(mode) and C(ro) only.",)),
    Option("shm_size", dict(type="raw"), "Size of C(/dev/shm), like C(256m) or C(1g) (the engine's default 64m).",
           normal=_shm_size, read=_read_shm_size, body=_shm_body, compose=("shm_size",), swarm=None),
]
BY_NAME = dict((o.name, o) for o in OPTIONS)
