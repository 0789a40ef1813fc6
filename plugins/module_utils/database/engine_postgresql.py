# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL, through psycopg 3: the login (telling a wrong user from a wrong password), the
database created when missing, the schema and migrations each applied in one transaction with
its record under an advisory lock, ALTER ROLE with a hashed password, and the psql probe.

Every schema or migration file runs in its own transaction together with its record in
the tracking table, so a failure leaves nothing of that file behind. Concurrent runs
are serialised by an advisory lock. A dry run (check mode) reads through a read-only session.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib
import re
import time

from ansible.module_utils.six.moves.urllib.parse import unquote, urlsplit

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database import postgresql_snapshots
from ansible_collections.clockwork.connections.plugins.module_utils.database.engine import (
    MIGRATION_TIMEOUT, DatabaseEngine, driver, refusable_session, retry_login)
from ansible_collections.clockwork.connections.plugins.module_utils.database.sql_files import (
    refuse_transaction_control)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import exec_in

TRACKING_TABLE = "clockwork_schema_migrations"
# Seconds a statement of ours (not a file's) may take beyond the connection's timeout.
STATEMENT_MARGIN = 15
# One advisory lock key for every clockwork run against a server: runs take turns.
ADVISORY_LOCK_KEY = 0x636C6F636B
# The tracking table, schema-qualified: a SQL file that empties search_path (as pg_dump's
# do) or a role with a schema of its own name must not move or hide it.
TRACKING_SCHEMA = "public"
TRACKED = "%s.%s" % (TRACKING_SCHEMA, TRACKING_TABLE)
# What the server answers to credentials it does not accept, as opposed to not answering;
# and what else no wait makes better.
REFUSALS = ("password authentication failed", 'role "', "no password supplied")
FINAL_LOGIN_ERRORS = REFUSALS + ("no pg_hba.conf entry", "permission denied for database", "not permitted to log in")
CONNINFO_USER = re.compile(r"(?:^|\s)user\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")
# libpq's conninfo form (`host=db password='x y'`): its password setting, quoted or not.
CONNINFO_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


def _fatal(message):
    """The server's words in a driver error: what follows FATAL, else the whole of it."""
    return message.rpartition("FATAL:")[2].strip() or message


def role_probe(engine, container):
    """A `diagnose(user)` for PostgresTarget: asks the server inside its container, over
    the local socket (trusted by the official image), whether a role exists, because a
    server never tells a client whether it was the user or the password that was wrong.
    Answers "missing", "exists" or None (cannot tell)."""
    def diagnose(user):
        code, out = exec_in(engine, container, ["psql", "-X", "-w", "-At", "--username=" + user, "--dbname=template1",
                                                "-c", "SELECT 1"], timeout=5)
        if code == 0:
            return "exists"
        if 'role "%s" does not exist' % user in out:
            return "missing"
        return "exists" if 'database "template1"' in out else None
    return diagnose


def login_problem(message, settings, diagnose=None):
    """What a refused PostgreSQL login means, in words that say what to fix; None when it
    is not a refusal (the server may still be starting)."""
    user, database = settings["user"], settings["database"]
    said = _fatal(message)
    if "password authentication failed" in said or "no password supplied" in said:
        found = diagnose(user) if diagnose else None
        if found == "missing":
            return 'role "%s" does not exist on the server: check username (the server said: %s)' % (user, said)
        if found == "exists":
            return ('wrong password for role "%s": the server keeps the password it was given when its data was '
                    'initialised; check password (the server said: %s)' % (user, said))
        return ('%s: the password is wrong, or role "%s" does not exist (a server does not tell a client which); '
                'check username and password' % (said, user))
    if 'role "%s" does not exist' % user in said:
        return 'role "%s" does not exist on the server: check username (the server said: %s)' % (user, said)
    if 'database "' in said and "does not exist" in said:
        return "%s: check database_name, or create it" % said
    if "no pg_hba.conf entry" in said:
        return "the server's pg_hba.conf admits no such login: %s" % said
    if "permission denied for database" in said or "not permitted to log in" in said:
        return 'role "%s" may not log in to database %s: %s' % (user, database, said)
    return None


class PostgresTarget(object):
    """The PostgreSQL server behind a database connection.

    Every driver error becomes a ClockworkError that names the server: never a traceback.
    Lock waits are bounded by the connection's timeout: clockwork's own lock, and through
    lock_timeout the table locks a SQL file takes. `diagnose(user)` (see role_probe) tells
    a wrong user from a wrong password when the server is a container we can ask.
    """

    def __init__(self, host, port, settings, timeout, wait, read_only, diagnose=None, server=None):
        psycopg = driver("psycopg")
        self.errors = psycopg
        self.settings = settings
        self.server = server   # the server's container: snapshots are dumped and restored inside it
        self.address = (host, port)
        self.timeout = max(1, int(timeout or 1))
        self.where = "postgresql at %s:%s as %s (database %s)" % (host, port, settings["user"], settings["database"])
        self.migration_timeout = max(1, int(settings.get("migration_timeout") or MIGRATION_TIMEOUT))
        # Lock waits and every statement of ours are bounded by the connection's timeout; a file's
        # transaction gets migration_timeout (SET LOCAL in apply).
        options = "-c lock_timeout=%ds -c statement_timeout=%ds" % (self.timeout, self.timeout + STATEMENT_MARGIN)
        if read_only:
            options += " -c default_transaction_read_only=on"

        def connect(dbname):
            return psycopg.connect(host=host, port=port, user=settings["user"], password=settings["password"],
                                   dbname=dbname, connect_timeout=5, autocommit=True, options=options,
                                   client_encoding="utf8", application_name="clockwork.connections")
        self._connect = connect
        self.conn = None
        self.locked = False
        self.conn = retry_login(self._connect_or_report_missing, "login to " + self.where, timeout, wait,
                                final=FINAL_LOGIN_ERRORS,
                                explain=lambda message: login_problem(message, settings, diagnose))

    def _connect_or_report_missing(self):
        try:
            return self._connect(self.settings["database"])
        except self.errors.OperationalError as exc:
            if 'database "%s" does not exist' % self.settings["database"] not in str(exc):
                raise
            return None   # server up, we may log in, database missing: the caller creates it

    def _sql(self, doing, query, params=None, conn=None):
        try:
            return (conn or self.conn).execute(query, params)
        except self.errors.Error as exc:
            raise ClockworkError("%s: %s failed: %s" % (self.where, doing, _server_message(exc)))

    def create_database(self):
        """Create the database the server has none of (applied() said None), then log in to it."""
        database = self.settings["database"]
        try:
            try:
                maintenance = self._connect("postgres")
            except self.errors.OperationalError as exc:
                if 'database "postgres" does not exist' not in str(exc):
                    raise
                maintenance = self._connect("template1")
            with maintenance:
                maintenance.execute("CREATE DATABASE %s" % quote_ident(database))
        except self.errors.errors.DuplicateDatabase:
            pass   # a concurrent run created it a moment ago
        except self.errors.Error as exc:
            raise ClockworkError(
                "%s: database %s does not exist and role %s cannot create it: %s; create it, or let the "
                "connection log in as a role with CREATEDB" % (
                    self.where, database, self.settings["user"], _fatal(_server_message(exc))))
        try:
            self.conn = self._connect(database)
        except self.errors.Error as exc:
            raise ClockworkError("%s: login to the new database failed: %s" % (self.where, _server_message(exc)))

    def applied(self):
        """(kind, name) -> checksum of the files the database records; None when it does not exist."""
        if self.conn is None:
            return None
        qualified, found = self._sql("reading the tracking table", "SELECT to_regclass(%s)::text, to_regclass(%s)::text",
                                     (TRACKED, TRACKING_TABLE)).fetchone()
        if qualified is None:
            if found is not None:
                raise ClockworkError(
                    "%s: the tracking table is %s, not %s (made by an earlier version, through the search_path); "
                    "move it with ALTER TABLE %s SET SCHEMA %s, then run again" % (
                        self.where, found, TRACKED, found, TRACKING_SCHEMA))
            return {}
        rows = self._sql("reading the tracking table", "SELECT kind, name, checksum FROM %s" % TRACKED).fetchall()
        return dict(((kind, name), checksum) for kind, name, checksum in rows)

    def lock(self):
        """Take clockwork's advisory lock on this database, waiting at most the connection's timeout."""
        started = time.monotonic()
        delay = 0.05
        while not self._sql("taking clockwork's lock", "SELECT pg_try_advisory_lock(%s)",
                            (ADVISORY_LOCK_KEY,)).fetchone()[0]:
            if time.monotonic() - started >= self.timeout:
                raise ClockworkError(
                    "%s: another run holds clockwork's schema lock on this database%s and kept it for longer than "
                    "the connection's timeout (%ss); nothing was applied. Run again once it has finished, or raise "
                    "timeout." % (self.where, self._lock_holder(), self.timeout))
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        self.locked = True
        self._sql("creating the tracking table",
                  "CREATE TABLE IF NOT EXISTS %s (kind text NOT NULL, name text NOT NULL, checksum text NOT NULL,"
                  " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (kind, name))" % TRACKED)

    def _lock_holder(self):
        try:
            row = self.conn.execute(
                "SELECT a.pid, a.application_name, a.client_addr::text, a.backend_start::timestamp(0)::text"
                " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s AND l.objid::bigint = %s"
                " AND l.objsubid = 1", (ADVISORY_LOCK_KEY >> 32, ADVISORY_LOCK_KEY & 0xFFFFFFFF)).fetchone()
        except self.errors.Error:
            return ""
        if not row:
            return ""
        pid, application, client, since = row
        return " (server process %s%s%s, connected since %s)" % (
            pid, ", %s" % application if application else "", " from %s" % client if client else "", since)

    def unlock(self):
        """Release the lock; best effort, as the end of the session releases it too."""
        if self.locked:
            self.locked = False
            try:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
            except self.errors.Error:
                pass

    def refuse(self, pending):
        """A file that ends the transaction it is applied in is refused before any file is."""
        refuse_transaction_control(pending)

    def prepare(self, pending, ctx, result):
        """Under the lock, before the files: a snapshot of a database that holds tables (each file runs in
        one transaction, all of it or nothing: the snapshot is what a rollback restores). Its name, or None."""
        return postgresql_snapshots.before_files(self, pending, ctx, result, (TRACKING_SCHEMA, TRACKING_TABLE))

    def keep_snapshot(self, ctx, before):
        """pg_dump the database into the stack's snapshot volume: what a release records of it."""
        return postgresql_snapshots.keep_snapshot(self, ctx, before, ENGINE.server_credentials)

    def snapshots(self, store):
        """The snapshots kept in `store` (a SnapshotStore) for the server."""
        return store.index()

    def restore(self, ctx, result, snapshot):
        postgresql_snapshots.restore(self, ctx, result, snapshot, ENGINE.server_credentials)

    def apply(self, kind, name, sql, checksum, snapshot=None):
        """Run one file and record it, in one transaction: all of it or nothing."""
        refuse_transaction_control([(kind, name, None, sql, checksum)])
        try:
            with self.conn.transaction():
                self.conn.execute("SET LOCAL statement_timeout = %d" % (self.migration_timeout * 1000))
                self.conn.execute(sql)
                self.conn.execute(
                    "INSERT INTO %s (kind, name, checksum) VALUES (%%s, %%s, %%s) ON CONFLICT (kind, name)"
                    " DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = pg_catalog.now()" % TRACKED,
                    (kind, name, checksum))
        except self.errors.errors.LockNotAvailable as exc:
            raise ClockworkError(
                "%s %s waited longer than the connection's timeout (%ss) for a lock another session holds%s: %s; "
                "rolled back, nothing of it was applied. Run again once that session has finished, or raise "
                "timeout." % (kind, name, self.timeout, _error_line(exc, sql), _server_message(exc)))
        except self.errors.errors.QueryCanceled as exc:
            raise ClockworkError(
                "%s %s did not finish within migration_timeout (%ss)%s: %s; rolled back, nothing of it was applied. "
                "PostgreSQL runs a file as one batch, so the statement is not known: find the slow one (EXPLAIN, or "
                "a lock it waits for), or raise migration_timeout." % (
                    kind, name, self.migration_timeout, _error_line(exc, sql), _server_message(exc)))
        except self.errors.Error as exc:
            raise ClockworkError("%s %s failed%s: %s; rolled back, nothing of it was applied" % (
                kind, name, _error_line(exc, sql), _server_message(exc)))
        # What a file SETs for its session (search_path, roles) stays out of the next file.
        self._sql("resetting the session after %s %s" % (kind, name), "RESET ALL; RESET ROLE")

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except self.errors.Error:
                pass


def quote_ident(name):
    return '"%s"' % name.replace('"', '""')


def _error_line(exc, sql):
    position = getattr(getattr(exc, "diag", None), "statement_position", None)
    if not position:
        return ""
    return " at line %d" % (sql[:int(position)].count("\n") + 1)


def _server_message(exc):
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary or " ".join(str(exc).split())


def split_password(url):
    """(connection string without its password, password or None): psql reads the password
    from PGPASSWORD, so that it is in neither its command line nor the exec's record."""
    if url.startswith(("postgresql://", "postgres://")):
        scheme, _sep, rest = url.partition("://")
        netloc, slash, tail = rest.partition("/")
        userinfo, at, hostport = netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        path, question, query = tail.partition("?")
        kept = []
        for item in query.split("&") if query else []:
            if item.startswith("password="):
                password, colon = item[len("password="):], ":"
            else:
                kept.append(item)
        return ("%s://%s%s%s%s%s%s" % (scheme, user, at, hostport, slash, path, "?" + "&".join(kept) if kept else ""),
                unquote(password) if colon else None)
    found = CONNINFO_PASSWORD.search(url)
    if not found:
        return url, None
    value = found.group(1)
    if value.startswith("'"):
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return (url[:found.start()] + url[found.end():]).strip(), value


class PostgresqlEngine(DatabaseEngine):
    name = "postgresql"
    title = "PostgreSQL"
    driver_module = "psycopg"
    defaults = {"port": 5432, "env": "DATABASE_URL", "user": "postgres",
                "template": "postgresql://{user}:{password}@{host}:{port}/{database}"}
    schemes = ("postgresql", "postgres")
    # libpq reads host, hostaddr, port, service and passfile from the query too: none of those.
    query_keys = ("sslmode", "connect_timeout", "application_name", "target_session_attrs",
                  "channel_binding", "gssencmode")
    identity = "role"
    refusals = REFUSALS
    final_login_errors = FINAL_LOGIN_ERRORS
    probe_secret_env = ("PGPASSWORD",)
    server_password_env = ("POSTGRES_PASSWORD",)

    def client_credentials(self, url):
        rest, password = split_password(url)
        if "://" in rest:
            user = urlsplit(rest).username
        else:
            found = CONNINFO_USER.search(rest)
            user = found.group(1) if found else None
            if user and user.startswith("'"):
                return re.sub(r"\\(.)", r"\1", user[1:-1]), password
        return (unquote(user) if user else None), password

    def login(self, host, port, settings, timeout, wait, read_only, server, engine):
        # The server's container tells a wrong user from a wrong password, which a login cannot.
        return PostgresTarget(host, port, settings, timeout, wait, read_only=read_only,
                              diagnose=role_probe(engine, server), server=server)

    def server_credentials(self, env, command, name):
        if not (env or {}).get("POSTGRES_PASSWORD"):
            return None
        return env.get("POSTGRES_USER") or "postgres", env["POSTGRES_PASSWORD"], "POSTGRES_PASSWORD of %s" % name

    def session(self, host, port, user, password, database, timeout):
        psycopg = driver("psycopg")

        def connect():
            for dbname in (database, "postgres", "template1"):
                try:
                    return psycopg.connect(host=host, port=port, user=user, password=password, dbname=dbname,
                                           connect_timeout=5, autocommit=True, client_encoding="utf8",
                                           application_name="clockwork.connections")
                except psycopg.OperationalError as exc:
                    if 'database "%s" does not exist' % dbname not in str(exc) or dbname == "template1":
                        raise
            return None
        return refusable_session(connect, "login to postgresql at %s:%s as %s" % (host, port, user), timeout,
                                 self.refusals)

    def keeps_password(self, server):
        return "%s keeps it in its data (POSTGRES_PASSWORD applies only to an empty server)" % server

    def set_password(self, session, identity, password, carried, admin=None):
        """ALTER ROLE, with the role a quoted identifier and the password a literal that psycopg
        quotes; the password is hashed here (SCRAM, as the server is set to) when libpq can, as
        psql's \\password does, so that not even the server's statement log sees it."""
        psycopg = driver("psycopg")
        sql = importlib.import_module("psycopg.sql")
        try:
            secret = session.pgconn.encrypt_password(password.encode("utf-8"), identity.encode("utf-8"),
                                                     None).decode("ascii")
        except (AttributeError, psycopg.Error):
            secret = password
        try:
            session.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(identity), sql.Literal(secret)))
        except psycopg.Error as exc:
            raise ClockworkError("changing the password of role %s failed: %s" % (identity, _server_message(exc)))

    def how_to_proceed(self, server, identity):
        return ("deploy with the password the server has, or set the new one on it yourself (docker exec -it %s psql "
                "-U %s -c '\\password %s'), then run again" % (server, identity, identity))

    def refuse_file(self, kind, name, sql, settings=None):
        refuse_transaction_control([(kind, name, None, sql, None)])

    def probe(self, check, url):
        """psql with the password in PGPASSWORD, so that it is in neither its command line nor the
        exec's record. The query is fixed; the schema's name is compared here, never pasted into SQL."""
        target, password = split_password(url)
        env = {"PGCONNECT_TIMEOUT": "5"}
        if password is not None:
            env["PGPASSWORD"] = password
        argv = ["psql", "-X", "-w", "-At", "--dbname=" + target, "-c"]
        schema = check.get("schema") or []
        if not schema:
            return argv + ["SELECT 1"], env, "1"
        query = "SELECT encode(convert_to(name, 'UTF8'), 'hex') FROM %s WHERE kind = 'schema'" % TRACKED
        return argv + [query], env, schema[0].encode("utf-8").hex()

    def schema_record(self):
        return TRACKED

    def completion_candidates(self, server_env, topic, password_given):
        return {"connection_string_template": [self.defaults["template"]],
                "username": [server_env.get("POSTGRES_USER") or self.defaults["user"]],
                "database_name": [server_env.get("POSTGRES_DB") or "_".join(topic) or "app", "app"]}


ENGINE = PostgresqlEngine()
