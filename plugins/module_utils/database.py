# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DatabaseConnection: a connection string for `from`, a real login as readiness, the
schema file applied once and versioned migrations applied once each, with checksums.

Every schema or migration file runs in its own transaction together with its record in
the tracking table, so a failure leaves nothing of that file behind. Concurrent runs
are serialised by an advisory lock. Check mode reads through a read-only session.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import importlib
import os
import re
import string
import time
import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.six.moves.urllib.parse import quote, unquote, urlsplit

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, env_dict, port_number
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionType
from ansible_collections.clockwork.connections.plugins.module_utils.docker_client import exec_arg, exec_in


def _driver(name):
    """Import a database driver only when a connection needs it: most stack runs with
    nothing to do never load psycopg or redis (a few tenths of a second each)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ClockworkError(missing_required_lib(name), exception=traceback.format_exc())


DATABASE_ARGS = dict(
    engine=dict(type="str", default="postgresql", choices=["postgresql", "redis"]),
    connection_string_template=dict(type="str"),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
    database_name=dict(type="str"),
    schema_file=dict(type="path"),
    schema_content=dict(type="str"),
    reapply_schema=dict(type="bool", default=False),
    migrations_dir=dict(type="path"),
    migrations=dict(type="list", elements="dict", options=dict(
        name=dict(type="str", required=True),
        content=dict(type="str", required=True),
    )),
    wait_for_ready=dict(type="bool", default=True),
    timeout=dict(type="int", default=30),
    env_var_name=dict(type="str"),
    login_host=dict(type="str"),
    login_port=dict(type="int"),
)

ENGINES = {
    "postgresql": {"port": 5432, "env": "DATABASE_URL", "user": "postgres",
                   "template": "postgresql://{user}:{password}@{host}:{port}/{database}"},
    "redis": {"port": 6379, "env": "REDIS_URL", "user": None, "database": "0",
              "template": "redis://:{password}@{host}:{port}/{database}",
              "template_without_password": "redis://{host}:{port}/{database}"},
}
PLACEHOLDERS = ("user", "password", "host", "port", "database")
TRACKING_TABLE = "clockwork_schema_migrations"
# One advisory lock key for every clockwork run against a server: runs take turns.
ADVISORY_LOCK_KEY = 0x636C6F636B
# Authentication and authorisation failures do not get better by waiting.
FINAL_LOGIN_ERRORS = ("password authentication failed", "no password supplied", "role \"", "no pg_hba.conf entry",
                      "permission denied for database", "not permitted to log in",
                      "WRONGPASS", "NOAUTH", "invalid password", "invalid username-password",
                      "called without any password configured")


def resolved_settings(params, to_port):
    """The connection's settings with the engine's defaults filled in."""
    engine = ENGINES[params.get("engine") or "postgresql"]
    user = params.get("username") or engine["user"]
    password = params.get("password")
    template = params.get("connection_string_template")
    if not template:
        template = engine["template"] if password or "template_without_password" not in engine \
            else engine["template_without_password"]
    return {
        "engine": params.get("engine") or "postgresql",
        "user": user, "password": password,
        "database": params.get("database_name") or engine.get("database") or user,
        "port": to_port or engine["port"],
        "template": template,
        "env_var_name": params.get("env_var_name") or engine["env"],
    }


def template_placeholders(template):
    """The placeholders of a connection string template; an unknown one, or a format spec
    (which would otherwise reach the password), raises ClockworkError naming it."""
    fields = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ClockworkError("connection_string_template is not a valid template: %s" % exc)
    for _text, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion:
            raise ClockworkError(
                "connection_string_template has an unknown placeholder {%s}; the known ones are %s"
                % (field, ", ".join("{%s}" % p for p in PLACEHOLDERS)))
        fields.append(field)
    return fields


def render_url(template, user, password, host, port, database):
    """Fill the template; user, password and database are URL-encoded."""
    fields = template_placeholders(template)
    if "password" in fields and password is None:
        raise ClockworkError("connection_string_template uses {password} but no password is set")
    values = {"user": quote(user or "", safe=""), "password": quote(password or "", safe=""),
              "host": host, "port": port, "database": quote(str(database), safe="")}
    return template.format(**values)


def natural_key(name):
    """`2_x.sql` before `10_y.sql`: digit runs compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def sql_files(params):
    """[(kind, name, path, sql, sha256)] for the schema file, then the migrations in order.

    The controller puts the files' content into `schema_content` and `migrations`, so a
    module on a remote Docker host needs nothing from the controller's disk; without it
    the files are read where the module runs."""
    files = []
    schema = params.get("schema_file")
    if params.get("schema_content") is not None:
        files.append(_sql_entry("schema", os.path.basename(schema or "schema.sql"), schema,
                                params["schema_content"].encode("utf-8")))
    elif schema:
        files.append(_sql_entry("schema", os.path.basename(schema), schema, _read(schema, "schema_file")))
    directory = params.get("migrations_dir")
    if params.get("migrations") is not None:
        migrations = sorted(params["migrations"], key=lambda m: natural_key(m["name"]))
        files.extend(_sql_entry("migration", m["name"], m["name"], m["content"].encode("utf-8")) for m in migrations)
    elif directory:
        if not os.path.isdir(directory):
            raise ClockworkError("migrations_dir %s is not a directory" % directory)
        names = sorted((n for n in os.listdir(directory) if n.endswith(".sql")), key=natural_key)
        files.extend(_sql_entry("migration", n, os.path.join(directory, n),
                                _read(os.path.join(directory, n), "migration")) for n in names)
    return files


def _read(path, what):
    if not os.path.isfile(path):
        raise ClockworkError("%s %s does not exist" % (what, path))
    with open(path, "rb") as handle:
        return handle.read()


def _sql_entry(kind, name, path, raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClockworkError("%s %s is not UTF-8 text: %s" % (kind, name, exc))
    return kind, name, path, text, hashlib.sha256(raw).hexdigest()


def login_address(to, settings, params, engine=None):
    """Where the module reaches the server: login_host/login_port, else the container's address,
    or, on an engine that says how (Swarm's `reach`: a tunnel into the task), there."""
    if params.get("login_host"):
        return params["login_host"], params.get("login_port") or settings["port"]
    networks = ((to.attrs or {}).get("NetworkSettings") or {}).get("Networks") or {}
    address = next((info["IPAddress"] for info in networks.values() if info.get("IPAddress")), None)
    reach = getattr(engine, "reach", None)
    if reach is not None and to.attrs:
        return reach(to.name, address, settings["port"])
    if address:
        return address, params.get("login_port") or settings["port"]
    return None, None


def retry_login(connect, what, timeout, wait, explain=None):
    """Call `connect` until it succeeds, with backoff, for up to `timeout` seconds.

    A refused login (wrong password, unknown user) is final at once: waiting cannot fix it;
    `explain(message)` turns the driver's words for it into what to fix.
    """
    started = time.monotonic()
    deadline = started + (timeout if wait else 0)
    delay, attempts = 0.1, 0
    while True:
        attempts += 1
        try:
            return connect()
        except Exception as exc:  # pylint: disable=broad-except  # driver errors vary; all are reported
            last = " ".join(str(exc).split())
            final = any(marker in last for marker in FINAL_LOGIN_ERRORS)
            if final or time.monotonic() >= deadline:
                raise ClockworkError("%s failed after %d attempt%s in %.1fs%s: %s" % (
                    what, attempts, "" if attempts == 1 else "s", time.monotonic() - started,
                    "" if final else " (timeout %ss)" % timeout, (final and explain and explain(last)) or last))
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 2.0)


# The tracking table, schema-qualified: a SQL file that empties search_path (as pg_dump's
# do) or a role with a schema of its own name must not move or hide it.
TRACKING_SCHEMA = "public"
TRACKED = "%s.%s" % (TRACKING_SCHEMA, TRACKING_TABLE)
# Statements that end or start a transaction: each file runs in one transaction of ours.
ENDS_TRANSACTION = ("COMMIT", "END", "ABORT", "ROLLBACK", "BEGIN", "START TRANSACTION", "PREPARE TRANSACTION")


DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
SQL_WORD = re.compile(r"[^\W\d][\w$]*")


def sql_statements(sql):
    """[(line, [first words, upper-cased])] of each top-level statement of `sql`.

    Comments, strings (E'' ones with backslash escapes), quoted identifiers and
    dollar-quoted bodies are skipped, so a COMMIT inside a function body or a string
    is no statement; a SQL-standard body (BEGIN ATOMIC ... END) stays in its CREATE.
    """
    statements, words, line, start = [], [], 1, None
    atomic, i, size = 0, 0, len(sql)
    while i < size:
        char, begin, word = sql[i], i, None
        if char.isspace():
            i += 1
        elif sql.startswith("--", i):
            i = sql.find("\n", i)
            i = size if i < 0 else i
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < size and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif char in "'\"":
            escapes = char == "'" and words[-1:] == ["E"] and sql[i - 1] in "Ee"
            i += 1
            while i < size and not (sql[i] == char and not sql.startswith(char * 2, i)):
                i += 2 if (escapes and sql[i] == "\\") or sql.startswith(char * 2, i) else 1
            i += 1
            word = "E'" if escapes else char
        elif DOLLAR_QUOTE.match(sql, i):
            tag = DOLLAR_QUOTE.match(sql, i).group(0)
            end = sql.find(tag, i + len(tag))
            i = size if end < 0 else end + len(tag)
            word = "$"
        elif char == ";" and not atomic:
            if words:
                statements.append((start, words))
            words, start = [], None
            i += 1
        elif SQL_WORD.match(sql, i):
            word = SQL_WORD.match(sql, i).group(0).upper()
            i += len(word)
            if words[:1] == ["CREATE"] and words[-1:] == ["BEGIN"] and word == "ATOMIC":
                atomic += 1
            elif atomic and word == "CASE":
                atomic += 1
            elif atomic and word == "END":
                atomic -= 1
        else:
            word = char
            i += 1
        if word is not None:
            if word == "E'" and words[-1:] == ["E"]:
                words.pop()
            start = line if start is None else start
            words.append(word)
        line += sql.count("\n", begin, i)
    if words:
        statements.append((start, words))
    return statements


def transaction_control(sql):
    """(line, statement) of the first statement that would end the file's transaction, or None."""
    for line, words in sql_statements(sql):
        head = " ".join(words[:2])
        if words[0] == "ROLLBACK" and words[1:2] == ["TO"]:
            continue   # back to a savepoint: the transaction goes on
        for statement in ENDS_TRANSACTION:
            if head == statement or words[0] == statement:
                return line, statement
    return None


def refuse_transaction_control(files):
    """Refuse, before anything is applied, a file that commits, rolls back or opens a
    transaction itself: it would end the one transaction each file runs in, and with it
    the promise that a file is applied whole or not at all."""
    for kind, name, _path, sql, _checksum in files:
        found = transaction_control(sql)
        if found:
            raise ClockworkError(
                "%s %s line %d: %s ends the transaction each file is applied in (all of it or nothing); "
                "remove BEGIN/COMMIT/ROLLBACK/END from the file, clockwork commits it with its record. "
                "Nothing was applied." % (kind, name, found[0], found[1]))


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

    def __init__(self, host, port, settings, timeout, wait, read_only, diagnose=None):
        psycopg = _driver("psycopg")
        self.errors = psycopg
        self.settings = settings
        self.timeout = max(1, int(timeout or 1))
        self.where = "postgresql at %s:%s as %s (database %s)" % (host, port, settings["user"], settings["database"])
        options = "-c lock_timeout=%ds" % self.timeout
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

    def ensure_database(self, check_mode):
        """Create the database when the server has none of that name. Returns True if it would/did."""
        if self.conn is not None:
            return False
        if not check_mode:
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
        return True

    def applied(self):
        if self.conn is None:
            return {}
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

    def apply(self, kind, name, sql, checksum):
        """Run one file and record it, in one transaction: all of it or nothing."""
        refuse_transaction_control([(kind, name, None, sql, checksum)])
        try:
            with self.conn.transaction():
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


def redis_login_problem(message, server):
    """What a refused Redis login means, in words that say what to fix; None when it is not one."""
    if "WRONGPASS" in message or "invalid username-password" in message or "invalid password" in message:
        return ("wrong password for Redis %s: it takes its password from --requirepass in its command (or its "
                "config file); check password (the server said: %s)" % (server, message))
    if "NOAUTH" in message:
        return "Redis %s requires a password (--requirepass in its command): set password (the server said: %s)" % (
            server, message)
    if "called without any password configured" in message:
        return ("Redis %s has no password: remove password, or give %s one with --requirepass in its command "
                "(the server said: %s)" % (server, server, message))
    return None


def redis_ping(host, port, settings, timeout, wait, server=None):
    redis = _driver("redis")
    where = "redis at %s:%s (database %s)" % (host, port, settings["database"])
    server = server or "%s:%s" % (host, port)

    def ping():
        client = redis.Redis(host=host, port=port, db=int(settings["database"]), password=settings["password"],
                             username=settings["user"] if settings["password"] else None,
                             socket_timeout=5, socket_connect_timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    retry_login(ping, "PING to " + where, timeout, wait, explain=lambda message: redis_login_problem(message, server))


ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def validate(params):
    problems = []
    redis = params.get("engine") == "redis"
    if redis and (params.get("schema_file") or params.get("migrations_dir") or params.get("schema_content")
                  or params.get("migrations")):
        problems.append(("schema_file" if params.get("schema_file") else "migrations_dir",
                         "schema_file and migrations_dir are for PostgreSQL; Redis has no schema"))
    if params.get("connection_string_template"):
        try:
            template_placeholders(params["connection_string_template"])
        except ClockworkError as exc:
            problems.append(("connection_string_template", exc.msg.replace("connection_string_template ", "", 1)))
    if params.get("env_var_name") and not ENV_NAME.match(params["env_var_name"]):
        problems.append(("env_var_name", "%s is not an environment variable name" % params["env_var_name"]))
    if params.get("timeout") is not None and params["timeout"] <= 0:
        problems.append(("timeout", "must be a positive number of seconds, got %s" % params["timeout"]))
    if params.get("schema_file") and params.get("schema_content") is None \
            and not os.path.isfile(params["schema_file"]):
        problems.append(("schema_file", "%s does not exist" % params["schema_file"]))
    if params.get("migrations_dir") and params.get("migrations") is None \
            and not os.path.isdir(params["migrations_dir"]):
        problems.append(("migrations_dir", "%s is not a directory" % params["migrations_dir"]))
    return problems


def injected_env(params, _to_name):
    return [resolved_settings(params, None)["env_var_name"]]


# -- a changed password is rotated in place ---------------------------------------------
#
# A server keeps its passwords in its data: POSTGRES_PASSWORD is read only when an empty
# server is initialised, so a new value in the declaration changes nothing on a server that
# holds data, and recreating it empty would lose the data. A changed password is therefore
# set on the running server, logged in with the previous one that the running containers
# still carry (the client's URL, the server's own env or command); then the server is
# recreated with its data and the clients get their new URL, as for any other change.

# What a server answers to credentials it does not accept, as opposed to not answering.
REFUSED_LOGIN = ("password authentication failed", 'role "', "no password supplied", "WRONGPASS", "NOAUTH",
                 "invalid password", "invalid username-password", "called without any password configured")
CONNINFO_USER = re.compile(r"(?:^|\s)user\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")
REDIS_DEFAULT_USER = "default"


def url_credentials(url):
    """(user, password) of a connection string as a client container has it; None for a part
    it does not say."""
    if not url:
        return None, None
    if url.startswith(("postgresql://", "postgres://")) or "://" not in url:
        rest, password = split_password(url)
        if "://" in rest:
            user = urlsplit(rest).username
        else:
            found = CONNINFO_USER.search(rest)
            user = found.group(1) if found else None
            if user and user.startswith("'"):
                return re.sub(r"\\(.)", r"\1", user[1:-1]), password
        return (unquote(user) if user else None), password
    parts = urlsplit(url)
    return (unquote(parts.username) if parts.username else None), (unquote(parts.password) if parts.password else None)


def requirepass(command):
    """The password a Redis server's command line sets (`--requirepass <password>`), or None."""
    found = None
    args = list(command or []) if not isinstance(command, str) else command.split()
    for index, arg in enumerate(args[:-1]):
        if arg == "--requirepass":
            found = args[index + 1]
    return found


def server_credentials(engine, env, command, name):
    """(role, password, where it was read) that a server container declares for itself:
    POSTGRES_USER/POSTGRES_PASSWORD, or Redis's --requirepass; None when it declares none."""
    if engine == "redis":
        password = requirepass(command)
        return None if password is None else (REDIS_DEFAULT_USER, password, "--requirepass in the command of %s" % name)
    if not (env or {}).get("POSTGRES_PASSWORD"):
        return None
    return env.get("POSTGRES_USER") or "postgres", env["POSTGRES_PASSWORD"], "POSTGRES_PASSWORD of %s" % name


def password_rotations(role, new, client, running, wanted):
    """The passwords a declaration changes on a server that exists: [{role, new, previous}],
    `previous` the [(password, where it was read)] to log in with, most trusted first.

    role, new    the connection's role and password
    client       (role, password, where) that the `from` container uses now, or None
    running      (role, password, where) that the running server declares (server_credentials)
    wanted       the same from the server's declared spec (in a stack), or None

    Only a change of what was declared is a rotation: the password the client container was
    given, or the server's own password (POSTGRES_PASSWORD) changed in its declaration, for its
    role (the connection's password and it must then agree when they are one role's). Without
    either, nothing tells that a password changed, and a different one is simply wrong."""
    targets = {}
    if role and new is not None:
        targets[role] = new
    server_changes = bool(running and wanted and wanted[1] is not None and wanted[0] == running[0]
                          and wanted[1] != running[1])
    if server_changes:
        if targets.get(running[0], wanted[1]) != wanted[1]:
            raise ClockworkError(
                "the password of the connection and %s differ, and both are the password of role %s: set them "
                "to the same value" % (wanted[2], running[0]))
        targets[running[0]] = wanted[1]
    rotations = []
    for name in sorted(targets):
        previous = []
        if client and client[0] == name and client[1] is not None:
            previous.append((client[1], client[2]))
        # The server's own declaration is a previous password only when the declaration changes
        # it: a connection alone that says another password than the server is a wrong one (a
        # typo must not become the server's password).
        if running and running[0] == name and running[1] is not None and server_changes:
            previous.append((running[1], running[2]))
        # One login per distinct password, naming every place it was read.
        kept = []
        for password, where in previous:
            same = [i for i, (p, _w) in enumerate(kept) if p == password]
            if same:
                kept[same[0]] = (password, kept[same[0]][1] + ", " + where)
            elif password != targets[name]:
                kept.append((password, where))
        if kept:
            rotations.append({"role": name, "new": targets[name], "previous": kept})
    return rotations


def _refused(message):
    return any(marker in message for marker in REFUSED_LOGIN)


def _session(connect, what, timeout):
    """`connect()`'s session, or None when the server refuses the credentials; waits (bounded)
    for a server that does not answer yet, then raises ClockworkError."""
    def attempt():
        try:
            return connect()
        except Exception as exc:  # pylint: disable=broad-except  # driver errors vary; refusals are an answer
            if _refused(" ".join(str(exc).split())):
                return None
            raise
    return retry_login(attempt, what, timeout, True)


def _postgres_session(host, port, user, password, database, timeout):
    psycopg = _driver("psycopg")

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
    return _session(connect, "login to postgresql at %s:%s as %s" % (host, port, user), timeout)


def _redis_session(host, port, password, timeout):
    redis = _driver("redis")

    def connect():
        client = redis.Redis(host=host, port=port, password=password, socket_timeout=5, socket_connect_timeout=5)
        try:
            client.ping()
        except Exception:
            client.close()
            raise
        return client
    return _session(connect, "login to redis at %s:%s" % (host, port), timeout)


def _close(session):
    try:
        session.close()
    except Exception:  # pylint: disable=broad-except  # closing is best effort
        pass


def set_postgres_password(conn, role, password):
    """ALTER ROLE, with the role a quoted identifier and the password a literal that psycopg
    quotes; the password is hashed here (SCRAM, as the server is set to) when libpq can, as
    psql's \\password does, so that not even the server's statement log sees it."""
    psycopg = _driver("psycopg")
    sql = importlib.import_module("psycopg.sql")
    try:
        secret = conn.pgconn.encrypt_password(password.encode("utf-8"), role.encode("utf-8"), None).decode("ascii")
    except (AttributeError, psycopg.Error):
        secret = password
    try:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(secret)))
    except psycopg.Error as exc:
        raise ClockworkError("changing the password of role %s failed: %s" % (role, _server_message(exc)))


def _redis_config_file(client):
    """The config file a Redis server was started with ('' for none): CONFIG REWRITE's target."""
    redis = _driver("redis")
    try:
        return (client.info("server") or {}).get("config_file") or ""
    except redis.RedisError as exc:
        raise ClockworkError("reading the server's INFO failed: %s" % " ".join(str(exc).split()))


def set_redis_password(client, password, carried):
    """CONFIG SET requirepass on the running server. `carried`: the server's command carries
    the new password for its next start; otherwise its config file takes it (CONFIG REWRITE)."""
    redis = _driver("redis")
    try:
        client.config_set("requirepass", password)
        if not carried:
            client.config_rewrite()
    except redis.RedisError as exc:
        raise ClockworkError("changing requirepass failed: %s" % " ".join(str(exc).split()))


def _how_to_proceed(engine, to_name, role):
    if engine == "redis":
        return ("deploy with the password the server has, or set the new one on it yourself (docker exec -it %s "
                "redis-cli, then AUTH with the previous password and CONFIG SET requirepass), then run again"
                % to_name)
    return ("deploy with the password the server has, or set the new one on it yourself (docker exec -it %s psql "
            "-U %s -c '\\password %s'), then run again" % (to_name, role, role))


def rotate_passwords(ctx, params, result, to, settings, wanted):
    """Rotate in place, on the running server `to`, the passwords the declaration changes.
    `wanted`: what the server's declared spec says of its own password (stack), or None.

    Returns what converge needs: {"read_with": the password the connection's role has until
    the rotation is done (check mode reads with it), "skip_read": True when nothing can log
    in before the server is recreated}."""
    state = {"read_with": None, "skip_read": False}
    if not to.exists:
        return state   # a new server takes its password from its declaration
    attrs = to.attrs
    from_attrs = ctx.engine.container(params["from_resource"]) or {}
    from_env = env_dict((from_attrs.get("Config") or {}).get("Env"))
    engine = settings["engine"]
    client = None
    if from_env.get(settings["env_var_name"]):
        user, password = url_credentials(from_env[settings["env_var_name"]])
        client = ((user or REDIS_DEFAULT_USER) if engine == "redis" else user, password,
                  "%s of %s" % (settings["env_var_name"], params["from_resource"]))
    running = server_credentials(engine, env_dict((attrs.get("Config") or {}).get("Env")),
                                 (attrs.get("Config") or {}).get("Cmd"), to.name)
    role = (settings["user"] or REDIS_DEFAULT_USER) if engine == "redis" else settings["user"]
    try:
        rotations = password_rotations(role, settings["password"], client, running, wanted)
    except ClockworkError as exc:
        raise ClockworkError("connection %s: %s" % (result.name, exc.msg))
    if not rotations:
        return state
    host, port = login_address(to, settings, params, ctx.engine)
    if host is None:
        # Stopped: nothing can log in now; the rotation waits until the server runs (converge).
        if ctx.check_mode:
            for rotation in rotations:
                if ctx.first_time(("rotate", to.name, rotation["role"])):
                    result.act("rotate the password of %s %s" % (
                        "user" if engine == "redis" else "role", rotation["role"]))
            state["skip_read"] = True
        else:
            state["deferred"] = True
        return state
    for rotation in rotations:
        try:
            _rotate(ctx, params, result, to, settings, wanted, rotation, (host, port), state, role)
        except ClockworkError as exc:
            raise ClockworkError(exc.msg if exc.msg.startswith("connection ") else
                                 "connection %s: %s" % (result.name, exc.msg))
    return state


def _rotate(ctx, params, result, to, settings, wanted, rotation, address, state, role):
    """One rotation of `rotate_passwords`: log in with a previous password, then set the new one."""
    engine, name, new = settings["engine"], rotation["role"], rotation["new"]
    who = "%s %s" % ("user" if engine == "redis" else "role", name)
    if engine == "redis" and name != REDIS_DEFAULT_USER:
        raise ClockworkError("the password of Redis %s changes; clockwork rotates only the default user's "
                             "(requirepass): change it with ACL SETUSER, then run again" % who)

    def login(password):
        if engine == "redis":
            return _redis_session(address[0], address[1], password, params["timeout"])
        return _postgres_session(address[0], address[1], name, password, settings["database"], params["timeout"])

    session, used = None, None
    for password, _where in rotation["previous"]:
        session = login(password)
        if session is not None:
            used = password
            break
    # Redis reads requirepass from its command at each start: the recreate with the new one sets it.
    carried = engine == "redis" and bool(wanted) and wanted[1] == new
    if session is None:
        # No previous password is accepted: the server may have the new one already (a run
        # stopped after setting it), else nobody here knows its password, and it stays.
        session = login(new)
        if session is not None:
            _close(session)
            return
        if carried:
            state["skip_read"] = ctx.check_mode
            return
        raise ClockworkError(
            "the password of %s changes, and %s, so it is changed on the running server, logged in with the "
            "previous one; but no previous password that could be read is accepted (tried: %s), nor the new one. "
            "Nothing was changed: %s was neither recreated nor reinitialised. To proceed, %s." % (
                who, "%s keeps it while it runs" % to.name if engine == "redis" else
                "%s keeps it in its data (POSTGRES_PASSWORD applies only to an empty server)" % to.name,
                ", ".join(w for _p, w in rotation["previous"]), to.name, _how_to_proceed(engine, to.name, name)))
    try:
        if engine == "redis" and not carried and not _redis_config_file(session):
            raise ClockworkError(
                "the password of %s changes, but one set on the running server would be lost at its next start: "
                "put --requirepass with the new password in the command of %s (a recreate keeps /data), then "
                "run again" % (who, to.name))
        if name == role:
            state["read_with"] = used
        if ctx.first_time(("rotate", to.name, name)):
            result.act("rotate the password of %s" % who)
        if ctx.check_mode:
            return
        if engine == "redis":
            set_redis_password(session, new, carried)
        else:
            set_postgres_password(session, name, new)
        state["read_with"] = None
    finally:
        _close(session)


def before_to(ctx, params, spec, result):
    """In a stack, right before `to` converges with `spec`: the passwords that change are
    rotated on the server that still runs, whose containers still say the previous ones."""
    to = ctx.endpoint(params["to_resource"])
    result.rotation = {"read_with": None, "skip_read": False}
    if not to.exists:
        return
    declared = to.declared_ports()
    settings = resolved_settings(params, port_number(declared[0]) if declared else None)
    wanted = server_credentials(settings["engine"], spec.env, spec.command, to.name)
    result.rotation = rotate_passwords(ctx, params, result, to, settings, wanted)


def converge(ctx, params, result):
    from_name, to_name = params["from_resource"], params["to_resource"]
    to = ctx.require_to(to_name, result.name)
    declared = to.declared_ports()
    settings = resolved_settings(params, port_number(declared[0]) if declared else None)
    problems = validate(params)
    if problems:
        raise ClockworkError("%s: %s" % (result.name, "; ".join("%s: %s" % p for p in problems)))
    url = render_url(settings["template"], settings["user"], settings["password"], to_name,
                     settings["port"], settings["database"])
    files = sql_files(params)

    contribution = result.contribution
    contribution.env[settings["env_var_name"]] = url
    contribution.secret_env = [settings["env_var_name"]]
    contribution.checks.append({"kind": "database", "connection": result.name, "engine": settings["engine"],
                                "container": to_name, "env_from": from_name,
                                "env_var": settings["env_var_name"],
                                "schema": [f[1] for f in files if f[0] == "schema"]})
    # What the action plugin needs to put the real URL back into the registered result.
    shown = ("engine", "user", "database", "port", "template", "env_var_name")
    result.extra["database"] = dict((key, settings[key]) for key in shown)
    result.extra["database"]["host"] = to_name

    host, port = login_address(to, settings, params, ctx.engine)
    rotation = getattr(result, "rotation", None)
    if rotation is None or rotation.get("deferred"):
        # On its own (the single module), or its server was stopped before: rotate now.
        rotation = result.rotation = rotate_passwords(ctx, params, result, to, settings, None)
    if ctx.check_mode and rotation.get("read_with") is not None:
        # Until the rotation is done the server takes the previous password only.
        settings = dict(settings, password=rotation["read_with"])
    pending = list(files)
    result.before = {"applied": []}
    if ctx.check_mode and rotation.get("skip_read"):
        result.extra["pending"] = []
        result.extra["server"] = "not readable before its password is rotated"
        return
    if host is None:
        if not ctx.check_mode:
            raise ClockworkError("%s: container %s has no address the module can reach; set login_host and "
                                 "login_port" % (result.name, to_name))
        result.extra["pending"] = ["%s %s" % (f[0], f[1]) for f in pending]
        result.extra["server"] = "does not exist yet"
        for kind, name, _path, _sql, _sum in pending:
            result.act("apply %s %s" % (kind, name))
        result.after = {"applied": result.extra["pending"]}
        return

    if settings["engine"] == "redis":
        redis_ping(host, port, settings, params["timeout"], params["wait_for_ready"], server=to_name)
        result.extra["pending"] = []
        return

    # The server's container tells a wrong user from a wrong password, which a login cannot.
    target = PostgresTarget(host, port, settings, params["timeout"], params["wait_for_ready"],
                            read_only=ctx.check_mode, diagnose=role_probe(ctx.engine, to_name))
    try:
        if target.ensure_database(ctx.check_mode):
            result.act("create database %s" % settings["database"])
        applied = target.applied()
        result.before = {"applied": sorted("%s %s" % key for key in applied)}
        pending = plan(files, applied, params.get("reapply_schema"))
        # A file that ends the transaction itself is refused before any file is applied.
        refuse_transaction_control(pending)
        result.extra["pending"] = ["%s %s" % (f[0], f[1]) for f in pending]
        result.after = {"applied": sorted(result.before["applied"] + [
            p for p in result.extra["pending"] if p not in result.before["applied"]])}
        if pending and not ctx.check_mode:
            target.lock()
            try:
                # Re-read under the lock: a concurrent run may have applied some already.
                pending = plan(files, target.applied(), params.get("reapply_schema"))
                for kind, name, _path, sql, checksum in pending:
                    target.apply(kind, name, sql, checksum)
                    result.act("apply %s %s" % (kind, name))
            finally:
                target.unlock()
        elif pending:
            for kind, name, _path, _sql, _sum in pending:
                result.act("apply %s %s" % (kind, name))
    finally:
        target.close()


def plan(files, applied, reapply_schema):
    """The files still to apply; an applied file whose checksum changed is drift."""
    pending = []
    for kind, name, path, sql, checksum in files:
        recorded = applied.get((kind, name))
        if recorded is None:
            pending.append((kind, name, path, sql, checksum))
        elif recorded != checksum:
            if kind == "schema" and reapply_schema:
                pending.append((kind, name, path, sql, checksum))
                continue
            hint = "; set reapply_schema to apply it again" if kind == "schema" else \
                "; add a new migration instead of editing an applied one"
            raise ClockworkError("%s %s was applied with sha256 %s but now has sha256 %s: refusing%s" % (
                kind, name, recorded, checksum, hint))
    return pending


# -- checks, run inside `to` with the URL that `from` really has ----------------

def env_var_name(value):
    if not isinstance(value, str) or not ENV_NAME.match(value):
        raise ValueError("%r is not an environment variable name" % (value,))
    return value


# libpq's conninfo form (`host=db password='x y'`): its password setting, quoted or not.
CONNINFO_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


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


def database_probe(check, url):
    """(argv, env, expected output) of the login that proves the URL works, from inside `to`.
    The query is fixed; the schema's name is compared here, never pasted into SQL."""
    if check["engine"] == "redis":
        parts = urlsplit(url)
        database = parts.path.strip("/") or "0"
        argv = ["redis-cli", "-h", parts.hostname or "localhost", "-p", str(parts.port or 6379), "-n", database]
        if parts.username:
            argv += ["--user", unquote(parts.username)]
        # redis-cli -u sends an empty user name for redis://:password@host: the parts go separately.
        env = {"REDISCLI_AUTH": unquote(parts.password)} if parts.password else {}
        return argv + ["ping"], env, "PONG"
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


def check_database(engine, check):
    attrs = engine.container(check["env_from"]) or {}
    env = env_dict((attrs.get("Config") or {}).get("Env"))
    url = env.get(check["env_var"])
    if not url:
        return False, "%s has no %s" % (check["env_from"], check["env_var"])
    argv, exec_env, expect = database_probe(check, url)
    code, out = exec_in(engine, check["container"], argv, env=exec_env)
    for secret in [url] + [exec_env[k] for k in ("PGPASSWORD", "REDISCLI_AUTH") if exec_env.get(k)]:
        out = out.replace(secret, "********")
    answers = out.splitlines() if code == 0 else []
    if code != 0 or (expect not in answers if check.get("schema") else answers != [expect]):
        if code == 0 and check.get("schema"):
            return False, "%s of %s logs in, but schema %s is not recorded in %s" % (
                check["env_var"], check["env_from"], check["schema"][0], TRACKED)
        return False, "login with %s of %s failed inside %s: %s" % (
            check["env_var"], check["env_from"], check["container"], out or code)
    detail = " and schema %s is recorded" % check["schema"][0] if check.get("schema") else ""
    return True, "%s of %s logs in%s" % (check["env_var"], check["env_from"], detail)


check_database.fields = dict(
    engine=dict(type="str", choices=["postgresql", "redis"], default="postgresql"),
    container=dict(type=exec_arg, required=True), env_from=dict(type=exec_arg, required=True),
    env_var=dict(type=env_var_name, required=True), schema=dict(type="list", elements="str", default=[]))


TYPE = ConnectionType(
    "database", DATABASE_ARGS, converge,
    checks={"database": check_database},
    injected_env=injected_env,
    validate=validate,
    completable=("connection_string_template", "username", "database_name"),
    controller_files=("schema_file", "migrations_dir"),
    before_to=before_to,
)
