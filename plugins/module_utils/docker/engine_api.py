# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker engine's API, as the SDK's `APIClient` shapes it (same methods, arguments,
answers and errors), wherever a request goes.

On a local engine (a Unix socket: DOCKER_HOST unset or unix:///...), what a run of an unchanged
stack asks goes over the standard library (unix_http.py): the inspects and lists it reads, the
two writes of its lock (a never-started container, created and removed) and the execs of its
checks (an argv list, no stdin). Everything else, and
every other transport (TCP with TLS, ssh://), goes to the SDK's client, created on first use:
a run that changes nothing never imports the SDK. Either way an error is one of errors.py's types.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import json
import os
import threading
import time
from urllib.parse import quote, urlencode

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    EngineUnreachable, NotFound, from_sdk, load_sdk)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.unix_http import (
    DEFAULT_TIMEOUT, LOCAL_BASE_URL, UnixHTTPClient)

DEFAULT_SOCKET = "/var/run/docker.sock"
# The oldest API the SDK speaks; an older engine is left to the SDK, which says so.
MINIMUM_API_VERSION = (1, 24)
# Connections kept to the engine: enough for the stack's workers and checks at once.
MAX_POOL_SIZE = 32


def local_socket(environment=None):
    """The path of the engine's Unix socket when DOCKER_HOST names one (or is unset: the SDK's
    default); None for any other transport, which the SDK handles."""
    host = ((environment or os.environ).get("DOCKER_HOST") or "").strip()
    if not host or host == "unix://":
        return DEFAULT_SOCKET
    if host.startswith("unix:///") and not any(c in host for c in "?#"):
        return host[len("unix://"):].rstrip("/") or None
    return None


def convert_filters(filters):
    """Filters as the API takes them (the SDK's docker.utils.convert_filters)."""
    result = {}
    for key, value in filters.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, list):
            value = [value]
        result[key] = [item if isinstance(item, str) else str(item) for item in value]
    return json.dumps(result)


def _translated(method):
    """An SDK method whose errors are also errors.py's types (errors.from_sdk)."""
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            from_sdk(exc)
            raise
    return call


class EngineAPI(object):
    """The engine's API. `client`: an SDK DockerClient to use for everything; else one is made
    from `environment` (the task's DOCKER_HOST and friends) when first needed."""

    # The live engine: writes are made, time is real. Attributes, so asking never reaches the SDK (__getattr__).
    dry_run = False
    files_here = None   # whether this process's files are the engine host's: the gateway finds out
    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)

    def __init__(self, environment=None, client=None, max_pool_size=MAX_POOL_SIZE):
        self._environment = environment
        self._client = client
        self._max_pool_size = max_pool_size
        self._lock = threading.Lock()
        self._http = None
        self.api_version = None
        self.base_url = None
        path = None if client is not None else local_socket(environment)
        if path:
            self._http = UnixHTTPClient(path, DEFAULT_TIMEOUT, max_pool_size)
            self.api_version = self._negotiate()
            self.base_url = LOCAL_BASE_URL
        if self._http is None:
            self._client = self._client or self._connect()
            self.api_version, self.base_url = self._client.api.api_version, self._client.api.base_url

    # -- the way there ------------------------------------------------------------------

    def _negotiate(self):
        """The API version to speak: the engine's own (GET /version), as the SDK's "auto" takes it.
        None (the SDK then) for an engine older than the SDK speaks."""
        try:
            answer = self._http.call("GET", "/version") or {}
        except EngineUnreachable as exc:
            raise ClockworkError(str(exc))
        version = str(answer.get("ApiVersion") or "")
        try:
            if tuple(int(part) for part in version.split(".")) >= MINIMUM_API_VERSION:
                return version
        except ValueError:
            pass
        self._http = None
        return None

    def _connect(self, version=None):
        """The SDK's client (imported now); `version` known, it need not ask the engine again."""
        docker = load_sdk()
        options = {"version": version} if version else {}
        try:
            client = docker.from_env(environment=self._environment, max_pool_size=self._max_pool_size, **options)
            if not version:
                client.ping()
        except docker.errors.DockerException as exc:
            raise ClockworkError("cannot reach the Docker engine: %s" % exc)
        if client.api.base_url.startswith("http+docker://local"):
            # A local socket has no proxy: without this, every request reads the proxy env anew.
            client.api.trust_env = False
        return client

    @property
    def client(self):
        """The SDK's DockerClient, made on first use (a write, or a call the light path lacks)."""
        with self._lock:
            if self._client is None:
                self._client = self._connect(self.api_version)
        return self._client

    def __getattr__(self, name):
        """Any other method of the SDK's APIClient, its errors translated."""
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self.client.api, name)
        return _translated(attr) if callable(attr) else attr

    def _sdk(self, name):
        """The SDK's own `name` (never the light one of the same name here)."""
        return self.__getattr__(name)

    @property
    def light(self):
        """Whether reads go over the standard library (a local socket)."""
        return self._http is not None

    def _url(self, path, *args, **params):
        target = "/v%s%s" % (self.api_version, path.format(*(quote(a, safe="/:") for a in args)))
        query = urlencode([(k, v) for k, v in params.items() if v is not None])
        return target + ("?" + query if query else "")

    def _get(self, path, *args, **params):
        return self._http.call("GET", self._url(path, *args, **params))

    # -- reads --------------------------------------------------------------------------

    INSPECT = {"container": "/containers/{0}/json", "network": "/networks/{0}", "volume": "/volumes/{0}",
               "image": "/images/{0}/json"}

    def inspect_or_none(self, kind, name):
        """The engine's view of one container, network, volume or image; None when it has none."""
        if self._http is None or not isinstance(name, str) or not name:
            try:
                return self._sdk("inspect_" + kind)(name)
            except NotFound:
                return None
        return self._http.call("GET", self._url(self.INSPECT[kind], name), missing_ok=True)

    def _inspect(self, kind, name, **params):
        if self._http is None or not isinstance(name, str) or not name:
            return self._sdk("inspect_" + kind)(name, **params)
        return self._get(self.INSPECT[kind], name, **params)

    def inspect_container(self, container):
        return self._inspect("container", container)

    def inspect_image(self, image):
        return self._inspect("image", image)

    def inspect_volume(self, name):
        return self._inspect("volume", name)

    def inspect_network(self, net_id, verbose=None, scope=None):
        return self._inspect("network", net_id, verbose=verbose, scope=scope)

    def exec_inspect(self, exec_id):
        exec_id = exec_id.get("Id") if isinstance(exec_id, dict) else exec_id
        if self._http is None or not isinstance(exec_id, str) or not exec_id:
            return self._sdk("exec_inspect")(exec_id)
        return self._get("/exec/{0}/json", exec_id)

    def containers(self, quiet=False, all=False, trunc=False, latest=False,  # pylint: disable=redefined-builtin
                   since=None, before=None, limit=-1, size=False, filters=None):
        if self._http is None:
            return self._sdk("containers")(quiet=quiet, all=all, trunc=trunc, latest=latest, since=since,
                                           before=before, limit=limit, size=size, filters=filters)
        listed = self._get("/containers/json", limit=1 if latest else limit, all=1 if all else 0,
                           size=1 if size else 0, trunc_cmd=1 if trunc else 0, since=since, before=before,
                           filters=convert_filters(filters) if filters else None) or []
        if quiet:
            return [{"Id": c["Id"]} for c in listed]
        if trunc:
            for container in listed:
                container["Id"] = container["Id"][:12]
        return listed

    def networks(self, names=None, ids=None, filters=None):
        if self._http is None:
            return self._sdk("networks")(names=names, ids=ids, filters=filters)
        filters = dict(filters or {})
        if names:
            filters["name"] = names
        if ids:
            filters["id"] = ids
        return self._get("/networks", filters=convert_filters(filters)) or []

    def volumes(self, filters=None):
        if self._http is None:
            return self._sdk("volumes")(filters=filters)
        return self._get("/volumes", filters=convert_filters(filters) if filters else None)

    def images(self, name=None, quiet=False, all=False, filters=None):  # pylint: disable=redefined-builtin
        if self._http is None or name:
            return self._sdk("images")(name=name, quiet=quiet, all=all, filters=filters)
        listed = self._get("/images/json", only_ids=1 if quiet else 0, all=1 if all else 0,
                           filters=convert_filters(filters) if filters else None) or []
        return [i["Id"] for i in listed] if quiet else listed

    def services(self, filters=None, status=None):
        if self._http is None or status is not None:
            return self._sdk("services")(filters=filters, status=status)
        return self._get("/services", filters=convert_filters(filters) if filters else None) or []

    def info(self):
        if self._http is None:
            return self._sdk("info")()
        return self._get("/info")

    # -- the commands the checks run (gateway.exec_in) ------------------------------

    def exec_create(self, container, cmd, stdout=True, stderr=True, stdin=False, tty=False, privileged=False,
                    user="", environment=None, workdir=None, detach_keys=None):
        """An exec of the argv list `cmd`; with stdin (a tunnel), or detach keys, the SDK's (it
        adds the user's configured detach keys, which matter only with stdin)."""
        if self._http is None or stdin or detach_keys or not isinstance(cmd, list) \
                or not isinstance(container, str) or not container:
            return self._sdk("exec_create")(container, cmd, stdout=stdout, stderr=stderr, stdin=stdin, tty=tty,
                                            privileged=privileged, user=user, environment=environment,
                                            workdir=workdir, detach_keys=detach_keys)
        if isinstance(environment, dict):
            environment = [k if v is None else "%s=%s" % (k, v.decode("utf-8") if isinstance(v, bytes) else v)
                           for k, v in environment.items()]
        body = {"Container": container, "User": user, "Privileged": privileged, "Tty": tty, "AttachStdin": stdin,
                "AttachStdout": stdout, "AttachStderr": stderr, "Cmd": cmd, "Env": environment, "WorkingDir": workdir}
        body = dict((k, v) for k, v in body.items() if v is not None)
        return self._http.call("POST", self._url("/containers/{0}/exec", container), body)

    def exec_start(self, exec_id, detach=False, tty=False, stream=False, socket=False, demux=False):  # pylint: disable=redefined-outer-name
        """With `socket` (and nothing else), the exec's stream: a socket, as the SDK gives it."""
        exec_id = exec_id.get("Id") if isinstance(exec_id, dict) else exec_id
        if self._http is None or not socket or detach or stream or demux or not isinstance(exec_id, str) \
                or not exec_id:
            return self._sdk("exec_start")(exec_id, detach=detach, tty=tty, stream=stream, socket=socket,
                                           demux=demux)
        return self._http.upgrade(self._url("/exec/{0}/start", exec_id), {"Tty": tty, "Detach": detach})

    # -- the two writes of a stack's lock (apply/lock.py) -------------------------------

    def create_host_config(self, *args, **kwargs):
        if self._http is None or args or set(kwargs) != {"network_mode"}:
            return self._sdk("create_host_config")(*args, **kwargs)
        return {"NetworkMode": kwargs["network_mode"]}

    def create_container(self, image, command=None, name=None, labels=None, host_config=None, **others):
        """A container from `image`, `command` (a list), `name`, `labels` (a dict) and `host_config`,
        with the body the SDK sends for them; anything more goes to the SDK."""
        if self._http is None or others or not isinstance(command, (list, type(None))) \
                or not isinstance(labels, (dict, type(None))) or not isinstance(image, str):
            return self._sdk("create_container")(image, command=command, name=name, labels=labels,
                                                 host_config=host_config, **others)
        body = {"Tty": False, "OpenStdin": False, "StdinOnce": False, "AttachStdin": False, "AttachStdout": True,
                "AttachStderr": True, "Cmd": command, "Image": image, "NetworkDisabled": False,
                "HostConfig": host_config, "Labels": labels}
        body = dict((k, v) for k, v in body.items() if v is not None)
        return self._http.call("POST", self._url("/containers/create", name=name), body)

    def remove_container(self, container, v=False, link=False, force=False):
        if self._http is None or not isinstance(container, str) or not container:
            return self._sdk("remove_container")(container, v=v, link=link, force=force)
        self._http.call("DELETE", self._url("/containers/{0}", container, v=v, link=link, force=force))
        return None

    def close(self):
        if self._http is not None:
            self._http.close()
        if self._client is not None:
            self._client.close()
