# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one call that puts a database back as one of its snapshots has it (database/snapshots.py),
whatever its engine: what a rollback with restore_data runs for each database (the stack role's
clockwork_restore runs the same converge through the database_connection module)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionContext
from ansible_collections.clockwork.connections.plugins.module_utils.database.connection_type import TYPE
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import resolved_settings
from ansible_collections.clockwork.connections.plugins.module_utils.database.snapshots import lost_words


def restore_connection(gateway, stack, connection, snapshot):
    """Put the database of a database connection back as `snapshot` has it (a rollback's
    restore_data): its state now kept as a snapshot first, then schema and rows as in the snapshot.

    `gateway`: the run's DockerGateway (a dry run's in check mode: nothing is read of the volume,
    nothing changed; the words say what would be). `connection`: the connection's parameters as the
    plan has them (Plan.connections: from_resource, to_resource, engine, username, password,
    database_name, ...). `snapshot`: the release's record of it ({name, created, size, volume, kind})
    or its name. The server (`to`) must run; stop the database's clients first. Takes clockwork's
    schema lock of the database. Returns the ConnectionResult: `actions` (the restore in words, with
    "rows written to <database> after <created> are lost"), extra["restore"] (snapshot, created,
    size, lost) and, on a real run, extra["snapshot_before_restore"]. Raises ClockworkError naming
    the connection when it cannot (no such snapshot: nothing changed)."""
    known = dict(snapshot) if isinstance(snapshot, dict) else {"name": snapshot}
    if not known.get("name"):
        raise ClockworkError("restore of %s: the snapshot has no name" % (connection.get("label") or "a database"))
    params = dict(connection, restore_snapshot=known["name"])
    result = TYPE.new_result(params)
    database = str(resolved_settings(params, None)["database"])
    result.extra["restore"] = {"snapshot": known["name"], "created": known.get("created"), "size": known.get("size"),
                               "lost": lost_words(database, known.get("created") or "the snapshot")}
    try:
        TYPE.converge(ConnectionContext(gateway, stack), params, result)
    except ClockworkError as exc:
        raise ClockworkError("%s: %s" % (result.name, exc.msg) if not exc.msg.startswith(result.name) else exc.msg)
    return result
