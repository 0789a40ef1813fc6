# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's calls on containers and images (gateway.py composes them)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import STACK_LABEL
from ansible_collections.clockwork.connections.plugins.module_utils.docker.engine_api import EngineAPI
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import from_sdk
from ansible_collections.clockwork.connections.plugins.module_utils.docker.image_calls import (
    BUILD_STACK_LABEL, built_here)

# `docker update`'s arguments as the SDK's update_container names them, and the engine's keys of them
# and of the two it lacks (nano_cpus, pids_limit: the engine takes them, PidsLimit since API 1.40).
UPDATE_BODY = {"mem_limit": "Memory", "mem_reservation": "MemoryReservation", "memswap_limit": "MemorySwap",
               "cpu_shares": "CpuShares", "restart_policy": "RestartPolicy", "nano_cpus": "NanoCpus",
               "pids_limit": "PidsLimit"}
SDK_UPDATE = frozenset(("mem_limit", "mem_reservation", "memswap_limit", "cpu_shares", "restart_policy"))
# The label of the stack a lock container locks (apply/lock.py's LOCK_LABEL): a built image's stack in a run.
LOCK_LABEL = "io.clockwork.lock"
# The id an import answers with ({"status":"sha256:..."}).
_IMPORTED = re.compile(r"sha256:[0-9a-f]{64}")


def split_reference(image):
    """(repository, tag) of an image reference for a pull; a digest stays in the repository."""
    if "@" in image:
        return image, None
    repository, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, "latest"
    return repository, tag


_NAMED = "containers-named"   # the cache's key of a list of containers by a part of their names


class ContainerCalls(object):
    """Create, start, stop, rename, remove and copy into containers; pull and import images. Each write
    records itself and forgets what it changed (DockerGateway._wrote)."""

    def container_now(self, name):
        """The container as it is now (its state changes on its own: a wait reads it afresh)."""
        self.forget("container", name)
        return self.container(name)

    def containers_named(self, part):
        """Every container whose name holds `part`, running or not, listed once for the run (a stack
        asks once per container); a create of such a name, and any rename or remove, list afresh."""
        key = (_NAMED, part)
        listed = self._cache.get(key)
        if listed is None:
            listed = self._cache[key] = self.api.containers(all=True, filters={"name": part})
        return listed

    def volumes(self, filters=None):
        """The volumes (a list), as `containers` and `networks` list theirs."""
        return self.api.volumes(filters=filters).get("Volumes") or []

    def _names_changed(self, name=None):
        """Forget the lists of containers by name that `name` may belong to (all: None, a
        container named by its id)."""
        for key in list(self._cache):
            if key[0] == _NAMED and (name is None or key[1] in name):
                self._cache.pop(key, None)

    # -- writes: containers --------------------------------------------------------------

    def create_container(self, name, image, host_config=None, **config):
        """A container `name` from `image`; `host_config`: create_host_config's arguments
        (binds, mounts, port_bindings ...); `config`: create_container's (command, environment,
        labels, networking_config ...). Returns the engine's answer ({"Id": ...})."""
        made = self.api.create_container(
            image, name=name, host_config=self.api.create_host_config(**host_config) if host_config else None, **config)
        labels = config.get("labels") or {}
        for key in (name, made.get("Id")):
            if key:
                self._created_images[key] = (image, labels.get(STACK_LABEL) or labels.get(LOCK_LABEL))
        self._wrote("create container %s" % name, ("container", name))
        self._names_changed(name)
        return made

    def endpoint_config(self, **options):
        return self.api.create_endpoint_config(**options)

    def networking_config(self, endpoints):
        return self.api.create_networking_config(endpoints)

    def start(self, container):
        self.api.start(container)
        self._wrote("start container %s" % container, ("container", container))

    def stop(self, container, timeout=None):
        if timeout is None:
            self.api.stop(container)
        else:
            self.api.stop(container, timeout=timeout)
        self._wrote("stop container %s" % container, ("container", container))

    def restart(self, container):
        self.api.restart(container)
        self._wrote("restart container %s" % container, ("container", container))

    def update_container(self, container, **resources):
        """`docker update`: a restart policy or a limit changed in place (options/resources.py says which).
        `resources`: the SDK's update_container arguments, and nano_cpus and pids_limit, which the engine's
        POST /containers/{id}/update takes (NanoCpus, PidsLimit) and the SDK's method does not."""
        if set(resources) - SDK_UPDATE and isinstance(self.api, EngineAPI):
            self._post_update(container, resources)
        else:
            self.api.update_container(container, **resources)
        self._wrote("update container %s" % container, ("container", container))

    def _post_update(self, container, resources):
        """POST /containers/{id}/update with the engine's own body, through the SDK's client (a write)."""
        body = dict((UPDATE_BODY[key], value) for key, value in resources.items() if value is not None)
        sdk = self.api.client.api
        try:   # the SDK's own request helpers, as its update_container uses them
            posted = sdk._post_json(sdk._url("/containers/{0}/update", container), data=body)  # pylint: disable=protected-access
            return sdk._result(posted, True)  # pylint: disable=protected-access
        except Exception as exc:
            from_sdk(exc)
            raise

    def _built_stack_of(self, container):
        """The stack whose built images are looked at once `container` (a name or an id) is removed: a
        container this gateway created (the stack's lock) when a build of this run replaced an image (the
        lock, made and removed every run, costs no read); any other, read as cached under its name or id
        (else now), when its labels, which have its image's, say a stack built its image. None otherwise."""
        if container in self._created_images:
            return self._created_images[container][1] if self._replaced_images else None
        attrs = self._cache.get(("container", container)) or next(
            (a for key, a in list(self._cache.items()) if key[0] == "container" and a
             and (a.get("Id") or "").startswith(container)), None) or self.container(container)
        labels = ((attrs or {}).get("Config") or {}).get("Labels") or {}
        return labels.get(BUILD_STACK_LABEL) or labels.get(STACK_LABEL) if built_here(labels) else None

    def rename(self, container, new_name):
        self.api.rename(container, new_name)
        self._wrote("rename container %s to %s" % (container, new_name), ("container", container),
                    ("container", new_name))
        self._names_changed()

    def remove_container(self, container, force=False, volumes=False):
        """`volumes`: its anonymous volumes too (`docker rm -v`). The last container of an image its stack
        built takes the image with it, when no kept release needs it (ImageCalls.prune_built_images); the
        stack's lock, removed at the end of a run that rebuilt, takes those its releases no longer hold."""
        stack = self._built_stack_of(container)
        self.api.remove_container(container, force=force, v=volumes)
        self._wrote("remove container %s" % container, ("container", container))
        self._names_changed()
        if stack:
            self.prune_built_images(stack)

    def wait(self, container, timeout=None):
        answer = self.api.wait(container, timeout=timeout)
        self.forget("container", container)
        return answer

    def put_archive(self, container, path, data):
        self.api.put_archive(container, path, data)
        self._wrote("copy files into container %s at %s" % (container, path))

    # -- writes: images ------------------------------------------------------------------

    def pull(self, image):
        """Pull `image` (a reference with tag or digest)."""
        repository, tag = split_reference(image)
        self.api.pull(repository, tag=tag)
        self._wrote("pull image %s" % image, ("image", image))

    def import_image(self, data, repository, tag, labels=None, words=None):
        """An image of the files of the tar `data` alone (no base image), tagged repository:tag, with
        `labels` (the lock's empty image; the release store's records), recorded as `words` (else
        "import image ..."). Returns its id, when the engine says it."""
        # Each label a LABEL instruction of the import's own: keys and values are ours, never a user's text.
        changes = ["LABEL %s=%s" % (key, value) for key, value in sorted((labels or {}).items())] or None
        try:
            answer = self.api.import_image_from_data(data, repository=repository, tag=tag, changes=changes)
        finally:
            self.forget("image", "%s:%s" % (repository, tag))
        self._wrote(words or "import image %s:%s" % (repository, tag), ("image", "%s:%s" % (repository, tag)))
        made = _IMPORTED.search(answer if isinstance(answer, str) else (answer or b"").decode("utf-8", "replace"))
        return made.group(0) if made else None
