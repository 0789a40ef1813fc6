# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker engine, seen through one client and one inspect per object per run."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import shlex
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError

try:
    import docker
    from docker.errors import APIError, DockerException, NotFound
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()
    APIError = DockerException = NotFound = Exception


def require_docker(module):
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker (the Docker SDK for Python)"),
                         exception=DOCKER_IMPORT_ERROR)


class Engine(object):
    """A Docker client plus a cache of inspected objects.

    Convergence reads each container, network, volume and image once per run;
    whatever changes an object calls `forget` so the next read is fresh.
    """

    def __init__(self, client=None):
        if client is None:
            try:
                client = docker.from_env()
                client.ping()
            except DockerException as exc:
                raise ClockworkError("cannot reach the Docker engine: %s" % exc)
        self.client = client
        self.api = client.api
        self._cache = {}

    def _inspect(self, kind, name, inspect):
        key = (kind, name)
        if key not in self._cache:
            try:
                self._cache[key] = inspect(name)
            except NotFound:
                self._cache[key] = None
        return self._cache[key]

    def container(self, name):
        return self._inspect("container", name, self.api.inspect_container)

    def network(self, name):
        return self._inspect("network", name, self.api.inspect_network)

    def volume(self, name):
        return self._inspect("volume", name, self.api.inspect_volume)

    def image(self, name):
        return self._inspect("image", name, self.api.inspect_image)

    def forget(self, kind, name):
        self._cache.pop((kind, name), None)

    def logs_tail(self, name, lines=20):
        try:
            raw = self.api.logs(name, tail=lines)
        except APIError:
            return ""
        return raw.decode("utf-8", "replace").strip()


def container_state(attrs):
    """(status, health) of an inspected container; health is None without a healthcheck."""
    if not attrs:
        return "absent", None
    state = attrs.get("State") or {}
    return state.get("Status"), (state.get("Health") or {}).get("Status")


def exec_in(engine, container, script, timeout=10, env=None):
    """Run a shell script inside a container, bounded by `timeout`; returns (exit code, output).

    Secrets go in `env`, never in the script, so they do not show in the process list.
    """
    command = ["sh", "-c", "timeout %d sh -c %s" % (timeout, shlex.quote(script))]
    try:
        exec_id = engine.api.exec_create(container, command, environment=env)["Id"]
        output = engine.api.exec_start(exec_id).decode("utf-8", "replace")
        return engine.api.exec_inspect(exec_id)["ExitCode"], output.strip()
    except APIError as exc:
        return 126, str(exc.explanation or exc)
