# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL's snapshots: before the files of a run are applied to a database that holds tables,
`pg_dump -Fc` runs inside the server's container (one consistent read, no table locked against
writes) and the dump is kept in the stack's volume (database/snapshots.py), bounded by
snapshot_max_mb. A file never half-applies on PostgreSQL (one transaction each), so the snapshot is
not for a failing file: it is what a rollback with restore_data puts back, schema and every row.

The restore keeps the state of the database now as a snapshot first, then drops the database,
creates it again with the owner, encoding and locale the snapshot recorded, and loads the dump with
`pg_restore --single-transaction --exit-on-error`: afterwards the database is exactly the snapshot,
nothing of what was made since stays (a table, a column, a row).

Every program runs as an argv list through `docker exec`; the login (host, port, user, password,
database) goes in the exec's environment (PGHOST ... PGPASSWORD), never in its command line."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database.snapshots import (
    MB, ServerContainer, SnapshotStore, file_of, record, restore_entry, restore_words,
    restoring, snapshot_name, utc_now)

KIND = "pg_dump"
# Relations that are data (tables, partitioned and materialised views, sequences), outside the catalogs
# and clockwork's own tracking table; and the size of the whole database.
HOLDINGS = ("SELECT (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'"
            " AND NOT (n.nspname = %s AND c.relname = %s)), pg_catalog.pg_database_size(pg_catalog.current_database())")
SETTINGS = ("SELECT pg_catalog.pg_get_userbyid(datdba), pg_catalog.pg_encoding_to_char(encoding), datcollate, datctype"
            " FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()")


def before_files(target, pending, ctx, result, tracking):
    """PostgresTarget.prepare: under the lock, before the files: a snapshot of a database that holds
    tables (a dry run's target only records it would). Returns its name, or None."""
    if not pending or target.conn is None:
        return None   # a database made by this run holds nothing to keep
    schema, table = tracking
    tables, size = target._sql("measuring the database", HOLDINGS, (schema, table)).fetchone()  # pylint: disable=protected-access
    if not tables:
        return None
    database = str(target.settings["database"])
    files = ", ".join("%s %s" % (kind, name) for kind, name, _path, _sql, _checksum in pending)
    limit = int(target.settings.get("snapshot_max_mb") or 1024)
    if size > limit * MB:
        warning = "no snapshot of %s before %s: it holds %d MB, over snapshot_max_mb (%d)" % (
            database, files, size // MB, limit)
        result.extra.setdefault("warnings", []).append("%s: %s" % (result.name, warning))
        result.act(warning)
        return None
    result.act("snapshot %s before %s" % (database, files))
    kept = target.keep_snapshot(ctx, ["%s %s" % (kind, name) for kind, name, _p, _s, _c in pending])
    if not kept:
        return None
    result.extra["snapshot"] = kept
    return kept["name"]


def login_env(target, user=None, password=None, database=None):
    """The exec's environment for a client program of the server's image: the connection's login
    over TCP on the server's own port (its pg_hba rules for a client, not the trusted socket)."""
    settings = target.settings
    env = {"PGHOST": "127.0.0.1", "PGPORT": str(settings["port"]), "PGUSER": str(user or settings["user"]),
           "PGDATABASE": str(database or settings["database"]), "PGCONNECT_TIMEOUT": "5"}
    password = password if user else settings["password"]
    if password is not None:
        env["PGPASSWORD"] = password
    return env


def dump(target, server, path, doing, after, admin_of):
    """pg_dump -Fc of the database into `path` in the server's container: as the connection's role,
    or, when that may not read everything, as the role the server's env declares for itself
    (`admin_of(env, command, name)`: the engine's server_credentials)."""
    # A table another session holds (LOCK TABLE, a long ALTER) fails the dump within the connection's
    # timeout, as the files' own lock waits do, instead of holding the run until that session ends.
    argv = ["pg_dump", "-w", "-Fc", "--lock-wait-timeout=%ds" % target.timeout, "--file=" + path]
    env = login_env(target)
    try:
        try:
            server.exec(argv, env, target.migration_timeout, doing, after, secrets=[env.get("PGPASSWORD")])
        except ClockworkError as exc:
            admin = admin_of(server.env(), None, server.name)
            if "permission denied" not in exc.msg or not admin or admin[0] == target.settings["user"]:
                raise
            env = login_env(target, admin[0], admin[1])
            server.exec(argv, env, target.migration_timeout, "%s as role %s" % (doing, admin[0]), after,
                        secrets=[env.get("PGPASSWORD")])
    except ClockworkError as exc:
        # pg_dump bounds its LOCK TABLE with statement_timeout (older versions) or lock_timeout.
        if "lock timeout" not in exc.msg and not ("statement timeout" in exc.msg and "LOCK TABLE" in exc.msg):
            raise
        raise ClockworkError("%s waited longer than the connection's timeout (%ss) for a lock another session holds "
                             "(%s); %s. Run again once that session has finished, or raise timeout." % (
                                 doing, target.timeout, exc.msg.rpartition(": ")[2].split(";")[0], after))


def keep_snapshot(target, ctx, before, admin_of, spare=()):
    """The real run's snapshot (PostgresTarget.keep_snapshot): dumped, kept in the volume, the oldest
    beyond snapshot_keep removed (not `spare`). Returns what a release records of it (snapshots.record)."""
    database = str(target.settings["database"])
    server = ServerContainer(ctx.engine, target.server)
    store = SnapshotStore(server, ctx.stack)
    owner, encoding, collate, ctype = target._sql("reading the database's settings", SETTINGS).fetchone()  # pylint: disable=protected-access
    name = snapshot_name(database)
    path = "/tmp/%s" % file_of({"snapshot": name, "kind": KIND})
    try:
        dump(target, server, path, "the snapshot of %s (pg_dump)" % database, "nothing was applied", admin_of)
        entry = {"snapshot": name, "database": database, "created": utc_now(), "kind": KIND, "before": before,
                 "owner": owner, "encoding": encoding, "collate": collate, "ctype": ctype}
        return record(store.keep(path, entry, int(target.settings["snapshot_keep"]), spare), store.volume)
    finally:
        server.remove(path)


def restore(target, ctx, result, snapshot, admin_of):
    """PostgresTarget.restore: the database put back as `snapshot` has it (see the module's docstring).
    A dry run's target reads nothing of the volume (that takes a container): it says what would be done."""
    database = str(target.settings["database"])
    server = ServerContainer(ctx.engine, target.server)
    store = SnapshotStore(server, ctx.stack)
    entry = restore_entry(target, result, store, snapshot, KIND)
    if entry is None:
        return
    result.act(restore_words(snapshot, database, entry, store.volume))
    restoring(result, database, entry)
    loaded = "/tmp/%s" % file_of(entry)
    before = None
    try:
        store.fetch(entry, "/tmp")
        if target.conn is not None:
            before = keep_snapshot(target, ctx, ["restore of %s" % snapshot], admin_of, spare=[snapshot])["name"]
            result.act("keep the state before the restore as snapshot %s" % before)
            result.extra["snapshot_before_restore"] = before
        again = "run the restore again (snapshot %s%s is kept)" % (
            snapshot, " and the state before it, %s," % before if before else "")
        admin = admin_of(server.env(), None, server.name)
        user, password = recreate(target, entry, again, [admin[:2]] if admin else [])
        env = login_env(target, user, password)
        server.exec(["pg_restore", "-w", "--exit-on-error", "--single-transaction", "--dbname=" + conninfo(database),
                     loaded], env, target.migration_timeout, "loading snapshot %s into %s (pg_restore)" % (
                         snapshot, database), again, secrets=[env.get("PGPASSWORD")])
    finally:
        server.remove(loaded)


def conninfo(database):
    """`dbname=...` in libpq's quoting: pg_restore reads --dbname as a connection string."""
    return "dbname='%s'" % str(database).replace("\\", "\\\\").replace("'", "\\'")


def maintenance_session(target, logins, again):
    """(user, password, session) in the maintenance database: the server's own role first (`logins`,
    from its env: it may drop, create and own whatever the snapshot holds), else the connection's."""
    host, port = target.address
    tried = []
    for user, password in list(logins) + [(target.settings["user"], target.settings["password"])]:
        for dbname in ("postgres", "template1"):
            try:
                return user, password, target.errors.connect(
                    host=host, port=port, user=user, password=password, dbname=dbname, connect_timeout=5,
                    autocommit=True, client_encoding="utf8", application_name="clockwork.connections")
            except target.errors.Error as exc:
                said = " ".join(str(exc).split())
                if password:
                    said = said.replace(password, "********")
                if 'database "%s" does not exist' % dbname not in said:
                    tried.append("as %s: %s" % (user, said))
                    break
    raise ClockworkError("%s: logging in to the maintenance database to restore failed (%s); nothing was changed, "
                         "%s" % (target.where, "; ".join(tried), again))


def recreate(target, entry, again, logins):
    """Drop the database and create it again as the snapshot found it, from the maintenance
    database. The target's own session (it holds clockwork's lock) ends first; every other session
    of the database is ended (its clients were stopped; one left would keep the drop waiting).
    Returns the (user, password) that did it, which loads the snapshot too."""
    sql = importlib.import_module("psycopg.sql")
    database = str(target.settings["database"])
    target.unlock()
    target.close()
    target.conn = None
    user, password, maintenance = maintenance_session(target, logins, again)
    name = sql.Identifier(database)
    steps = [
        ("ending the sessions of %s" % database, sql.SQL(
            "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = {} AND "
            "pid <> pg_catalog.pg_backend_pid()").format(sql.Literal(database))),
        ("dropping %s to restore it" % database, sql.SQL("DROP DATABASE IF EXISTS {}{}").format(
            name, sql.SQL(" WITH (FORCE)" if maintenance.info.server_version >= 130000 else ""))),
        ("creating %s again" % database, sql.SQL(
            "CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
                name, sql.Identifier(entry["owner"]), sql.Literal(entry["encoding"]), sql.Literal(entry["collate"]),
                sql.Literal(entry["ctype"]))),
    ]
    try:
        for doing, statement in steps:
            try:
                maintenance.execute(statement)
            except target.errors.Error as exc:
                raise ClockworkError("%s: %s failed: %s; %s" % (target.where, doing, " ".join(str(exc).split()), again))
    finally:
        maintenance.close()
    return user, password
