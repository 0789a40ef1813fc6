# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Completing a database connection: the engine's template, user and database, from the
server's env where it says them; a password is never modelled (see TypeCompletion)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.completion_rules import (
    STOP_WORDS, TypeCompletion, given, topic)
from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import engine_of

# An engine's name or scheme says which server, not what the connection is for.
STOP_WORDS.update(ENGINES)
STOP_WORDS.update(scheme for engine in ENGINES.values() for scheme in engine.schemes)


class DatabaseCompletion(TypeCompletion):

    def candidates(self, params, context):
        env = context.get("to_env") or {}   # the local completer's alone, never sent to a model
        return engine_of(params).completion_candidates(env, topic(params.get("description")),
                                                       given(params, "password"))

    def needs_password(self, params):
        # An engine whose server declares its own password (PostgreSQL's POSTGRES_PASSWORD).
        return bool(params.get("description")) and not given(params, "password") \
            and bool(engine_of(params).server_password_env)

    def password_env(self, params):
        return engine_of(params).server_password_env

    def question(self, params):
        return {"engine": engine_of(params).name}


COMPLETION = DatabaseCompletion()
