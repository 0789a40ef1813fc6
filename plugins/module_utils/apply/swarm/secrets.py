# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker secrets and configs of a stack, named by their content.

Swarm cannot change a secret or a config: new content is a new object under a new name,
the services move to it in a rolling update, and the old one goes once nothing uses it.
A secret's name carries a slow, salted digest of its value, never the value or a fast hash
of it (a password's fast hash is as good as the password to anyone with a word list);
a config's name carries the sha256 of its content, which `docker config inspect` shows anyway.

An object goes once no service uses it and no kept release names it either: a rollback (issue 35
part 6, apply/swarm/rollback.py) puts the release's spec back, with the secrets it names by id."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    ClockworkError, STACK_LABEL, owned_by, owner_labels)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    CONFLICT, NOT_FOUND, engine_words, status_of)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.tasks import in_use
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore

NAME_LIMIT = 64
DIGEST_LENGTH = 16
# The cost of the digest in a secret's name: tenths of a second per run, years per guess list.
SECRET_DIGEST_ROUNDS = 100000
KINDS = ("secret", "config")


def content_digest(kind, stack, purpose, payload):
    """What names one value: pbkdf2 for a secret (salted with the stack and its use), sha256 for a config."""
    if kind == "secret":
        salt = ("clockwork.connections %s %s" % (stack, purpose)).encode("utf-8")
        return hashlib.pbkdf2_hmac("sha256", payload, salt, SECRET_DIGEST_ROUNDS).hex()[:DIGEST_LENGTH]
    return hashlib.sha256(payload).hexdigest()[:DIGEST_LENGTH]


def object_name(stack, purpose, digest):
    """`<stack>_<purpose>_<digest>` in Docker's rule for secret and config names (64 at most)."""
    base = re.sub(r"[^a-zA-Z0-9_.-]+", "-", "%s_%s" % (stack, purpose))
    return "%s_%s" % (base[:NAME_LIMIT - len(digest) - 1].rstrip("-_."), digest)


class SwarmObjects(object):
    """The secrets and configs on the swarm, read once through the gateway; creates what a
    service needs."""

    def __init__(self, engine, stack):
        self.engine = engine
        self.stack = stack
        self._listed = {}

    def listed(self, kind):
        """name -> object, for every secret (or config) on the swarm."""
        if kind not in self._listed:
            try:
                found = self.engine.secrets() if kind == "secret" else self.engine.configs()
            except APIError as exc:
                raise ClockworkError("cannot list %ss: %s" % (kind, engine_words(exc)))
            self._listed[kind] = dict((o["Spec"]["Name"], o) for o in found)
        return self._listed[kind]

    def ensure(self, kind, stack, resource, purpose, payload):
        """(name, id, created): the object holding `payload` (bytes), made when missing."""
        name = object_name(stack, purpose, content_digest(kind, stack, purpose, payload))
        existing = self.listed(kind).get(name)
        if existing is not None:
            if not owned_by(existing["Spec"].get("Labels"), self.stack):
                raise ClockworkError("%s %s exists and is not owned by stack %s (no label %s=%s): it is never "
                                     "used or taken over" % (kind, name, self.stack, STACK_LABEL, self.stack))
            return name, existing["ID"], False
        labels = owner_labels(self.stack, resource)
        try:
            if kind == "secret":
                made = self.engine.create_secret(name, payload, labels=labels)
            else:
                made = self.engine.create_config(name, payload, labels=labels)
        except APIError as exc:
            if status_of(exc) != CONFLICT:
                raise ClockworkError("cannot create %s %s: %s" % (kind, name, engine_words(exc)))
            # Made meanwhile by a concurrent run: the name says the content is the same.
            self._listed.pop(kind, None)
            return self.ensure(kind, stack, resource, purpose, payload)
        made_id = made["ID"] if isinstance(made, dict) else made
        self.listed(kind)[name] = {"ID": made_id, "Spec": {"Name": name, "Labels": labels}}
        return name, made_id, True

    def owned(self, kind):
        """name -> id of the stack's own objects of `kind`."""
        return dict((name, o["ID"]) for name, o in self.listed(kind).items()
                    if owned_by(o["Spec"].get("Labels"), self.stack))

    def remove(self, kind, name):
        """Remove one object; False when a service still uses it (the engine refuses)."""
        object_id = self.listed(kind)[name]["ID"]
        try:
            if kind == "secret":
                self.engine.remove_secret(object_id)
            else:
                self.engine.remove_config(object_id)
        except APIError as exc:
            if status_of(exc) == NOT_FOUND:
                return True
            if in_use(exc):
                return False
            raise ClockworkError("cannot remove %s %s: %s" % (kind, name, engine_words(exc)))
        self.listed(kind).pop(name, None)
        return True


def references(spec):
    """The secret and config names a service spec uses."""
    container = ((spec or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
    return set([s.get("SecretName") for s in container.get("Secrets") or []]
               + [c.get("ConfigName") for c in container.get("Configs") or []])


def kept_references(gateway, stack):
    """The names the services of the stack's kept releases use (a rollback needs them back); None
    when a release cannot be read (then nothing is taken for unused: the run says nothing of it)."""
    try:
        releases, _missing = ReleaseStore(gateway, stack).releases()
    except ClockworkError:
        return None
    used = set()
    for release in releases:
        for service in (release.get("services") or {}).values():
            used |= references(service.get("spec"))
    return used


def unused_objects(objects, services, gateway, stack):
    """[(kind, name)] of the stack's secrets and configs that no service of `services` (the stack's,
    as listed) uses and no kept release names: a rotation's old ones, once no rollback can want them."""
    used = set()
    for service in services:
        used |= references(service.get("Spec"))
    unused = [(kind, name) for kind in KINDS for name in sorted(objects.owned(kind)) if name not in used]
    if not unused:
        return []   # the releases are read only when something may go (most runs: nothing)
    kept = kept_references(gateway, stack)
    return [] if kept is None else [(kind, name) for kind, name in unused if name not in kept]
