# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One container resource as a Swarm service, in plain data and without the engine.

`wanted_service` turns the resource's planned spec (plan.py, every contribution merged) into
the normal form of what the collection manages on a service: image, args, env, mounts,
secrets, configs, healthcheck, networks, placement, mode, endpoint, restart and update order,
and the labels it sets. `managed_part` reads the same normal form out of a service the engine
holds, so that the two compare field by field; `service_body` lays the wanted form over the
service's current spec, so that an update changes what we own and keeps everything else
(resources, logging, labels or constraints somebody else set). Last, the plain-data helpers of a
spec a release recorded, which apply/swarm/rollback.py sends back whole."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import hashlib
import json

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    ENV_NAME, STACK_LABEL, ClockworkError, env_dict)
from ansible_collections.clockwork.connections.plugins.module_utils.options.registry import TABLE, not_on_swarm
from ansible_collections.clockwork.connections.plugins.module_utils.options.security import capability
from ansible_collections.clockwork.connections.plugins.module_utils.options.storage import (
    mount_body, read_mount, tmpfs_mount)
from ansible_collections.clockwork.connections.plugins.module_utils.options.table import SwarmField, duration_ns, unset
from ansible_collections.clockwork.connections.plugins.module_utils.differences import differences, entries, titled, transition
from ansible_collections.clockwork.connections.plugins.module_utils.masking import secret_env

# What a container resource takes on top of the container's options; the docker engine
# refuses replicas above 1 (plan.py), and ignores the rest.
SERVICE_ARGS = dict(
    replicas=dict(type="int", default=1),
    endpoint_mode=dict(type="str", choices=["vip", "dnsrr"]),
    max_replicas_per_node=dict(type="int"),
    plain_env=dict(type="list", elements="str", default=[]),
)

SPEC_HASH_LABEL = "io.clockwork.spec-hash"
# On the tasks: the image the manager resolved the tag to (a rebuilt tag rolls the tasks), and
# the env names delivered as secret files (`<NAME>_FILE`), which the checks read back.
IMAGE_ID_LABEL = "io.clockwork.image-id"
SECRET_ENV_LABEL = "io.clockwork.secret-env"
# Task containers say whose they are with a label of their own: the docker engine's destroy (and
# anything else that removes the stack's containers by io.clockwork.stack) must not kill the
# tasks of its services, which the swarm would only start again.
TASK_STACK_LABEL = "io.clockwork.swarm-stack"
# The placement that keeps services sharing a node-local volume on one node.
NODE_CONSTRAINT = "node.id=="
SECRETS_DIR = "/run/secrets/"
# Docker's own stop grace period, which a service without StopGracePeriod gets.
DEFAULT_STOP_GRACE_NS = 10 * 10 ** 9
# Options a service's tasks cannot be given (a task's HostConfig is the engine's), from the option
# table (options/, an option whose `swarm` is None): refused before any change.
NOT_ON_SWARM = not_on_swarm()
# Options the table maps to a service field itself (a SwarmField): compared and written as it says, when
# declared, or when the last run set them (this label lists those); otherwise the field is somebody
# else's, and kept (a memory limit set by hand).
MAPPED = tuple(o for o in TABLE if isinstance(o.swarm, SwarmField))
OPTIONS_LABEL = "io.clockwork.swarm-options"
# The Docker API version from which a service takes capabilities (engine 20.10).
CAPABILITIES_API = "1.41"


def service_problems(resource):
    """What a container resource cannot be on Swarm, without the engine: [(field, problem)]."""
    problems = []
    if resource.get("replicas") is not None and resource["replicas"] < 0:
        problems.append(("replicas", "must be 0 or more, got %s" % resource["replicas"]))
    if resource.get("max_replicas_per_node") is not None and resource["max_replicas_per_node"] < 1:
        problems.append(("max_replicas_per_node", "must be 1 or more, got %s" % resource["max_replicas_per_node"]))
    for name in resource.get("plain_env") or []:
        if not ENV_NAME.match(name):
            problems.append(("plain_env", "%s is not an environment variable name" % name))
    for field in NOT_ON_SWARM:
        if resource.get(field):
            problems.append((field, "is not on Swarm: a service's tasks cannot be given it; deploy this resource "
                                    "with engine docker, or drop %s" % field))
    for option in MAPPED:
        refused = option.swarm.refuse(resource.get(option.name)) if resource.get(option.name) else None
        if refused:
            problems.append((option.name, refused))
    problems.extend(("tmpfs", problem) for problem in _tmpfs_problems(resource))
    for port in resource.get("ports") or []:
        if isinstance(port, dict) and port.get("host_ip") or not isinstance(port, dict) and str(port).count(":") == 2:
            problems.append(("ports", "%s binds a host address; Swarm publishes a port on every address of "
                                      "the node (drop the address)" % (port,)))
    return problems


def _tmpfs_problems(resource):
    """What the tmpfs option's entries cannot be as a service's tmpfs mounts (its options, a target
    that a mount has too)."""
    entries = resource.get("tmpfs") or []
    targets = set((m or {}).get("target") for m in resource.get("mounts") or [] if isinstance(m, dict))
    problems = []
    for entry in [entries] if isinstance(entries, str) else entries:
        try:
            mount = tmpfs_mount(str(entry))
        except ClockworkError as exc:
            problems.append(exc.msg)
            continue
        if mount["target"] in targets:
            problems.append("%s is a target of mounts too: give it once" % mount["target"])
    return problems


def tmpfs_mounts(spec):
    """The container's tmpfs paths as a service's tmpfs mounts (in the normal form of mounts)."""
    return [tmpfs_mount(entry) for entry in spec.tmpfs or []]


def secret_env_names(env, contributed, plain):
    """(names delivered as secret files, names kept in the env on request): the env a connection
    marks secret, and every variable whose name or value says secret (masking.py's rule)."""
    secret = set(contributed or []) | set(k for k, v in env.items() if secret_env(k, v))
    return sorted(secret - set(plain or [])), sorted(secret & set(plain or []))


def file_env(name):
    """Where a secret env value is read from: `<NAME>_FILE`, the official images' convention."""
    return name + "_FILE", SECRETS_DIR + name


def wanted_service(spec, resource, env, mounts, networks, secrets, configs, node=None, job=False,
                   endpoint_mode="vip", image_id=None, secret_names=()):
    """The managed part of the service for one resource, in normal form.

    `spec` is the resource's ContainerSpec; env, mounts and networks are its final ones (every
    contribution merged, secrets taken out); secrets and configs are [(object name, target)]."""
    published = sorted((p[0].split("/")[1], int(p[0].split("/")[0]), int(p[2]) if p[2] else None)
                       for p in spec.ports if p[2] is not None)
    task_labels = dict((k, v) for k, v in spec.labels.items() if k != STACK_LABEL)
    task_labels[TASK_STACK_LABEL] = spec.stack
    if image_id:
        task_labels[IMAGE_ID_LABEL] = image_id
    if secret_names:
        task_labels[SECRET_ENV_LABEL] = ",".join(sorted(secret_names))
    replicas = resource.get("replicas")
    wanted = {
        "image": spec.image,
        "args": list(spec.command) if spec.command is not None else None,
        "env": dict(env),
        "mounts": sorted(_mount_entry(m) for m in list(mounts) + tmpfs_mounts(spec)),
        "secrets": sorted([name, target] for name, target in secrets),
        "configs": sorted([name, target] for name, target in configs),
        "healthcheck": dict(spec.healthcheck) if spec.healthcheck else None,
        "task_labels": task_labels,
        "networks": sorted([n["name"], sorted(n.get("aliases") or [])] for n in networks),
        "node": node,
        "max_replicas": resource.get("max_replicas_per_node"),
        "mode": "job" if job else "replicated",
        "replicas": 1 if replicas is None else replicas,
        "endpoint_mode": endpoint_mode,
        "ports": [[proto, target, host, "host" if endpoint_mode == "dnsrr" else "ingress"]
                  for proto, target, host in published],
        "restart": "on-failure" if job else "any",
        # A new task starts before an old one stops, except where two must not run at once: on one data
        # directory (a volume), or beyond max_replicas_per_node (the new task would have no node to go to).
        "update_order": None if job else resource.get("update_order") or (
            "stop-first" if any(m["type"] == "volume" for m in mounts) or resource.get("max_replicas_per_node")
            else "start-first"),
        "stop_grace_period": stop_grace_ns(resource),
        "cap_add": list(spec.cap_add),
        "cap_drop": list(spec.cap_drop),
        "labels": dict(spec.labels),
    }
    for option in MAPPED:
        setting = getattr(spec, option.name)
        wanted[option.name] = None if unset(setting) else option.swarm.normal(setting)
    declared = [o.name for o in MAPPED if wanted[o.name] is not None]
    if declared:
        wanted["labels"][OPTIONS_LABEL] = ",".join(declared)
    wanted["labels"][SPEC_HASH_LABEL] = spec_hash(wanted)
    return wanted


# A mount's settings beyond type, source, target and read_only, in the order a service's mount entry adds them.
_MOUNT_EXTRAS = ("propagation", "nocopy", "tmpfs_size", "tmpfs_mode")


def _mount_entry(mount):
    """A mount as the managed part holds it: [type, source, target, read_only], and its other settings
    (a bind's propagation, a tmpfs's size ...) as a last item only when it has any."""
    extras = dict((k, mount[k]) for k in _MOUNT_EXTRAS if mount.get(k) is not None)
    return [mount["type"], mount["source"] or "", mount["target"], bool(mount["read_only"])] + ([extras] if extras else [])


def _mount_of_entry(entry):
    return dict(entry[4] if len(entry) > 4 else {}, type=entry[0], source=entry[1], target=entry[2], read_only=entry[3])


def stop_grace_ns(resource):
    """stop_grace_period in nanoseconds, as the service keeps it; Docker's own 10s when not declared."""
    declared = resource.get("stop_grace_period")
    return duration_ns(declared) if declared else DEFAULT_STOP_GRACE_NS


def spec_hash(wanted):
    """A digest of the managed part (its own label left out): what the last run applied.
    A field at its default is left out too, so a field added later moves no existing hash."""
    shown = dict(wanted, labels=dict((k, v) for k, v in wanted["labels"].items() if k != SPEC_HASH_LABEL))
    if shown.get("stop_grace_period") == DEFAULT_STOP_GRACE_NS:
        del shown["stop_grace_period"]
    for key in ("cap_add", "cap_drop") + tuple(o.name for o in MAPPED):
        if not shown.get(key):
            shown.pop(key, None)
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _healthcheck(raw):
    if not raw or not raw.get("Test"):
        return None
    return {"test": list(raw["Test"]), "interval": raw.get("Interval", 0), "timeout": raw.get("Timeout", 0),
            "retries": raw.get("Retries", 0), "start_period": raw.get("StartPeriod", 0)}


def managed_part(service_spec, wanted, network_names):
    """The managed part of a service the engine holds, in the normal form of `wanted_service`;
    labels are compared on the keys we set. `network_names` maps network ids to names."""
    template = service_spec.get("TaskTemplate") or {}
    container = template.get("ContainerSpec") or {}
    placement = template.get("Placement") or {}
    mode = service_spec.get("Mode") or {}
    endpoint = service_spec.get("EndpointSpec") or {}
    labels = service_spec.get("Labels") or {}
    task_labels = container.get("Labels") or {}
    nodes = [c.replace(" ", "")[len(NODE_CONSTRAINT):] for c in placement.get("Constraints") or []
             if c.replace(" ", "").startswith(NODE_CONSTRAINT)]
    job = "ReplicatedJob" in mode
    managed = _managed_options(labels, wanted)
    return dict(((o.name, o.swarm.get(service_spec) if o.name in managed else None) for o in MAPPED), **{
        "image": container.get("Image"),
        "args": container.get("Args"),
        "env": env_dict(container.get("Env")),
        "mounts": sorted(_mount_entry(read_mount(m)) for m in container.get("Mounts") or []),
        "secrets": sorted([s.get("SecretName"), (s.get("File") or {}).get("Name")] for s in container.get("Secrets") or []),
        "configs": sorted([c.get("ConfigName"), (c.get("File") or {}).get("Name")] for c in container.get("Configs") or []),
        "healthcheck": _healthcheck(container.get("Healthcheck")),
        "task_labels": dict((k, task_labels.get(k)) for k in set(wanted["task_labels"]) | _ours(task_labels)),
        "networks": sorted([network_names.get(n.get("Target"), n.get("Target")), sorted(n.get("Aliases") or [])]
                           for n in template.get("Networks") or []),
        "node": nodes[0] if len(nodes) == 1 else (nodes or None),
        "max_replicas": placement.get("MaxReplicas") or None,
        "mode": "job" if job else "replicated",
        "replicas": (mode.get("ReplicatedJob") or {}).get("TotalCompletions", 1) if job
        else (mode.get("Replicated") or {}).get("Replicas", 1),
        "endpoint_mode": endpoint.get("Mode") or "vip",
        "ports": sorted([p.get("Protocol", "tcp"), p.get("TargetPort"), p.get("PublishedPort"),
                         p.get("PublishMode", "ingress")] for p in endpoint.get("Ports") or []),
        "restart": (template.get("RestartPolicy") or {}).get("Condition", "any"),
        "update_order": None if job else (service_spec.get("UpdateConfig") or {}).get("Order", "stop-first"),
        "stop_grace_period": container.get("StopGracePeriod") or DEFAULT_STOP_GRACE_NS,
        "cap_add": sorted(set(capability(c) for c in container.get("CapabilityAdd") or [])),
        "cap_drop": sorted(set(capability(c) for c in container.get("CapabilityDrop") or [])),
        "labels": dict((k, labels.get(k)) for k in set(wanted["labels"]) | (set([OPTIONS_LABEL]) & set(labels))),
    })


def _managed_options(labels, wanted):
    """The mapped options a service's fields are ours for: declared now, or set by the last run."""
    return set((labels or {}).get(OPTIONS_LABEL, "").split(",")) | set(
        o.name for o in MAPPED if wanted.get(o.name) is not None)


def _ours(labels):
    """Task labels only the collection sets: a stale one (a secret env name list) is drift too."""
    return set(k for k in labels or {} if k in (IMAGE_ID_LABEL, SECRET_ENV_LABEL, STACK_LABEL))


# What makes a service change, in the order its reasons are given, like a container's drift.
CHANGE_RULES = [entries("env"), entries("task_labels", "task labels"), entries("labels"), transition("replicas")] + [
    titled(key, {"node": "placement", "max_replicas": "max replicas per node", "cap_add": key, "cap_drop": key}.get(
        key, key.replace("_", " ")))
    for key in ("image", "args", "mounts", "secrets", "configs", "healthcheck", "networks", "node", "max_replicas",
                "mode", "endpoint_mode", "ports", "restart", "update_order", "stop_grace_period",
                "cap_add", "cap_drop")] + [titled(o.name, o.name) for o in MAPPED]


def changes(wanted, actual):
    """What differs, in a few words per field."""
    return differences(wanted, actual, CHANGE_RULES)


def _set(mapping, key, value):
    if value is None or value == []:
        mapping.pop(key, None)
    else:
        mapping[key] = value


def service_body(name, wanted, current=None, secret_ids=None, config_ids=None):
    """The whole service spec to send: the current one (None for a new service) with the
    managed part laid over it. Secret and config ids come from their names."""
    body = copy.deepcopy(current or {})
    body["Name"] = name
    managed = _managed_options(body.get("Labels"), wanted)
    body["Labels"] = dict(body.get("Labels") or {}, **wanted["labels"])
    if OPTIONS_LABEL not in wanted["labels"]:
        body["Labels"].pop(OPTIONS_LABEL, None)
    template = body.setdefault("TaskTemplate", {})
    container = template.setdefault("ContainerSpec", {})
    container["Image"] = wanted["image"]
    _set(container, "Args", wanted["args"])
    container["Env"] = ["%s=%s" % item for item in sorted(wanted["env"].items())]
    _set(container, "Mounts", [mount_body(_mount_of_entry(entry)) for entry in wanted["mounts"]])
    _set(container, "Secrets", [{"SecretName": secret, "SecretID": (secret_ids or {}).get(secret, secret),
                                 "File": {"Name": target, "UID": "0", "GID": "0", "Mode": 0o444}}
                                for secret, target in wanted["secrets"]])
    _set(container, "Configs", [{"ConfigName": config, "ConfigID": (config_ids or {}).get(config, config),
                                 "File": {"Name": target, "UID": "0", "GID": "0", "Mode": 0o444}}
                                for config, target in wanted["configs"]])
    health = wanted["healthcheck"]
    _set(container, "Healthcheck", {"Test": health["test"], "Interval": health["interval"], "Timeout": health["timeout"],
                                    "Retries": health["retries"], "StartPeriod": health["start_period"]}
         if health else None)
    labels = dict((k, v) for k, v in (container.get("Labels") or {}).items() if k not in _ours(container.get("Labels")))
    container["Labels"] = dict(labels, **wanted["task_labels"])
    container["StopGracePeriod"] = wanted.get("stop_grace_period", DEFAULT_STOP_GRACE_NS)
    _set(container, "CapabilityAdd", wanted.get("cap_add"))
    _set(container, "CapabilityDrop", wanted.get("cap_drop"))
    template["Networks"] = [{"Target": network, "Aliases": aliases} for network, aliases in wanted["networks"]]
    placement = template.setdefault("Placement", {})
    constraints = [c for c in placement.get("Constraints") or [] if not c.replace(" ", "").startswith(NODE_CONSTRAINT)]
    if wanted["node"]:
        constraints.append(NODE_CONSTRAINT + wanted["node"])
    _set(placement, "Constraints", constraints)
    _set(placement, "MaxReplicas", wanted["max_replicas"])
    template["RestartPolicy"] = dict(template.get("RestartPolicy") or {}, Condition=wanted["restart"])
    if wanted["mode"] == "job":
        body["Mode"] = {"ReplicatedJob": {"MaxConcurrent": max(1, wanted["replicas"]),
                                          "TotalCompletions": wanted["replicas"]}}
        body.pop("UpdateConfig", None)
    else:
        body["Mode"] = {"Replicated": {"Replicas": wanted["replicas"]}}
        update = body.setdefault("UpdateConfig", {})
        update.setdefault("Parallelism", 1)
        update.setdefault("FailureAction", "pause")
        update["Order"] = wanted["update_order"]
    for option in MAPPED:
        if option.name in managed:
            option.swarm.put(body, wanted.get(option.name))
    endpoint = body.setdefault("EndpointSpec", {})
    endpoint["Mode"] = wanted["endpoint_mode"]
    _set(endpoint, "Ports", [dict([("Protocol", proto), ("TargetPort", target), ("PublishMode", mode)]
                                  + ([("PublishedPort", published)] if published else []))
                             for proto, target, published, mode in wanted["ports"]])
    return body


def template_key(template):
    """A task template in a form that the copy each task carries compares equal to (the engine
    adds `Runtime` to the service's only)."""
    return json.dumps(dict((k, v) for k, v in (template or {}).items() if k != "Runtime"), sort_keys=True)


# -- a spec a release recorded (releases/record.py), as apply/swarm/rollback.py puts it back --

JOBS = ("ReplicatedJob", "GlobalJob")


def recorded_specs(release):
    """name -> the whole spec a release recorded, for a release of the swarm target ({} otherwise)."""
    if (release or {}).get("target") != "swarm":
        return {}
    return dict((name, service["spec"]) for name, service in (release.get("services") or {}).items())


def spec_options(spec):
    """The keyword arguments of the gateway's service create and update that send `spec` whole."""
    spec = copy.deepcopy(spec)
    return dict(task_template=spec.get("TaskTemplate") or {}, labels=spec.get("Labels") or {},
                mode=spec.get("Mode"), update_config=spec.get("UpdateConfig"),
                rollback_config=spec.get("RollbackConfig"), endpoint_spec=spec.get("EndpointSpec"))


def order_of(spec):
    """How Swarm replaces the tasks for this spec, in the report's words."""
    return ((spec.get("UpdateConfig") or {}).get("Order") or "stop-first") if "Replicated" in (
        spec.get("Mode") or {"Replicated": {}}) else "a job"


def image_of(spec):
    """(what the manager must have: the image id the apply resolved, else the spec's reference; the reference)."""
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    reference = container.get("Image") or ""
    return (container.get("Labels") or {}).get(IMAGE_ID_LABEL) or reference.split("@")[0], reference


def relinked(spec, owned):
    """`spec` with each secret and config it names by an id that is gone, but whose name the stack
    owns now (`owned`: {"secret": {name: id}, "config": {...}}), under that object's id: a name
    carries the digest of the content (apply/swarm/secrets.py), so the object is the same value made
    again (a destroy, then a deploy). One gone by name too stays as it is, and is refused."""
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    moved = []
    for kind, key in (("secret", "Secrets"), ("config", "Configs")):
        ids = set(owned[kind].values())
        for index, reference in enumerate(container.get(key) or []):
            name = reference.get(kind.title() + "Name")
            if reference.get(kind.title() + "ID") not in ids and name in owned[kind]:
                moved.append((key, index, kind.title() + "ID", owned[kind][name]))
    if not moved:
        return spec
    spec = copy.deepcopy(spec)
    for key, index, field, object_id in moved:
        spec["TaskTemplate"]["ContainerSpec"][key][index][field] = object_id
    return spec


def mode_kind(spec):
    """Replicated, ReplicatedJob, Global ...: what an update of a service cannot change."""
    return next(iter((spec or {}).get("Mode") or {"Replicated": {}}), "Replicated")


def is_job(spec):
    return mode_kind(spec) in JOBS
