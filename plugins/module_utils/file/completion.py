# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Completing a file connection: `shared volume for user file uploads` -> the volume
user-uploads at /data/uploads."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.completion_rules import (
    TypeCompletion, docker_like_name, given, topic)

# Words that say what kind of thing a file connection is, not what it holds.
FILE_WORDS = {"shared", "volume", "file", "files", "data", "storage", "store", "mount", "directory"}


class FileCompletion(TypeCompletion):

    def candidates(self, params, context):
        stack = context.get("stack") or params.get("stack")
        source, target = params.get("from_resource"), params.get("to_resource")
        about = topic(params.get("description"), FILE_WORDS) or [target]
        last, joined = about[-1], "-".join(about)
        paths = ["/data/%s" % last, "/data/%s" % joined, "/data/%s-%s" % (target, last), "/srv/%s" % joined,
                 "/mnt/%s" % joined] + ["/data/%s-%d" % (joined, n) for n in range(2, 6)]
        return {"mount_path": paths,
                "volume_name": [docker_like_name(joined), docker_like_name(stack, joined),
                                docker_like_name(stack, source, target, "data")]}

    def not_completed(self, params):
        # A host file or a declared volume needs no volume name.
        if given(params, "source_path") or params.get("to_kind") in ("file", "volume"):
            return ("volume_name",)
        return ()

    def mounts_into(self, params, to_is_container):
        # A volume goes into a `to` container too.
        return ("from", "to") if not params.get("source_path") and to_is_container else ("from",)


COMPLETION = FileCompletion()
