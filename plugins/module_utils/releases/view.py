# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What may be shown of a release, and the drift of the running stack from one.

A release keeps env values, secrets among them, as Docker's own record of a container does; what
goes to Ansible's output (stack_info, a diff) is a view of it: each container's image, state,
command, env, ports, networks, mounts and labels, with every env value that is a secret masked
(masking.py: by its name, a URL's password, or a name the release recorded as holding one), every
secret flag of a command masked, and then every secret value found anywhere in the release masked
wherever it still appears in the view. The caller also gives those values to Ansible's no_log
(`secrets_of`), so that nothing it prints afterwards can carry one either.

Drift names fields, never values: "env DATABASE_URL", "host_config.PortBindings", "image".
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.clockwork.connections.plugins.module_utils.masking import (
    MASK, command_secrets, env_secrets, forms, masked_command, secret_env)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import container_record, env_of

ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")
# Fields of Config that are not settings of the container: the engine derives them from its id.
NOT_SETTINGS = ("Hostname", "Image")


def secrets_of(release):
    """Every secret value a release holds, in every form (masking.forms), for masking and no_log."""
    found = set()
    for container in release.get("containers", {}).values():
        config = container.get("config") or {}
        env = env_of(config)
        found |= env_secrets(env) | command_secrets(config.get("Cmd")) | command_secrets(config.get("Entrypoint"))
        for name in container.get("secret_env") or []:
            if env.get(name):
                found |= forms(env[name])
        test = (config.get("Healthcheck") or {}).get("Test")
        if isinstance(test, list):
            found |= command_secrets(test[1:])
    for service in release.get("services", {}).values():
        spec = ((service.get("spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
        found |= env_secrets(env_of(spec)) | command_secrets(spec.get("Args")) | command_secrets(spec.get("Command"))
    return set(s for s in found if len(s) >= 3)


def scrub(value, secrets):
    """`value` (plain data) with every occurrence of a secret masked, longest first."""
    ordered = sorted(secrets, key=len, reverse=True)

    def clean(item):
        if isinstance(item, str):
            for secret in ordered:
                if secret in item:
                    item = item.replace(secret, MASK)
            return item
        if isinstance(item, dict):
            return dict((clean(k), clean(v)) for k, v in item.items())
        if isinstance(item, (list, tuple)):
            return [clean(v) for v in item]
        return item
    return clean(value)


def masked_env_of(env, names):
    return dict((k, MASK if k in names or secret_env(k, v) else v) for k, v in sorted(env.items()))


def container_view(container):
    config, host = container.get("config") or {}, container.get("host_config") or {}
    mounts = ["%s:%s%s" % (m.get("Source") or m.get("Name") or "", m.get("Target") or "",
                           ":ro" if m.get("ReadOnly") else "") for m in host.get("Mounts") or []]
    return {
        "resource": container.get("resource"), "image": container.get("image"), "image_id": container.get("image_id"),
        "state": container.get("state"),
        "command": masked_command(config.get("Cmd")), "entrypoint": masked_command(config.get("Entrypoint")),
        "env": masked_env_of(env_of(config), set(container.get("secret_env") or [])),
        "ports": sorted(host.get("PortBindings") or {}),
        "networks": dict((n, sorted(e.get("Aliases") or [])) for n, e in (container.get("endpoints") or {}).items()),
        "mounts": sorted(list(host.get("Binds") or []) + mounts),
        "labels": dict(container.get("labels") or {}),
    }


def service_view(service):
    spec = service.get("spec") or {}
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    return {"id": service.get("id"), "version": service.get("version"), "image": container.get("Image"),
            "command": masked_command(container.get("Command")), "args": masked_command(container.get("Args")),
            "env": masked_env_of(env_of(container), ()),
            "replicas": ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas")}


def release_view(release, current=None):
    """What stack_info returns of a release: no env value that is a secret, anywhere."""
    view = {
        "number": release["number"], "time": release["time"], "controller": release["controller"],
        "plan_digest": release["plan_digest"], "target": release["target"],
        "current": release["number"] == current,
        "containers": dict((name, container_view(c)) for name, c in sorted(release["containers"].items())),
        "services": dict((name, service_view(s)) for name, s in sorted(release["services"].items())),
        "databases": release["databases"],
        "networks": dict(release.get("networks") or {}),
    }
    if release.get("rolled_back_to"):
        view.update(rolled_back_to=release["rolled_back_to"], restored_data=bool(release.get("restored_data")))
    return scrub(view, secrets_of(release))


# -- drift ------------------------------------------------------------------------------------

def _env_drift(recorded, running):
    names = sorted(set(recorded) | set(running))
    return ["env %s" % n for n in names if recorded.get(n) != running.get(n)]


def _fields_drift(prefix, recorded, running, skip=()):
    return ["%s.%s" % (prefix, key) for key in sorted(set(recorded) | set(running))
            if key not in skip and recorded.get(key) != running.get(key)]


def container_drift(recorded, attrs):
    """The fields in which a running container (its inspect) differs from its release's record."""
    return record_drift(recorded, container_record(attrs))


def settled(host_config):
    """A HostConfig without the binds of anonymous volumes (a 64-hex-digit source): data a recreate
    carries over to the new container as binds, not a setting (container.py carried_volumes)."""
    binds = host_config.get("Binds")
    if not binds:
        return host_config
    kept = [b for b in binds if not ANONYMOUS.match(str(b).split(":", 1)[0])]
    return dict(host_config, Binds=kept or None)


def record_drift(recorded, now):
    """The fields in which two records of a container (record.container_record) differ; the
    anonymous volumes it carries are its data, not a difference."""
    recorded = dict(recorded, host_config=settled(recorded["host_config"]))
    now = dict(now, host_config=settled(now["host_config"]))
    changes = []
    if now["image_id"] != recorded["image_id"]:
        changes.append("image (release %s %s, running %s %s)" % (
            recorded["image"], recorded["image_id"][:19], now["image"], now["image_id"][:19]))
    if now["state"] != recorded["state"]:
        changes.append("state (release %s, running %s)" % (recorded["state"], now["state"]))
    recorded_config, config = recorded["config"], now["config"]
    changes += _env_drift(env_of(recorded_config), env_of(config))
    changes += ["label %s" % k for k in sorted(set(recorded["labels"]) | set(now["labels"]))
                if recorded["labels"].get(k) != now["labels"].get(k)]
    changes += _fields_drift("config", recorded_config, config, skip=NOT_SETTINGS + ("Env", "Labels"))
    changes += _fields_drift("host_config", recorded["host_config"], now["host_config"])
    for network in sorted(set(recorded["endpoints"]) | set(now["endpoints"])):
        if network not in now["endpoints"]:
            changes.append("network %s (not on it)" % network)
        elif network not in recorded["endpoints"]:
            changes.append("network %s (not in the release)" % network)
        elif recorded["endpoints"][network] != now["endpoints"][network]:
            changes.append("network %s settings" % network)
    return changes


def stack_drift(release, running):
    """[{container, changes}] between `release`'s containers and `running` (name -> inspect)."""
    drift = []
    recorded = release["containers"] if release else {}
    for name in sorted(set(recorded) | set(running)):
        if name not in running:
            drift.append({"container": name, "changes": ["missing"]})
        elif name not in recorded:
            drift.append({"container": name, "changes": ["not in the release"]})
        else:
            changes = container_drift(recorded[name], running[name])
            if changes:
                drift.append({"container": name, "changes": changes})
    return drift


def service_drift(release, services):
    """[{service, changes}] between `release`'s Swarm services and `services` (name -> {id, version, spec},
    as record.stack_services reads them): the fields of the spec that differ, env by name."""
    drift = []
    recorded = release["services"] if release else {}
    for name in sorted(set(recorded) | set(services)):
        if name not in services:
            drift.append({"service": name, "changes": ["missing"]})
            continue
        if name not in recorded:
            drift.append({"service": name, "changes": ["not in the release"]})
            continue
        before, now = recorded[name]["spec"], services[name]["spec"]
        before_task, now_task = before.get("TaskTemplate") or {}, now.get("TaskTemplate") or {}
        before_container, now_container = before_task.get("ContainerSpec") or {}, now_task.get("ContainerSpec") or {}
        changes = _env_drift(env_of(before_container), env_of(now_container))
        changes += _fields_drift("container_spec", before_container, now_container, skip=("Env",))
        changes += _fields_drift("task_template", before_task, now_task, skip=("ContainerSpec", "ForceUpdate"))
        changes += _fields_drift("spec", before, now, skip=("TaskTemplate",))
        if changes:
            drift.append({"service": name, "changes": changes})
    return drift
