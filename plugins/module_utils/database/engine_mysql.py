# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MySQL and MariaDB, through PyMySQL: a real login as readiness, the database created when
missing (utf8mb4), the schema and migrations under GET_LOCK, ALTER USER for a rotation, and
the mysql/mariadb client as the check's probe.

MySQL commits every DDL statement at once, so a file cannot be applied all or nothing as on
PostgreSQL. Each file's statements run one by one, after a row "started" for the file is committed
(mysql_journal.py); success replaces it by the applied row. When a statement fails, the error
names the file, the statement, its line and the server's words, and says which statements took
effect; the row turns "failed" with how far it got. A row of either kind, found under the lock,
refuses the file until someone has looked (as Flyway's failed migrations wait for `flyway
repair`): a killed run, a lost server or a failure never runs a statement twice unnoticed.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database.engine import (
    MIGRATION_TIMEOUT, DatabaseEngine, driver, refusable_session, retry_login)
from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_journal import (
    CREATE_FAILURES, CREATE_TRACKING, FAILURES_TABLE, LOCK_READ_MARGIN, TRACKING_TABLE, WriteAhead, error_code,
    journal_query, journal_rows, missing_columns, refuse_recorded, server_words)
from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_rehearsal import rehearse, restore
from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_scope import foreign_databases
from ansible_collections.clockwork.connections.plugins.module_utils.database.mysql_splitter import (
    SERVER_STATUS_ANSI_QUOTES, SERVER_STATUS_NO_BACKSLASH_ESCAPES, ClientCommandError, mysql_statements)
from ansible_collections.clockwork.connections.plugins.module_utils.database.sql_files import ENDS_TRANSACTION

LOCK_NAME = "clockwork.connections"
REFUSALS = ("Access denied for user",)
FINAL_LOGIN_ERRORS = REFUSALS + ("is not allowed to connect", "Host '")
# The server env of the official images that holds a password, with their _FILE forms.
ROOT_PASSWORD_ENV = ("MARIADB_ROOT_PASSWORD", "MYSQL_ROOT_PASSWORD")
USER_ENV = ("MARIADB_USER", "MYSQL_USER")
PASSWORD_ENV = ("MARIADB_PASSWORD", "MYSQL_PASSWORD")
DATABASE_ENV = ("MARIADB_DATABASE", "MYSQL_DATABASE")
UNKNOWN_DATABASE = 1049
SQL_WORD = re.compile(r"^[A-Za-z0-9_]+$")


def refuse_transaction_control(kind, name, sql):
    """A file that begins or ends a transaction itself is refused before anything runs: the
    statements are tracked one by one, and a COMMIT would hide which took effect."""
    try:
        statements = mysql_statements(sql)
    except ClientCommandError as exc:
        raise ClockworkError("%s %s %s. Nothing was applied." % (kind, name, exc.msg))
    for line, _text, words in statements:
        head = " ".join(words)
        for statement in ENDS_TRANSACTION:
            if head == statement or words[:1] == [statement] or head.startswith(statement + " "):
                if words[:2] == ["ROLLBACK", "TO"]:
                    continue
                raise ClockworkError(
                    "%s %s line %d: %s begins or ends a transaction itself; remove it, clockwork applies the "
                    "file's statements one by one and records them. Nothing was applied." % (
                        kind, name, line, statement))


def refuse_text(kind, name, sql, settings):
    """What a file's text alone refuses, before anything runs: a statement that begins or ends a
    transaction, and, unless the connection says cross_database, one that reaches another database."""
    refuse_transaction_control(kind, name, sql)
    if settings.get("cross_database"):
        return
    database = str(settings["database"])
    found = []
    for line, text, _words in mysql_statements(sql):
        for other, what in foreign_databases(text, database):
            found.append("line %d: %s" % (line, "USE %s moves the session to database %s, and the tracking rows and "
                                          "every later file with it" % (what, what) if other == "USE" else
                                          "%s names %s" % (what, "every database" if other == "*" else
                                                           "database %s" % other)))
    if found:
        raise ClockworkError(
            "%s %s reaches beyond database %s (%s); a file applies to the connection's database: name no other one, "
            "or set cross_database: true on the connection if it is meant to. Nothing was applied." % (
                kind, name, database, "; ".join(found)))


def quote_ident(name):
    return "`%s`" % name.replace("`", "``")


def native_password_hash(password):
    """MySQL's mysql_native_password hash (`*` and SHA1(SHA1(password))), which ALTER USER ...
    IDENTIFIED BY PASSWORD takes, so that the password itself is in no statement a server logs."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode("utf-8")).digest()).hexdigest().upper()


def login_problem(message, settings):
    """What a refused MySQL login means, in words that say what to fix; None when it is not one."""
    user, database = settings["user"], settings["database"]
    if "Access denied for user" in message and "to database" in message:
        return "user %s may not use database %s: grant it, or check database_name (the server said: %s)" % (
            user, database, message)
    if "Access denied for user" in message:
        return ("%s: the password is wrong, or user %s does not exist for this client's host (a server does not "
                "tell a client which); check username and password. The server keeps the passwords it was given "
                "when its data was initialised" % (message, user))
    if "is not allowed to connect" in message or "Host '" in message:
        return "the server admits no login of user %s from this host: %s" % (user, message)
    return None


class MysqlTarget(WriteAhead):
    """The MySQL or MariaDB server behind a database connection. Every driver error becomes a
    ClockworkError that names the server. Waits are bounded: every read by the connection's
    timeout (plus the wait for clockwork's lock), lock waits inside statements by the session's
    lock_wait_timeout and innodb_lock_wait_timeout, and each statement of a file by
    migration_timeout, after which it is stopped on the server (KILL)."""

    def __init__(self, host, port, settings, timeout, wait, read_only, server=None):
        self.pymysql = driver("pymysql")
        self.settings, self.host, self.port, self.server = settings, host, port, server
        self.timeout = max(1, int(timeout or 1))
        self.migration_timeout = max(1, int(settings.get("migration_timeout") or MIGRATION_TIMEOUT))
        self.where = "mysql at %s:%s as %s (database %s)" % (host, port, settings["user"], settings["database"])
        self.locked = False
        self.missing_database = False
        self._columns = None

        self._connect = lambda database: self.session_as(settings["user"], settings["password"], database,
                                                         read_only=read_only)
        self.conn = retry_login(self._connect_or_report_missing, "login to " + self.where, timeout, wait,
                                final=FINAL_LOGIN_ERRORS, explain=lambda message: login_problem(message, settings))

    def session_as(self, user, password, database=None, reads=None, read_only=False):
        """A session whose lock waits are bounded by timeout, and its reads by `reads` seconds (the
        timeout and the wait for clockwork's lock by default); one that can only read when `read_only`."""
        reads = reads or self.timeout + LOCK_READ_MARGIN
        conn = self.pymysql.connect(host=self.host, port=int(self.port), user=user, password=password or "",
                                    database=database, connect_timeout=5, autocommit=True, charset="utf8mb4",
                                    read_timeout=reads, write_timeout=reads)
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION lock_wait_timeout = %s, innodb_lock_wait_timeout = %s",
                           (self.timeout, self.timeout))
            if read_only:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")
        return conn

    def engine_admin(self, env):
        return ENGINE.admin_credentials(env, self.settings["user"])

    def character_set(self):
        """(character set, collation) of the connection's database, as SQL words."""
        rows = self._sql("reading the database's character set", "SELECT default_character_set_name, "
                         "default_collation_name FROM information_schema.schemata WHERE schema_name = DATABASE()")
        if not rows or not all(SQL_WORD.match(value or "") for value in rows[0]):
            raise ClockworkError("%s: the character set of the database cannot be read" % self.where)
        return rows[0][0], rows[0][1]

    def prepare(self, pending, ctx, result):
        """Under the lock, before the files: rehearse them on a copy; the snapshot's name, or None."""
        return rehearse(self, pending, ctx, result, self.server)

    def restore(self, ctx, result, snapshot):
        restore(self, ctx, result, self.server, snapshot)

    def snapshots(self, store):
        """The snapshots kept in `store` (a SnapshotStore) for the server."""
        return store.index()

    def rehearse_on_copy(self, rehearsal, pending, keep):
        """Rehearse `pending` on a copy and keep the snapshot (mysql_rehearsal.Rehearsal.run): its name."""
        return rehearsal.run(pending, keep)

    def statements(self, kind, name, sql):
        """The statements of a file, once what its text alone refuses is refused."""
        refuse_text(kind, name, sql, self.settings)
        # Split as the client would under this session's sql_mode, which the server reports with
        # every reply (the same bits the mysql client reads).
        status = getattr(self.conn, "server_status", 0) or 0
        return mysql_statements(sql, backslash_escapes=not status & SERVER_STATUS_NO_BACKSLASH_ESCAPES,
                                ansi_quotes=bool(status & SERVER_STATUS_ANSI_QUOTES))

    def _connect_or_report_missing(self):
        try:
            return self._connect(self.settings["database"])
        except self.pymysql.err.OperationalError as exc:
            if error_code(exc) != UNKNOWN_DATABASE:
                raise
        self.missing_database = True
        return self._connect(None)   # logged in: the database is made by create_database

    def _sql(self, doing, query, params=None, conn=None):
        try:
            with (conn or self.conn).cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall()
        except self.pymysql.err.MySQLError as exc:
            raise ClockworkError("%s: %s failed: %s" % (self.where, doing, server_words(exc)))

    def create_database(self):
        """Create the database (utf8mb4) the server has none of (applied() said None)."""
        database = self.settings["database"]
        try:
            with self.conn.cursor() as cursor:
                cursor.execute("CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                               % quote_ident(database))
            self.conn.select_db(database)
        except self.pymysql.err.MySQLError as exc:
            raise ClockworkError(
                "%s: database %s does not exist and user %s cannot create it: %s; create it, or let the "
                "connection log in as a user with CREATE" % (
                    self.where, database, self.settings["user"], server_words(exc)))
        self.missing_database = False

    def _table_columns(self, table):
        rows = self._sql("reading the tracking tables",
                         "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                         "AND table_name = %s", (table,))
        return [row[0] for row in rows]

    def applied(self):
        """(kind, name) -> checksum of the files the database records; None when it does not exist."""
        if self.missing_database:
            return None
        if not self._table_columns(TRACKING_TABLE):
            return {}
        rows = self._sql("reading the tracking table", "SELECT kind, name, checksum FROM %s" % TRACKING_TABLE)
        return dict(((kind, name), checksum) for kind, name, checksum in rows)

    def journal(self):
        """(kind, name) -> the row of a file that was started and not applied, or failed half-way."""
        if self.missing_database:
            return {}
        columns = self._table_columns(FAILURES_TABLE)
        if not columns:
            return {}
        return journal_rows(self._sql("reading the failures table", journal_query(columns)))

    def refuse(self, pending):
        """Before any file is applied (under the lock; on a dry run, to report it): a file that
        begins or ends a transaction itself, or names another database, and one that was started or
        failed half-way on an earlier run (until someone has looked)."""
        for kind, name, _path, sql, _checksum in pending:
            refuse_text(kind, name, sql, self.settings)
        refuse_recorded(self.where, pending, self.journal(), self.settings["database"])

    def lock(self):
        """Take clockwork's named lock on the server, waiting at most the connection's timeout; then
        make the tracking tables, or bring an earlier version's up to date."""
        got = self._sql("taking clockwork's lock", "SELECT GET_LOCK(%s, %s)", (LOCK_NAME, self.timeout))
        if not got or got[0][0] != 1:
            raise ClockworkError(
                "%s: another run holds clockwork's schema lock on this server and kept it for longer than the "
                "connection's timeout (%ss); nothing was applied. Run again once it has finished, or raise "
                "timeout." % (self.where, self.timeout))
        self.locked = True
        self._sql("creating the tracking table", CREATE_TRACKING)
        self._sql("creating the failures table", CREATE_FAILURES)
        alter = missing_columns(self._table_columns(FAILURES_TABLE))
        if alter:
            self._sql("adding the columns of started files to the failures table", alter)

    def unlock(self):
        if self.locked:
            self.locked = False
            try:
                self._sql("releasing clockwork's lock", "SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
            except ClockworkError:
                pass   # the end of the session releases it too

    def close(self):
        try:
            self.conn.close()
        except Exception:  # pylint: disable=broad-except  # closing is best effort
            pass


def _first(env, names):
    return next((env[n] for n in names if (env or {}).get(n)), None)


class MysqlEngine(DatabaseEngine):
    name = "mysql"
    aliases = ("mariadb",)
    title = "MySQL"
    driver_module = "pymysql"
    defaults = {"port": 3306, "env": "DATABASE_URL", "user": "root",
                "template": "mysql://{user}:{password}@{host}:{port}/{database}"}
    schemes = ("mysql", "mariadb")
    query_keys = ("charset", "ssl-mode", "ssl_mode")
    refusals = REFUSALS
    final_login_errors = FINAL_LOGIN_ERRORS
    probe_secret_env = ("MYSQL_PWD",)
    probe_alternatives = ("mariadb",)   # MariaDB 11 images ship no `mysql`
    server_password_env = ROOT_PASSWORD_ENV

    def login(self, host, port, settings, timeout, wait, read_only, server, engine):
        return MysqlTarget(host, port, settings, timeout, wait, read_only, server)

    def server_credentials(self, env, command, name):
        """root's password (MARIADB_ROOT_PASSWORD or MYSQL_ROOT_PASSWORD), else the application
        user's (MARIADB_USER with MARIADB_PASSWORD, or the MYSQL_ forms)."""
        env = env or {}
        for variable in ROOT_PASSWORD_ENV:
            if env.get(variable):
                return "root", env[variable], "%s of %s" % (variable, name)
        user, password = _first(env, USER_ENV), _first(env, PASSWORD_ENV)
        if user and password:
            variable = next(n for n in PASSWORD_ENV if env.get(n))
            return user, password, "%s of %s" % (variable, name)
        return None

    def session(self, host, port, user, password, database, timeout):
        pymysql = driver("pymysql")

        def connect():
            return pymysql.connect(host=host, port=int(port), user=user, password=password or "", connect_timeout=5,
                                   autocommit=True, charset="utf8mb4")
        return refusable_session(connect, "login to mysql at %s:%s as %s" % (host, port, user), timeout,
                                 self.refusals)

    def keeps_password(self, server):
        return "%s keeps it in its data (MARIADB_ROOT_PASSWORD and MYSQL_PASSWORD apply only to an empty server)" % server

    def admin_credentials(self, env, identity):
        """root's password from the server's env (MARIADB_ROOT_PASSWORD...), to change the password of
        every account of another user's name; None for root itself, or when the env has none."""
        root = _first(env, ROOT_PASSWORD_ENV)
        return ("root", root) if root and identity != "root" else None

    def set_password(self, session, identity, password, carried, admin=None):
        """The new password of `identity`: as `admin` (root), or as a session that may read
        mysql.user, ALTER USER for every account of that name (root@localhost and root@'%' alike);
        else, as the user itself, the statement the server allows any user for its own account
        (SET PASSWORD on MariaDB, ALTER USER CURRENT_USER() on MySQL 8). MariaDB is given the hashed
        form, so that the password is in no statement the server logs; MySQL 8 takes it as a
        parameter and its logs rewrite it. Names and passwords are parameters, never SQL text."""
        pymysql = driver("pymysql")
        try:
            for changer in ([admin] if admin is not None else []) + [session]:
                with changer.cursor() as cursor:
                    cursor.execute("SELECT VERSION()")
                    mariadb = "mariadb" in cursor.fetchone()[0].lower()
                    try:
                        cursor.execute("SELECT host FROM mysql.user WHERE user = %s", (identity,))
                        hosts = [row[0] for row in cursor.fetchall()]
                    except pymysql.err.MySQLError:
                        continue   # not an administrator: the user changes its own
                    secret = native_password_hash(password) if mariadb else password
                    for host in hosts:
                        cursor.execute("ALTER USER %%s@%%s IDENTIFIED BY %s%%s" % ("PASSWORD " if mariadb else ""),
                                       (identity, host, secret))
                    if hosts:
                        return
            with session.cursor() as cursor:
                if mariadb:
                    cursor.execute("SET PASSWORD = %s", (native_password_hash(password),))
                else:
                    cursor.execute("ALTER USER CURRENT_USER() IDENTIFIED BY %s", (password,))
        except pymysql.err.MySQLError as exc:
            raise ClockworkError("changing the password of user %s failed: %s" % (identity, server_words(exc)))

    def how_to_proceed(self, server, identity):
        return ("deploy with the password the server has, or set the new one on it yourself (docker exec -it %s "
                "mariadb -u %s -p, then ALTER USER), then run again" % (server, identity))

    def refuse_file(self, kind, name, sql, settings=None):
        refuse_text(kind, name, sql, settings or {"cross_database": True})

    def probe(self, check, url):
        """The mysql or mariadb client inside `to`, with the password in MYSQL_PWD, so that it is in
        neither its command line nor the exec's record; the query is fixed."""
        from ansible.module_utils.six.moves.urllib.parse import unquote, urlsplit  # pylint: disable=import-outside-toplevel
        parts = urlsplit(url)
        env = {"MYSQL_PWD": unquote(parts.password)} if parts.password else {}
        database = unquote(parts.path.strip("/"))
        argv = ["mysql", "--protocol=TCP", "-h", parts.hostname or "127.0.0.1", "-P", str(parts.port or 3306),
                "-u", unquote(parts.username or "root"), "-N", "-B"]
        argv += ["-D", database] if database else []
        schema = check.get("schema") or []
        if not schema:
            return argv + ["-e", "SELECT 1"], env, "1"
        query = "SELECT HEX(name) FROM %s WHERE kind = 'schema'" % TRACKING_TABLE
        return argv + ["-e", query], env, schema[0].encode("utf-8").hex().upper()

    def schema_record(self):
        return TRACKING_TABLE

    def completion_candidates(self, server_env, topic, password_given):
        env = server_env or {}
        return {"connection_string_template": [self.defaults["template"]],
                "username": [_first(env, USER_ENV) or self.defaults["user"]],
                "database_name": [_first(env, DATABASE_ENV) or "_".join(topic) or "app", "app"]}


ENGINE = MysqlEngine()
