# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database engines: each engine_<name>.py ends in its ENGINE; a new engine is one
file and one line here."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.database import (
    engine_mysql, engine_postgresql, engine_redis)

LISTED = (
    engine_postgresql.ENGINE,
    engine_redis.ENGINE,
    engine_mysql.ENGINE,
)
# By name, and by each other name an engine answers to (mariadb is the mysql engine).
ENGINES = dict((name, e) for e in LISTED for name in (e.name,) + tuple(e.aliases))
