# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A release made from the engine as it runs right after an apply, and `record_release`, the hook
both appliers call at the end of an apply that changed something (apply/applier.py apply_state).

Each container is recorded as `docker inspect` reads it back, not as the plan wanted it: its
image by ID (a tag moves, an ID does not), its whole Config and HostConfig, the endpoint settings
of each network it is on (what the engine's create takes as NetworkingConfig), its name and
labels. That is enough to create it again exactly as it ran, whatever the declaration says by then.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import getpass
import hashlib
import json
import os
import socket
import time

from ansible_collections.clockwork.connections.plugins.module_utils.apply.rolling import MARK
from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    RESOURCE_LABEL, STACK_LABEL, connection_ends)
from ansible_collections.clockwork.connections.plugins.module_utils.connection import connection_label
from ansible_collections.clockwork.connections.plugins.module_utils.graph import connection_labels
from ansible_collections.clockwork.connections.plugins.module_utils.masking import (
    command_secrets, declared_secrets, env_secrets, secret_env)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore

# What the engine's create takes per network (NetworkingConfig.EndpointsConfig); the rest of an
# endpoint (its address, gateway, MAC when not asked for) is the engine's choice at each start.
ENDPOINT_FIELDS = ("Aliases", "IPAMConfig", "Links", "DriverOpts")
DATABASE = "database"


def controller_identity():
    """user@host of this process: the controller itself where the apply runs in its process (the
    stack action plugin on the local connection). A module on a remote host is told by its caller."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):   # no name for the uid (a container's user): its number
        user = str(os.getuid())
    return "%s@%s" % (user, socket.gethostname())


def utc_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def plan_digest(plan):
    """sha256 of the plan as plain data (plan.as_dict: names and settings, never env values)."""
    if not plan:
        return ""
    return hashlib.sha256(json.dumps(plan, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def env_of(config):
    """Config.Env as name -> value."""
    return dict(str(item).partition("=")[::2] for item in config.get("Env") or [])


def secret_names(env, secrets):
    """The env names whose value is, or holds, a secret: by its name or its form (masking.py),
    or holding a value the declaration declares secret (a password a connection contributed)."""
    names = set()
    for name, value in env.items():
        if secret_env(name, value) or any(secret in value for secret in secrets if len(secret) >= 4):
            names.add(name)
    return sorted(names)


def _text(value):
    return value if isinstance(value, str) else ("" if value is None else str(value))


def container_record(attrs, secrets=()):
    """What a release keeps of one container (its inspect, `attrs`)."""
    config = copy.deepcopy(attrs.get("Config") or {})
    endpoints = {}
    for network, point in ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).items():
        endpoint = dict((key, copy.deepcopy(point[key])) for key in ENDPOINT_FIELDS if point.get(key))
        if endpoint.get("Aliases"):
            # The engine adds the container's short id itself: not a setting, and another after a recreate.
            endpoint["Aliases"] = [a for a in endpoint["Aliases"] if a != _text(attrs.get("Id"))[:12]]
        endpoints[network] = endpoint
    labels = dict((_text(k), _text(v)) for k, v in (config.get("Labels") or {}).items())
    return {
        "resource": labels.get(RESOURCE_LABEL, ""),
        "name": _text(attrs.get("Name")).lstrip("/"),
        "id": _text(attrs.get("Id")),
        "image": _text(config.get("Image")),
        "image_id": _text(attrs.get("Image")),
        "state": _text((attrs.get("State") or {}).get("Status")),
        "config": config,
        "host_config": copy.deepcopy(attrs.get("HostConfig") or {}),
        "endpoints": endpoints,
        "labels": labels,
        "secret_env": secret_names(env_of(config), secrets),
    }


def stack_containers(gateway, stack):
    """name -> inspect of every container of the stack as it is now (none set aside)."""
    found = {}
    for summary in gateway.containers(all=True, filters={"label": "%s=%s" % (STACK_LABEL, stack)}):
        name = ((summary.get("Names") or ["/"])[0]).lstrip("/")
        if not name or MARK in name:
            continue   # set aside, or a start-first successor, during a replacement (apply/rolling.py): not the stack
        attrs = gateway.container_now(name)
        if attrs is not None and ((attrs.get("Config") or {}).get("Labels") or {}).get(STACK_LABEL) == stack:
            found[name] = attrs
    return found


def stack_services(gateway, stack):
    """name -> {id, version, spec} of every Swarm service of the stack (the swarm target)."""
    found = {}
    for service in gateway.services(filters={"label": "%s=%s" % (STACK_LABEL, stack)}) or []:
        spec = copy.deepcopy(service.get("Spec") or {})
        # Its networks by id, with their names: after a destroy and a deploy the same names have new ids.
        targets = [n.get("Target") for n in (spec.get("TaskTemplate") or {}).get("Networks") or []]
        networks = dict((t, _text(gateway.network(t)["Name"])) for t in targets
                        if t and gateway.network(t) is not None and gateway.network(t).get("Name"))
        found[_text(spec.get("Name"))] = {"id": _text(service.get("ID")),
                                          "version": int((service.get("Version") or {}).get("Index") or 0),
                                          "spec": spec, "networks": networks}
    return found


def applied_in_database(_gateway, _connection):
    """Hook: the files the database itself records as applied (its tracking table, with their
    checksums: PostgreSQL's public.clockwork_schema_migrations, MySQL's journal), including those
    the declaration no longer names. Not read yet (it needs a login to the server, which the apply
    just closed): None, and a release takes the files from the plan instead (`migrations_from`: plan),
    which after a successful apply are exactly the files applied, with the same checksums."""
    return None


def snapshots_of(label, results):
    """Hook: the snapshots taken for a connection in this apply, from its result (`extra["snapshot"]`
    when the database's step records one: MySQL's rehearsal names it; issue 35 part 4 adds PostgreSQL)."""
    result = (results or {}).get(label) or (results or {}).get("connection " + label)
    snapshot = getattr(result, "extra", {}).get("snapshot") if result is not None else None
    if isinstance(snapshot, dict) and snapshot.get("name"):
        return [dict((k, snapshot[k]) for k in ("name", "created", "size", "volume", "kind") if k in snapshot)]
    if isinstance(snapshot, str) and snapshot:
        return [{"name": snapshot}]
    return []


def applied_here(report, label):
    """The files this apply applied for a connection, as "kind name" (its entry's actions)."""
    done = set()
    for entry in report.get("entries") or []:
        if entry.get("kind") == "connection" and entry.get("name") == label:
            done.update(a[len("apply "):] for a in entry.get("actions") or [] if a.startswith("apply "))
    return done


def databases_of(gateway, params, report, results=None):
    """connection label -> its database, the migrations applied with their checksums, the snapshots."""
    sql = (report.get("plan") or {}).get("sql") or {}
    databases = {}
    connections = params.get("connections") or []
    for planned, connection in zip(connection_labels(connections), connections):
        if connection.get("type") != DATABASE:
            continue
        source, target = connection_ends(connection)
        # The plan names it `connection database api -> db` (graph.py), its result `database api -> db`.
        label = planned[len("connection "):] if planned.startswith("connection ") else planned
        done = applied_here(report, connection_label(DATABASE, source, target))
        recorded = applied_in_database(gateway, connection)
        steps = recorded if recorded is not None else sql.get(planned) or []
        databases[label] = {
            "to": _text(target), "engine": _text(connection.get("engine") or "postgresql"),
            "database": _text(connection.get("database_name")),
            "migrations": [{"kind": _text(s["kind"]), "name": _text(s["name"]), "sha256": _text(s["sha256"]),
                            "applied_here": "%s %s" % (s["kind"], s["name"]) in done} for s in steps],
            "migrations_from": "database" if recorded is not None else "plan",
            "snapshots": snapshots_of(label, results),
        }
    return databases


def network_settings(networks):
    """name -> the settings the plan wanted of each network of the stack (`Plan.networks`: driver,
    internal, enable_ipv6, subnet and gateway when declared, else None): what a return makes again
    of one that is gone. What the engine chose (an address pool) is not recorded: it may be taken since."""
    found = {}
    for planned in networks or []:
        if planned.get("settings") is None:
            continue   # external: never made by the stack; a return to a release on a gone one is refused
        settings = planned["settings"]
        found[_text(planned.get("name"))] = dict(
            (key, settings.get(key)) for key in ("driver", "internal", "enable_ipv6", "subnet", "gateway"))
    return found


def build_release(gateway, stack, params, report, controller=None, results=None, networks=None):
    """The release the stack is now, after an apply whose report is `report` (no number yet).
    `networks`: the plan's networks (Plan.networks), recorded with their wanted settings."""
    secrets = set(declared_secrets(params.get("resources"), params.get("connections")))
    target = "swarm" if params.get("engine") == "swarm" else "docker"
    running = stack_containers(gateway, stack) if target == "docker" else {}
    for attrs in running.values():
        config = attrs.get("Config") or {}
        secrets |= env_secrets(env_of(config)) | command_secrets(config.get("Cmd"))
    return {
        "time": utc_now(),
        "controller": controller or controller_identity(),
        "plan_digest": plan_digest(report.get("plan")),
        "target": target,
        "containers": dict((name, container_record(attrs, secrets)) for name, attrs in sorted(running.items())),
        "services": stack_services(gateway, stack) if target == "swarm" else {},
        "databases": databases_of(gateway, params, report, results),
        "checks": copy.deepcopy(report.get("checks") or []),
        "order": [_text(name) for name in report.get("order") or []],
        "networks": network_settings(networks),
    }


def record_release(gateway, stack, params, report, controller=None, results=None, networks=None):
    """The appliers' hook, at the end of an apply (state present) that changed something, under
    the stack's lock: the stack as it now runs recorded as its next release, the last
    `params["releases_kept"]` (default 5) kept. A run that changed nothing records nothing (None).

    In check mode (a dry run's gateway) nothing is written (its host files write nothing); what
    it returns is what a real run would record. Returns {number, pruned, path}: what the report
    may name ("release 3"), never the release itself (it holds env values)."""
    if not report.get("changed") or params.get("state", "present") != "present":
        return None
    store = ReleaseStore(gateway, stack)
    release = build_release(gateway, stack, params, report, controller=controller, results=results,
                            networks=networks)
    number, pruned = store.add(release, params.get("releases_kept"))
    if pruned and hasattr(gateway, "prune_built_images"):
        gateway.prune_built_images(stack)   # a built image only a pruned release ran goes now
    return {"number": number, "pruned": pruned, "path": store.release_path(number)}
