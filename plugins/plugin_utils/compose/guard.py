# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compose guard: what a compose file written by someone else may do to the controller and the
Docker host, and no more (README "Importing a file you did not write").

- Its size and the nodes its YAML aliases expand to are bounded.
- Every controller file it makes the import read (`.env`, env_file, secret files, what
  x-clockwork names) resolves, symlinks followed, inside the compose file's directory or a
  directory the user allows (`allowed_paths`); anything else is a problem naming the place.
- The `io.clockwork.` labels are the collection's own (ownership and recreation read them).
- A grant of the host (the Docker socket, system paths, privileged, capabilities, host
  namespaces, devices) is a problem naming the opt-in, unless `allow` lists it.
Nothing here runs, templates or follows what the file says; it only reads paths and values.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible.module_utils.six.moves.collections_abc import Mapping

from ansible_collections.clockwork.connections.plugins.module_utils.common import RESERVED_LABEL_PREFIX

MAX_TEXT_BYTES = 4 * 1024 * 1024       # compose files are kilobytes; a few MB is already odd
MAX_FILE_BYTES = 1024 * 1024           # a .env, env_file or secret file
MAX_NODES = 500000                     # the document as the importer walks it, aliases expanded

GRANTS = ("docker_socket", "host_paths", "privileged", "capabilities", "host_namespaces", "devices")
# Capabilities that are the host in all but name.
HOST_CAPABILITIES = ("ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH")
# Host paths whose bind gives a container the host: the root alone, the others and all under them.
HOST_ROOT = "/"
HOST_TREES = ("/etc", "/root", "/home", "/var/lib/docker", "/proc", "/sys", "/dev", "/boot", "/usr", "/bin", "/sbin",
              "/lib", "/lib64", "/var/run", "/run")
SOCKET_NAMES = ("docker.sock", "containerd.sock", "podman.sock")
# Security options that take a confinement away: a grant, asked for as `privileged` is.
UNCONFINED = ("seccomp=unconfined", "seccomp:unconfined", "apparmor=unconfined", "apparmor:unconfined",
              "label=disable", "label:disable")


def never_templated(value):
    """An imported declaration as Ansible must keep it: plain dicts and lists (ansible-core 2.19's
    lazy containers cannot be rebuilt by wrap_var) of unsafe text, never templated again."""
    from ansible.utils.unsafe_proxy import wrap_var   # controller code: Ansible is there

    def plain(node):
        if isinstance(node, Mapping):
            return dict((plain(k), plain(v)) for k, v in node.items())
        if isinstance(node, (list, tuple)):
            return [plain(v) for v in node]
        return node
    return wrap_var(plain(value))


class InputBounds(object):
    """The size and expansion bounds of one compose text."""

    @staticmethod
    def text_problem(text):
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_TEXT_BYTES:
            return "is %d bytes, more than the %d a compose file may have" % (size, MAX_TEXT_BYTES)
        return None

    @staticmethod
    def node_problem(document):
        """How many nodes the document has with every alias expanded, counted without expanding
        them (each shared node once, with its size): a bomb is refused before it is walked."""
        sizes = {}

        def size(node):
            key = id(node)
            if key in sizes:
                if sizes[key] is None:
                    raise ValueError("an alias refers to itself")
                return sizes[key]
            sizes[key] = None
            total = 1
            if isinstance(node, dict):
                for k, v in node.items():
                    total += size(k) + size(v)
                    if total > MAX_NODES:
                        break
            elif isinstance(node, list):
                for v in node:
                    total += size(v)
                    if total > MAX_NODES:
                        break
            sizes[key] = total
            return total

        try:
            if size(document) > MAX_NODES:
                return "expands to more than %d nodes (YAML aliases): refused as a bomb" % MAX_NODES
        except (ValueError, RecursionError) as exc:
            return "cannot be expanded: %s" % (exc if isinstance(exc, ValueError) else "nested too deeply")
        return None

    @staticmethod
    def key_problems(document):
        """Keys YAML reads as a number, a boolean or null (`1:`, `true:`, `null:`): Compose's keys
        are names, so each is a problem naming where it is (walked once per node: aliases shared)."""
        problems, seen = [], set()

        def walk(node, path):
            if id(node) in seen or len(problems) >= 20:
                return
            seen.add(id(node))
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for key, value in items:
                if isinstance(node, dict) and not isinstance(key, str):
                    problems.append("%s: the key %s is not a name; quote it" % (
                        ".".join(path) or "the top level", "null" if key is None else str(key).lower()
                        if isinstance(key, bool) else key))
                walk(value, path + [str(key)])
        walk(document, [])
        return problems


def _under(path, directory):
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


class ProjectFiles(object):
    """The controller files an import may read: under base_dir or an allowed directory, with
    symlinks followed, and no bigger than MAX_FILE_BYTES."""

    def __init__(self, base_dir, allowed_paths=None):
        self.base_dir = os.path.realpath(base_dir) if base_dir else None
        self.allowed = [os.path.realpath(os.path.expanduser(str(p))) for p in allowed_paths or [] if p]

    def resolve(self, path):
        """The absolute path a compose path means (relative: to base_dir), and its real path."""
        path = os.path.expanduser(str(path))
        absolute = os.path.normpath(os.path.join(self.base_dir or os.getcwd(), path))
        return absolute, os.path.realpath(absolute)

    def allowed_directory(self, real):
        return any(_under(real, d) for d in ([self.base_dir] if self.base_dir else []) + self.allowed)

    def outside(self, path):
        """None when the path may be read, else why not (naming the path, never its content)."""
        _absolute, real = self.resolve(path)
        if self.allowed_directory(real):
            return None
        shown = path if real == os.path.normpath(path) else "%s (%s)" % (path, real)
        return ("%s is outside the compose file's directory %s: refused; list its directory in "
                "clockwork_compose_allowed_paths to read it" % (shown, self.base_dir or "(none given)"))

    def read(self, path):
        """(text, None) or (None, why): the file's text when it may be read."""
        why = self.outside(path)
        if why:
            return None, why
        _absolute, real = self.resolve(path)
        try:
            with open(real, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except (IOError, OSError) as exc:
            return None, "%s cannot be read: %s" % (path, getattr(exc, "strerror", None) or exc)
        if len(data) > MAX_FILE_BYTES:
            return None, "%s is bigger than %d bytes: refused" % (path, MAX_FILE_BYTES)
        try:
            return data.decode("utf-8"), None
        except UnicodeDecodeError:
            return None, "%s is not UTF-8 text" % path


class Grants(object):
    """The grants of the host a compose file asks for: each a problem unless allowed, each
    allowed one listed in the report."""

    def __init__(self, allow, files, report):
        self.allow = set(allow or [])
        self.files = files
        self.report = report

    def _ask(self, grant, path, what):
        if grant in self.allow:
            self.report.warn(path, "%s: kept, as clockwork_compose_allow lists %s" % (what, grant))
            return True
        self.report.problem(path, "%s; refused: add %s to clockwork_compose_allow to keep it" % (what, grant))
        return False

    def bind(self, path, source):
        """A bind mount's host path: the Docker socket, or a system path of the host."""
        if source is None:
            return True
        absolute, real = self.files.resolve(source)
        if any(os.path.basename(p) in SOCKET_NAMES for p in (absolute, real)):
            return self._ask("docker_socket", path, "a bind of %s gives the container the Docker engine, root on "
                                                    "the host" % source)
        if self.files.allowed_directory(real):
            return True
        if real == HOST_ROOT or any(_under(real, tree) for tree in HOST_TREES):
            return self._ask("host_paths", path, "a bind of %s gives the container a system path of the host" % source)
        return True

    def service(self, name, raw):
        """{container field: value} of the grants a service's own keys ask for and may keep."""
        kept, where = {}, ["services", name]
        if raw.get("privileged") and self._ask(
                "privileged", where + ["privileged"], "privileged gives the container every device and capability"):
            kept["privileged"] = True
        added = [str(c).upper() for c in raw.get("cap_add") or []]
        wide = [c for c in added if c.replace("CAP_", "", 1) in HOST_CAPABILITIES]
        if not wide or self._ask("capabilities", where + ["cap_add"],
                                 "cap_add %s gives the container power over the host" % ", ".join(wide)):
            if added:
                kept["cap_add"] = list(raw["cap_add"])
        for key, field in (("pid", "pid_mode"), ("ipc", "ipc_mode"), ("userns_mode", "userns_mode"),
                           ("network_mode", None)):
            if str(raw.get(key) or "") == "host":
                if self._ask("host_namespaces", where + [key], "%s: host shares the host's namespace" % key):
                    if field is None:
                        self.report.problem(where + [key], "network_mode: host is allowed, but the stack puts every "
                                                           "container on its own networks; remove it")
                    else:
                        kept[field] = "host"
        taken = [str(o) for o in raw.get("security_opt") or [] if str(o).replace(" ", "") in UNCONFINED]
        if taken:   # kept as the security_opt field (options.py) when allowed; else the import fails here
            self._ask("privileged", where + ["security_opt"], "security_opt %s takes the container's confinement "
                                                              "away" % ", ".join(taken))
        if raw.get("devices") and self._ask("devices", where + ["devices"],
                                            "devices gives the container devices of the host"):
            kept["devices"] = [d if isinstance(d, str) else _device(d) for d in raw["devices"]]
        return kept


def _device(entry):
    """The long form of a device as its short form."""
    return ":".join(str(p) for p in (entry.get("source"), entry.get("target") or entry.get("source"),
                                     entry.get("permissions") or "rwm"))


def label_problems(path, labels, report):
    for key in labels or {}:
        if str(key).startswith(RESERVED_LABEL_PREFIX):
            report.problem(path, "label %s: the %s prefix is reserved for the labels clockwork sets itself" % (
                key, RESERVED_LABEL_PREFIX))


def grant_problems_of_mounts(grants, path, mounts):
    """The bind mounts of a declared container's `mounts` (x-clockwork fields)."""
    for index, mount in enumerate(mounts or []):
        if isinstance(mount, dict) and mount.get("type") == "bind":
            grants.bind(path + ["mounts", index], mount.get("source"))
