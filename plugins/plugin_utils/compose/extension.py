# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `x-clockwork` extension field (Compose ignores x- fields): what to_compose
(exporter.py) writes so that from_compose gives the exported declaration back.

At the top level: `version`, `stack`, `engine`, `order` (the resources' declaration order),
the file and volume `resources` and the `connections` as declared (secrets as `${VAR}`, read
from the `.env` like the rest of the file). On each service: `contributed`, the env names,
mount targets, networks and secrets its connections give it (not its own, so not imported
twice), `fields`, the container fields Compose has no key for, and `defaulted`, the
healthcheck timings (and a swarm file's replicas) written with the stack's default, which the
declaration did not give. Everything else of a
container is read from its service: a user who edits the file edits the declaration.

Anyone can write x-clockwork, so it is read as a stranger's declaration (guard.py):
each resource, connection and field it adds is listed in the report's warnings; `fields` holds
only the fields above; the controller files a connection reads (schema_file, migrations_dir)
and the host paths of file resources stay inside the compose file's directory (or an allowed
one), a controller path made absolute so that what was checked is what is read; no label of
clockwork's own, no bind of the host unless allowed.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import posixpath

from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.guard import (
    grant_problems_of_mounts, label_problems)
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.rules import Declaration

EXTENSION = "x-clockwork"
VERSION = 1
# Container fields without a Compose key of their own on the docker target.
# replicas, update_order and stop_grace_period have theirs (deploy.replicas, deploy.update_config.order).
OWN_FIELDS = ("state", "wait", "timeout", "plain_env", "endpoint_mode", "max_replicas_per_node")


# What the importer says of what to_compose itself writes: not news to whoever reads the file back.
EXPORTED_WARNINGS = ("version: obsolete, ignored", ".attachable: no field for it; left out")


def own_fields(resource, engine="docker"):
    """The declared container fields that only x-clockwork carries (on Swarm, the restart policy too:
    the swarm applier restarts every task, whatever it says)."""
    keys = OWN_FIELDS + (("restart_policy",) if engine == "swarm" else ())
    return dict((key, resource[key]) for key in keys if resource.get(key) is not None)


def declared_rest(resources, connections):
    """The top-level part: the order, the resources that are no service, the connections."""
    return {"order": [r.get("name") for r in resources],
            "resources": [dict(r) for r in resources if (r.get("type") or "container") != "container"],
            "connections": [dict(c) for c in connections]}


def extension_problems(extension, report):
    """A hand-edited x-clockwork that cannot be read: problems naming the key."""
    if not isinstance(extension, dict):
        report.problem([EXTENSION], "must be a mapping, got %s" % type(extension).__name__)
        return
    if extension.get("version") != VERSION:
        report.problem([EXTENSION, "version"], "must be %d, got %r" % (VERSION, extension.get("version")))
    for key in ("order", "resources", "connections"):
        if not isinstance(extension.get(key), list):
            report.problem([EXTENSION, key], "must be a list")
        elif key != "order" and not all(isinstance(e, dict) for e in extension[key]):
            report.problem([EXTENSION, key], "every entry must be a mapping")


class ExportedDeclaration(Declaration):
    """The declaration of a file to_compose wrote: containers from the services, less what their
    connections contribute; the connections and the other resources from x-clockwork."""

    def build(self):
        extension = self.project["clockwork"]
        resources = []
        for name, service in self.services:
            mine = service.get(EXTENSION) or {}
            contributed = mine.get("contributed") or {}
            self._unmapped(name, dict((k, v) for k, v in service.items() if k != "container_name" or v != name))
            for key in contributed.get("env") or []:
                self.env[name].pop(key, None)
            self.mounts[name] = [self._own_mount(m) for m in service["volumes"]
                                 if m["target"] not in (contributed.get("mounts") or [])]
            for key, options in service["networks"]:
                network = (self.project["networks"].get(key) or {}).get("name") or key
                if key != "default" and network not in (contributed.get("networks") or []):
                    attached = {"name": network, "aliases": list(options.get("aliases") or [])}
                    attached.update((k, options[k]) for k in ("ipv4_address", "priority") if options.get(k) is not None)
                    self.attached[name].append(attached)
            if "default" not in [k for k, _o in service["networks"]]:
                self.off_default.add(name)   # to_compose writes `default` for a container on it
            resource = self._container(name, service)
            resource.update(self._fields(name, mine.get("fields") or {}))
            for key in mine.get("defaulted") or []:   # written with the stack's default, not declared
                field, _dot, sub = key.partition(".")
                (resource.get(field) or {}).pop(sub, None) if sub else resource.pop(field, None)
            resources.append(resource)
        self.report.warnings[:] = [w for w in self.report.warnings if not any(
            w == e or w.endswith(e) for e in EXPORTED_WARNINGS)]
        resources += [self._resource(index, dict(r)) for index, r in enumerate(extension["resources"])]
        order = dict((name, index) for index, name in enumerate(extension["order"]))
        resources.sort(key=lambda r: order.get(r.get("name"), len(order)))
        return resources, [self._connection(index, dict(c)) for index, c in enumerate(extension["connections"])]

    # -- what x-clockwork adds: listed, and held to the rules of the rest of the file ----------

    def _fields(self, name, fields):
        where = ["services", name, EXTENSION, "fields"]
        if not isinstance(fields, dict):
            self.report.problem(where, "must be a mapping")
            return {}
        kept = {}
        for key, value in fields.items():
            if key in OWN_FIELDS + ("restart_policy",):
                self.report.warn(where + [key], "x-clockwork sets %s of the container" % key)
                kept[key] = value
            else:
                self.report.problem(where + [key], "is not a field x-clockwork may set (only %s)" % ", ".join(
                    OWN_FIELDS + ("restart_policy",)))
        return kept

    def _resource(self, index, resource):
        where, kind = [EXTENSION, "resources", index], resource.get("type") or "container"
        path = resource.get("path")
        self.report.warn(where, "x-clockwork adds the %s resource %s%s" % (
            kind, resource.get("name"), " at %s on the Docker host" % path if path else ""))
        label_problems(where + ["labels"], resource.get("labels"), self.report)
        if kind == "container":
            self.report.problem(where, "a container is declared by a service, not by x-clockwork")
        grant_problems_of_mounts(self.project["grants"], where, resource.get("mounts"))
        if isinstance(path, str):   # a file resource's (no other resource has a path)
            if resource.get("content") is not None:   # written on the Docker host: inside the directory
                if self._escapes(path):
                    self.report.problem(where + ["path"], self._escapes(path))
            else:                                     # a host path to bind, as a compose bind is
                self.project["grants"].bind(where + ["path"], path)
        return resource

    def _connection(self, index, connection):
        where = [EXTENSION, "connections", index]
        self.report.warn(where, "x-clockwork adds the %s connection %s -> %s" % (
            connection.get("type"), connection.get("from"), connection.get("to")))
        kind = CONNECTION_TYPES.get(connection.get("type"))
        files = self.project["files"]
        for field in (kind.controller_files if kind else ()):
            path = connection.get(field)
            if not isinstance(path, str) or not path:
                continue
            why = files.outside(path) or self._linked_out(path)
            if why:
                self.report.problem(where + [field], why)
            elif not os.path.isabs(os.path.expanduser(path)):
                connection[field] = files.resolve(path)[0]   # read from where it was checked
        source = connection.get("source_path")
        why = self._escapes(source) if isinstance(source, str) else None
        if why:
            self.report.problem(where + ["source_path"], why)
        return connection

    def _linked_out(self, path):
        """A directory's entries (migrations), each held to the same rule: a link in it pointing
        out is read when the files are shipped."""
        files = self.project["files"]
        directory = files.resolve(path)[1]
        if not os.path.isdir(directory):
            return None
        for entry in sorted(os.listdir(directory)):
            why = files.outside(os.path.join(directory, entry))
            if why:
                return why
        return None

    def _escapes(self, path):
        """A host path of a file resource: relative ones stay under the stack's directory, absolute
        ones in the compose file's directory (or an allowed one)."""
        if not os.path.isabs(path) and not path.startswith("~"):
            normal = posixpath.normpath(path)
            if normal == ".." or normal.startswith("../"):
                return "%s leaves the stack's directory: refused" % path
        return self.project["files"].outside(path)   # symlinks followed

    def _own_mount(self, mount):
        own = dict({"read_only": True} if mount["read_only"] else {}, **mount.get("extras") or {})
        if mount["type"] == "volume" and mount["source"]:
            spec = self.project["volumes"].get(mount["source"]) or {}
            return dict({"type": "volume", "source": spec.get("name") or mount["source"], "target": mount["target"]},
                        **own)
        if not mount["source"]:   # an anonymous volume, a tmpfs mount
            return dict({"type": mount["type"], "target": mount["target"]}, **own)
        source = mount["source"]
        source = posixpath.normpath(source) if source.startswith("./") else source
        return dict({"type": mount["type"], "source": source, "target": mount["target"]}, **own)
