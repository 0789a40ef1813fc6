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

from ansible_collections.clockwork.connections.plugins.module_utils.common import RESERVED_LABEL_PREFIX
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    CONFLICT, NOT_FOUND, APIError, from_sdk, status_of)

# The content hash an image was built from (apply/build.py): ours alone (io.clockwork.), never a user's
# label; an image that has it was built by a stack.
BUILD_HASH_LABEL = RESERVED_LABEL_PREFIX + "build-hash"

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
    """Build images, and remove an image a rebuild replaced once nothing needs it (no tag, no container:
    a dangling image is not left behind). Each write records itself and forgets what it changed
    (DockerGateway._wrote)."""

    def build(self, archive, tag, dockerfile="Dockerfile", target=None, args=None, labels=None):
        """Build `tag` from the context tar at the path `archive` (build_context.py made it on the
        controller), its Dockerfile at `dockerfile` inside it. Returns the new image's id; the
        engine's error (the failing step's words) is an APIError (BuildFailed once the stream began)."""
        # The image the tag named before (the pre-flight read it): replaced when the build makes another.
        previous = (self._cache.get(("image", tag)) or {}).get("Id")
        with open(archive, "rb") as context:
            chunks = self.api.build(fileobj=context, custom_context=True, tag=tag, dockerfile=dockerfile,
                                    target=target or None, buildargs=dict(args or {}), labels=dict(labels or {}),
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
            self.remove_replaced_image(previous)   # when no container runs it any more
        return image_id

    @property
    def _replaced_images(self):
        """The ids of the images this gateway's builds took a tag from, in this run."""
        return self.__dict__.setdefault("_replaced_image_ids", set())

    def remove_replaced_image(self, image_id):
        """Remove the image `image_id` when a stack built it (BUILD_HASH_LABEL), a rebuild took its tag
        away (it has none left) and no container, running or not, is made from it. Returns whether it
        was removed; one in use meanwhile (the engine's conflict) is left."""
        self.forget("image", image_id)
        attrs = self.image(image_id)
        if attrs is None or not built_here((attrs.get("Config") or {}).get("Labels")):
            return False
        if [t for t in attrs.get("RepoTags") or [] if t != "<none>:<none>"]:
            return False
        if any(c.get("ImageID") == attrs["Id"] for c in self.api.containers(all=True)):
            return False
        try:
            self.api.remove_image(attrs["Id"])
        except APIError as exc:
            if status_of(exc) in (NOT_FOUND, CONFLICT):
                return False
            raise
        self._wrote("remove image %s (replaced by a rebuild, no container uses it)" % attrs["Id"].split(":")[-1][:12],
                    ("image", image_id))
        return True
