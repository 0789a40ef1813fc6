# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replicas of a container resource on one Docker engine.

`replicas: N` runs N containers `<name>-1 .. <name>-N` (one, `<name>`, when N is 1), each
labelled with its resource and number and carrying the alias `<name>` on every network of the
resource, so Docker's DNS answers `<name>` with all of them, as Compose's `--scale` does.
They are converged one at a time, so an update rolls: each one replaced start-first or
stop-first (rolling.py, container.py) before the next. Scaling creates or removes only the
replicas concerned; going between one and several renames the kept one (no restart).
On Swarm `replicas` keeps its meaning (swarm.py): this file is the docker engine's.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    REPLICA_LABEL, RESOURCE_LABEL, STACK_LABEL, ClockworkError)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import ContainerConverger
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import duration_ns
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import engine_words
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError
from ansible_collections.clockwork.connections.plugins.module_utils.apply.rolling import MARK, remove_gracefully

# How a resource's containers are replaced; the stack module's (and Swarm's) fields.
UPDATE_ARGS = dict(
    update_order=dict(type="str", choices=["start-first", "stop-first"]),
    stop_grace_period=dict(type="str"),
)
STACK_CONTAINERS = ("stack-containers",)   # the engine's memory of the stack's containers, for one run


def replica_names(name, count):
    """The container names of a resource with `count` replicas."""
    if count <= 1:
        return [name]
    return ["%s-%d" % (name, number) for number in range(1, count + 1)]


def grace_seconds(resource):
    """stop_grace_period in whole seconds (the engine's unit), 10 when not declared."""
    declared = resource.get("stop_grace_period")
    if not declared:
        return 10
    return max(0, int(round(duration_ns(declared) / 1e9)))


def replica_problems(resource, engine):
    """What is wrong with a resource's replicas and update fields alone: [(field, problem)]."""
    problems = []
    if resource.get("stop_grace_period"):
        try:
            duration_ns(resource["stop_grace_period"])
        except ClockworkError as exc:
            problems.append(("stop_grace_period", exc.msg))
    count = resource.get("replicas")
    if engine != "docker" or count is None:
        return problems
    if count < 1:
        problems.append(("replicas", "must be 1 or more on the docker engine, got %s (state: absent removes the "
                                     "resource)" % count))
    return problems


def replicated_problems(resources, connections, parsed_ports, types):
    """What several replicas cannot share on one engine: {resource name: [(field, problem)]}."""
    problems = {}
    servers = set(c["to_resource"] for c in connections if types[c["type"]].single_to)
    for resource in resources:
        if resource["type"] != "container" or (resource.get("replicas") or 1) <= 1:
            continue
        found = problems.setdefault(resource["name"], [])
        fixed = ["%s:%s" % (host_port, port) for port, _ip, host_port in parsed_ports(resource) if host_port]
        if fixed:
            found.append(("replicas", "%s replicas cannot all publish host port %s; publish a random host port "
                                      "(\"%s\") or run one replica" % (
                                          resource["replicas"], fixed[0], fixed[0].split(":", 1)[1])))
        if resource["name"] in servers:
            found.append(("replicas", "it is the server of %s, which runs as one container on the docker engine "
                                      "(each replica would hold data of its own)" % ", ".join(sorted(
                                          c["label"] for c in connections if c["to_resource"] == resource["name"]
                                          and types[c["type"]].single_to))))
    return dict((k, v) for k, v in problems.items() if v)


def replica_spec(spec, resource, number, count):
    """The spec of replica `number` of `count`, from the resource's spec."""
    replica = copy.copy(spec)
    replica.name = replica_names(resource, count)[number - 1]
    replica.alias = resource
    replica.labels = dict(spec.labels, **{RESOURCE_LABEL: resource, REPLICA_LABEL: str(number)})
    replica.mounts = [dict(m) for m in spec.mounts]
    if count > 1:
        replica.networks = [dict(n, aliases=sorted(set(n["aliases"]) | set([resource]))) for n in spec.networks]
    else:
        replica.networks = [dict(n) for n in spec.networks]
    replica.env = dict(spec.env)
    return replica


# The fields of a check (see each type's checks) that name a container: where it runs (`container`),
# whose env it reads (`env_from`), and what it is about (`target`, `host`, `peer`).
CONTAINER_KEYS = ("container", "env_from", "target", "host", "peer")


def expand_checks(checks, containers):
    """Every check run against every replica: a check inside a replicated resource (`container`)
    runs in each of its containers, one about a replicated resource (`target`, `host`, an
    http URL's host) is made about each of its containers. `containers`: resource -> names,
    for the replicated ones only."""
    expanded = []
    for check in checks:
        variants = [check]
        for key in CONTAINER_KEYS:
            variants = [dict(v, **{key: name}) if v.get(key) in containers else v for v in variants
                        for name in containers.get(v.get(key), [None])]
        url = re.match(r"^(http://)([^/:]+)(.*)$", check.get("url") or "")
        if url and url.group(2) in containers:   # https stays on the name its certificate is for
            variants = [dict(v, url=url.group(1) + name + url.group(3)) for v in variants
                        for name in containers[url.group(2)]]
        if len(variants) > 1:
            for variant in variants:
                where = [variant.get(k) for k in CONTAINER_KEYS if variant.get(k)]
                if url and url.group(2) in containers:
                    where.append(re.match(r"^http://([^/:]+)", variant["url"]).group(1))
                variant["connection"] = "%s [%s]" % (check.get("connection"), ", ".join(where))
        expanded.extend(variants)
    return expanded


class ReplicaConverger(object):
    """Brings the containers of one resource to `count` replicas of `spec`, one at a time.
    Returns [(container name, outcome)] in replica order, the removed ones last."""

    def __init__(self, engine):
        self.engine = engine

    def converge(self, spec, resource, count):
        existing = self._containers(spec.stack, resource)
        if spec.state == "absent":
            return [(name, ContainerConverger(self.engine).converge(_named(spec, name)))
                    for name in sorted(existing, key=_number) or [resource]]
        wanted = replica_names(resource, count)
        outcomes = []
        renamed = self._rename_for_scale(resource, wanted, existing)
        for number, name in enumerate(wanted, 1):
            outcome = ContainerConverger(self.engine).converge(replica_spec(spec, resource, number, count))
            if name in renamed:
                outcome["changed"] = True
                outcome["actions"].insert(0, "rename %s to %s" % (renamed[name], name))
            outcomes.append((name, outcome))
        for name in sorted((n for n in existing if n not in wanted and n not in renamed.values()),
                           key=_number, reverse=True):
            outcomes.append((name, self._remove(name, existing[name], spec.stop_grace)))
        return outcomes

    def _containers(self, stack, resource):
        """The resource's containers by name (not those set aside by a replacement)."""
        listed = self.engine._cache.get(STACK_CONTAINERS)  # pylint: disable=protected-access  # per-run memory
        if listed is None:
            try:
                listed = self.engine.containers(all=True, filters={"label": "%s=%s" % (STACK_LABEL, stack)})
            except APIError as exc:
                raise ClockworkError("cannot list the containers of stack %s: %s" % (stack, engine_words(exc)))
            self.engine._cache[STACK_CONTAINERS] = listed  # pylint: disable=protected-access
        found = {}
        for container in listed:
            name = (container.get("Names") or ["/"])[0].lstrip("/")
            if (container.get("Labels") or {}).get(RESOURCE_LABEL) == resource and MARK not in name:
                found[name] = container
        return found

    def _rename_for_scale(self, resource, wanted, existing):
        """Between one replica and several, the kept container changes name (`api` <-> `api-1`)
        without a restart. Returns {new name: old name}."""
        renames = {}
        if len(wanted) > 1 and resource in existing and wanted[0] not in existing:
            renames[wanted[0]] = resource
        elif wanted == [resource] and resource not in existing and resource + "-1" in existing:
            renames[resource] = resource + "-1"
        for new, old in renames.items():
            try:
                self.engine.rename(existing[old]["Id"], new)
            except APIError as exc:
                raise ClockworkError("cannot rename container %s to %s: %s" % (old, new, engine_words(exc)))
        return renames

    def _remove(self, name, container, grace):
        """A replica scaled away: off its networks, stopped with its grace period, removed.
        Its volumes stay (data is removed only by destroy with purge)."""
        outcome = {"changed": True, "actions": ["remove"], "reasons": ["replicas"],
                   "diff": {"before": {"name": name}, "after": {}}, "container": {"name": name, "state": "absent"}}
        remove_gracefully(self.engine, name, container["Id"], grace)
        return outcome


def _named(spec, name):
    named = copy.copy(spec)
    named.name = name
    return named


def _number(name):
    found = re.search(r"-(\d+)$", name)
    return int(found.group(1)) if found else 0
