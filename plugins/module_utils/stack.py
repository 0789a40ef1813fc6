# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A whole stack in one process: validate the declaration, order it, then per resource
run its outgoing connections and converge the container with their contributions.

The same functions as the single modules do the work; only the sequencing is here.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.clockwork.connections.plugins.module_utils import (
    database, dependency, file, network, service_mesh)
from ansible_collections.clockwork.connections.plugins.module_utils.checks import run_checks
from ansible_collections.clockwork.connections.plugins.module_utils.common import STACK_LABEL, ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import (
    COMPLETION_ARGS, CONNECTION_ARGS, ConnectionContext, ConnectionResult)
from ansible_collections.clockwork.connections.plugins.module_utils.container import (
    CONTAINER_ARGS, ContainerConverger, ContainerSpec, has_healthcheck, wait_for)
from ansible_collections.clockwork.connections.plugins.module_utils.contribution import merge
from ansible_collections.clockwork.connections.plugins.module_utils.graph import (
    deployment_order, describe_connection, diagram_document, validate)

# type -> (its own arguments, its convergence)
CONNECTION_TYPES = {
    "dependency": (dependency.DEPENDENCY_ARGS, dependency.converge),
    "database": (database.DATABASE_ARGS, database.converge),
    "network": (network.NETWORK_ARGS, network.converge),
    "file": (file.FILE_ARGS, file.converge),
    "service_mesh": (service_mesh.SERVICE_MESH_ARGS, service_mesh.converge),
}
FILE_RESOURCE_ARGS = dict(name=dict(type="str", required=True), path=dict(type="path", required=True),
                          content=dict(type="str"), mode=dict(type="raw"), owner=dict(type="str"))
VOLUME_RESOURCE_ARGS = dict(name=dict(type="str", required=True), volume_name=dict(type="str"),
                            driver=dict(type="str", default="local"))
RESOURCE_TYPES = {"container": CONTAINER_ARGS, "file": FILE_RESOURCE_ARGS, "volume": VOLUME_RESOURCE_ARGS}


def _union(specs):
    """One option list that accepts every type's fields; per-type rules (defaults, choices,
    required) are applied later, by `validated`, whose errors name the entry."""
    merged = {}
    for spec in specs:
        for key, option in spec.items():
            relaxed = dict((k, v) for k, v in option.items() if k not in ("default", "required", "choices"))
            merged.setdefault(key, relaxed)
    return merged


# The stack module's suboptions: validated and no_log-protected by AnsibleModule itself.
CONNECTION_OPTIONS = dict(_union([CONNECTION_ARGS] + [args for args, _fn in CONNECTION_TYPES.values()]),
                          type=dict(type="str", required=True, choices=sorted(CONNECTION_TYPES)))
CONNECTION_OPTIONS.pop("stack")
for _top_level in ("llm", "lock_file"):   # options of the whole stack, not of each connection
    CONNECTION_OPTIONS.pop(_top_level, None)
RESOURCE_OPTIONS = dict(_union(RESOURCE_TYPES.values()),
                        type=dict(type="str", default="container", choices=sorted(RESOURCE_TYPES)))
RESOURCE_OPTIONS.pop("state")


def validated(spec, data, where):
    """Apply one type's argument spec (defaults, choices, aliases) to one entry."""
    given = dict((k, v) for k, v in data.items() if v is not None and k != "type")
    unknown = sorted(set(given) - set(spec) - set(a for o in spec.values() for a in o.get("aliases", [])))
    if unknown:
        raise ClockworkError("%s: %s not a field of this type" % (where, ", ".join(unknown) + (" is" if len(unknown) == 1 else " are")))
    result = ArgumentSpecValidator(spec).validate(given)
    if result.error_messages:
        raise ClockworkError("%s: %s" % (where, "; ".join(result.error_messages)))
    return result.validated_parameters


class Stack(object):
    def __init__(self, engine, name, resources, connections, check_mode=False, base_dir=None):
        self.declaration = (resources, connections)
        self.engine = engine
        self.name = name
        self.check_mode = check_mode
        self.base_dir = base_dir or os.getcwd()
        self.default_network = "%s_default" % name
        validate(resources, connections)
        self.resources = []
        for resource in resources:
            kind = resource.get("type") or "container"
            params = validated(RESOURCE_TYPES[kind], resource, "resource %s" % resource.get("name"))
            params["type"] = kind
            self.resources.append(params)
        self.by_name = dict((r["name"], r) for r in self.resources)
        self.connections = []
        for index, connection in enumerate(connections):
            args, _fn = CONNECTION_TYPES[connection["type"]]
            spec = dict(CONNECTION_ARGS, **args)
            params = validated(spec, connection, describe_connection(index, connection))
            params.update(type=connection["type"], stack=name, index=index)
            self.connections.append(params)
        self.order = deployment_order([r["name"] for r in self.resources],
                                      [dict(type=c["type"], **{"from": c["from_resource"], "to": c["to_resource"]})
                                       for c in self.connections])
        self.specs = dict((r["name"], self._container_spec(r)) for r in self.resources if r["type"] == "container")
        self.ctx = ConnectionContext(engine, name, check_mode, declared=self.specs, base_dir=self.base_dir)
        self.entries = []
        self.diffs = []
        self.checks = []
        # Containers started but not yet waited for: name -> whether this run started them.
        # Waiting only when a dependent needs them lets independent containers start together.
        self.unready = {}
        # Containers whose TLS files got new content: a running one restarts to read them.
        self.renewed_tls = set()

    # -- declaration -> specs -------------------------------------------------

    def _path(self, path):
        return path if os.path.isabs(path) else os.path.normpath(os.path.join(self.base_dir, path))

    def _container_spec(self, resource):
        params = dict(resource)
        networks = [dict(n) for n in params.get("networks") or []]
        networks.insert(0, {"name": self.default_network, "aliases": [resource["name"]]})
        params["networks"] = networks
        return ContainerSpec(params, self.name, base_dir=self.base_dir)

    def _connection_params(self, connection):
        """Fill a file connection's source from the resource it points at."""
        params = dict(connection)
        target = self.by_name[connection["to_resource"]]
        if connection["type"] == "file" and target["type"] == "file":
            # The resource step writes the file; its content here makes the check compare it.
            params.update(source_path=self._path(target["path"]), content=target.get("content"),
                          mode=target.get("mode"), owner=target.get("owner"))
        elif connection["type"] == "file" and target["type"] == "volume" and not params.get("volume_name"):
            params["volume_name"] = target.get("volume_name") or target["name"]
        return params

    def _record(self, kind, name, changed, actions, reasons=None, before=None, after=None):
        self.entries.append({"kind": kind, "name": name, "changed": changed, "actions": list(actions),
                             "reasons": list(reasons or [])})
        if changed and (before or after):
            self.diffs.append({"before_header": "%s %s" % (kind, name), "after_header": "%s %s" % (kind, name),
                               "before": before or {}, "after": after or {}})

    # -- present ----------------------------------------------------------------

    def present(self):
        net = ConnectionResult("network", self.name, self.default_network)
        net.name = "network %s" % self.default_network
        network.NetworkConverger(self.ctx).ensure(self.default_network, network.wanted_settings({}), net)
        self._record("network", self.default_network, net.changed, net.actions)
        self._prepare_targets()
        for name in self.order:
            resource = self.by_name[name]
            if resource["type"] == "file":
                self._converge_file(resource)
            elif resource["type"] == "volume":
                result = ConnectionResult("volume", name, name)
                result.name = "volume %s" % name
                file.ensure_volume(self.ctx, resource.get("volume_name") or name, resource["driver"], True, result)
                self._record("volume", resource.get("volume_name") or name, result.changed, result.actions)
            else:
                self._converge_container(name)
        for name in list(self.unready):
            self._await(name)
        return self.report()

    def write_diagram(self, path):
        result = ConnectionResult("diagram", self.name, self.name)
        file.write_file(self._path(path), diagram_document(self.name, *self.declaration), "0644", None,
                        self.check_mode, result)
        self._record("diagram", self._path(path), result.changed, result.actions)

    def _await(self, name):
        just_started = self.unready.pop(name, None)
        if just_started is None or self.check_mode:
            return
        attrs = self.engine.container(name)
        wait_for(self.engine, name, "healthy" if has_healthcheck(attrs) else "started", self.specs[name].timeout,
                 just_started=just_started, who="container %s" % name)

    def _prepare_targets(self):
        """What connections put into their `to` container is known before it is created:
        the shared volume and TLS files go into its declaration, so it is created once."""
        for connection in self.connections:
            spec = self.specs.get(connection["to_resource"])
            if spec is None:
                continue
            if connection["type"] == "file" and connection.get("volume_name"):
                result = ConnectionResult("file", connection["from_resource"], connection["to_resource"])
                file.ensure_volume(self.ctx, connection["volume_name"], connection.get("volume_driver") or "local",
                                   connection.get("create_volume", True), result)
                self._record("volume", connection["volume_name"], result.changed, result.actions)
                self._add_mount(spec, {"type": "volume", "source": connection["volume_name"],
                                       "target": connection["mount_path"], "read_only": False})
            elif connection["type"] == "service_mesh":
                service = connection.get("service_name")
                if service and service != spec.name:
                    spec.networks[0]["aliases"] = sorted(set(spec.networks[0]["aliases"] + [service]))
                if connection.get("tls_enabled"):
                    result = ConnectionResult("service_mesh", connection["from_resource"], spec.name)
                    for mount in service_mesh.tls_mounts(self.ctx, connection, result):
                        self._add_mount(spec, mount)
                    self._record("tls", spec.name, result.changed, result.actions)
                    if result.changed:
                        self.renewed_tls.add(spec.name)

    @staticmethod
    def _add_mount(spec, mount):
        if all(m["target"] != mount["target"] for m in spec.mounts):
            spec.mounts.append(mount)

    def _converge_file(self, resource):
        result = ConnectionResult("file", resource["name"], resource["name"])
        path = self._path(resource["path"])
        if resource.get("content") is not None:
            self.ctx.first_time(("file", path))
            file.write_file(path, resource["content"], resource.get("mode"), resource.get("owner"),
                            self.check_mode, result)
        elif not os.path.exists(path):
            raise ClockworkError("file resource %s: %s does not exist" % (resource["name"], path))
        self._record("file", resource["name"], result.changed, result.actions, before=result.before,
                     after=result.after)

    def _converge_container(self, name):
        spec = self.specs[name]
        contributions = []
        for connection in self.connections:
            if connection["from_resource"] != name:
                continue
            self._await(connection["to_resource"])
            _args, converge = CONNECTION_TYPES[connection["type"]]
            result = converge(self.ctx, self._connection_params(connection))
            contributions.append(result.contribution)
            self.checks.extend(result.contribution.checks)
            self._record("connection", result.name, result.changed, result.actions,
                         before=result.before, after=result.after)
        env, mounts, networks, secret_env = merge(spec.env, spec.mounts, spec.networks, contributions)
        spec.env, spec.mounts, spec.networks = env, mounts, networks
        spec.secret_env = set(secret_env)
        wait, spec.wait = spec.wait, False
        outcome = ContainerConverger(self.engine, self.check_mode).converge(spec)
        fresh = any(action in ("create", "recreate") for action in outcome["actions"])
        if name in self.renewed_tls and not fresh and spec.state == "started":
            outcome["changed"] = True
            outcome["actions"].append("restart for its new certificate")
            if not self.check_mode:
                self.engine.api.restart(name)
                self.engine.forget("container", name)
        if wait and spec.state == "started":
            self.unready[name] = outcome["changed"]
        self._record("container", name, outcome["changed"], outcome["actions"], outcome["reasons"],
                     outcome["diff"]["before"], outcome["diff"]["after"])

    # -- absent ------------------------------------------------------------------

    def absent(self, purge=False):
        """Remove, in reverse order, what carries this stack's label; volumes only with purge."""
        api = self.engine.api
        label = {"label": "%s=%s" % (STACK_LABEL, self.name)}
        labelled = dict((c["Names"][0].lstrip("/"), c) for c in api.containers(all=True, filters=label))
        removal = [n for n in reversed(self.order) if n in labelled] + sorted(n for n in labelled if n not in self.order)
        for name in removal:
            self._record("container", name, True, ["remove"])
            if not self.check_mode:
                api.remove_container(name, force=True)
        for net in api.networks(filters=label):
            self._record("network", net["Name"], True, ["remove"])
            if not self.check_mode:
                api.remove_network(net["Id"])
        volumes = api.volumes(filters=label).get("Volumes") or []
        for volume in volumes:
            if purge:
                self._record("volume", volume["Name"], True, ["remove"])
                if not self.check_mode:
                    api.remove_volume(volume["Name"])
            else:
                self._record("volume", volume["Name"], False, ["kept (purge to remove)"])
        return self.report()

    # -- verified -----------------------------------------------------------------

    def verified(self, dry_run=False):
        """Run every connection's checks against the running stack; change nothing.

        In a dry run (Ansible's check mode) checks of containers that do not exist are not run."""
        self.present()   # in check mode: builds every check, touches nothing
        return run_checks(self.engine, self.checks, check_mode=dry_run)

    def report(self):
        return {"changed": any(e["changed"] for e in self.entries), "order": self.order,
                "entries": self.entries, "checks": self.checks}


# The stack module's arguments: the module and the action plugin's in-process path use them.
STACK_ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    resources=dict(type="list", elements="dict", default=[], options=RESOURCE_OPTIONS),
    connections=dict(type="list", elements="dict", default=[], options=CONNECTION_OPTIONS),
    state=dict(type="str", default="present", choices=["present", "absent", "verified"]),
    purge=dict(type="bool", default=False),
    base_dir=dict(type="path"),
    diagram_path=dict(type="path"),
    **COMPLETION_ARGS
)


def run_stack(engine, params, check_mode=False, diff=False):
    """What the stack module does with its validated parameters; returns the result.

    Failed checks raise ClockworkError with the whole report in its details."""
    state = params["state"]
    stack = Stack(engine, params["name"], params["resources"], params["connections"],
                  check_mode=check_mode or state == "verified", base_dir=params["base_dir"])
    if state == "absent":
        report = stack.absent(params["purge"])
    elif state == "verified":
        reports = stack.verified(dry_run=check_mode)
        failed = [r for r in reports if r["ok"] is False]
        result = dict(changed=False, order=stack.order, entries=stack.entries, checks=reports)
        if failed:
            raise ClockworkError("%d of %d checks failed: %s" % (len(failed), len(reports), "; ".join(
                "%s: %s" % (r["connection"], r["msg"]) for r in failed)), **result)
        return result
    else:
        stack.present()
        if params["diagram_path"]:
            stack.write_diagram(params["diagram_path"])
        report = stack.report()
    if diff:
        report["diff"] = stack.diffs
    return report
