# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stack's services seen through their tasks, and the waits for a service to converge.

`SwarmView` has the interface of docker_client.DockerGateway, with one difference: the name of a
service of the stack stands for one of its task containers. So the connection types' own
steps and checks (a real login, `getent`, curl, a shared-volume round trip) run unchanged
from inside a task: one on this node when there is one, else one on a node whose engine is
reachable from here (its address in the node label `io.clockwork.docker-host`). What a task
gets as a secret file (`DATABASE_URL_FILE`) is read back from inside it and shown to the
checks as the env the application sees; a task on this node is reached from here through
its address on `docker_gwbridge`, as the overlay is not routed to the host."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import os
import re
import time

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    STACK_LABEL, ClockworkError, env_dict, owned_by)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import (
    APIError, DockerException, DockerGateway, NotFound, exec_in)
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


class RoutedAPI(object):
    """The engine's API, with execs and logs sent to the engine of the node whose task a
    service name stands for."""

    def __init__(self, view):
        self._view = view
        self._execs = {}

    def exec_create(self, container, cmd, **kwargs):
        engine, ident = self._view.locate(container)
        created = engine.api.exec_create(ident, cmd, **kwargs)
        self._execs[created["Id"]] = engine.api
        return created

    def exec_start(self, exec_id, *args, **kwargs):
        return self._execs.get(exec_id, self._view.base.api).exec_start(exec_id, *args, **kwargs)

    def exec_inspect(self, exec_id):
        return self._execs.get(exec_id, self._view.base.api).exec_inspect(exec_id)

    def logs(self, container, **kwargs):
        engine, ident = self._view.locate(container)
        return engine.api.logs(ident, **kwargs)

    def __getattr__(self, name):
        return getattr(self._view.base.api, name)


class SwarmView(object):
    """Engine's interface over a swarm manager, where a service name means one of its tasks."""

    # Every secret env value becomes a secret file (<NAME>_FILE) here: a connection gives env.
    secrets_as_files = True

    def __init__(self, engine, stack, local_node, services=()):
        self.base = engine
        self.stack = stack
        self.services = set(services)   # the stack's service names: never a container of that name
        self.local_node = local_node
        self.api = RoutedAPI(self)
        self._cache = {}        # ("container" | "task" | "service", name) -> what was read; exec_in's memory too
        self._nodes = None
        self._engines = {local_node: engine}
        self._tunnels = {}      # (name, port) -> ExecTunnel, for the run

    # -- what Engine has ----------------------------------------------------------

    def network(self, name):
        return self.base.network(name)

    def volume(self, name):
        return self.base.volume(name)

    def image(self, name):
        return self.base.image(name)

    def forget(self, kind, name):
        for key in ((kind, name), ("task", name), ("service", name)) if kind == "container" else ((kind, name),):
            self._cache.pop(key, None)
        self.base.forget(kind, name)

    # Engine's own: it needs nothing but self.api, which routes to the task's node here.
    logs_tail = DockerGateway.logs_tail

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

    def container(self, name):
        """The task container a service name stands for (None when none can be reached),
        or the container of that name when no service of the stack has it."""
        key = ("container", name)
        if key not in self._cache:
            engine, ident = self.locate(name)
            if ident is None:
                attrs = None
            elif engine is self.base and ident == name:
                attrs = self.base.container(name)
            else:
                try:
                    attrs = self._as_seen(name, engine, engine.api.inspect_container(ident))
                except NotFound:
                    attrs = None
            self._cache[key] = attrs
        return self._cache[key]

    # -- services and their tasks -------------------------------------------------------

    def service(self, name):
        """The stack's service called `name`, or None."""
        key = ("service", name)
        if key not in self._cache:
            try:
                found = self.base.api.inspect_service(name)
            except APIError as exc:
                if getattr(exc, "status_code", None) != 404:
                    raise ClockworkError("cannot inspect service %s: %s" % (name, exc.explanation or exc))
                found = None
            self._cache[key] = found if found and owned_by(found["Spec"].get("Labels"), self.stack) \
                and found["Spec"].get("Name") == name else None
        return self._cache[key]

    def locate(self, name):
        """(engine, container id) of the task `name` stands for; (base engine, name) for a
        name that is no service of the stack; (None, None) when no task can be reached."""
        key = ("task", name)
        if key not in self._cache:
            service = self.service(name)
            if service is None:
                self._cache[key] = (None, None) if name in self.services else (self.base, name)
            else:
                self._cache[key] = self._pick_task(service)
        return self._cache[key]

    def _pick_task(self, service):
        tasks = [t for t in self.base.api.tasks(filters={"service": service["ID"]})
                 if (t.get("Status", {}).get("ContainerStatus") or {}).get("ContainerID")]
        tasks.sort(key=lambda t: (t["Status"]["State"] != "running", t.get("NodeID") != self.local_node,
                                  _negated(t["Status"].get("Timestamp") or "")))
        for task in tasks:
            engine = self.node_engine(task.get("NodeID"))
            if engine is not None:
                return engine, task["Status"]["ContainerStatus"]["ContainerID"]
        return None, None

    def node_engine(self, node_id):
        """The engine of a node: this one, or the one its `io.clockwork.docker-host` label names."""
        if node_id not in self._engines:
            url = ((self.node(node_id) or {}).get("Spec", {}).get("Labels") or {}).get(NODE_ENGINE_LABEL)
            engine = None
            if url:
                import docker  # pylint: disable=import-outside-toplevel  # present: Engine needs it
                try:
                    engine = DockerGateway(docker.DockerClient(base_url=url))
                except DockerException:
                    engine = None
            self._engines[node_id] = engine
        return self._engines[node_id]

    def node(self, node_id):
        if self._nodes is None:
            self._nodes = dict((n["ID"], n) for n in self.base.api.nodes())
        return self._nodes.get(node_id)

    def node_name(self, node_id):
        node = self.node(node_id) or {}
        return "%s (%s)" % ((node.get("Description") or {}).get("Hostname") or "?", (node_id or "?")[:12])

    def _as_seen(self, name, engine, attrs):
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
        if engine is self.base:
            address = self._gateway_address(attrs["Id"])
            if address:
                networks = dict([(GATEWAY_BRIDGE, {"IPAddress": address})] + list(networks.items()))
        settings["Networks"] = networks
        return attrs

    def _gateway_address(self, container_id):
        for attempt in (0, 1):
            if attempt:
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
    api = view.base.api
    deadline = time.monotonic() + timeout
    delay, said = 0.1, None
    while True:
        try:
            service = api.inspect_service(service_id)
            tasks = api.tasks(filters={"service": service_id})
        except APIError as exc:
            raise ClockworkError("service %s: cannot follow its tasks: %s" % (name, exc.explanation or exc))
        state, words = convergence(service, tasks)
        if state == "done":
            return words
        if state == "failed" or time.monotonic() >= deadline:
            what = words if state == "failed" else "did not converge within %ss (%s)" % (timeout, words)
            raise ClockworkError("service %s %s; its tasks:\n%s" % (name, what, task_errors(view, name, tasks)))
        if say and words != said:
            say("%s: %s" % (name, words))
            said = words
        time.sleep(delay)
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
        engine = view.node_engine(task.get("NodeID"))
        if not logs and container and engine is not None and status.get("State") in ("failed", "shutdown", "complete"):
            try:
                logs = engine.api.logs(container, tail=10).decode("utf-8", "replace").strip()
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
    deadline = time.monotonic() + REMOVAL_SECONDS
    while time.monotonic() < deadline:
        left = [c for sid in service_ids
                for c in engine.api.containers(all=True, filters={"label": "com.docker.swarm.service.id=%s" % sid})]
        if not left:
            return
        for container in left:
            if container.get("State") in ("exited", "dead", "created"):
                try:
                    engine.api.remove_container(container["Id"], v=True, force=True)
                except APIError:
                    pass   # removed by the engine meanwhile
        time.sleep(0.3)
    raise ClockworkError("the tasks of %s were still there %ss after their services were removed" % (
        what, REMOVAL_SECONDS))


def retry_while_in_use(remove, kind, name):
    """A network or volume is freed a moment after the last task using it is gone."""
    deadline = time.monotonic() + REMOVAL_SECONDS
    while True:
        try:
            remove()
            return
        except (APIError, ClockworkError) as exc:
            if getattr(exc, "status_code", None) == 404:
                return   # gone already
            words = str(getattr(exc, "explanation", None) or getattr(exc, "msg", None) or exc)
            if "in use" not in words and "active endpoints" not in words or time.monotonic() >= deadline:
                raise ClockworkError("cannot remove %s %s: %s" % (kind, name, words))
        time.sleep(0.5)


def in_use():
    """Raised by a removal that reports only failure: retried as in use."""
    raise ClockworkError("in use")
