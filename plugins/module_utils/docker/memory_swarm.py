# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The memory engine's Swarm: one manager node, services whose tasks run at once as containers of
the memory engine (their health and exit scripted as any container's, by the service's name),
secrets and configs. Simple on purpose: an update replaces the tasks whose spec changed as the
service's UpdateConfig says (Order, Parallelism, FailureAction: a failed start-first update leaves
the previous task serving), a job's tasks run to completion, a task that fails is tried again twice."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import copy
import json
import posixpath

from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import APIError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_base import (
    NOT_MANAGER, api_method, as_filters, digest, labels_match, now, plain, refuse)

ATTEMPTS = 3      # tasks made for a slot whose task fails, as the restart policy's retries


def _swarm_id(*parts):
    return digest(*parts)[:25]


def _template_key(template):
    """A task template as every task's copy of it compares (the engine adds `Runtime` to the service's)."""
    return json.dumps(dict((k, v) for k, v in (template or {}).items() if k != "Runtime"), sort_keys=True)


def _mode_kind(mode):
    return next(iter(mode or {"Replicated": {}}), "Replicated")


def _matches(found, filters):
    """Whether a service, secret or config passes the list's filters (id and name prefixes, labels, mode)."""
    tests = {"id": lambda vs: any(found["ID"].startswith(v) for v in vs),
             "name": lambda vs: any(found["Spec"].get("Name", "").startswith(v) for v in vs),
             "label": lambda vs: labels_match(found["Spec"].get("Labels"), vs),
             "mode": lambda vs: _mode_kind(found["Spec"].get("Mode")).lower() in vs}
    return all(tests[k](vs) for k, vs in as_filters(filters).items() if k in tests)


class SwarmMemory(object):
    """Swarm's calls on the memory engine (memory.MemoryEngine composes it)."""

    def __init__(self, swarm=False):
        self._swarm = False
        self.node_id = None
        self._services, self._tasks, self._nodes = {}, {}, {}
        self._objects = {"secret": {}, "config": {}}
        self._object_data = {}
        self.changed_services = set()     # services this engine created, updated or removed
        if swarm:
            self.init_swarm()

    def init_swarm(self):
        """This engine becomes a one-node swarm's manager (`docker swarm init`)."""
        with self._lock:
            self._swarm = True
            self.node_id = _swarm_id("node", id(self))
            stamp = now()
            self._nodes[self.node_id] = {
                "ID": self.node_id, "Version": {"Index": 9}, "CreatedAt": stamp, "UpdatedAt": stamp,
                "Spec": {"Labels": {}, "Role": "manager", "Availability": "active"},
                "Description": {"Hostname": "memory", "Platform": {"Architecture": "x86_64", "OS": "linux"},
                                "Engine": {"EngineVersion": "20.10.24"}},
                "Status": {"State": "ready", "Addr": "127.0.0.1"},
                "ManagerStatus": {"Leader": True, "Reachability": "reachable", "Addr": "127.0.0.1:2377"}}

    def _is_manager(self):
        return self._swarm

    def _swarm_info(self):
        if not self._is_manager():
            return {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False, "Error": "",
                    "RemoteManagers": None}
        return {"NodeID": self.node_id, "NodeAddr": "127.0.0.1", "LocalNodeState": "active", "ControlAvailable": True,
                "Error": "", "RemoteManagers": [{"NodeID": self.node_id, "Addr": "127.0.0.1:2377"}],
                "Nodes": len(self._nodes), "Managers": 1}

    def _manager(self, path):
        if not self._is_manager():
            refuse(503, NOT_MANAGER, path)

    # -- services ------------------------------------------------------------------------

    def _find_service(self, ref):
        if not isinstance(ref, str) or not ref:
            return None
        if ref in self._services:
            return self._services[ref]
        named = [s for s in self._services.values() if s["Spec"]["Name"] == ref]
        prefixed = named or [s for i, s in self._services.items() if i.startswith(ref)]
        return prefixed[0] if len(prefixed) == 1 else self._miss("service", ref)

    def _service(self, ref, path):
        self._manager(path)
        found = self._find_service(ref)
        if found is None:
            refuse(404, "service %s not found" % ref, path)
        return found

    @api_method
    def services(self, filters=None, status=None):
        self._manager("/services")
        listed = [s for s in self._services.values() if _matches(s, filters)]
        return listed + self._more("service", filters=filters)

    @api_method
    def inspect_service(self, service, insert_defaults=None):
        return self._service(service, "/services/%s" % service)

    @staticmethod
    def _spec(name, labels, template, mode, update_config, rollback_config, endpoint_spec, networks):
        template = plain(template) or {}
        if networks:
            template["Networks"] = [{"Target": n} if isinstance(n, str) else plain(n) for n in networks]
        template.setdefault("ForceUpdate", 0)
        template["Runtime"] = "container"
        if isinstance(mode, str):
            mode = {"global": {"Global": {}}}.get(mode, {"Replicated": {"Replicas": 1}})
        spec = {"Name": name, "Labels": plain(labels) or {}, "TaskTemplate": template,
                "Mode": plain(mode) or {"Replicated": {"Replicas": 1}}, "EndpointSpec": plain(endpoint_spec) or {"Mode": "vip"}}
        for key, value in (("UpdateConfig", update_config), ("RollbackConfig", rollback_config)):
            if value:
                spec[key] = plain(value)
        return spec

    @api_method
    def create_service(self, task_template, name=None, labels=None, mode=None, update_config=None, networks=None,
                       endpoint_config=None, endpoint_spec=None, rollback_config=None):
        path = "/services/create"
        self._manager(path)
        taken = self._find_service(name)
        if taken is not None and taken["Spec"]["Name"] == name:
            refuse(409, "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service %s "
                   "already exists" % name, path)
        spec = self._spec(name, labels, task_template, mode, update_config, rollback_config, endpoint_spec, networks)
        service_id = _swarm_id("service", name, next(self._serial), id(self))
        stamp = now()
        service = self._services[service_id] = {
            "ID": service_id, "Version": {"Index": next(self._serial)}, "CreatedAt": stamp, "UpdatedAt": stamp,
            "Spec": spec, "Endpoint": {"Spec": spec["EndpointSpec"], "Ports": spec["EndpointSpec"].get("Ports") or [],
                                       "VirtualIPs": []}}
        self.changed_services.add(service_id)
        self._schedule(service)
        return {"ID": service_id}

    @api_method
    def update_service(self, service, version, task_template=None, name=None, labels=None, mode=None,
                       update_config=None, networks=None, endpoint_config=None, endpoint_spec=None,
                       fetch_current_spec=False, rollback_config=None):
        path = "/services/%s/update?version=%s" % (service, version)
        found = self._service(service, path)
        if int(version) != found["Version"]["Index"]:
            refuse(500, "rpc error: code = Unknown desc = update out of sequence", path)
        current = found["Spec"] if fetch_current_spec else {}
        mode = mode if mode is not None else current.get("Mode")
        spec = self._spec(name or current.get("Name") or found["Spec"]["Name"],
                          labels if labels is not None else current.get("Labels"),
                          task_template if task_template is not None else current.get("TaskTemplate"), mode,
                          update_config or current.get("UpdateConfig"), rollback_config or current.get("RollbackConfig"),
                          endpoint_spec or current.get("EndpointSpec"), networks)
        if _mode_kind(spec["Mode"]) != _mode_kind(found["Spec"]["Mode"]):
            refuse(400, "rpc error: code = Unimplemented desc = service mode change is not allowed", path)
        stamp = now()
        found.update(PreviousSpec=found["Spec"], Spec=spec, UpdatedAt=stamp, Version={"Index": next(self._serial)})
        found["Endpoint"]["Spec"] = spec["EndpointSpec"]
        if _template_key(spec["TaskTemplate"]) != _template_key(found["PreviousSpec"]["TaskTemplate"]):
            found["UpdateStatus"] = {"State": "completed", "StartedAt": stamp, "CompletedAt": stamp,
                                     "Message": "update completed"}
        self.changed_services.add(found["ID"])
        self._schedule(found)
        return {"Warnings": None}

    def _roll_back(self, service):
        """FailureAction rollback: the service goes back to its PreviousSpec, as `docker service rollback`."""
        failed = service["Spec"]
        service.update(Spec=service["PreviousSpec"], PreviousSpec=failed, Version={"Index": next(self._serial)})
        service["Endpoint"]["Spec"] = service["Spec"]["EndpointSpec"]
        service["UpdateStatus"] = {"State": "rollback_started", "StartedAt": now(), "Message": "update rolled back"}
        if self._schedule(service, rolling_back=True):
            service["UpdateStatus"].update(State="rollback_completed", CompletedAt=now(), Message="rollback completed")

    @api_method
    def remove_service(self, service):
        found = self._service(service, "/services/%s" % service)
        for task in self._service_tasks(found):
            if task["Status"].get("ContainerStatus", {}).get("ContainerID") in self._containers:
                self.remove_container(task["Status"]["ContainerStatus"]["ContainerID"], force=True)
            del self._tasks[task["ID"]]
        del self._services[found["ID"]]
        self.removed.setdefault("service", set()).add(found["ID"])
        self.changed_services.add(found["ID"])

    # -- tasks -----------------------------------------------------------------------------

    def _all_services(self):
        return list(self._services.values())

    def _service_tasks(self, service):
        return [t for t in self._tasks.values() if t["ServiceID"] == service["ID"]]

    def _schedule(self, service, rolling_back=False):
        """Tasks for the service's spec now: a task whose slot is no longer wanted shut down, a task
        for every wanted slot that has none, and the tasks of an earlier spec replaced as the
        service's UpdateConfig says (`_update`). False when that update failed."""
        spec = service["Spec"]
        mode = spec["Mode"]
        if "ReplicatedJob" in mode:
            iteration = service.setdefault("JobStatus", {"JobIteration": {"Index": 0}})["JobIteration"]
            iteration["Index"] += 1
            for slot in range(1, (mode["ReplicatedJob"].get("TotalCompletions") or 1) + 1):
                self._run_slot(service, slot, iteration["Index"])
            return True
        wanted = 1 if "Global" in mode else (mode.get("Replicated") or {}).get("Replicas", 1)
        key = _template_key(spec["TaskTemplate"])
        kept, outdated = {}, {}
        for task in self._service_tasks(service):
            if task["DesiredState"] != "running":
                continue
            if task.get("Slot", 1) > wanted:
                self._shutdown(task)
            elif _template_key(task["Spec"]) != key:
                outdated[task.get("Slot", 1)] = task
            else:
                kept[task.get("Slot", 1)] = task
        for slot in range(1, wanted + 1):
            if slot not in kept and slot not in outdated:
                self._run_slot(service, slot, None)
        return self._update(service, outdated, rolling_back)

    def _update(self, service, outdated, rolling_back):
        """The tasks of an earlier spec (slot -> task) replaced, `Parallelism` slots at a time (0: all),
        each new task started before its old one stops with Order start-first, after it with
        stop-first (Swarm's default). A slot whose new task fails is a failure, and FailureAction
        says what then: pause (the default; a start-first slot keeps its old task serving), continue,
        or rollback to the PreviousSpec. False when the update failed."""
        config = (service["Spec"].get("RollbackConfig") if rolling_back else None) or \
            service["Spec"].get("UpdateConfig") or {}
        slots = sorted(outdated)
        step = config.get("Parallelism", 1) or len(slots) or 1
        start_first = config.get("Order") == "start-first"
        for first in range(0, len(slots), step):
            failed = []
            for slot in slots[first:first + step]:
                if start_first:
                    task = self._run_slot(service, slot, None)
                    if task["Status"]["State"] in ("running", "starting"):
                        self._shutdown(outdated[slot])
                    else:
                        failed.append(task)
                else:
                    self._shutdown(outdated[slot])
                    task = self._run_slot(service, slot, None)
                    if task["Status"]["State"] not in ("running", "starting"):
                        failed.append(task)
            action = config.get("FailureAction") or "pause"
            if not failed or action == "continue":
                continue
            if action == "rollback" and not rolling_back and service.get("PreviousSpec"):
                self._roll_back(service)
            else:
                verb = "rollback" if rolling_back else "update"
                service["UpdateStatus"] = dict(service.get("UpdateStatus") or {}, State="%s_paused" % verb
                                               if rolling_back else "paused", Message="%s paused due to failure or "
                                               "early termination of task %s" % (verb, failed[0]["ID"]))
            return False
        return True

    def _run_slot(self, service, slot, iteration):
        """The slot's task, tried again while it fails (ATTEMPTS in all): the last one made."""
        for _attempt in range(ATTEMPTS):
            task = self._run_task(service, slot, iteration)
            if task["Status"]["State"] in ("running", "starting", "complete"):
                break
        return task

    def _run_task(self, service, slot, iteration):
        task_id = _swarm_id("task", service["ID"], slot, next(self._serial))
        stamp = now()
        template = dict((k, v) for k, v in service["Spec"]["TaskTemplate"].items() if k != "Runtime")
        task = {"ID": task_id, "Version": {"Index": next(self._serial)}, "CreatedAt": stamp, "UpdatedAt": stamp,
                "Labels": {}, "Spec": copy.deepcopy(template), "ServiceID": service["ID"], "Slot": slot,
                "NodeID": self.node_id, "DesiredState": "running", "NetworksAttachments": [],
                "Status": {"Timestamp": stamp, "State": "running", "Message": "started", "PortStatus": {}}}
        if iteration is not None:
            task["JobIteration"] = {"Index": iteration}
        self._tasks[task_id] = task
        name = "%s.%d.%s" % (service["Spec"]["Name"], slot, task_id)
        try:
            attrs = self._create(self._task_body(service, task, name), name)
            self._task_files(attrs, template.get("ContainerSpec") or {})
            for target, aliases in self._task_networks(service)[1:]:
                self.connect_container_to_network(attrs["Id"], target, aliases=aliases)
            self._start(attrs, "/containers/%s/start" % name)
        except APIError as exc:
            task["Status"].update(State="rejected", Message="preparing", Err=exc.explanation or str(exc))
            task["DesiredState"] = "shutdown"
            return task
        state = attrs["State"]
        task["Status"]["ContainerStatus"] = {"ContainerID": attrs["Id"], "PID": state["Pid"], "ExitCode": 0}
        if iteration is not None and state["Running"]:
            self._exit(attrs, self._outcome(attrs).get("exits") or 0)   # a job's command ends
        health = (state.get("Health") or {}).get("Status")
        if not state["Running"]:
            task["Status"]["ContainerStatus"]["ExitCode"] = state["ExitCode"]
            if state["ExitCode"] == 0 and iteration is not None:
                task["Status"].update(State="complete", Message="finished")
                task["DesiredState"] = "complete"
            else:
                task["Status"].update(State="failed", Message="started",
                                      Err="task: non-zero exit (%d)" % state["ExitCode"])
                task["DesiredState"] = "shutdown"
        elif health == "unhealthy":
            self._exit(attrs, 137)
            task["Status"].update(State="failed", Err="task: non-zero exit (137): dockerexec: unhealthy container")
            task["DesiredState"] = "shutdown"
        elif health == "starting":
            task["Status"].update(State="starting", Message="starting")
        return task

    def _task_networks(self, service):
        """(network name, aliases) of a service's tasks: the service's name is an alias in each."""
        found = []
        for attachment in service["Spec"]["TaskTemplate"].get("Networks") or []:
            net = self._find_network(attachment.get("Target"))
            if net is not None:
                found.append((net["Name"], [service["Spec"]["Name"]] + list(attachment.get("Aliases") or [])))
        return found

    def _task_body(self, service, task, name):
        spec = task["Spec"].get("ContainerSpec") or {}
        labels = dict(spec.get("Labels") or {})
        labels.update({"com.docker.swarm.node.id": self.node_id, "com.docker.swarm.service.id": service["ID"],
                       "com.docker.swarm.service.name": service["Spec"]["Name"], "com.docker.swarm.task": "",
                       "com.docker.swarm.task.id": task["ID"], "com.docker.swarm.task.name": name})
        networks = self._task_networks(service)
        host = {"Mounts": spec.get("Mounts"), "CapAdd": spec.get("CapabilityAdd"), "CapDrop": spec.get("CapabilityDrop"),
                "NetworkMode": networks[0][0] if networks else "default"}
        return {"Image": (spec.get("Image") or "").split("@")[0], "Entrypoint": spec.get("Command"),
                "Cmd": spec.get("Args"), "Env": spec.get("Env"), "Labels": labels, "Healthcheck": spec.get("Healthcheck"),
                "Hostname": spec.get("Hostname"), "User": spec.get("User"), "WorkingDir": spec.get("Dir"),
                "HostConfig": host,
                "NetworkingConfig": {"EndpointsConfig": {networks[0][0]: {"Aliases": networks[0][1]}}} if networks else None}

    def _task_files(self, attrs, spec):
        """A task's secrets and configs, as the files they are in its container."""
        for kind, key in (("secret", "Secrets"), ("config", "Configs")):
            for reference in spec.get(key) or []:
                target = (reference.get("File") or {}).get("Name") or reference.get("%sName" % kind.title())
                path = target if target.startswith("/") else posixpath.join("/run/secrets", target)
                data = self._object_data.get(reference.get("%sID" % kind.title()))
                if data is not None:
                    store, name = self._files_at(attrs, path)
                    store[name] = data

    def _shutdown(self, task):
        task["DesiredState"] = "shutdown"
        task["Status"].update(State="shutdown", Message="shutdown", Timestamp=now())
        container = self._containers.get((task["Status"].get("ContainerStatus") or {}).get("ContainerID"))
        if container is not None and container["State"]["Running"]:
            self._exit(container, 0)

    @api_method
    def tasks(self, filters=None):
        self._manager("/tasks")
        filters = as_filters(filters)
        services = [self._find_service(s) for s in filters.get("service") or []]
        wanted = set(s["ID"] for s in services if s is not None)
        tests = {"service": lambda t: t["ServiceID"] in wanted,
                 "desired-state": lambda t: t["DesiredState"] in filters["desired-state"],
                 "node": lambda t: t["NodeID"] in filters["node"],
                 "id": lambda t: any(t["ID"].startswith(v) for v in filters["id"])}
        listed = [t for t in self._tasks.values() if all(tests[k](t) for k in filters if k in tests)]
        return listed + self._more("task", filters=filters)

    @api_method
    def nodes(self, filters=None):
        self._manager("/nodes")
        return list(self._nodes.values()) + self._more("node", filters=filters)

    # -- secrets and configs --------------------------------------------------------------

    def _find_object(self, kind, ref):
        objects = self._objects[kind]
        if ref in objects:
            return objects[ref]
        named = [o for o in objects.values() if o["Spec"]["Name"] == ref]
        prefixed = named or [o for i, o in objects.items() if i.startswith(ref or "-")]
        return prefixed[0] if len(prefixed) == 1 else self._miss(kind, ref)

    def _object(self, kind, ref):
        self._manager("/%ss/%s" % (kind, ref))
        found = self._find_object(kind, ref)
        if found is None:
            refuse(404, "%s %s not found" % (kind, ref), "/%ss/%s" % (kind, ref))
        return found

    def _create_object(self, kind, name, data, labels):
        self._manager("/%ss/create" % kind)
        taken = self._find_object(kind, name)
        if taken is not None and taken["Spec"]["Name"] == name:
            refuse(409, "rpc error: code = AlreadyExists desc = %s %s already exists" % (kind, name),
                   "/%ss/create" % kind)
        data = data.encode("utf-8") if isinstance(data, str) else data
        object_id = _swarm_id(kind, name, next(self._serial), id(self))
        stamp = now()
        spec = {"Name": name, "Labels": plain(labels) or {}}
        if kind == "config":
            spec["Data"] = base64.b64encode(data).decode("ascii")
        self._objects[kind][object_id] = {"ID": object_id, "Version": {"Index": next(self._serial)},
                                          "CreatedAt": stamp, "UpdatedAt": stamp, "Spec": spec}
        self._object_data[object_id] = data
        return {"ID": object_id}

    def _remove_object(self, kind, ref):
        found = self._object(kind, ref)
        users = sorted(s["Spec"]["Name"] for s in self._all_services()
                       for r in (s["Spec"]["TaskTemplate"].get("ContainerSpec") or {}).get(kind.title() + "s") or []
                       if r.get(kind.title() + "ID") == found["ID"])
        if users:
            refuse(400, "rpc error: code = InvalidArgument desc = %s '%s' is in use by the following service: %s"
                   % (kind, found["Spec"]["Name"], ", ".join(users)), "/%ss/%s" % (kind, ref))
        del self._objects[kind][found["ID"]]
        self.removed.setdefault(kind, set()).add(found["ID"])

    def _listed(self, kind, filters):
        self._manager("/%ss" % kind)
        return [o for o in self._objects[kind].values() if _matches(o, filters)] + self._more(kind, filters=filters)

    @api_method
    def secrets(self, filters=None):
        return self._listed("secret", filters)

    @api_method
    def configs(self, filters=None):
        return self._listed("config", filters)

    @api_method
    def inspect_secret(self, id):  # pylint: disable=redefined-builtin
        return self._object("secret", id)

    @api_method
    def inspect_config(self, id):  # pylint: disable=redefined-builtin
        return self._object("config", id)

    @api_method
    def create_secret(self, name, data, labels=None, driver=None):
        return self._create_object("secret", name, data, labels)

    @api_method
    def create_config(self, name, data, labels=None, templating=None):
        return self._create_object("config", name, data, labels)

    @api_method
    def remove_secret(self, id):  # pylint: disable=redefined-builtin
        self._remove_object("secret", id)

    @api_method
    def remove_config(self, id):  # pylint: disable=redefined-builtin
        self._remove_object("config", id)
