# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan: a stack's whole desired state, computed from its declaration without the
Docker engine and before anything is touched.

Every resource and connection is validated against its type's argument spec and rules,
each problem naming its entry and field, all of them reported at once. Then the plan
holds the order, every container's spec with what connections contribute to it as their
`to` (a shared volume, TLS files, a network and its aliases) merged in, the networks,
volumes and files to make, and the SQL each database connection will apply, with checksums.
What needs the engine (images, names, ports, existing networks and volumes) is the
pre-flight's (apply/preflight.py); both run before the first change.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    ClockworkError, Problems, connection_ends, stack_name_problem)
from ansible_collections.clockwork.connections.plugins.module_utils.connection import CONNECTION_ARGS
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import ContainerSpec, parse_port
from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import wanted_settings
from ansible_collections.clockwork.connections.plugins.module_utils.graph import (
    connection_labels, deployment_order, find_cycle, structure_problems)
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES
from ansible_collections.clockwork.connections.plugins.module_utils.apply.replicas import (
    grace_seconds, replica_names, replicated_problems)
from ansible_collections.clockwork.connections.plugins.module_utils import resource_types

# Resource type -> its fields (resource_types.py has the rest of each type).
RESOURCE_TYPES = dict((name, kind.args) for name, kind in resource_types.RESOURCE_KINDS.items())
IMAGE_REFERENCE = resource_types.IMAGE_REFERENCE


_VALIDATORS = {}


def _validator(spec):
    """One validator per argument spec: building one copies the spec, and a stack of fifty
    entries would build fifty."""
    key = id(spec)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = (spec, ArgumentSpecValidator(spec))   # the spec kept alive with its id
    return _VALIDATORS[key][1]


def validated(spec, data, where, problems):
    """One entry against its type's argument spec (defaults, choices, aliases); problems are
    added, and the parameters returned (None when the spec itself refused them)."""
    given = dict((k, _given(v, spec.get(k))) for k, v in data.items() if v is not None and k != "type")
    for key in sorted(_shapeless(given, spec)):
        problems.add(where, "%s: must be %s" % (key, "a mapping" if spec[key]["type"] == "dict" else "a list of mappings"))
        given.pop(key)
    known = set(spec) | set(a for o in spec.values() for a in o.get("aliases", []))
    for key in sorted(set(given) - known):
        problems.add(where, "%s: not a field of this type" % key)
        given.pop(key)
    result = _validator(spec).validate(given)
    for message in result.error_messages:
        problems.add(where, message)
    return None if result.error_messages else result.validated_parameters


def _shapeless(given, spec):
    """The fields with suboptions given in another shape (healthcheck: 1): Ansible's validator fails on them
    with a TypeError instead of a message."""
    for key, value in given.items():
        option = spec.get(key) or {}
        if not option.get("options"):
            continue
        if option.get("type") == "dict" and not isinstance(value, dict) or option.get("type") == "list" and (
                not isinstance(value, list) or not all(isinstance(item, dict) for item in value)):
            yield key


def _given(value, option):
    """A value without the suboptions left unset: the stack module's own validation fills every
    suboption it has no value for with None, which a choices check would refuse here."""
    if not (option or {}).get("options"):
        return value
    if isinstance(value, dict):
        return dict((k, v) for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return [dict((k, v) for k, v in item.items() if v is not None) if isinstance(item, dict) else item
                for item in value]
    return value


_CONNECTION_SPECS = {}


def connection_spec(kind):
    """The shared connection fields and the type's own, one dict per type."""
    if kind.name not in _CONNECTION_SPECS:
        _CONNECTION_SPECS[kind.name] = dict(CONNECTION_ARGS, **kind.args)
    return _CONNECTION_SPECS[kind.name]


def published(ports):
    """(protocol, host port, host ip, as declared) of every port, given as parse_port's tuples,
    that is published on a fixed host port."""
    return [(container_port.split("/")[1], host_port, host_ip or "0.0.0.0",
             "%s%s:%s" % (host_ip + ":" if host_ip else "", host_port, container_port))
            for container_port, host_ip, host_port in ports if host_port]


def parsed_ports(params):
    """parse_port of every valid port declaration (the invalid ones are reported elsewhere)."""
    result = []
    for port in params.get("ports") or []:
        try:
            result.append(parse_port(port))
        except ClockworkError:
            continue
    return result


def _overlap(ip_a, ip_b):
    return ip_a == ip_b or "0.0.0.0" in (ip_a, ip_b)


class Plan(object):
    """The validated declaration and the desired state derived from it. Raises ClockworkError
    listing every problem when the declaration cannot be planned."""

    def __init__(self, name, resources, connections, base_dir=None, engine="docker"):
        self.name = name
        self.engine = engine
        self.base_dir = base_dir or os.getcwd()
        self.default_network = "%s_default" % name
        self.declaration = (resources, connections)
        problems = Problems()
        if stack_name_problem(name):
            problems.add("stack", "name: " + stack_name_problem(name))
        kinds = structure_problems(resources, connections, problems)

        self.resources = []
        for index, resource in enumerate(resources):
            kind = resource_types.kind_of(resource)
            where = "resource %s" % (resource.get("name") or "#%d" % (index + 1))
            if kind is None:
                continue
            params = validated(kind.args, resource, where, problems)
            if params is None:
                continue
            params["type"] = kind.name
            problems.extend(where, ("%s: %s" % p for p in kind.problems(params, self)))
            self.resources.append(params)
        self.by_name = dict((r["name"], r) for r in self.resources)
        self._port_problems(problems)
        self._network_reference_problems(problems)
        # Resource -> its containers' names, for the resources with several (the docker target's replicas).
        self.replicated = {}
        if engine == "docker":
            self.replicated = dict((r["name"], replica_names(r["name"], r["replicas"])) for r in self.resources
                                   if resource_types.runs_containers(r) and (r.get("replicas") or 1) > 1)
            self._replica_name_problems(problems)

        self.connections = []
        for label, connection in zip(connection_labels(connections), connections):
            kind = CONNECTION_TYPES.get(connection.get("type"))
            source, target = connection_ends(connection)
            if kind is None or source not in kinds or target not in kinds:
                continue
            params = validated(connection_spec(kind), connection, label, problems)
            if params is None:
                continue
            if target in self.by_name:
                params = kind.adopt(params, self.by_name[target])
            params = self._resolve_paths(params, kind)
            params.update(type=kind.name, stack=name, label=label)
            problems.extend(label, ("%s: %s" % p for p in kind.validate(params)))
            self.connections.append(params)

        if engine == "docker":
            for resource, found in sorted(replicated_problems(
                    self.resources, self.connections, parsed_ports, CONNECTION_TYPES).items()):
                problems.extend("resource %s" % resource, ("%s: %s" % p for p in found))
        if not problems.items:
            cycle = find_cycle([r["name"] for r in self.resources], self.connections)
            if cycle:
                problems.add(None, "the connections form a cycle: %s" % " -> ".join(cycle))
        if not problems.items:
            self.order = deployment_order([r["name"] for r in self.resources], self.connections)
            self.specs = self._container_specs(problems)
            self.networks = self._networks(problems)
            self.volumes = self._volumes(problems)
            self.sql = self._sql(problems)
            self._contribution_problems(problems)
        problems.raise_if_any("invalid stack %s" % name)

    def containers_of(self, name):
        """The names of a resource's containers: itself, or its replicas on the docker target."""
        return self.replicated.get(name) or [name]

    def _replica_name_problems(self, problems):
        """A container resource named as another's replica (`api-2` beside `api` with 3 replicas):
        both would claim one container."""
        for resource in self.resources:
            if not resource_types.runs_containers(resource) or resource["name"] in self.replicated:
                continue   # a replicated one has no container of its own name (`api-2-1`, ...)
            for other, names in sorted(self.replicated.items()):
                if resource["name"] in names:
                    problems.add("resource %s" % resource["name"], "name: %s is also the container of replica %d "
                                 "of resource %s (replicas: %d); rename it, or give %s fewer replicas" % (
                                     resource["name"], names.index(resource["name"]) + 1, other, len(names), other))

    def host_path(self, path):
        """A path on the Docker host: a relative one under the stack's base_dir."""
        return path if os.path.isabs(path) else os.path.normpath(os.path.join(self.base_dir, path))

    def written_files(self):
        """Host path -> content (None: made by the run, like TLS material) of what the run writes
        before anything mounts it."""
        paths = {}
        for resource in self.resources:
            for path, content in resource_types.kind_of(resource).files(resource):
                if content is not None:
                    paths[self.host_path(path)] = content
        for connection in self.connections:
            for path, content in CONNECTION_TYPES[connection["type"]].written_files(connection, self.name).items():
                paths[self.host_path(path)] = content
        return paths

    # -- validation across entries -------------------------------------------------

    def _resolve_paths(self, params, kind):
        """Relative paths name things on the Docker host, under the stack's base_dir."""
        for field in kind.controller_files:
            path = params.get(field)
            if path and not os.path.isabs(path):
                params[field] = os.path.normpath(os.path.join(self.base_dir, path))
        return params

    def _port_problems(self, problems):
        taken = []
        for resource in self.resources:
            if not resource_types.runs_containers(resource) or resource.get("state") == "absent":
                continue
            for proto, port, ip, text in published(parsed_ports(resource)):
                for other, (o_proto, o_port, o_ip, o_text) in taken:
                    if (proto, port) == (o_proto, o_port) and _overlap(ip, o_ip):
                        problems.add("resource %s" % resource["name"], "ports: %s publishes host port %s/%s, "
                                     "which resource %s publishes too (%s)" % (text, port, proto, other, o_text))
                taken.append((resource["name"], (proto, port, ip, text)))

    def _network_reference_problems(self, problems):
        """What a container asks of a network resource's network that it cannot give: the network listed
        by the resource's name where it is named otherwise (`network_name`), an ipv4_address outside
        its subnet or on a network without one."""
        named, subnets = {}, {}   # resource name -> its network; network -> (resource name, subnet)
        for r in self.resources:
            for name, settings in resource_types.kind_of(r).networks(r):
                named[r["name"]] = name
                subnets[name] = (r["name"], settings["subnet"]) if settings else None   # external: the engine's
        for resource in self.resources:
            for network in resource.get("networks") or []:
                name, address = network["name"], network.get("ipv4_address")
                if name in named and name not in subnets:
                    problems.add("resource %s" % resource["name"], "networks: %s is a network resource whose network "
                                 "is %s: list %s" % (name, named[name], named[name]))
                elif subnets.get(name) and address:
                    owner, subnet = subnets[name]
                    problem = resource_types.address_problem(address, subnet, owner)
                    if problem:
                        problems.add("resource %s" % resource["name"], "networks: %s: %s" % (name, problem))

    def _contribution_problems(self, problems):
        """Two connections giving one container the same env name or mount target differently."""
        for name, spec in self.specs.items():
            # env name -> (who sets it, its value when known without the engine)
            env_owner = dict((key, ("the container's own env", value)) for key, value in spec.env.items())
            mount_owner = dict((m["target"], "the container's own mounts") for m in spec.mounts)
            for connection in self.connections:
                if connection["from_resource"] != name:
                    continue
                label = connection["label"]
                kind = CONNECTION_TYPES[connection["type"]]
                known = kind.known_env(connection, connection["to_resource"])
                for env in kind.injected_env(connection, connection["to_resource"]):
                    value = known.get(env)
                    owner = env_owner.get(env)
                    if owner and (value is None or owner[1] != value):
                        problems.add(label, "env %s is set differently by %s and by %s" % (env, owner[0], label))
                    env_owner.setdefault(env, (label, value))
                for target in kind.mount_targets(connection):
                    if target in mount_owner:
                        problems.add(label, "mount_path: %s is mounted by %s already" % (target, mount_owner[target]))
                    mount_owner[target] = label

    # -- the desired state ------------------------------------------------------------

    def _container_specs(self, problems):
        specs = {}
        for resource in self.resources:
            if not resource_types.runs_containers(resource):
                continue
            params = dict(resource)
            networks = [dict(n) for n in params.get("networks") or []]
            if resource.get("default_network", True) and not resource.get("network_mode"):
                networks.insert(0, {"name": self.default_network, "aliases": [resource["name"]]})
            params["networks"] = networks
            try:
                spec = specs[resource["name"]] = ContainerSpec(params, self.name, base_dir=self.base_dir)
            except ClockworkError as exc:
                problems.add("resource %s" % resource["name"], exc.msg)
                continue
            spec.update_order = resource.get("update_order") or "auto"
            spec.stop_grace = grace_seconds(resource)
        for connection in self.connections:
            spec = specs.get(connection["to_resource"])
            if spec is None:
                continue
            given = CONNECTION_TYPES[connection["type"]].to_contribution(connection, self.name)
            for mount in given["mounts"]:
                have = [m for m in spec.mounts if m["target"] == mount["target"]]
                if not have:
                    spec.mounts.append(mount)
                elif have[0]["source"] != mount["source"]:
                    problems.add(connection["label"], "%s already mounts %s at %s" % (
                        spec.name, have[0]["source"], mount["target"]))
            for network in given["networks"]:
                have = [n for n in spec.networks if n["name"] == network["name"]]
                if have:
                    have[0]["aliases"] = sorted(set(have[0]["aliases"]) | set(network["aliases"]))
                else:
                    spec.networks.append(dict(network))
        joins = set(c["from_resource"] for c in self.connections if CONNECTION_TYPES[c["type"]].networks(c))
        for name, spec in specs.items():
            if not spec.networks and name not in joins and not spec.network_mode:   # `from` joins its connections' networks as they converge
                problems.add("resource %s" % name, "default_network: false leaves the container on no network: "
                                                   "list its networks, or connect it with a network connection "
                                                   "that names one (network_name)")
        return specs

    def _networks(self, problems):
        """The networks to make: the stack's default one and its network resources, made by the stack
        before any container (`by` "stack"; `resource` names the resource), then those of network
        connections, made by each connection (`by` its label). One name, one set of settings.
        An external network resource's network (settings None) is the stack's too, never made or
        compared: a connection on it uses it as it is."""
        networks = [{"name": self.default_network, "settings": wanted_settings({}), "by": "stack"}]
        wanted = [(name, settings, {"by": "stack", "resource": "resource %s" % r["name"]}) for r in self.resources
                  for name, settings in resource_types.kind_of(r).networks(r)]
        wanted += [(name, settings, {"by": c["label"]}) for c in self.connections
                   for name, settings in CONNECTION_TYPES[c["type"]].networks(c)]
        for name, settings, by in wanted:
            same = [n for n in networks if n["name"] == name]
            if same and same[0]["settings"] is None and by["by"] != "stack":
                continue   # a connection on an external network
            if same and (same[0]["settings"] is None or settings is None):
                problems.add(by.get("resource") or by["by"], "network_name: %s is declared by %s too, %s" % (
                    name, same[0].get("resource") or same[0]["by"],
                    "as external" if same[0]["settings"] is None else "to be made by the stack"))
            elif same and same[0]["settings"] != settings:
                problems.add(by.get("resource") or by["by"], "network_name: %s is declared with other settings by %s"
                             % (name, same[0].get("resource") or same[0]["by"]))
            elif not same:
                networks.append(dict({"name": name, "settings": settings}, **by))
        return networks

    def _volumes(self, problems):
        volumes = []
        wanted = [(name, driver, "resource %s" % r["name"]) for r in self.resources
                  for name, driver in resource_types.kind_of(r).volumes(r)]
        wanted += [(name, driver, c["label"]) for c in self.connections
                   for name, driver, _create in CONNECTION_TYPES[c["type"]].volumes(c)]
        for name, driver, by in wanted:
            same = [v for v in volumes if v["name"] == name]
            if same and same[0]["driver"] is None and not by.startswith("resource "):
                continue   # a connection mounting an external volume: used as it is
            if same and None in (driver, same[0]["driver"]):
                problems.add(by, "volume_name: %s is declared by %s too, %s" % (
                    name, same[0]["by"], "as external" if same[0]["driver"] is None else "to be made by the stack"))
            elif same and same[0]["driver"] != driver:
                problems.add(by, "volume %s has driver %s here but %s in %s" % (
                    name, driver, same[0]["driver"], same[0]["by"]))
            elif not same:
                volumes.append({"name": name, "driver": driver, "by": by})
        return volumes

    def _sql(self, problems):
        steps = {}
        for connection in self.connections:
            try:
                planned = CONNECTION_TYPES[connection["type"]].planned_steps(connection)
            except ClockworkError as exc:
                problems.add(connection["label"], exc.msg)
                continue
            if planned is not None:
                steps[connection["label"]] = planned
        return steps

    def as_dict(self):
        """The plan as plain data, for check mode and --diff: names, never env values."""
        containers = {}
        for name in self.order:
            spec = self.specs.get(name)
            if spec is None:
                continue
            containers[name] = {
                "image": spec.image, "ports": [p[0] for p in spec.ports], "env": sorted(spec.env),
                "mounts": ["%s%s%s" % (m["source"] + ":" if m["source"] else "", m["target"], ":ro" if m["read_only"] else "")
                           for m in spec.mounts],
                "networks": dict((n["name"], n["aliases"]) for n in spec.networks),
                "connections": [c["label"] for c in self.connections if c["from_resource"] == name],
            }
            if name in self.replicated:
                containers[name]["replicas"] = self.replicated[name]
        return {
            "stack": self.name, "order": self.order,
            "networks": [n["name"] for n in self.networks],
            "volumes": [v["name"] for v in self.volumes],
            "files": [path for r in self.resources for path, _content in resource_types.kind_of(r).files(r)],
            "containers": containers,
            "sql": self.sql,
        }
