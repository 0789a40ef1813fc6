# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check mode by construction: the engine of a dry run reads the live engine and keeps every
write in memory, so the applier that runs for real runs unchanged, and says what it would do.

`DryRunEngine` is a MemoryEngine over a live one (engine_api.EngineAPI). An object the memory
does not hold yet is read from the live engine and copied in on its first read; a list is the
live list with the dry run's created, changed and removed objects laid over it; a write changes
the memory only. A container the dry run did not create or change answers execs, logs and
archives from the live engine (the checks and database reads of an unchanged stack run as in a
real run); one it created or changed answers as scripted (`execs`; exit 0, no output by default).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import time

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.engine_api import MAX_POOL_SIZE, EngineAPI
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import APIError, NOT_FOUND, status_of
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import MemoryEngine
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_images import answer_build
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_base import (
    ANONYMOUS, api_method, full_reference, refuse)

# What a dry run may ask the live engine: reads, and the execs, logs and archives of containers it left alone.
LIVE_READS = frozenset((
    "inspect_or_none", "inspect_container", "inspect_network", "inspect_volume", "inspect_image", "containers",
    "networks", "volumes", "images", "info", "services", "inspect_service", "tasks", "nodes", "secrets", "configs",
    "inspect_secret", "inspect_config", "logs", "get_archive", "get_image", "inspect_distribution", "exec_create",
    "exec_start", "exec_inspect", "api_version", "base_url", "close"))


class ReadOnly(object):
    """The live engine, for reads only: nothing else a dry run asks of it gets there."""

    def __init__(self, api):
        self._api = api

    def __getattr__(self, name):
        if name not in LIVE_READS:
            raise ClockworkError("a dry run does not send %s to the Docker engine" % name)
        return getattr(self._api, name)


def _ident(what, attrs):
    return attrs.get("Name") if what == "volume" else attrs.get("Id") or attrs.get("ID")


class DryRunEngine(MemoryEngine):
    """A dry run's engine over `live` (anything that speaks the same API: engine_api.EngineAPI)."""

    dry_run = True

    def __init__(self, live, execs=None):
        self.live = ReadOnly(live)
        self._adopted = set()          # containers copied in from the live engine
        self._tasks_read = set()       # services whose live tasks were copied in
        self._manager_state = None
        MemoryEngine.__init__(self, execs=execs)
        self.api_version = live.api_version
        self.base_url = live.base_url
        self.files_here = live.files_here   # the live engine's (gateway.files_reach_engine)

    def _predefined(self):
        """None of its own: the live engine's bridge, host and none are read through."""

    # A wait in a dry run watches the live engine's containers too: it takes real time.
    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)

    # -- reading through --------------------------------------------------------------------

    def _store(self, what):
        stores = {"container": self._containers, "network": self._networks, "volume": self._volumes,
                  "image": self._images, "service": self._services}
        return stores[what] if what in stores else self._objects[what]

    def _known(self, what, ident):
        """Whether the memory knows better than the live engine: it holds the object, or removed it."""
        return ident in self._store(what) or ident in self.removed.get(what, ())

    @contextlib.contextmanager
    def _unlocked(self):
        """The engine's lock let go while the live engine answers: under it, a stack's parallel
        reads (pre-flight, each resource's worker) would wait for each other's round trips. Taken
        once by the call (api_method) it is let go; taken again after, and what was read is then
        checked against what the memory holds by then (`_miss`, `_refreshed`)."""
        held = getattr(self._local, "depth", 0) == 1 and not getattr(self._local, "memory_only", False)
        if held:
            self._lock.release()
        try:
            yield
        finally:
            if held:
                self._lock.acquire()

    def _read_live(self, what, ref):
        if what in ("container", "network", "volume", "image"):
            with self._unlocked():
                return self.live.inspect_or_none(what, ref)
        if not self._is_manager():
            return None
        try:
            with self._unlocked():
                return getattr(self.live, "inspect_" + what)(ref)
        except APIError as exc:
            if status_of(exc) == NOT_FOUND:
                return None
            raise

    def _miss(self, what, ref):
        if getattr(self._local, "memory_only", False):
            return None
        attrs = self._read_live(what, ref)
        if attrs is None:
            return None
        if self._known(what, _ident(what, attrs)):
            # Held already: removed or renamed by the run (then `ref` names nothing now), or copied in by
            # another thread while this one read: what the memory answers to `ref` now.
            return self._found_in_memory(what, ref)
        return self._adopt(what, attrs)

    def _found_in_memory(self, what, ref):
        finders = {"container": lambda: self._find_container(ref, miss=False), "network": lambda: self._find_network(ref),
                   "volume": lambda: self._find_volume(ref), "image": lambda: self._find_image(ref),
                   "service": lambda: self._find_service(ref)}
        self._local.memory_only = True
        try:
            return finders[what]() if what in finders else self._find_object(what, ref)
        finally:
            self._local.memory_only = False

    def _adopt(self, what, attrs):
        """A live object copied into the memory; a network brings its running containers."""
        ident = _ident(what, attrs)
        self._store(what)[ident] = attrs
        if what == "container":
            self._adopted.add(ident)
            self._meta[ident] = {"files": {}, "anonymous": [
                m["Name"] for m in attrs.get("Mounts") or [] if m.get("Type") == "volume" and
                ANONYMOUS.match(m.get("Name") or "")]}
        elif what == "network":
            for container in list(attrs.get("Containers") or {}):
                if not self._known("container", container):
                    self._miss("container", container)
        return attrs

    def _more(self, what, **query):
        """The live list's objects the memory does not know (tasks: of services it has not changed)."""
        try:
            with self._unlocked():
                listed = self._live_list(what, query)
            if what == "node":
                return listed
            if what == "task":
                return [t for t in listed if t["ServiceID"] not in self.changed_services and t["ID"] not in self._tasks]
        except APIError as exc:
            if status_of(exc) == NOT_FOUND:
                return []    # a filter names what only the dry run made
            raise
        return [o for o in listed if not self._known(what, _ident(what, o)) or
                (what == "container" and self._untouched(o["Id"]))]

    def _live_list(self, what, query):
        if what == "container":
            return self.live.containers(all=query["all"], filters=query["filters"])
        if what == "volume":
            return self.live.volumes(filters=query["filters"]).get("Volumes") or []
        if what == "image":
            return self.live.images(name=query["name"], filters=query["filters"])
        return getattr(self.live, what + "s")(filters=query["filters"])

    def _listed_here(self, attrs):
        return not self._untouched(attrs["Id"])

    def _is_manager(self):
        if self._manager_state is None:
            try:
                # An engine that is no manager refuses GET /services (503): asked first, as GET /info,
                # which says the same, takes ten times as long (a run on the docker target asks once).
                self.live.services(filters={"label": "io.clockwork.dry-run=manager"})
            except APIError:
                self._manager_state = False
                return False
            swarm = self.live.info().get("Swarm") or {}
            self._manager_state = swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))
            self.node_id = swarm.get("NodeID") or None
        return self._manager_state

    def _all_services(self):
        """Every service, the live engine's too (a secret in use by one cannot be removed)."""
        for service in self.live.services():
            if not self._known("service", service["ID"]):
                self._adopt("service", service)
        return MemoryEngine._all_services(self)

    def _service_tasks(self, service):
        """A live service's tasks are copied in before the dry run first changes it (an update
        shuts them down in memory, as the live engine would)."""
        if service["ID"] not in self._tasks_read:
            self._tasks_read.add(service["ID"])
            try:
                live_tasks = self.live.tasks(filters={"service": service["ID"]})
            except APIError as exc:
                if status_of(exc) != NOT_FOUND:
                    raise
                live_tasks = []
            for task in live_tasks:
                self._tasks.setdefault(task["ID"], task)
                self._find_container((task["Status"].get("ContainerStatus") or {}).get("ContainerID"))
        return MemoryEngine._service_tasks(self, service)

    def _untouched(self, ident):
        return ident in self._adopted and ident not in self.touched

    def forecast(self, container):
        """Whether `container` is one this dry run made or changed: its state is a forecast."""
        held = self._find_container(container)
        return held is not None and not self._untouched(held["Id"])

    def _passthrough(self, attrs):
        return self.live if self._untouched(attrs["Id"]) else None

    def _refreshed(self, attrs):
        """A container the dry run left alone, as the live engine sees it now (its state and
        health change on their own); None when it is gone."""
        with self._unlocked():
            fresh = self.live.inspect_or_none("container", attrs["Id"])
        if not self._untouched(attrs["Id"]):    # changed by the run (another thread) while this one read
            return self._containers.get(attrs["Id"])
        if fresh is None:
            self._containers.pop(attrs["Id"], None)
            self._adopted.discard(attrs["Id"])
            return None
        self._containers[attrs["Id"]] = fresh
        return fresh

    def _volume_users(self, name):
        for listed in self.live.containers(all=True, filters={"volume": name}):
            if not self._known("container", listed["Id"]):
                self._miss("container", listed["Id"])
        return MemoryEngine._volume_users(self, name)

    # -- the calls whose answer differs from the memory's -----------------------------------

    @api_method
    def inspect_or_none(self, kind, name):
        held = self._find_container(name, miss=False) if kind == "container" else None
        if held is not None and self._untouched(held["Id"]):
            return self._refreshed(held)
        return MemoryEngine.inspect_or_none(self, kind, name)

    @api_method
    def inspect_container(self, container):
        held = self._find_container(container, miss=False)
        if held is not None and self._untouched(held["Id"]):
            held = self._refreshed(held)
            if held is None:
                refuse(404, "No such container: %s" % container, "/containers/%s/json" % container)
            return held
        return MemoryEngine.inspect_container(self, container)

    @api_method
    def info(self):
        return self.live.info()

    @api_method
    def inspect_distribution(self, image, auth_config=None):
        return self.live.inspect_distribution(image)

    def _saved_elsewhere(self, image):
        """An image the dry run did not import (a release record): as the live engine saves it."""
        with self._unlocked():
            return list(self.live.get_image(image))

    @api_method
    def pull(self, repository, tag=None, stream=False, auth_config=None, decode=False, platform=None,
             all_tags=False):
        """The registry is asked whether it has the image (a pull's own error when not); the
        image then stands in memory with an empty configuration."""
        ref = full_reference(repository if "@" in repository or not tag else "%s:%s" % (repository, tag))
        self.live.inspect_distribution(ref)
        self.add_image(ref, self.pullable.get(ref))
        return '{"status":"Status: Downloaded newer image for %s"}' % ref

    @api_method
    def build(self, path=None, tag=None, **options):
        """Would build: the context is read and the Dockerfile's base image looked up on the live
        engine (a missing one fails as the build would); the image stands in memory, its id a
        forecast, so the containers it would roll show as changed. Nothing is sent to the engine."""
        return answer_build(self, tag=tag, **options)


def open_gateway(check_mode=False, environment=None, client=None):
    """The gateway a run uses: in check mode a dry run's (it reads the engine and keeps every
    write to itself), else the engine's."""
    if check_mode:
        return dry_run_gateway(environment=environment, client=client)
    return DockerGateway(client=client, environment=environment)


def dry_run_gateway(environment=None, client=None, live=None):
    """A DockerGateway whose writes are only recorded (check mode): over `live` (an engine API;
    a MemoryEngine standing in for one in tests), else the live engine of `environment` or `client`."""
    if live is None:
        live = EngineAPI(environment=environment, client=client, max_pool_size=MAX_POOL_SIZE)
    return DockerGateway(api=DryRunEngine(live))


def dry_run_over(gateway):
    """A dry run over `gateway`'s engine (`gateway` itself when it is one): for a run that must
    change nothing whatever the task's check mode (state verified converges on one)."""
    return gateway if gateway.dry_run else DockerGateway(api=DryRunEngine(gateway.api))
