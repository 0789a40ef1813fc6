# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a stack's release records are kept: in the Docker engine the stack runs on, each record
an image of one file, `clockwork-releases:<stack>.<n>` and `clockwork-releases:<stack>.index`.

Why the engine: whoever reaches the stack's engine must find its releases, however it reaches it:
a run over SSH on the Docker host, another controller, an in-process run against DOCKER_HOST=tcp://
or ssh://, a Swarm manager reached from a laptop. The engine is the one place they all reach; a
file is found only by a run that is on that host, as that user.

Why an image: it is read back without running anything (GET /images/{name}/get, what `docker
save` asks: check mode reads it too); importing one moves its tag at once, so a run killed half-way
leaves the previous record whole; and it is kept where Docker keeps its own record of a container
(/var/lib/docker, root's), readable by exactly who may inspect the containers whose config it holds.
Its one file is mode 0600; its labels say only whose releases these are (OWNER_LABEL), never what
a release holds. What is read back is untrusted data: bounded, parsed in memory, never extracted."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import json
import tarfile
import time

from ansible_collections.clockwork.connections.plugins.module_utils.common import RESERVED_LABEL_PREFIX, ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    CONFLICT, NOT_FOUND, APIError, engine_words, status_of)

REPOSITORY = "clockwork-releases"
# Whose releases an image holds. Not the stack label (io.clockwork.stack): a container made from the
# image would carry it and pass for the stack's.
OWNER_LABEL = RESERVED_LABEL_PREFIX + "releases-of"
FILE = "release.json"
FILE_MODE = 0o600
# A release of a large stack is tens of kilobytes; an image much bigger was not written by us.
MAX_BYTES = 8 * 1024 * 1024
# How the gateway's record of a run names the store's writes (apart from the stack's own images').
WORDS = "release record"
# What `docker save` adds around the file: the image's config, a manifest, tar headers.
SAVE_OVERHEAD = 64 * 1024


def single_file_tar(name, data, mode=FILE_MODE):
    """A tar of one file `name` holding `data`, root's, of `mode`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), int(time.time()), mode
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _member(archive, name, where):
    """The bytes of the regular file `name` in an open tar, at most MAX_BYTES."""
    try:
        info = archive.getmember(name)
    except KeyError:
        raise ClockworkError("%s holds no %s" % (where, name))
    if not info.isfile() or info.size > MAX_BYTES:
        size = "%d bytes, more than a release record ever is" % info.size
        raise ClockworkError("%s: %s is %s" % (where, name, "not a file" if not info.isfile() else size))
    return archive.extractfile(info).read()


def file_in_saved_image(data, where):
    """The one file FILE of the image `docker save` wrote as `data` (its manifest names the layers;
    the last one holds the file), read in memory. Raises naming `where` when it is not one."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as saved:
            manifest = json.loads(_member(saved, "manifest.json", where).decode("utf-8"))
            layers = manifest[0]["Layers"] if isinstance(manifest, list) and manifest else None
            if not isinstance(layers, list) or not layers or not isinstance(layers[-1], str):
                raise ClockworkError("%s: its manifest names no layer" % where)
            layer = _member(saved, layers[-1], where)
        with tarfile.open(fileobj=io.BytesIO(layer), mode="r:*") as files:
            return _member(files, FILE, where)
    except (tarfile.TarError, EOFError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ClockworkError("%s is not a release record (%s)" % (where, str(exc) or type(exc).__name__))


class EngineShelf(object):
    """The records of one stack's releases in the engine of `gateway`, by name ("index", "3")."""

    def __init__(self, gateway, stack):
        self.gateway = gateway
        self.stack = stack

    def reference(self, name):
        return "%s:%s.%s" % (REPOSITORY, self.stack, name)

    def where(self, name):
        return "image %s" % self.reference(name)

    def read(self, name):
        """The record's bytes, None when there is no such image."""
        reference = self.reference(name)
        try:
            data = self.gateway.export_image(reference, MAX_BYTES + SAVE_OVERHEAD)
        except APIError as exc:
            raise ClockworkError("cannot read %s: %s" % (self.where(name), engine_words(exc)))
        if data is None:
            return None
        return file_in_saved_image(data, "%s (move it away: docker rmi %s)" % (self.where(name), reference))

    def write(self, name, data):
        """The record `name` is `data` now: a new image takes the tag, the one it held goes."""
        reference = self.reference(name)
        previous = (self.gateway.image(reference) or {}).get("Id")
        try:
            made = self.gateway.import_image(single_file_tar(FILE, data), REPOSITORY, "%s.%s" % (self.stack, name),
                                             labels={OWNER_LABEL: self.stack}, words="%s: write %s" % (WORDS, reference))
        except APIError as exc:
            raise ClockworkError("cannot write %s: %s" % (self.where(name), engine_words(exc)))
        if previous and previous != made:
            self._remove(previous, "the %s it replaced" % reference)

    def remove(self, name):
        self._remove(self.reference(name))

    def _remove(self, image, what=None):
        try:
            self.gateway.remove_image(image, words="%s: remove %s" % (WORDS, what or image))
        except APIError as exc:
            # Gone already, or something (a container somebody made from it) holds it: it stays, harmless.
            if status_of(exc) not in (NOT_FOUND, CONFLICT):
                raise ClockworkError("cannot remove %s: %s" % (image, engine_words(exc)))
