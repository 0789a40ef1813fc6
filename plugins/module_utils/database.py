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
import shlex
import string
import time
import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.six.moves.urllib.parse import quote, unquote, urlsplit

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, port_number
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionType
from ansible_collections.clockwork.connections.plugins.module_utils.docker_client import exec_in


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
FINAL_LOGIN_ERRORS = ("password authentication failed", "no password supplied", "role \"",
                      "WRONGPASS", "NOAUTH", "invalid password", "invalid username-password")


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


def login_address(to, settings, params):
    """Where the module reaches the server: login_host/login_port, else the container's address."""
    if params.get("login_host"):
        return params["login_host"], params.get("login_port") or settings["port"]
    networks = ((to.attrs or {}).get("NetworkSettings") or {}).get("Networks") or {}
    for info in networks.values():
        if info.get("IPAddress"):
            return info["IPAddress"], params.get("login_port") or settings["port"]
    return None, None


def retry_login(connect, what, timeout, wait):
    """Call `connect` until it succeeds, with backoff, for up to `timeout` seconds.

    A refused login (wrong password, unknown user) is final at once: waiting cannot fix it.
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
                    "" if final else " (timeout %ss)" % timeout, last))
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 2.0)


class PostgresTarget(object):
    """The PostgreSQL server behind a database connection."""

    def __init__(self, host, port, settings, timeout, wait, read_only):
        psycopg = _driver("psycopg")
        self.errors = psycopg
        self.settings = settings
        self.where = "postgresql at %s:%s as %s (database %s)" % (host, port, settings["user"], settings["database"])
        options = "-c default_transaction_read_only=on" if read_only else None

        def connect(dbname):
            return psycopg.connect(host=host, port=port, user=settings["user"], password=settings["password"],
                                   dbname=dbname, connect_timeout=5, autocommit=True, options=options,
                                   client_encoding="utf8")
        self._connect = connect
        self.created_database = False
        self.conn = retry_login(self._connect_or_report_missing, "login to " + self.where, timeout, wait)

    def _connect_or_report_missing(self):
        try:
            return self._connect(self.settings["database"])
        except self.errors.OperationalError as exc:
            if "does not exist" not in str(exc):
                raise
            return None   # server up, database missing: the caller creates it

    def ensure_database(self, check_mode):
        """Create the database when the server has none of that name. Returns True if it would/did."""
        if self.conn is not None:
            return False
        if not check_mode:
            with self._connect("postgres") as maintenance:
                maintenance.execute("CREATE DATABASE %s" % quote_ident(self.settings["database"]))
            self.conn = self._connect(self.settings["database"])
        return True

    def applied(self):
        if self.conn is None:
            return {}
        exists = self.conn.execute("SELECT to_regclass(%s)", (TRACKING_TABLE,)).fetchone()[0]
        if not exists:
            return {}
        rows = self.conn.execute("SELECT kind, name, checksum FROM %s" % TRACKING_TABLE).fetchall()
        return dict(((kind, name), checksum) for kind, name, checksum in rows)

    def lock(self):
        self.conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS %s (kind text NOT NULL, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (kind, name))" % TRACKING_TABLE)

    def unlock(self):
        self.conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))

    def apply(self, kind, name, sql, checksum):
        """Run one file and record it, in one transaction: all of it or nothing."""
        try:
            with self.conn.transaction():
                self.conn.execute(sql)
                self.conn.execute(
                    "INSERT INTO %s (kind, name, checksum) VALUES (%%s, %%s, %%s) ON CONFLICT (kind, name)"
                    " DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()" % TRACKING_TABLE,
                    (kind, name, checksum))
        except self.errors.Error as exc:
            raise ClockworkError("%s %s failed%s: %s; rolled back, nothing of it was applied" % (
                kind, name, _error_line(exc, sql), _server_message(exc)))

    def close(self):
        if self.conn is not None:
            self.conn.close()


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


def redis_ping(host, port, settings, timeout, wait):
    redis = _driver("redis")
    where = "redis at %s:%s (database %s)" % (host, port, settings["database"])

    def ping():
        client = redis.Redis(host=host, port=port, db=int(settings["database"]), password=settings["password"],
                             username=settings["user"] if settings["password"] else None,
                             socket_timeout=5, socket_connect_timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    retry_login(ping, "PING to " + where, timeout, wait)


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

    host, port = login_address(to, settings, params)
    pending = list(files)
    result.before = {"applied": []}
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
        redis_ping(host, port, settings, params["timeout"], params["wait_for_ready"])
        result.extra["pending"] = []
        return

    target = PostgresTarget(host, port, settings, params["timeout"], params["wait_for_ready"],
                            read_only=ctx.check_mode)
    try:
        if target.ensure_database(ctx.check_mode):
            result.act("create database %s" % settings["database"])
        applied = target.applied()
        result.before = {"applied": sorted("%s %s" % key for key in applied)}
        pending = plan(files, applied, params.get("reapply_schema"))
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

def check_database(engine, check):
    attrs = engine.container(check["env_from"]) or {}
    env = dict(item.split("=", 1) for item in (attrs.get("Config") or {}).get("Env") or [] if "=" in item)
    url = env.get(check["env_var"])
    if not url:
        return False, "%s has no %s" % (check["env_from"], check["env_var"])
    exec_env = {"CLOCKWORK_URL": url}
    if check["engine"] == "redis":
        # redis-cli -u sends an empty user name for redis://:password@host: pass the parts.
        parts = urlsplit(url)
        exec_env = {"REDISCLI_AUTH": unquote(parts.password)} if parts.password else {}
        script = "redis-cli -h %s -p %d -n %s ping" % (
            shlex.quote(parts.hostname), parts.port or 6379, shlex.quote(parts.path.strip("/") or "0"))
        expect = "PONG"
    else:
        schema = check.get("schema") or []
        query = "SELECT 1" if not schema else (
            "SELECT count(*) FROM %s WHERE kind = 'schema' AND name = '%s'" % (TRACKING_TABLE, schema[0]))
        script = 'psql "$CLOCKWORK_URL" -tAc "%s"' % query
        expect = "1"
    code, out = exec_in(engine, check["container"], script, env=exec_env)
    if code != 0 or out.strip() != expect:
        return False, "login with %s of %s failed inside %s: %s" % (
            check["env_var"], check["env_from"], check["container"], out.replace(url, "********") or code)
    detail = " and schema %s is recorded" % check["schema"][0] if check.get("schema") else ""
    return True, "%s of %s logs in%s" % (check["env_var"], check["env_from"], detail)


TYPE = ConnectionType(
    "database", DATABASE_ARGS, converge,
    checks={"database": check_database},
    injected_env=injected_env,
    validate=validate,
    completable=("connection_string_template", "username", "database_name"),
    controller_files=("schema_file", "migrations_dir"),
)
