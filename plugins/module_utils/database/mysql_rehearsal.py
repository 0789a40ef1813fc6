# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A MySQL file that cannot be transactional is rehearsed on a copy before it touches the real
database, and a snapshot is kept to go back to.

Before the files of a run are applied to a database that holds tables, `mysqldump
--single-transaction --routines --triggers --events` runs inside the server's container (one
consistent read, no lock on the tables), the dump is loaded into a scratch database on the same
server, and the files run there first. A file that fails on the copy never reaches the real
database and leaves no row behind; the scratch database is dropped whatever happens. When the
copy took every file, the dump is kept in the stack's volume `<stack>-clockwork-snapshots` (the
last `snapshot_keep` per database, an index per server), and its name goes into the files' rows:
a file that still fails on the real database names it, and `restore` (the stack role's
clockwork_restore) puts it back. Nothing here ever restores by itself: rows clients wrote since
the snapshot would be lost.

The copy needs a user that may create a database: the connection's, or root with the password
the server's env gives. The dump and the copy's load go through `docker exec` (argv lists, the
password in MYSQL_PWD); the snapshot file moves between the server and the volume as a tar
stream, never through a shell."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import time

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_journal import (
    FAILURES_TABLE, TRACKING_TABLE, server_words)
from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_scope import (
    foreign_databases, own_qualified)
from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_splitter import mysql_statements
from ansible_collections.clockwork.connections.plugins.module_utils.database.snapshots import (
    MB, ServerContainer, SnapshotStore, kept_and_pruned, record, restore_entry, restore_words,
    restoring, snapshot_name, utc_now)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import exec_first

SCRATCH = "clockwork_rehearsal_%s"
DUMPERS = ("mariadb-dump", "mysqldump")
# One consistent read without locking the tables, and everything a database holds besides its tables.
DUMP_OPTIONS = ["--single-transaction", "--routines", "--triggers", "--events", "--no-tablespaces", "--hex-blob"]
CLIENTS = ("mariadb", "mysql")
SQL_WORD = re.compile(r"^[A-Za-z0-9_]+$")
KIND = "mysqldump"
# Names whose home was this module before snapshots.py: importers of that time still find them here.
MOVED = (kept_and_pruned, snapshot_name)


def not_isolated(pending, database, cross_database):
    """Why a copy cannot stand in for the database with these files, or None: a statement that
    names the database itself (`shop.t`) would reach the real one from the copy."""
    for kind, name, _path, sql, _checksum in pending:
        for line, text, _words in mysql_statements(sql):
            named = own_qualified(text, database)
            if named:
                return "%s %s line %d names %s with its database, which on a copy is the real one" % (
                    kind, name, line, named[0])
            if cross_database and foreign_databases(text, database):
                return "%s %s line %d reaches another database, which a copy of %s does not hold" % (
                    kind, name, line, database)
    return None


class MysqlServer(ServerContainer):
    """The MySQL or MariaDB server's container, whose client programs differ by image."""

    def run(self, programs, args, password, seconds, doing, after, bounds=None):
        """A MySQL client program (the first of `programs` the image has) with `args`; raises on failure.
        `bounds`: SQL that bounds its session's lock waits (the mysql client's --init-command; mysqldump
        has none, the tables are probed before instead)."""
        candidates = [[program] + (["--init-command=" + bounds] if bounds else []) + args for program in programs]
        code, out, _program = exec_first(self.engine, self.ident, candidates, timeout=seconds,
                                         env={"MYSQL_PWD": password or ""})
        if code != 0:
            if password:
                out = out.replace(password, "********")
            raise ClockworkError("%s failed inside %s: %s; %s" % (doing, self.name, " ".join(out.split())[-2000:],
                                                                  after))


class Rehearsal(object):
    """One run's rehearsal of a MySQL target's pending files (see the module's docstring)."""

    def __init__(self, target, ctx, server_name):
        self.target, self.ctx = target, ctx
        self.settings = target.settings
        self.database = str(self.settings["database"])
        self.server_name = server_name
        self.login = None   # (user, password, session) that may create a database
        self.kept = None    # what a release records of the snapshot kept (snapshots.record)

    def decide(self, pending):
        """(True, None) to rehearse, (False, why not) when it cannot or need not: then raises for
        rehearse: always, and for auto returns the warning."""
        mode = self.settings["rehearse"]
        if mode == "never":
            return False, None
        tables, size = self.holdings()
        if not tables and mode == "auto":
            return False, None   # nothing a failing file could break
        why = not_isolated(pending, self.database, self.settings["cross_database"])
        limit = int(self.settings["snapshot_max_mb"])
        if not why and mode == "auto" and size > limit * MB:
            why = "it holds %d MB, over snapshot_max_mb (%d)" % (size // MB, limit)
        if not why:
            why = self.find_login()
        return not why, why

    def holdings(self):
        """(tables other than clockwork's, their size in bytes) of the database."""
        rows = self.target._sql(   # pylint: disable=protected-access  # the target's own error wording
            "measuring the database", "SELECT COUNT(*), COALESCE(SUM(data_length + index_length), 0) FROM "
            "information_schema.tables WHERE table_schema = DATABASE() AND table_name NOT IN (%s, %s)",
            (TRACKING_TABLE, FAILURES_TABLE))
        return int(rows[0][0]), int(rows[0][1])

    def drop_left_behind(self, session):
        """Scratch databases of runs that were killed while they rehearsed: clockwork's lock is held
        here, so no other run of clockwork uses one."""
        with session.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE %s", (SCRATCH.replace("_", "\\_") % "%",))
            for (name,) in cursor.fetchall():
                cursor.execute("DROP DATABASE IF EXISTS %s" % quote(name))

    def probe_tables(self):
        """Open every table as the dump will, with this session's lock waits bounded by timeout: a table
        another session holds (LOCK TABLES, a long ALTER) fails here within timeout, where mysqldump,
        which cannot be given a lock_wait_timeout, would wait for the server's default."""
        target = self.target
        for (table,) in target._sql("listing the tables", "SELECT table_name FROM information_schema.tables WHERE "  # pylint: disable=protected-access
                                    "table_schema = DATABASE() AND table_type = 'BASE TABLE'"):
            target._sql("reading table %s for the snapshot (another session holds it longer than the connection's "  # pylint: disable=protected-access
                        "timeout, %ss; nothing was applied)" % (table, target.timeout),
                        "SELECT 1 FROM %s LIMIT 0" % quote(table))

    def find_login(self):
        """Take a user that may create a database: the connection's, else root with the password the
        server's env gives. Returns why none can, or None."""
        candidates = [(self.settings["user"], self.settings["password"], self.target.conn)]
        server = MysqlServer(self.ctx.engine, self.server_name)
        admin = self.target.engine_admin(server.env())
        if admin:
            candidates.append(admin + (None,))
        for user, password, session in candidates:
            if session is None:
                try:
                    session = self.target.session_as(user, password)
                except ClockworkError:
                    continue
            if self.may_create(session):
                self.login = (user, password, session)
                return None
            if session is not self.target.conn:
                session.close()
        return ("no user here may create the scratch database: user %s may not, and the server's env gives no root "
                "password (MARIADB_ROOT_PASSWORD or MYSQL_ROOT_PASSWORD) that logs in" % self.settings["user"])

    def may_create(self, session):
        with session.cursor() as cursor:
            cursor.execute("SELECT CURRENT_USER()")
            user, _at, host = cursor.fetchone()[0].rpartition("@")
            cursor.execute("SELECT 1 FROM information_schema.user_privileges WHERE grantee = %s AND "
                           "privilege_type = 'CREATE'", ("'%s'@'%s'" % (user, host),))
            return bool(cursor.fetchall())

    def run(self, pending, keep):
        """Dump, load into a scratch database, apply `pending` there; keep the snapshot when they
        pass. Returns the snapshot's name; raises, with the real database untouched, when not."""
        user, password, session = self.login
        server = MysqlServer(self.ctx.engine, self.server_name)
        name = snapshot_name(self.database)
        path = "/tmp/%s.sql" % name
        seconds = self.target.migration_timeout
        port = str(self.settings["port"])
        address = ["--protocol=TCP", "-h", "127.0.0.1", "-P", port, "-u", user]
        scratch = SCRATCH % os.urandom(5).hex()
        untouched = "%s was not touched, and nothing of this run was applied" % self.database
        bounds = "SET SESSION lock_wait_timeout = %d, innodb_lock_wait_timeout = %d" % (
            self.target.timeout, self.target.timeout)
        try:
            self.drop_left_behind(session)
            self.probe_tables()
            server.run(DUMPERS, address + DUMP_OPTIONS + ["--result-file=" + path, self.database], password, seconds,
                       "the snapshot of %s (mysqldump)" % self.database, untouched)
            charset, collation = self.target.character_set()
            self._sql(session, "CREATE DATABASE %s CHARACTER SET %s COLLATE %s" % (
                quote(scratch), charset, collation), "creating the scratch database")
            try:
                server.run(CLIENTS, address + ["-D", scratch, "-e", "source " + path], password, seconds,
                           "loading the snapshot of %s into a copy" % self.database, untouched, bounds)
                self.apply_on_copy(pending, user, password, scratch)
            except ClockworkError as exc:
                raise ClockworkError(exc.msg + self.drop(scratch, user, password))
            dropped = self.drop(scratch, user, password)
            if dropped:
                raise ClockworkError("%s: the copy of %s took every file, but%s" % (
                    self.target.where, self.database, dropped))
            entry = {"snapshot": name, "database": self.database, "created": utc_now(), "kind": KIND,
                     "charset": charset, "collation": collation,
                     "before": ["%s %s" % (kind, file_name) for kind, file_name, _p, _s, _c in pending]}
            store = SnapshotStore(server, self.ctx.stack)
            self.kept = record(store.keep(path, entry, keep), store.volume)
            return name
        finally:
            server.remove(path)
            if session is not self.target.conn:
                session.close()

    def apply_on_copy(self, pending, user, password, scratch):
        """The files on the copy, each statement bounded by migration_timeout as on the real database."""
        seconds = self.target.migration_timeout
        copy = self.target.session_as(user, password, scratch, reads=seconds)
        try:
            for kind, name, _path, sql, _checksum in pending:
                statements = self.target.statements(kind, name, sql)
                for number, (line, text, _words) in enumerate(statements, 1):
                    thread, started = copy.thread_id(), time.monotonic()
                    try:
                        with copy.cursor() as cursor:
                            cursor.execute(text)
                    except self.target.pymysql.err.MySQLError as exc:
                        said = server_words(exc)
                        if time.monotonic() - started >= seconds - 0.5:
                            said = "it did not finish within migration_timeout (%ss)%s" % (seconds, self.kill(
                                thread, user, password))
                        raise ClockworkError(
                            "%s fails at statement %d (line %d) on a copy of %s: %s; %s was not touched, and nothing "
                            "of this run was applied (fix the file: a new checksum runs on the next run)" % (
                                name, number, line, self.database, said, self.database))
        finally:
            copy.close()

    def kill(self, thread, user, password):
        """Stop a statement of the copy that outlived migration_timeout (its session is gone here)."""
        try:
            session = self.target.session_as(user, password)
            try:
                with session.cursor() as cursor:
                    cursor.execute("KILL %d" % int(thread))
            finally:
                session.close()
            return ""
        except (ClockworkError, self.target.pymysql.err.MySQLError) as exc:
            return " and could not be stopped: %s" % server_words(exc)

    def drop(self, scratch, user, password):
        """Drop the scratch database, from a new session if need be; '' once it is gone, else what to do."""
        for _attempt in range(2):
            try:
                session = self.target.session_as(user, password)
                try:
                    with session.cursor() as cursor:
                        cursor.execute("DROP DATABASE IF EXISTS %s" % quote(scratch))
                    return ""
                finally:
                    session.close()
            except (ClockworkError, self.target.pymysql.err.MySQLError):
                time.sleep(1)
        return " the scratch database %s could not be dropped: drop it by hand (DROP DATABASE %s)" % (
            scratch, quote(scratch))

    def _sql(self, session, query, doing, after=None):
        try:
            with session.cursor() as cursor:
                cursor.execute(query)
        except self.target.pymysql.err.MySQLError as exc:
            raise ClockworkError("%s: %s failed: %s; %s" % (
                self.target.where, doing, server_words(exc), after or "%s was not touched" % self.database))


def quote(name):
    return "`%s`" % name.replace("`", "``")


def rehearse(target, pending, ctx, result, server_name):
    """Before the files are applied: rehearse them on a copy (a dry run's target only says it would),
    returning the snapshot's name, or None when there is none."""
    if not pending:
        return None
    rehearsal = Rehearsal(target, ctx, server_name)
    names = ", ".join(name for _kind, name, _path, _sql, _checksum in pending)
    database = rehearsal.database
    go, why = rehearsal.decide(pending)
    if why:
        if target.settings["rehearse"] == "always":
            raise ClockworkError("%s: %s cannot be rehearsed on a copy of %s (rehearse: always): %s. Nothing was "
                                 "applied." % (target.where, names, database, why))
        warning = "no rehearsal of %s on a copy of %s: %s" % (names, database, why)
        result.extra.setdefault("warnings", []).append("%s: %s" % (result.name, warning))
        result.act(warning)
    if not go:
        return None
    result.act("rehearse %s on a copy of %s" % (names, database))
    name = target.rehearse_on_copy(rehearsal, pending, int(target.settings["snapshot_keep"]))
    if rehearsal.kept:
        result.extra["snapshot"] = rehearsal.kept
    return name


def restore(target, ctx, result, server_name, snapshot):
    """Put the database back as the snapshot has it: its current state kept as a snapshot first,
    then the database dropped, created again with the snapshot's character set, and loaded.
    A dry run's target reads nothing of the volume (that takes a container): it says what would be done."""
    database = str(target.settings["database"])
    server = MysqlServer(ctx.engine, server_name)
    store = SnapshotStore(server, ctx.stack)
    entry = restore_entry(target, result, store, snapshot, KIND)
    if entry is None:
        return
    if not all(SQL_WORD.match(entry.get(key) or "") for key in ("charset", "collation")):
        raise ClockworkError("%s: snapshot %s in volume %s has no character set this restore can use; nothing was "
                             "changed" % (target.where, snapshot, store.volume))
    result.act(restore_words(snapshot, database, entry, store.volume))
    restoring(result, database, entry)
    rehearsal = Rehearsal(target, ctx, server_name)
    rehearsal.find_login()
    user, password, session = rehearsal.login or (target.settings["user"], target.settings["password"], target.conn)
    address = ["--protocol=TCP", "-h", "127.0.0.1", "-P", str(target.settings["port"]), "-u", user]
    now = snapshot_name(database)
    current = "/tmp/%s.sql" % now
    seconds = target.migration_timeout
    try:
        store.fetch(entry, "/tmp")
        if not target.missing_database:
            server.run(DUMPERS, address + DUMP_OPTIONS + ["--result-file=" + current, database], password, seconds,
                       "the snapshot of %s before the restore (mysqldump)" % database, "nothing was changed")
            charset, collation = target.character_set()
            store.keep(current, {"snapshot": now, "database": database, "created": utc_now(), "kind": KIND,
                                 "charset": charset, "collation": collation, "before": ["restore of %s" % snapshot]},
                       int(target.settings["snapshot_keep"]), spare=[snapshot])
            result.act("keep the state before the restore as snapshot %s" % now)
            result.extra["snapshot_before_restore"] = now
        again = "run the restore again (snapshot %s%s is kept)" % (
            snapshot, " and the state before it, %s," % now if not target.missing_database else "")
        rehearsal._sql(session, "DROP DATABASE IF EXISTS %s" % quote(database),  # pylint: disable=protected-access
                       "dropping %s to restore it" % database, again)
        rehearsal._sql(session, "CREATE DATABASE %s CHARACTER SET %s COLLATE %s" % (  # pylint: disable=protected-access
            quote(database), entry["charset"], entry["collation"]), "creating %s again" % database, again)
        server.run(CLIENTS, address + ["-D", database, "-e", "source /tmp/%s.sql" % snapshot], password, seconds,
                   "loading snapshot %s into %s" % (snapshot, database), again)
    finally:
        server.remove(current)
        server.remove("/tmp/%s.sql" % snapshot)
        if session is not target.conn:
            session.close()
