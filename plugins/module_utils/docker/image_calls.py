# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's image builds (gateway.py composes them): POST /build with a context tar, the
classic builder's way (no BuildKit session), over whatever transport the engine is reached by."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import json
import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import RESERVED_LABEL_PREFIX, ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    CONFLICT, NOT_FOUND, APIError, NotFound, from_sdk, status_of)

# The content hash an image was built from (apply/build.py): ours alone (io.clockwork.), never a user's
# label; an image that has it was built by a stack.
BUILD_HASH_LABEL = RESERVED_LABEL_PREFIX + "build-hash"
# The stack that built an image. Not the stack label (io.clockwork.stack): a container made from the image
# gets its labels, and one made by somebody else (or the stack's lock) must not become the stack's.
BUILD_STACK_LABEL = RESERVED_LABEL_PREFIX + "build-stack"

# A build streams its output; a step may print nothing for long (a compile): wait this long between lines.
BUILD_TIMEOUT = 3600
# What an error keeps of the build's output: the last lines, where the failing step is.
LOG_LINES = 20
_BUILT = re.compile(r"^Successfully built ([0-9a-f]{12,64})\s*$")


class BuildFailed(APIError):
    """The engine answered the build, and the build failed: `explanation` is its error and the
    last lines of the output (no HTTP status: the stream had begun)."""


def read_build_stream(chunks):
    """(image id, last lines of output) of a build's decoded stream; BuildFailed on its error."""
    lines = collections.deque(maxlen=LOG_LINES)
    image_id = None
    for chunk in chunks:
        if isinstance(chunk, (bytes, str)):
            chunk = json.loads(chunk)
        if chunk.get("error") or chunk.get("errorDetail"):
            error = chunk.get("error") or (chunk.get("errorDetail") or {}).get("message") or "the build failed"
            output = "\n".join(lines)
            raise BuildFailed("build failed: %s" % error,
                              explanation="%s%s" % (error.strip(), "\n" + output if output else ""))
        image_id = ((chunk.get("aux") or {}).get("ID")) or image_id
        for line in (chunk.get("stream") or "").splitlines():
            if line.strip():
                lines.append(line.rstrip())
                built = _BUILT.match(line.strip())
                if built and image_id is None:
                    image_id = built.group(1)
    return image_id, "\n".join(lines)


def built_here(labels):
    """Whether labels (an image's, or a container's, which has its image's) say a stack built the image."""
    return BUILD_HASH_LABEL in (labels or {})


class ImageCalls(object):
    """Build images, and remove the images a stack built that nothing needs any more (prune_built_images).
    Each write records itself and forgets what it changed (DockerGateway._wrote)."""

    def build(self, archive, tag, dockerfile="Dockerfile", target=None, args=None, labels=None):
        """Build `tag` from the context tar at the path `archive` (build_context.py made it on the
        controller), its Dockerfile at `dockerfile` inside it. Returns the new image's id; the
        engine's error (the failing step's words) is an APIError (BuildFailed once the stream began).
        The image carries the stack's name (BUILD_STACK_LABEL) when the run's stack is known (its lock),
        and the stack's built images that nothing needs any more are removed after it."""
        # The image the tag named before (the pre-flight read it): replaced when the build makes another.
        previous = (self._cache.get(("image", tag)) or {}).get("Id")
        stack = self._run_stack()
        labels = dict(labels or {}, **({BUILD_STACK_LABEL: stack} if stack else {}))
        with open(archive, "rb") as context:
            chunks = self.api.build(fileobj=context, custom_context=True, tag=tag, dockerfile=dockerfile,
                                    target=target or None, buildargs=dict(args or {}), labels=labels,
                                    rm=True, forcerm=True, decode=True, timeout=BUILD_TIMEOUT)
            try:
                image_id, _output = read_build_stream(chunks)
            except Exception as exc:
                # The SDK raises an error status (a Dockerfile it cannot find: 500) once the stream is
                # read, outside the call that engine_api translates: ours too, as every engine error.
                from_sdk(exc)
                raise
            finally:
                self.forget("image", tag)
        self._wrote("build image %s" % tag, ("image", tag))
        if previous and image_id and previous.split(":")[-1][:12] != image_id.split(":")[-1][:12]:
            self._replaced_images.add(previous)
        if stack:
            self.prune_built_images(stack)
        return image_id

    def export_image(self, reference, limit):
        """What `docker save` writes of the image `reference` (a tar), None when there is none;
        refused past `limit` bytes (read no further)."""
        data, size = [], 0
        try:
            # The SDK sends the request when the stream is first read: its errors (a 404) come from the loop.
            for chunk in self.api.get_image(reference):
                size += len(chunk)
                if size > limit:
                    raise ClockworkError("image %s is larger than %d bytes: it is not one clockwork wrote" % (
                        reference, limit))
                data.append(chunk)
        except ClockworkError:
            raise
        except Exception as exc:
            if isinstance(from_sdk(exc), NotFound):
                return None
            raise
        return b"".join(data)

    def remove_image(self, image, words=None):
        """Remove an image (by id: with its tags; by reference: that tag), recorded as `words`."""
        try:
            self.api.remove_image(image)
        finally:
            self.forget("image", image)
        self._wrote(words or "remove image %s" % image, ("image", image))

    @property
    def _created_images(self):
        """Container (name and id) -> (the image this gateway created it from in this run, its stack)."""
        return self.__dict__.setdefault("_created_image_refs", {})

    @property
    def _replaced_images(self):
        """The ids of the images this gateway's builds took a tag from, in this run."""
        return self.__dict__.setdefault("_replaced_image_ids", set())

    def _run_stack(self):
        """The stack this gateway's run is of: the one of the containers it created (its lock first), when
        that is one; None otherwise."""
        stacks = set(stack for _image, stack in list(self._created_images.values()) if stack)
        return stacks.pop() if len(stacks) == 1 else None

    def prune_built_images(self, stack):
        """Remove the images `stack` built that nothing needs: no tag names them (a rebuild took it), no
        container, running or not, is made from them, and no kept release of the stack runs them (a
        rollback to it needs them: they go once the release is pruned). Those are the untagged images
        the stack built (BUILD_STACK_LABEL), and the ones this run's builds replaced. Returns the
        ids removed; one in use meanwhile (the engine's conflict) is left."""
        candidates = set(self._replaced_images)
        for image in self.api.images(all=False) or []:
            labels = image.get("Labels") or {}
            if built_here(labels) and labels.get(BUILD_STACK_LABEL) == stack and not _tags(image.get("RepoTags")):
                candidates.add(image["Id"])
        if not candidates:
            return []
        used = set(c.get("ImageID") for c in self.api.containers(all=True))
        kept = self._release_images(stack)
        removed = []
        for image_id in sorted(candidates - used):
            if image_id.split(":")[-1] not in kept and self._remove_unneeded(image_id):
                removed.append(image_id)
        return removed

    def _release_images(self, stack):
        """What the kept releases of `stack` hold (releases/store.py, on this host), as text an image id is
        looked for in; an unreadable release store keeps every image (None: `in` is always true)."""
        from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore  # pylint: disable=import-outside-toplevel
        try:
            releases, _missing = ReleaseStore(self, stack).releases()
        except (ClockworkError, OSError, ValueError):
            return _Everything()
        return "\n".join(json.dumps(release) for release in releases)

    def _remove_unneeded(self, image_id):
        """Remove one image that must still be a built one with no tag (read afresh); whether it went."""
        self.forget("image", image_id)
        attrs = self.image(image_id)
        if attrs is None or not built_here((attrs.get("Config") or {}).get("Labels")) or _tags(attrs.get("RepoTags")):
            return False
        try:
            self.api.remove_image(attrs["Id"])
        except APIError as exc:
            if status_of(exc) in (NOT_FOUND, CONFLICT):
                return False
            raise
        self._wrote("remove image %s (built by the stack, nothing uses it)" % attrs["Id"].split(":")[-1][:12],
                    ("image", image_id))
        return True


def _tags(tags):
    return [t for t in tags or [] if t != "<none>:<none>"]


class _Everything(object):
    """A release store that cannot be read: it holds every image (none is removed)."""

    def __contains__(self, _item):
        return True
