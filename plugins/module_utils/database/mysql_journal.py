# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MySQL's record of files: clockwork_schema_migrations holds the applied ones, and
clockwork_schema_failures the ones that are not: a row "started" is committed before the first
statement of a file runs, success replaces it by the applied row (in one transaction), a failure
turns it into "failed" with how far it got. A row that stays "started" is a run that was killed
or lost its server half-way: either way the next run refuses the file, naming the row.

Existing deployments have the failures table without `state`, `statements` and `snapshot`: the
columns are added under the lock (their rows are failures), and an older collection reading the
table refuses a "started" row as it refuses any row there, so nothing ever runs twice."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError

TRACKING_TABLE = "clockwork_schema_migrations"
FAILURES_TABLE = "clockwork_schema_failures"
STARTED, FAILED = "started", "failed"
LOCK_WAIT_TIMEOUT = 1205
# The client's "lost connection" and "server has gone away": a read that timed out, or a server lost.
CONNECTION_LOST = (2013, 2006)
# A read waits this much longer than the lock it may be waiting for (GET_LOCK waits `timeout` on the server).
LOCK_READ_MARGIN = 15

CREATE_TRACKING = (
    "CREATE TABLE IF NOT EXISTS %s (kind VARCHAR(16) NOT NULL, name VARCHAR(255) NOT NULL, checksum CHAR(64) NOT NULL, "
    "applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (kind, name)) CHARACTER SET utf8mb4"
    % TRACKING_TABLE)
CREATE_FAILURES = (
    "CREATE TABLE IF NOT EXISTS %s (kind VARCHAR(16) NOT NULL, name VARCHAR(255) NOT NULL, checksum CHAR(64) NOT NULL, "
    "statements_applied INT NOT NULL, failed_line INT NOT NULL, message TEXT NOT NULL, failed_at TIMESTAMP NOT NULL "
    "DEFAULT CURRENT_TIMESTAMP, state VARCHAR(16) NOT NULL DEFAULT 'failed', statements INT NULL, snapshot "
    "VARCHAR(255) NULL, PRIMARY KEY (kind, name)) CHARACTER SET utf8mb4" % FAILURES_TABLE)
# Columns a failures table made by an earlier version lacks, with their definitions.
ADDED_COLUMNS = (("state", "VARCHAR(16) NOT NULL DEFAULT 'failed'"), ("statements", "INT NULL"),
                 ("snapshot", "VARCHAR(255) NULL"))


def missing_columns(present):
    """The ALTER TABLE that brings a failures table with the columns `present` up to date, or None."""
    have = set(c.lower() for c in present)
    added = ["ADD COLUMN %s %s" % (name, definition) for name, definition in ADDED_COLUMNS if name not in have]
    return "ALTER TABLE %s %s" % (FAILURES_TABLE, ", ".join(added)) if added else None


def journal_query(present):
    """The SELECT of every row of the failures table, whichever version made it."""
    have = set(c.lower() for c in present)
    optional = ", ".join(name if name in have else "NULL" for name, _definition in ADDED_COLUMNS)
    return ("SELECT kind, name, checksum, statements_applied, failed_line, message, "
            "DATE_FORMAT(failed_at, '%%Y-%%m-%%d %%H:%%i:%%s'), %s FROM %s" % (optional, FAILURES_TABLE))


def journal_rows(rows):
    """(kind, name) -> the row, as a dict, of what journal_query returned."""
    found = {}
    for kind, name, checksum, done, line, message, at, state, statements, snapshot in rows:
        found[(kind, name)] = {"checksum": checksum, "done": done, "line": line, "message": message, "at": at,
                               "state": state or FAILED, "statements": statements, "snapshot": snapshot}
    return found


def restore_hint(snapshot, database):
    if not snapshot:
        return ""
    return ("; or put the database back as it was before the file: snapshot %s was taken right before it (restoring "
            "it removes this row too, and loses what clients wrote since): run the stack role with clockwork_restore: "
            "{database: %s, snapshot: %s} (see it first with --check)" % (snapshot, database, snapshot))


def refusal(where, kind, name, row, database):
    """Why a file with a row in the failures table is not applied, and what to do."""
    delete = "DELETE FROM %s WHERE kind = '%s' AND name = '%s'" % (FAILURES_TABLE, kind, name.replace("'", "''"))
    if row["state"] == STARTED:
        count = " of its %d" % row["statements"] if row["statements"] is not None else ""
        return (
            "%s: %s %s was started at %s and never finished: a run was killed, or lost the server, while it ran (row "
            "state 'started' in %s, kind %s, name %s). Any%s statements may have taken effect and stay (MySQL commits "
            "DDL at once), so nothing of it runs again until someone has looked: undo or finish its statements by hand, "
            "fix the file if needed, then remove the row (%s) and run again%s" % (
                where, kind, name, row["at"], FAILURES_TABLE, kind, name, count, delete,
                restore_hint(row["snapshot"], database)))
    return (
        "%s: %s %s failed on an earlier run at line %s (%s) after %d of its statements had taken effect (MySQL commits "
        "DDL at once, so they stay). Nothing more is applied until that is resolved: undo or finish those statements by "
        "hand, fix the file, then delete its row from %s (%s) and run again, as `flyway repair` does for a failed "
        "migration%s" % (where, kind, name, row["line"], row["message"], row["done"], FAILURES_TABLE, delete,
                         restore_hint(row["snapshot"], database)))


def refuse_recorded(where, pending, journal, database):
    """Raise for the first pending file that has a row in the failures table."""
    for kind, name, _path, _sql, _checksum in pending:
        if (kind, name) in journal:
            raise ClockworkError(refusal(where, kind, name, journal[(kind, name)], database))


def failure_message(kind, name, number, total, line, said, done, snapshot, database, lost=False):
    """What a statement that failed on the real database says: how far the file got, and what next."""
    if lost:
        state = ("the server may have run it or not; the row 'started' in %s stays, and the next run refuses the "
                 "file until it is removed" % FAILURES_TABLE)
    else:
        state = "it is not recorded as applied, and the next run refuses it until the row in %s is removed" % (
            FAILURES_TABLE)
    return "%s %s failed at statement %d of %d (line %d): %s; %s. %s%s" % (
        kind, name, number, total, line, said,
        "none of its statements had taken effect" if not done else
        "statements 1 to %d had taken effect and stay (MySQL commits DDL at once)" % done,
        state[0].upper() + state[1:], restore_hint(snapshot, database))


def server_words(exc):
    """A driver error as the server said it: `(code) message` on one line."""
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return "(%d) %s" % (args[0], " ".join(str(args[1]).split()))
    return " ".join(str(exc).split())


def error_code(exc):
    """The server's (or the client's) error number of a driver error, or None."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


class WriteAhead(object):
    """How MysqlTarget applies a file: its row "started" first, its statements each bounded by
    migration_timeout, then its record. The target gives pymysql, conn, settings, where,
    timeout, migration_timeout, _connect, _sql and statements(kind, name, sql)."""

    def apply(self, kind, name, sql, checksum, snapshot=None):
        """Run one file statement by statement after committing its row "started"; then record it
        as applied, or the failure with how far it got."""
        statements = self.statements(kind, name, sql)
        database = self.settings["database"]
        self._sql("recording the start of %s %s" % (kind, name),
                  "REPLACE INTO %s (kind, name, checksum, state, statements, statements_applied, failed_line, message, "
                  "snapshot) VALUES (%%s, %%s, %%s, %%s, %%s, 0, 0, '', %%s)" % FAILURES_TABLE,
                  (kind, name, checksum, STARTED, len(statements), snapshot))
        for number, (line, text, _words) in enumerate(statements, 1):
            try:
                self.run_bounded(text)
            except self.pymysql.err.MySQLError as exc:
                done, said, lost = number - 1, server_words(exc), error_code(exc) in CONNECTION_LOST
                if lost and self.timed_out:
                    said = self._stopped(said)
                    lost = False
                if not lost:
                    self._record_failure(kind, name, done, line, said)
                if error_code(exc) == LOCK_WAIT_TIMEOUT:
                    said += " (waited longer than the connection's timeout, %ss, for a lock another session holds)" % (
                        self.timeout)
                raise ClockworkError(failure_message(kind, name, number, len(statements), line, said, done, snapshot,
                                                     database, lost=lost))
        try:
            self._home()
            self.conn.begin()
            with self.conn.cursor() as cursor:
                cursor.execute("REPLACE INTO %s (kind, name, checksum) VALUES (%%s, %%s, %%s)" % TRACKING_TABLE,
                               (kind, name, checksum))
                cursor.execute("DELETE FROM %s WHERE kind = %%s AND name = %%s" % FAILURES_TABLE, (kind, name))
            self.conn.commit()
        except self.pymysql.err.MySQLError as exc:
            raise ClockworkError(
                "%s: every statement of %s %s ran, but recording it as applied failed: %s; its row 'started' in %s "
                "stays, and the next run refuses the file until it is removed" % (
                    self.where, kind, name, server_words(exc), FAILURES_TABLE))

    def _home(self):
        """Back in the connection's database, where the tracking tables are, after a file that may
        have moved the session (cross_database)."""
        if self.settings.get("cross_database"):
            self.conn.select_db(self.settings["database"])

    def run_bounded(self, text):
        """One statement of a file, its answer awaited at most migration_timeout seconds; sets
        `timed_out` when that is why it failed."""
        self.timed_out, started = False, time.monotonic()
        self.server_thread = self.conn.thread_id()
        self.conn._read_timeout = self.conn._write_timeout = self.migration_timeout   # pylint: disable=protected-access
        try:
            with self.conn.cursor() as cursor:
                cursor.execute(text)
        except self.pymysql.err.MySQLError:
            self.timed_out = time.monotonic() - started >= self.migration_timeout - 0.5
            raise
        finally:
            self.conn._read_timeout = self.conn._write_timeout = self.timeout + LOCK_READ_MARGIN   # pylint: disable=protected-access

    def _stopped(self, said):
        """After a statement outlived migration_timeout: stop it on the server, from a new session
        (the one that ran it is gone), which also releases clockwork's lock."""
        killed = "it could not be stopped, the server may still be running it"
        try:
            conn = self._connect(self.settings["database"])
            try:
                with conn.cursor() as cursor:
                    cursor.execute("KILL %d" % int(self.server_thread))
                killed = "it was stopped on the server (KILL)"
                self.conn = conn
            except self.pymysql.err.MySQLError:
                conn.close()
        except self.pymysql.err.MySQLError:
            pass
        self.locked = False
        return "it did not finish within migration_timeout (%ss) and %s; the driver said: %s" % (
            self.migration_timeout, killed, said)

    def _record_failure(self, kind, name, done, line, said):
        try:
            self._home()
            self._sql("recording the failure of %s %s" % (kind, name),
                      "UPDATE %s SET state = %%s, statements_applied = %%s, failed_line = %%s, message = %%s, "
                      "failed_at = CURRENT_TIMESTAMP WHERE kind = %%s AND name = %%s" % FAILURES_TABLE,
                      (FAILED, done, line, said[:60000], kind, name))
        except (ClockworkError, self.pymysql.err.MySQLError):
            pass   # the row stays "started": refused all the same
