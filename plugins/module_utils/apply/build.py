# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container resource's `build`: its image built on the Docker host's engine from a context
read on the controller (plugin_utils/build_context.py sends it as a tar beside the module, with
its content hash), and built again only when that hash differs from the one the image carries
(BUILD_HASH_LABEL). A rebuilt image has a new id, so the resource's containers drift by image
and roll as any changed container does. The pre-flight (preflight.py) asks here."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import posixpath
import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import RESERVED_LABEL_PREFIX
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import APIError, engine_words
# The content hash an image was built from: ours alone (io.clockwork.), never a user's label. The gateway
# removes an image that has it once a rebuild replaced it and no container uses it (docker/image_calls.py).
from ansible_collections.clockwork.connections.plugins.module_utils.docker.image_calls import BUILD_HASH_LABEL
from ansible_collections.clockwork.connections.plugins.module_utils.masking import MASK, env_secrets

# The tag of a resource's image when it declares a build and no image (`<stack>-<resource>:clockwork`).
BUILT_TAG = "clockwork"

# The `build` field of a container resource (CONTAINER_ARGS takes it as build=dict(type="dict", options=...)).
BUILD_OPTION_SPEC = dict(
    context=dict(type="str", required=True),
    dockerfile=dict(type="str", default="Dockerfile"),
    target=dict(type="str"),
    args=dict(type="dict", default={}),
    labels=dict(type="dict", default={}),
    # Set by the stack action on the controller, never by hand: where the context's tar is on the
    # Docker host's machine, and its content hash (plugin_utils/build_context.py ship_builds).
    archive=dict(type="str"),
    content_hash=dict(type="str"),
)

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


def built_image(stack, params):
    """The image a container resource runs: its `image`, else the one its build makes:
    `<stack>-<resource>:clockwork`, a name Docker takes (a resource name it would refuse, or one
    with capitals, gets a short digest of itself so that no two resources share a tag)."""
    if params.get("image") or not params.get("build"):
        return params.get("image")
    name = "%s-%s" % (stack, params["name"])
    if not _COMPONENT.match(name):
        cleaned = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "build"
        name = "%s-%s" % (cleaned, hashlib.sha256(params["name"].encode("utf-8")).hexdigest()[:8])
    return "%s:%s" % (name, BUILT_TAG)


def build_problems(params):
    """What is wrong with a resource's `build` that the plan can know: [(field, problem)]."""
    build = params.get("build")
    if not build:
        return []
    problems = []
    dockerfile = str(build.get("dockerfile") or "Dockerfile")
    relative = posixpath.normpath(dockerfile)
    if dockerfile.startswith("/") or relative == ".." or relative.startswith("../") or relative == ".":
        problems.append(("build.dockerfile", "%r is not a file inside the build context (a path relative to the "
                                             "context, without .. leading out of it)" % dockerfile))
    for key in sorted(str(k) for k in build.get("labels") or {}):
        if key.startswith(RESERVED_LABEL_PREFIX):
            problems.append(("build.labels", "%s: the %s prefix is reserved for the labels the collection sets "
                                             "itself" % (key, RESERVED_LABEL_PREFIX)))
    for key, value in sorted((build.get("args") or {}).items()):
        if value is None:
            problems.append(("build.args", "%s has no value (a build argument is never read from the "
                                           "controller's environment)" % key))
    return problems


def build_labels(build):
    """The labels the image is built with: the declared ones and its content hash."""
    labels = dict((str(k), str(v)) for k, v in (build.get("labels") or {}).items())
    labels[BUILD_HASH_LABEL] = build["content_hash"]
    return labels


def why_build(engine, image, build):
    """(the image's attributes or None, why it must be built or None when it is current)."""
    attrs = engine.image(image)
    if attrs is None:
        return None, "no image %s yet" % image
    built_from = ((attrs.get("Config") or {}).get("Labels") or {}).get(BUILD_HASH_LABEL)
    if built_from != build.get("content_hash"):
        return attrs, ("its context, Dockerfile or settings changed" if built_from else
                       "image %s was not built from this context" % image)
    return attrs, None


def unready_problem(build):
    """Why a build cannot run at all: its context was not read on the controller; else None."""
    if not build.get("archive") or not build.get("content_hash"):
        return ("build: its context was not read: the stack action reads it on the controller and sends it "
                "with the module (build.archive and build.content_hash are the action's)")
    return None


def run_build(engine, image, build):
    """Build `image` on the engine (a dry run records that it would). Returns (attrs, problem)."""
    try:
        args = dict((str(k), str(v)) for k, v in (build.get("args") or {}).items())
        engine.build(build["archive"], image, dockerfile=posixpath.normpath(build.get("dockerfile") or "Dockerfile"),
                     target=build.get("target"), args=args, labels=build_labels(build))
    except (APIError, OSError) as exc:
        # The build's last lines of output may echo a build argument whose name says secret.
        words = engine_words(exc)
        for secret in sorted(env_secrets(build.get("args")), key=len, reverse=True):
            words = words.replace(secret, MASK)
        return None, "build: image %s could not be built: %s" % (image, words)
    attrs = engine.image(image)
    if attrs is None:
        return None, "build: the engine built no image %s" % image
    return attrs, None


def swarm_problem(engine, plan):
    """A Swarm of several nodes runs a service's tasks where the image built on this manager is
    not, and no registry carries it there: refused. None on a single node."""
    if plan.engine != "swarm":
        return None
    try:
        nodes = engine.nodes()
    except APIError:
        return None   # not a swarm manager: the Swarm pre-flight says so
    if len(nodes) > 1:
        return ("build: the image is built on this manager only, and the Swarm has %d nodes whose tasks would not "
                "find it (no registry carries it to them); give an image pushed to a registry instead, or deploy "
                "on a single-node Swarm" % len(nodes))
    return None
