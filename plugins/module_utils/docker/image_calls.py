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

from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import APIError, from_sdk

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


class ImageCalls(object):
    """Build images. Each build records itself and forgets the tag it made (DockerGateway._wrote)."""

    def build(self, archive, tag, dockerfile="Dockerfile", target=None, args=None, labels=None):
        """Build `tag` from the context tar at the path `archive` (build_context.py made it on the
        controller), its Dockerfile at `dockerfile` inside it. Returns the new image's id; the
        engine's error (the failing step's words) is an APIError (BuildFailed once the stream began)."""
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
        return image_id
