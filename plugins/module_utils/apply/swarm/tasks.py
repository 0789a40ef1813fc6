# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stack's services seen through their tasks, and the waits for a service to converge.

`SwarmView` has the interface of docker/gateway.py's DockerGateway, with one difference: the
name of a service of the stack stands for one of its task containers. So the connection types'
own steps and checks (a real login, `getent`, curl, a shared-volume round trip) run unchanged
from inside a task: one on this node when there is one, else one on a node whose engine is
reachable from here (its address in the node label `io.clockwork.docker-host`), through that
node's own gateway. What a task gets as a secret file (`DATABASE_URL_FILE`) is read back from
inside it and shown to the checks as the env the application sees; a task on this node is
reached from here through its address on `docker_gwbridge`, as the overlay is not routed to
the host."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import os
import re
import threading

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    STACK_LABEL, ClockworkError, env_dict, owned_by)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    BAD_REQUEST, CONFLICT, NOT_FOUND, DockerException, engine_words, status_of)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import (
    APIError, DockerGateway, exec_in)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.exec_tunnel import NoRelay, open_tunnel
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.services import (
    SECRET_ENV_LABEL, template_key)

NODE_ENGINE_LABEL = "io.clockwork.docker-host"
GATEWAY_BRIDGE = "docker_gwbridge"
SERVICE_LABEL = "com.docker.swarm.service.name"
# Failed tasks of the current spec after which a convergence stops waiting: the engine
# would go on replacing them, with the same error.
FAILED_TASKS_LIMIT = 3
ERROR_LINES = 6


class SwarmView(object):
    """The gateway's interface over a swarm manager, where a service name means one of its tasks:
    a task's reads, logs and execs go to the gateway of its node, everything else to the
    manager's (`base`)."""

    # Every secret env value becomes a secret file (<NAME>_FILE) here: a connection gives env.
    secrets_as_files = True

    def __init__(self, engine, stack, local_node, services=()):
        self.base = engine
        self.stack = stack
        self.services = set(services)   # the stack's service names: never a container of that name
        self.local_node = local_node
        self._cache = {}        # ("container" | "task" | "service", name) -> what was read; exec_in's memory too
        self._nodes = None
        self._engines = {local_node: engine}   # node id -> its gateway (None: not reachable from here)
        self._execs = {}        # exec id -> the gateway of the node it runs on
        self._tunnels = {}      # (name, port) -> ExecTunnel, for the run

    def __getattr__(self, name):
        """What the gateway has beyond a task's reads and execs (networks, volumes, images, lists,
        writes, its clock and record of actions): the manager's."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.base, name)

    @property
    def api(self):
        """gateway.exec_in and exec_tunnel.open_tunnel still reach execs as `engine.api.exec_*`:
        this view's own, which go to the task's node. Goes once they call the gateway's."""
        return self

    # -- a task's reads, logs and execs: on its node's gateway --------------------------

    def container(self, name):
        """The task container a service name stands for (None when none can be reached),
        or the container of that name when no service of the stack has it."""
        key = ("container", name)
        if key not in self._cache:
            gateway, ident = self.locate(name)
            if ident is None:
                attrs = None
            elif gateway is self.base and ident == name:
                attrs = self.base.container(name)
            else:
                # Read afresh on the node: this view keeps it, until it is told to forget it.
                attrs = gateway.container_now(ident)
                attrs = attrs and self._as_seen(name, gateway, attrs)
            self._cache[key] = attrs
        return self._cache[key]

    def container_now(self, name):
        """The task container as it is now (a wait reads it afresh: the swarm replaces tasks)."""
        self.forget("container", name)
        return self.container(name)

    def forget(self, kind, name):
        """Read `name` afresh next time; a service's name, which task it stands for too."""
        for key in ((kind, name), ("task", name), ("service", name)) if kind == "container" else ((kind, name),):
            self._cache.pop(key, None)
        self.base.forget(kind, name)

    def forecast(self, name):
        """Whether the task a service name stands for is only what a dry run would make of it
        (its service created or changed by the run): nothing real can be asked of it."""
        gateway, ident = self.locate(name)
        return gateway is not None and gateway.forecast(ident)

    def logs(self, name, tail=20):
        gateway, ident = self.locate(name)
        return gateway.logs(ident, tail=tail)

    # The gateway's own: it needs nothing but logs, which is this view's.
    logs_tail = DockerGateway.logs_tail

    def exec_create(self, container, argv, **options):
        gateway, ident = self.locate(container)
        created = gateway.exec_create(ident, argv, **options)
        self._execs[created["Id"]] = gateway
        return created

    def exec_start(self, exec_id, **options):
        return self._execs.get(exec_id, self.base).exec_start(exec_id, **options)

    def exec_inspect(self, exec_id):
        return self._execs.get(exec_id, self.base).exec_inspect(exec_id)

    def run(self, container, argv, timeout=10, env=None):
        return exec_in(self, container, argv, timeout=timeout, env=env)

    def reach(self, name, address, port):
        """(host, port) where this process logs in to `port` of the task `name` stands for.
        Through a tunnel into the task (exec_tunnel; it admits this user's processes only): exact
        whichever node it runs on, and the overlay is not routed here. Without a relay (no bash in
        its image, or no Linux socket table here to tell who connects), its docker_gwbridge
        `address` when it runs on this node; (None, None) when no task can be reached."""
        if self.locate(name)[1] is None:
            return None, None
        key = ("tunnel", name, int(port))
        if key not in self._tunnels:
            try:
                self._tunnels[key] = open_tunnel(self, name, port, "service %s" % name)
            except NoRelay:
                if address:
                    return address, port
                raise
        return "127.0.0.1", self._tunnels[key].port

    def close(self):
        """Close the tunnels this view opened."""
        for tunnel in self._tunnels.values():
            tunnel.close()
        self._tunnels.clear()

    # -- a service's writes: its name stands for other tasks afterwards -------------------

    def create_service(self, task_template, name, **options):
        made = self.base.create_service(task_template, name, **options)
        self._service_changed(name)
        return made

    def update_service(self, service, version, name, **options):
        self.base.update_service(service, version, name, **options)
        self._service_changed(name)

    def remove_service(self, service):
        self.base.remove_service(service)
        for key, found in list(self._cache.items()):
            if key[0] == "service" and found and service in (found.get("ID"), key[1]):
                self._service_changed(key[1])

    def _service_changed(self, name):
        self.forget("container", name)

    # -- services and their tasks -------------------------------------------------------

    def service(self, name):
        """The stack's service called `name`, or None."""
        key = ("service", name)
        if key not in self._cache:
            try:
                found = self.base.service(name)
            except APIError as exc:
                if status_of(exc) != NOT_FOUND:
                    raise ClockworkError("cannot inspect service %s: %s" % (name, engine_words(exc)))
                found = None
            self._cache[key] = found if found and owned_by(found["Spec"].get("Labels"), self.stack) \
                and found["Spec"].get("Name") == name else None
        return self._cache[key]

    def known_services(self, listed):
        """Every service of the swarm, as a list just read says them (the pre-flight's): the stack's
        are not asked for one by one (50 services: 50 requests fewer)."""
        by_name = dict((found["Spec"].get("Name"), found) for found in listed)
        for name in self.services:
            found = by_name.get(name)
            self._cache.setdefault(("service", name), found if found and owned_by(
                found["Spec"].get("Labels"), self.stack) else None)

    def locate(self, name):
        """(gateway, container id) of the task `name` stands for; (the manager's gateway, name)
        for a name that is no service of the stack; (None, None) when no task can be reached."""
        key = ("task", name)
        if key not in self._cache:
            service = self.service(name)
            if service is None:
                self._cache[key] = (None, None) if name in self.services else (self.base, name)
            else:
                self._cache[key] = self._pick_task(service)
        return self._cache[key]

    def _pick_task(self, service):
        tasks = [t for t in self.base.tasks(filters={"service": service["ID"]})
                 if (t.get("Status", {}).get("ContainerStatus") or {}).get("ContainerID")]
        tasks.sort(key=lambda t: (t["Status"]["State"] != "running", t.get("NodeID") != self.local_node,
                                  _negated(t["Status"].get("Timestamp") or "")))
        for task in tasks:
            gateway = self.node_gateway(task.get("NodeID"))
            if gateway is not None:
                return gateway, task["Status"]["ContainerStatus"]["ContainerID"]
        return None, None

    def node_gateway(self, node_id):
        """The gateway to a node's engine: the manager's for this node, else one to the engine
        its `io.clockwork.docker-host` label names (None when there is none or it cannot be
        reached). Made here only, once per node and run."""
        if node_id not in self._engines:
            url = ((self.node(node_id) or {}).get("Spec", {}).get("Labels") or {}).get(NODE_ENGINE_LABEL)
            gateway = None
            if url:
                try:
                    gateway = self._open_node({"DOCKER_HOST": url})
                except (ClockworkError, DockerException):
                    gateway = None   # its tasks are not reachable from here: another node's may be
            self._engines[node_id] = gateway
        return self._engines[node_id]

    def _open_node(self, environment):
        """A node's gateway of the manager's kind: on a dry run, a dry run of the node's engine
        (it reads there, and nothing it is asked to write gets there)."""
        if self.base.dry_run:
            from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway  # pylint: disable=import-outside-toplevel
            return dry_run_gateway(environment=environment)
        return DockerGateway(environment=environment)

    def node(self, node_id):
        if self._nodes is None:
            self._nodes = dict((n["ID"], n) for n in self.base.nodes())
        return self._nodes.get(node_id)

    def node_name(self, node_id):
        node = self.node(node_id) or {}
        return "%s (%s)" % ((node.get("Description") or {}).get("Hostname") or "?", (node_id or "?")[:12])

    def _as_seen(self, name, gateway, attrs):
        """The task container as a client of it sees it: secret files as the env the application
        reads, and, on this node, the address this host reaches it at first."""
        attrs = copy.deepcopy(attrs)
        config = attrs.setdefault("Config", {})
        # A task of the stack's service is the stack's (its container has a label of its own).
        config["Labels"] = dict(config.get("Labels") or {}, **{STACK_LABEL: self.stack})
        env = env_dict(config.get("Env"))
        for secret in [n for n in ((config.get("Labels") or {}).get(SECRET_ENV_LABEL) or "").split(",") if n]:
            path = env.get(secret + "_FILE")
            if path and secret not in env:
                code, out = exec_in(self, name, ["cat", path])
                if code == 0:
                    config["Env"] = list(config.get("Env") or []) + ["%s=%s" % (secret, out)]
        settings = attrs.setdefault("NetworkSettings", {})
        networks = dict((k, dict(v, IPAddress="")) for k, v in (settings.get("Networks") or {}).items())
        if gateway is self.base:
            address = self._gateway_address(attrs["Id"])
            if address:
                networks = dict([(GATEWAY_BRIDGE, {"IPAddress": address})] + list(networks.items()))
        settings["Networks"] = networks
        return attrs

    def _gateway_address(self, container_id):
        for attempt in (0, 1):
            if attempt:
                # The engine joins a new task to the bridge itself, after this run read it.
                self.base.forget("network", GATEWAY_BRIDGE)
            bridge = self.base.network(GATEWAY_BRIDGE) or {}
            found = (bridge.get("Containers") or {}).get(container_id)
            if found and found.get("IPv4Address"):
                return found["IPv4Address"].split("/")[0]
        return None


def _negated(timestamp):
    """Sort newest first with an ascending sort of strings."""
    return [-ord(c) for c in timestamp]


# -- convergence -------------------------------------------------------------------

class SwarmSnapshot(object):
    """What an unchanged stack asks about every service, read once per run instead of once per
    service (50 services: 100 requests fewer): the networks' names by ID, as a service's spec
    names them, and every task of the swarm by service. A service the run changes is waited for
    with fresh reads (wait_converged); networks the run makes come before any service is read."""

    def __init__(self, engine):
        self.engine = engine
        self._lock = threading.Lock()
        self._network_names = None
        self._tasks = None

    def network_names(self):
        with self._lock:
            if self._network_names is None:
                self._network_names = dict((n["Id"], n["Name"]) for n in self.engine.networks())
            return self._network_names

    def tasks_of(self, service_id):
        with self._lock:
            if self._tasks is None:
                self._tasks = {}
                for task in self.engine.tasks():
                    self._tasks.setdefault(task.get("ServiceID"), []).append(task)
            return list(self._tasks.get(service_id, []))


def _is_current(task, key):
    return template_key(task.get("Spec")) == key


def convergence(service, tasks):
    """("done" | "waiting" | "failed", words) for a service and its tasks: every task meant to
    run runs the current spec, as many as wanted; a job's tasks of its last iteration completed."""
    spec = service["Spec"]
    mode = spec.get("Mode") or {}
    update = service.get("UpdateStatus") or {}
    if update.get("State") in ("paused", "rollback_started", "rollback_paused", "rollback_completed"):
        return "failed", "its update is %s: %s" % (update["State"].replace("_", " "), update.get("Message") or "")
    if "ReplicatedJob" in mode:
        iteration = ((service.get("JobStatus") or {}).get("JobIteration") or {}).get("Index")
        current = [t for t in tasks if (t.get("JobIteration") or {}).get("Index") == iteration]
        wanted = mode["ReplicatedJob"].get("TotalCompletions", 1)
        complete = [t for t in current if t["Status"]["State"] == "complete"]
        failed = [t for t in current if t["Status"]["State"] in ("failed", "rejected")]
        if len(complete) >= wanted:
            return "done", "%d of %d completed" % (len(complete), wanted)
        if len(failed) >= FAILED_TASKS_LIMIT:
            return "failed", "%d of its tasks failed" % len(failed)
        return "waiting", "%d of %d completed" % (len(complete), wanted)
    key = template_key(spec.get("TaskTemplate"))
    wanted = (mode.get("Replicated") or {}).get("Replicas", 1)
    meant = [t for t in tasks if t.get("DesiredState") == "running"]
    running = [t for t in meant if t["Status"]["State"] == "running" and _is_current(t, key)]
    failed = [t for t in tasks if _is_current(t, key) and t["Status"]["State"] in ("failed", "rejected")]
    if len(running) == wanted == len(meant) and update.get("State") in (None, "completed"):
        return "done", "%d of %d running" % (len(running), wanted)
    if len(failed) >= FAILED_TASKS_LIMIT and not running:
        return "failed", "%d of its tasks failed and none runs" % len(failed)
    updating = ", update %s" % update["State"] if update.get("State") else ""
    return "waiting", "%d of %d running%s" % (len(running), wanted, updating)


def wait_converged(view, service_id, name, timeout, say=None):
    """Poll, with backoff, until the service has converged (see `convergence`); a failure or
    the end of `timeout` seconds raises with the task errors, as `docker service ps --no-trunc`."""
    gateway = view.base
    deadline = gateway.monotonic() + timeout
    delay, said = 0.1, None
    while True:
        try:
            service = gateway.service(service_id)
            tasks = gateway.tasks(filters={"service": service_id})
        except APIError as exc:
            raise ClockworkError("service %s: cannot follow its tasks: %s" % (name, engine_words(exc)))
        state, words = convergence(service, tasks)
        if state == "done":
            return words
        if state == "failed" or gateway.monotonic() >= deadline:
            what = words if state == "failed" else "did not converge within %ss (%s)" % (timeout, words)
            raise ClockworkError("service %s %s; its tasks:\n%s" % (name, what, task_errors(view, name, tasks)))
        if say and words != said:
            say("%s: %s" % (name, words))
            said = words
        gateway.sleep(delay)
        delay = min(delay * 2, 1.0)


def task_errors(view, name, tasks):
    """The newest tasks as `docker service ps --no-trunc` lists them, errors in full, and the
    last log lines of the newest failed one that can be reached."""
    lines, logs = [], ""
    newest = sorted(tasks, key=lambda t: _negated(t["Status"].get("Timestamp") or ""))
    for task in newest[:ERROR_LINES]:
        status = task["Status"]
        slot = task.get("Slot") or (task.get("NodeID") or "")[:12]
        lines.append("  %s.%s on %s: desired %s, %s (%s)%s" % (
            name, slot, view.node_name(task.get("NodeID")), task.get("DesiredState"), status.get("State"),
            status.get("Message") or "", ": " + status["Err"] if status.get("Err") else ""))
        container = (status.get("ContainerStatus") or {}).get("ContainerID")
        gateway = view.node_gateway(task.get("NodeID"))
        if not logs and container and gateway is not None and status.get("State") in ("failed", "shutdown", "complete"):
            try:
                logs = gateway.logs(container, tail=10).decode("utf-8", "replace").strip()
            except APIError:
                logs = ""
    if not lines:
        lines.append("  (no task was made: see `docker service ps --no-trunc %s`)" % name)
    return "\n".join(lines) + ("\nlast log lines of the newest ended task:\n%s" % logs if logs else "")


# How long a destroy waits for the tasks of removed services to go before it removes their
# networks, secrets and volumes.
REMOVAL_SECONDS = 60


def ipvs_available():
    """Whether this kernel has IPVS, without which a service's virtual IP (and the ingress
    routing mesh) does not answer: built in, loaded, or a module that can be loaded."""
    if os.path.exists("/proc/net/ip_vs"):
        return True
    try:
        with open("/proc/modules") as handle:
            if re.search(r"^ip_vs ", handle.read(), re.M):
                return True
    except (IOError, OSError):
        pass
    for _root, _dirs, files in os.walk("/lib/modules/%s/kernel/net/netfilter" % os.uname()[2]):
        if any(f.startswith("ip_vs.ko") for f in files):
            return True
    return False


def wait_tasks_gone(engine, service_ids, what):
    """Until no container of these services is left on this node, bounded. The engine keeps
    the containers of a job's completed tasks after the job is removed: they go here."""
    deadline = engine.monotonic() + REMOVAL_SECONDS
    while engine.monotonic() < deadline:
        left = [c for sid in service_ids
                for c in engine.containers(all=True, filters={"label": "com.docker.swarm.service.id=%s" % sid})]
        if not left:
            return
        for container in left:
            if container.get("State") in ("exited", "dead", "created"):
                try:
                    engine.remove_container(container["Id"], force=True, volumes=True)
                except APIError:
                    pass   # removed by the engine meanwhile
        engine.sleep(0.3)
    raise ClockworkError("the tasks of %s were still there %ss after their services were removed" % (
        what, REMOVAL_SECONDS))


# A local network's "has active endpoints" (docker/errors.py names the statuses it is asked for).
FORBIDDEN = 403


def in_use(exc):
    """Whether the engine refused a removal because something still uses the object: a volume's
    409, a local network's 403 ("active endpoints": the other 403, a pre-defined network, is never
    the stack's). The swarm's own refusal (a secret, config or network a service or task holds)
    is a 400, which the API gives for any bad request too: only its words tell it apart."""
    status = status_of(exc)
    return status in (CONFLICT, FORBIDDEN) or status == BAD_REQUEST and "in use" in engine_words(exc)


def retry_while_in_use(engine, remove, kind, name):
    """A network, volume, secret or config is freed a moment after the last task using it is gone.
    `remove` returns False, or raises the engine's error, while it is in use."""
    deadline = engine.monotonic() + REMOVAL_SECONDS
    while True:
        try:
            if remove() is not False:
                return
            words = "in use"
        except APIError as exc:
            if status_of(exc) == NOT_FOUND:
                return   # gone already
            words = engine_words(exc)
            if not in_use(exc):
                raise ClockworkError("cannot remove %s %s: %s" % (kind, name, words))
        if engine.monotonic() >= deadline:
            raise ClockworkError("cannot remove %s %s: %s" % (kind, name, words))
        engine.sleep(0.5)
