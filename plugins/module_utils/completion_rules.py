# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TypeCompletion: what field completion (plugin_utils/completion.py) asks of a connection
type, and the words of a description the local completer reads. Each completable type's
folder has a completion.py ending in its COMPLETION, given to its ConnectionType."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

# Words that say how things connect, not what a connection is for. The database engines
# add their names and URL schemes (database/completion.py).
STOP_WORDS = {"a", "an", "the", "for", "and", "of", "to", "with", "between", "in", "on", "by", "from", "this",
              "connect", "connection", "communication", "database", "postgresql", "postgres", "redis", "network",
              "service", "services"}


def words(text):
    return re.findall(r"[a-z0-9]+", (text or "").lower())


def topic(description, also_drop=()):
    """The words after `for` (or all of them), without the stop words: "user data" -> [user, data]."""
    found = words(description)
    if "for" in found:
        found = found[found.index("for") + 1:]
    return [w for w in found if w not in STOP_WORDS and w not in also_drop]


def docker_like_name(*parts):
    return re.sub(r"[^a-zA-Z0-9_.-]", "-", "-".join(p for p in parts if p))[:63]


def given(params, key):
    """A field counts as given when the user set it, even to a default-looking value."""
    return params.get(key) is not None


class TypeCompletion(object):
    """The completion of one connection type's fields from a description.

    narrower_choices  {field: choices} a completed value must be among (narrower than the spec's)
    """

    narrower_choices = {}

    def candidates(self, params, context):
        """{field: [values to try, best first]}: the same input always gives the same output.
        `context` has the endpoints ({from, to}), `to_env` (the local completer's alone) and the stack."""
        raise NotImplementedError

    def not_completed(self, params):
        """Completable fields this connection needs no value for."""
        return ()

    def needs_password(self, params):
        """Whether a described connection without a password gets one (referenced, or generated)."""
        return False

    def password_env(self, params):
        """The env names of `to` that may hold the password a description implies, first found wins."""
        return ()

    def question(self, params):
        """What the model is told about this connection beyond its fields."""
        return {}

    def mounts_into(self, params, to_is_container):
        """Which ends ("from", "to") a completed mount path is mounted into: the policy keeps it
        clear of their other mounts."""
        return ()

    def reserves_container_names(self):
        """Whether a completed value must not take the name of another container of the stack."""
        return False
