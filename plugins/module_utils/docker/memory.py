# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Docker engine in memory, behind the same gateway as the live one: tests run the appliers
without Docker, and a dry run (dry_run.py) keeps its writes here.

`MemoryEngine` speaks the subset of the SDK's `APIClient` that the gateway uses, with the answers
and errors of Docker Engine 20.10 (memory_base.py). Tests script it: images (`add_image`), each
container's health or exit after start (`after_start`), the results of execs (`execs`: a function
(container, argv, env) -> (exit code, output), or a table by program), failures
(`fail_next`), and read `calls`, every call made, in order.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import itertools
import threading

from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_base import (
    API_VERSION, HANG, MISSING, Failure, api_method, container_matches, container_summary, digest,
    full_reference, image_attrs, plain, refuse)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_containers import ContainerEngine
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_execs import ExecEngine
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_images import ImageEngine
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_networks import NetworkEngine
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_swarm import SwarmMemory

__all__ = ["MemoryEngine", "memory_gateway", "MISSING", "HANG", "WRITES"]

# The engine's calls that change something (what a dry run must never send to the live engine).
WRITES = frozenset(("create_container", "start", "stop", "restart", "rename", "remove_container", "wait",
                    "put_archive", "create_network", "remove_network", "connect_container_to_network",
                    "disconnect_container_from_network", "create_volume", "remove_volume", "pull",
                    "import_image_from_data", "create_service", "update_service", "remove_service",
                    "create_secret", "create_config", "remove_secret", "remove_config", "build",
                    "update_container", "create_container_from_config", "remove_image"))


class MemoryEngine(ContainerEngine, ExecEngine, NetworkEngine, SwarmMemory, ImageEngine):
    """An engine in memory. `images`: references to add (a list, or a dict of reference -> config);
    `execs`: how execs answer (see `exec_result`); `swarm`: a one-node swarm manager."""

    dry_run = False
    api_version = API_VERSION
    # Not this machine's engine: nothing about this machine (its ports) says anything about it.
    base_url = "memory://engine"
    # But the files a run writes (password files, TLS material) are this machine's, as on a local engine:
    # tests write them in a home of their own.
    files_here = True
    default_health = "healthy"     # a container with a healthcheck, once started, unless scripted

    def __init__(self, images=None, execs=None, swarm=False):
        self._lock = threading.RLock()
        self._local = threading.local()
        self.calls = []
        self._failures = []
        self._containers, self._meta, self._networks, self._volumes, self._images = {}, {}, {}, {}, {}
        self._volume_files, self._execs, self._forwarded, self._scripts, self._logs = {}, {}, {}, {}, {}
        self._hanging = []
        self.removed = {"container": set(), "network": set(), "volume": set(), "image": set()}
        self.touched = set()           # containers this engine wrote (created, started, renamed ...)
        self.execs = execs
        self.exec_log = []             # (container, argv, env) of every exec run here
        self.pullable = {}             # reference -> image config that `pull` finds
        self._clock = 0.0
        self._due = []                 # (time, container id, health) changes of health to come
        self._serial = itertools.count(1)
        self._next_port = 32768
        SwarmMemory.__init__(self, swarm)
        self._predefined()
        for ref, config in (images.items() if isinstance(images, dict) else ((r, None) for r in images or ())):
            self.add_image(ref, config)

    # -- time: the engine's own, so a wait on it takes none (DockerGateway.monotonic, .sleep) --

    def monotonic(self):
        return self._clock

    def sleep(self, seconds):
        """Time passes at once; health scripted to change by then changes."""
        with self._lock:
            self._clock += max(0.0, seconds)
            for due in [d for d in self._due if d[0] <= self._clock]:
                self._due.remove(due)
                attrs = self._containers.get(due[1])
                if attrs is not None and attrs["State"]["Running"] and "Health" in attrs["State"]:
                    attrs["State"]["Health"]["Status"] = due[2]

    def _predefined(self):
        for name, subnet in (("bridge", "172.17.0.0/16"), ("host", None), ("none", None)):
            self._new_network(name, "null" if name == "none" else name, subnet, {})

    # -- what tests script -------------------------------------------------------------

    def add_image(self, ref, config=None, image_id=None):
        """An image `ref` with `config` (Env, Cmd, Entrypoint, Healthcheck, Volumes, ExposedPorts,
        Labels, ...; Volumes and ExposedPorts may be lists). Returns its id."""
        with self._lock:
            image_id = image_id or "sha256:" + digest("image", full_reference(ref), sorted(plain(config or {}).items()))
            for attrs in self._images.values():
                if full_reference(ref) in attrs["RepoTags"]:
                    attrs["RepoTags"].remove(full_reference(ref))
            known = self._images.get(image_id)
            self._images[image_id] = known or image_attrs(image_id, [], config)
            self._images[image_id]["RepoTags"].append(full_reference(ref))
            return image_id

    def after_start(self, name, health=None, exits=None, once=False, logs=None, then=None, after=0):
        """What happens when the container `name` (or a task of the Swarm service `name`) starts:
        its health ("healthy", "unhealthy", "starting"), which becomes `then` `after` seconds of the
        engine's time; or it `exits` with that code; `logs` it writes; `once`: the next start only."""
        with self._lock:
            self._scripts.setdefault(name, []).append({"health": health, "exits": exits, "once": once, "logs": logs,
                                                       "then": then, "after": after})

    def set_health(self, name, status):
        """The health of a running container changes now (a wait sees it on its next read)."""
        with self._lock:
            state = self._container(name)["State"]
            state.setdefault("Health", {"FailingStreak": 0, "Log": []})["Status"] = status

    def set_logs(self, name, text):
        with self._lock:
            self._logs[name] = text.encode("utf-8") if isinstance(text, str) else text

    def add_file(self, container, path, data):
        """A file in a container (in the volume mounted there, if one is): what get_archive reads."""
        with self._lock:
            store, key = self._files_at(self._container(container), path)
            store[key] = data.encode("utf-8") if isinstance(data, str) else data

    def fail_next(self, method, status, message, match=None, before=None, times=1):
        """The next `times` calls of `method` (its first argument or name equal to `match`, or
        `match(*args, **kwargs)` true) fail with `status` and `message`, after `before(engine)`."""
        with self._lock:
            self._failures.append(Failure(method, status, message, match, before, times))

    def writes(self):
        """The calls made that change something, in order."""
        return [c for c in self.calls if c.method in WRITES]

    def _injected(self, method, args, kwargs):
        for failure in self._failures:
            if failure.applies(method, args, kwargs):
                failure.times -= 1
                if failure.before is not None:
                    failure.before(self)
                refuse(failure.status, failure.message, "/" + method)

    # -- finding objects as the engine does: full id, name, unique id prefix -------------

    def _miss(self, what, ref):
        """An object the memory does not hold: none here (a dry run reads the live engine)."""
        return None

    def _passthrough(self, attrs):
        """The engine that answers execs, logs and archives of a container: this one (None)."""
        return None

    def _by_name(self, name):
        wanted = "/" + name.lstrip("/")
        for attrs in self._containers.values():
            if attrs["Name"] == wanted:
                return attrs
        found = self._miss("container", name.lstrip("/"))
        return found if found is not None and found["Name"] == wanted else None

    def _find_container(self, ref, miss=True):
        """`miss`: ask `_miss` for a container the memory does not hold."""
        if not isinstance(ref, str) or not ref:
            return None
        if ref in self._containers:
            return self._containers[ref]
        wanted = "/" + ref.lstrip("/")
        for attrs in self._containers.values():
            if attrs["Name"] == wanted:
                return attrs
        prefixed = [a for i, a in self._containers.items() if i.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        return self._miss("container", ref) if miss else None

    def _container(self, ref, path="/containers/%s/json"):
        attrs = self._find_container(ref)
        if attrs is None:
            refuse(404, "No such container: %s" % ref, path % ref)
        return attrs

    def _find_network(self, ref, inspecting=False):
        if not isinstance(ref, str) or not ref:
            return None
        if ref in self._networks:
            return self._networks[ref]
        named = [a for a in self._networks.values() if a["Name"] == ref]
        if len(named) > 1:
            refuse(400, "%d matches found based on name: network %s is ambiguous" % (len(named), ref) if inspecting
                   else "network %s is ambiguous (%d matches found based on name)" % (ref, len(named)),
                   "/networks/%s" % ref)
        prefixed = named or [a for i, a in self._networks.items() if i.startswith(ref)]
        return prefixed[0] if len(prefixed) == 1 else self._miss("network", ref)

    def _network(self, ref, path, **options):
        attrs = self._find_network(ref, **options)
        if attrs is None:
            refuse(404, "network %s not found" % ref, path)
        return attrs

    def _find_volume(self, name):
        return self._volumes.get(name) or (self._miss("volume", name) if isinstance(name, str) and name else None)

    def _find_image(self, ref):
        if not isinstance(ref, str) or not ref:
            return None
        for key in (ref, "sha256:" + ref):
            if key in self._images:
                return self._images[key]
        for attrs in self._images.values():
            if full_reference(ref) in attrs["RepoTags"]:
                return attrs
        short = ref[7:] if ref.startswith("sha256:") else ref
        prefixed = [a for i, a in self._images.items() if len(short) >= 4 and i[7:].startswith(short)]
        return prefixed[0] if len(prefixed) == 1 else self._miss("image", ref)

    def close(self):
        for ours in self._hanging:
            ours.close()
        del self._hanging[:]

    # -- reads -----------------------------------------------------------------------------

    @api_method
    def inspect_or_none(self, kind, name):
        """A container, network (as inspect shows it), volume or image; None when there is none."""
        if kind in ("container", "volume", "image"):
            return {"container": self._find_container, "volume": self._find_volume, "image": self._find_image}[kind](name)
        found = self._find_network(name, inspecting=True)
        return None if found is None else self._network_view(found)

    @api_method
    def containers(self, quiet=False, all=False, trunc=False, latest=False,  # pylint: disable=redefined-builtin
                   since=None, before=None, limit=-1, size=False, filters=None):
        listed = [container_summary(a) for a in self._containers.values()
                  if self._listed_here(a) and (all or a["State"]["Running"]) and container_matches(a, filters)]
        listed += self._more("container", all=all, filters=filters)
        listed.sort(key=lambda c: (c["Created"], c["Id"]), reverse=True)
        listed = listed[:1] if latest else listed[:limit] if limit and limit > 0 else listed
        return [{"Id": c["Id"]} for c in listed] if quiet else listed

    def _more(self, what, **query):
        """Objects of a list the memory does not hold (a dry run's live ones): none here."""
        return []

    def _listed_here(self, attrs):
        """Whether the memory lists this container itself (a dry run lists the live one's as it is now)."""
        return True

    @api_method
    def info(self):
        running = sum(1 for a in self._containers.values() if a["State"]["Running"])
        return {"ID": digest("engine", id(self))[:36], "Containers": len(self._containers),
                "ContainersRunning": running, "ContainersPaused": 0,
                "ContainersStopped": len(self._containers) - running, "Images": len(self._images),
                "Driver": "overlay2", "Name": "memory", "ServerVersion": "20.10.24", "OSType": "linux",
                "OperatingSystem": "memory", "Architecture": "x86_64", "NCPU": 2, "MemTotal": 4 << 30, "Labels": [],
                "Swarm": self._swarm_info()}

    @api_method
    def inspect_distribution(self, image, auth_config=None):
        if full_reference(image) not in self.pullable:
            self._cannot_pull(image)
        return {"Descriptor": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                               "digest": "sha256:" + digest("manifest", full_reference(image)), "size": 1024},
                "Platforms": [{"architecture": "amd64", "os": "linux"}]}

    @staticmethod
    def _cannot_pull(image):
        repository = full_reference(image).rsplit(":", 1)[0]
        refuse(404, "pull access denied for %s, repository does not exist or may require 'docker login': denied: "
               "requested access to the resource is denied" % repository, "/images/create")


def memory_gateway(**kwargs):
    """A DockerGateway over a new MemoryEngine(**kwargs); the engine is its `api`."""
    return DockerGateway(api=MemoryEngine(**kwargs))
