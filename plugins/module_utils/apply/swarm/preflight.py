# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Swarm applier's pre-flight: the shared checks of preflight.py, with its hooks answered
for services: names and host ports are services', networks must be swarm-wide overlays, a
stack runs on one engine, and services sharing a volume are placed on one node."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import STACK_LABEL, owned_by
from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import actual_settings, settings_drift
from ansible_collections.clockwork.connections.plugins.module_utils.plan import published
from ansible_collections.clockwork.connections.plugins.module_utils.apply.preflight import Preflight
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.services import (
    CAPABILITIES_API, NODE_CONSTRAINT)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.tasks import SERVICE_LABEL


class SwarmPreflight(Preflight):
    """Fills the Swarm applier's image ids, warnings and placement on the way."""

    heading = "stack %s cannot be deployed on Swarm"
    make_network = "create it first (docker network create --driver overlay --attachable %s)"

    def __init__(self, stack):
        Preflight.__init__(self, stack.engine, stack.plan)
        self.stack = stack
        self.services = {}
        self.taken = {}

    def _inspect_all(self):
        self.services = dict((s["Spec"]["Name"], s) for s in self.engine.services())
        for service in self.services.values():
            for port in (service["Spec"].get("EndpointSpec") or {}).get("Ports") or []:
                if port.get("PublishedPort") and not owned_by(service["Spec"].get("Labels"), self.plan.name):
                    self.taken[(port.get("Protocol", "tcp"), str(port["PublishedPort"]))] = service["Spec"]["Name"]

    def _engine_problems(self):
        label = {"label": "%s=%s" % (STACK_LABEL, self.plan.name)}
        plain = sorted(c["Names"][0].lstrip("/") for c in self.engine.containers(all=True, filters=label)
                       if SERVICE_LABEL not in (c.get("Labels") or {}))
        if plain:
            self.problems.add("stack", "it runs on the docker engine here (containers %s); a stack runs on one engine: "
                                       "remove it there first (engine docker, state absent)" % ", ".join(plain))

    def _owner_problem(self, where, name):
        existing = self.services.get(name)
        if existing is not None and not owned_by(existing["Spec"].get("Labels"), self.plan.name):
            self.problems.add(where, "name: service %s exists and is not owned by stack %s (no label %s=%s): it is "
                                     "never taken over" % (name, self.plan.name, STACK_LABEL, self.plan.name))

    def _image_found(self, name, spec, image):
        """A task's anonymous volumes go with the task: what an image keeps in one (a database's data
        directory) starts empty in the task an update makes."""
        self.stack.image_ids[spec.image] = image["Id"]
        mounted = set(m["target"] for m in spec.mounts) | set(
            path for c in self.plan.connections if c["from_resource"] == name
            for path in CONNECTION_TYPES[c["type"]].mount_targets(c))
        for path in sorted((image.get("Config") or {}).get("Volumes") or {}):
            if path not in mounted:
                self.stack.warn("resource %s: its image keeps %s in an anonymous volume, which a Swarm update does not "
                                "carry to the new task (it starts empty there); mount a named volume at %s to keep it"
                                % (name, path, path))

    def _port_problems(self, where, name, spec):
        for proto, port, _ip, text in published(spec.ports):
            if port and (proto, port) in self.taken:
                self.problems.add(where, "ports: host port %s/%s (%s) is published by service %s" % (
                    port, proto, text, self.taken[(proto, port)]))

    def _network_problem(self, network, attrs):
        ours = owned_by(attrs.get("Labels"), self.plan.name)
        if network["settings"] is None:
            if attrs.get("Scope") != "swarm" or attrs.get("Driver") != "overlay":
                self.problems.add(network["resource"], "external: network %s is a %s %s network; services join "
                                                       "swarm-wide overlay networks: name an overlay network of the "
                                                       "swarm" % (network["name"], attrs.get("Scope"), attrs.get("Driver")))
            return
        if attrs.get("Scope") != "swarm" or attrs.get("Driver") != "overlay":
            self.problems.add(network.get("resource") or network["by"],
                              "network %s exists as a %s %s network%s; services join swarm-wide overlay networks: %s" % (
                                  network["name"], attrs.get("Scope"), attrs.get("Driver"),
                                  " of this stack's deployment on the docker engine" if ours else
                                  ", not owned by stack %s" % self.plan.name,
                                  "remove that deployment first" if ours else "choose another name"))
            return
        reasons = settings_drift(dict(network["settings"], driver="overlay"), actual_settings(attrs))
        if reasons:
            self.problems.add(network.get("resource") or network["by"],
                              "network %s exists with other settings (%s)%s; Swarm cannot change a network under "
                              "running services: %s" % (
                                  network["name"], ", ".join(reasons),
                                  "" if ours else " and is not owned by stack %s" % self.plan.name,
                                  "remove the stack (state absent) and deploy it again" if ours
                                  else "choose another name"))

    def _more_problems(self):
        self._capability_problems()
        self._placement(self.services)

    def _capability_problems(self):
        """An engine older than the capabilities of services would make them without theirs, silently."""
        version = str(self.engine.api_version or CAPABILITIES_API)
        if _version(version) >= _version(CAPABILITIES_API):
            return
        for name, spec in sorted(self.plan.specs.items()):
            for field in ("cap_add", "cap_drop"):
                if getattr(spec, field):
                    self.problems.add("resource %s" % name, "%s: a Swarm service takes capabilities from Docker API %s "
                                      "(engine 20.10) on, and this engine speaks API %s; upgrade it, or use engine "
                                      "docker" % (field, CAPABILITIES_API, version))

    def _volume_users(self):
        """volume name -> the services that mount it (declared, or by a file connection)."""
        users = {}
        for name, spec in self.plan.specs.items():
            for mount in spec.mounts:
                if mount["type"] == "volume":
                    users.setdefault(mount["source"], set()).add(name)
        for connection in self.plan.connections:
            for volume, _driver, _create in CONNECTION_TYPES[connection["type"]].volumes(connection):
                if connection["from_resource"] in self.plan.specs:
                    users.setdefault(volume, set()).add(connection["from_resource"])
        return users

    def _placement(self, services):
        """Services mounting a volume go to its node: a volume is local to its node. Two services
        on two nodes would each see a volume of their own, and one service moved to another node
        would start on an empty one, with its data left behind (and never purged). The node is the
        one they were placed on before, else this manager, where the stack makes the volume."""
        groups = []
        for volume, users in sorted(self._volume_users().items()):
            joined = [g for g in groups if g[1] & users]
            merged = (set([volume]).union(*[g[0] for g in joined]), set(users).union(*[g[1] for g in joined]))
            groups = [g for g in groups if g not in joined] + [merged]
        nodes = dict((n["ID"], n) for n in self.engine.nodes()) if groups else {}
        for volumes, members in groups:
            node = None
            for member in sorted(members):
                constraints = (((services.get(member) or {}).get("Spec", {}).get("TaskTemplate") or {})
                               .get("Placement") or {}).get("Constraints") or []
                for constraint in constraints:
                    candidate = constraint.replace(" ", "")[len(NODE_CONSTRAINT):] \
                        if constraint.replace(" ", "").startswith(NODE_CONSTRAINT) else None
                    ready = ((nodes.get(candidate) or {}).get("Status") or {}).get("State") == "ready"
                    if node is None and candidate and ready:
                        node = candidate
            node = node or self.stack.local_node
            for member in sorted(members):
                resource = self.plan.by_name[member]
                limit, replicas = resource.get("max_replicas_per_node"), resource.get("replicas") or 1
                if limit is not None and limit < replicas:
                    others = ", ".join(sorted(members - set([member])))
                    self.problems.add("resource %s" % member, "max_replicas_per_node: %s of its %s replicas fit on a node, "
                                      "but it mounts volume %s%s, so all of them run on one node (a volume is local "
                                      "to its node)" % (limit, replicas, ", ".join(sorted(volumes)),
                                                        " with %s" % others if others else ""))
                self.stack.placement[member] = node


def _version(text):
    return tuple(int(part) if part.isdigit() else 0 for part in text.split("."))
