# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DatabaseConnection: a connection string for `from`, a real login as readiness, the
schema file applied once and versioned migrations applied once each, with checksums; the
engine (engines.py) does what differs between PostgreSQL, Redis and the others."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import os

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    ClockworkError, env_var_name_problems, port_number)
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionType, Endpoint
from ansible_collections.clockwork.connections.plugins.module_utils.database.client_env import (
    SECRETS_DIR, client_env, contribute, env_problems, injected_names, known_values, planned_files)
from ansible_collections.clockwork.connections.plugins.module_utils.database.completion import COMPLETION
from ansible_collections.clockwork.connections.plugins.module_utils.database.dry_run import (
    ForecastTarget, no_address, reach)
from ansible_collections.clockwork.connections.plugins.module_utils.database.engine import MIGRATION_TIMEOUT
from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES
from ansible_collections.clockwork.connections.plugins.module_utils.database.rotation import rotate_passwords
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import (
    DEFAULT_ENGINE, engine_of, env_var_name, part_values, render_url, resolved_settings, template_placeholders)
from ansible_collections.clockwork.connections.plugins.module_utils.database.sql_files import (
    SQL_SUFFIX, pending_files, sql_files)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import EXEC_NOT_FOUND, exec_arg, exec_first, exec_in
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import read_text

DATABASE_ARGS = dict(
    engine=dict(type="str", default=DEFAULT_ENGINE, choices=list(ENGINES)),
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
    migration_timeout=dict(type="int", default=MIGRATION_TIMEOUT),
    cross_database=dict(type="bool", default=False),
    rehearse=dict(type="str", choices=["auto", "always", "never"], default="auto"),
    snapshot_keep=dict(type="int", default=3),
    snapshot_max_mb=dict(type="int", default=1024),
    snapshot=dict(type="bool", default=False),
    restore_snapshot=dict(type="str"),
    env_var_name=dict(type="str"),
    env=dict(type="dict"),
    password_delivery=dict(type="str", choices=["env", "file"], default="env", no_log=False),
    login_host=dict(type="str"),
    login_port=dict(type="int"),
)


def validate(params):
    problems = []
    engine = ENGINES.get(params.get("engine") or DEFAULT_ENGINE)
    sql_given = any(params.get(f) for f in ("schema_file", "migrations_dir", "schema_content", "migrations"))
    if engine is not None and not engine.has_schema and sql_given:
        problems.append(("schema_file" if params.get("schema_file") else "migrations_dir",
                         "schema_file and migrations_dir are for %s; %s has no schema" % (
                             " and ".join(e.title for e in ENGINES.values() if e.has_schema), engine.title)))
    if params.get("connection_string_template"):
        try:
            template_placeholders(params["connection_string_template"])
        except ClockworkError as exc:
            problems.append(("connection_string_template", exc.msg.replace("connection_string_template ", "", 1)))
    problems.extend(env_var_name_problems(params))
    if engine is not None:
        problems.extend(env_problems(params, resolved_settings(params, None)))
    if params.get("snapshot") and engine is not None and engine.has_schema:
        problems.append(("snapshot", "is for Redis (an RDB copy for each release); %s keeps a snapshot before its "
                                     "files by itself" % engine.title))
    for field, unit in (("timeout", "seconds"), ("migration_timeout", "seconds"), ("snapshot_keep", "snapshots"),
                        ("snapshot_max_mb", "megabytes")):
        if params.get(field) is not None and params[field] <= 0:
            problems.append((field, "must be a positive number of %s, got %s" % (unit, params[field])))
    if params.get("schema_file") and params.get("schema_content") is None \
            and not os.path.isfile(params["schema_file"]):
        problems.append(("schema_file", "%s does not exist" % params["schema_file"]))
    if params.get("migrations_dir") and params.get("migrations") is None \
            and not os.path.isdir(params["migrations_dir"]):
        problems.append(("migrations_dir", "%s is not a directory" % params["migrations_dir"]))
    if engine is not None and engine.has_schema and sql_given and \
            not any(field in ("schema_file", "migrations_dir") for field, _problem in problems):
        problems.extend(refused_files(engine, params))
    return problems


def refused_files(engine, params):
    """[(field, problem)] of the SQL files the engine never applies (one that ends its own
    transaction, one that reaches another database), from their text: refused with everything
    else, before any change."""
    try:
        files = sql_files(params)
    except ClockworkError as exc:
        return [("migrations_dir" if params.get("migrations_dir") else "schema_file", exc.msg)]
    problems, settings = [], resolved_settings(params, None)
    for kind, name, _path, sql, _checksum in files:
        try:
            engine.refuse_file(kind, name, sql, settings)
        except ClockworkError as exc:
            problems.append(("schema_file" if kind == "schema" else "migrations_dir",
                             exc.msg.replace(" Nothing was applied.", "")))
    return problems


def injected_env(params, _to_name):
    return injected_names(params, resolved_settings(params, None))


def known_env(params, to_name):
    return known_values(params, resolved_settings(params, None), to_name)


def written_files(params, stack):
    return planned_files(params, stack)


def before_to(ctx, params, spec, result):
    """In a stack, right before `to` converges with `spec`: the passwords that change are
    rotated on the server that still runs, whose containers still say the previous ones."""
    to = ctx.endpoint(params["to_resource"])
    result.rotation = {"read_with": None, "skip_read": False}
    if not to.exists:
        return
    # The server as it runs now: a dry run that changes it reads its data there (dry_run.py).
    result.server_before = Endpoint(to.name, copy.deepcopy(to.attrs), to.spec)
    declared = to.declared_ports()
    settings = resolved_settings(params, port_number(declared[0]) if declared else None)
    wanted = engine_of(params).server_credentials(spec.env, spec.command, to.name)
    result.rotation = rotate_passwords(ctx, params, result, to, settings, wanted)


def converge(ctx, params, result):
    from_name, to_name = params["from_resource"], params["to_resource"]
    to = ctx.require_to(to_name, result.name)
    declared = to.declared_ports()
    settings = resolved_settings(params, port_number(declared[0]) if declared else None)
    problems = validate(params)
    if problems:
        raise ClockworkError("%s: %s" % (result.name, "; ".join("%s: %s" % p for p in problems)))
    files = sql_files(params)

    check = {"kind": "database", "connection": result.name, "engine": settings["engine"], "container": to_name,
             "env_from": from_name, "env_var": settings["env_var_name"] or None,
             "schema": [f[1] for f in files if f[0] == "schema"]}
    if not settings["env_var_name"]:
        # Without a connection string the check logs in with the parts `from` has.
        check.update(parts=dict(params["env"]), user=settings["user"], database=str(settings["database"]),
                     port=settings["port"])
    result.contribution.checks.append(check)
    # What the action plugin needs to put the real URL back into the registered result.
    shown = ("engine", "user", "database", "port", "template", "env_var_name")
    result.extra["database"] = dict((key, settings[key]) for key in shown)
    result.extra["database"]["host"] = to_name

    database = reach(engine_of(params), ctx.engine)
    host, port = database.address(to, settings, params, getattr(result, "server_before", None))
    if host is None:
        raise no_address(result.name, to_name)
    if params.get("restore_snapshot"):
        if not engine_of(params).has_schema:   # no target: the engine restores the server's data itself
            return engine_of(params).restore_server(ctx, params, result, settings)
        return restore_snapshot(ctx, params, result, settings, database, (host, port))
    rotation = getattr(result, "rotation", None)
    if rotation is None or rotation.get("deferred"):
        # On its own (the single module), or its server was stopped before: rotate now.
        rotation = result.rotation = rotate_passwords(ctx, params, result, to, settings, None)
    # After the rotation: a password file `from` reads is rewritten once the server takes the new password.
    contribute(ctx, params, settings, result)
    if rotation.get("read_with") is not None:
        # Until the rotation is done (a dry run only records it) the server takes the previous password only.
        settings = dict(settings, password=rotation["read_with"])
    result.before = {"applied": []}
    if rotation.get("skip_read"):
        result.extra["pending"] = []
        result.extra["server"] = "not readable before its password is rotated"
        return

    target = database.login(host, port, settings, params["timeout"], params["wait_for_ready"], to_name)
    if target is None:   # an engine without schema: the login was the readiness
        result.extra["pending"] = []
        engine_of(params).after_login(ctx, params, result, settings)
        return
    try:
        apply_files(ctx, params, result, settings, files, target)
    finally:
        target.close()


def apply_files(ctx, params, result, settings, files, target):
    """The database created when missing, then the files it has not applied, under the target's lock."""
    if isinstance(target, ForecastTarget):
        result.extra["server"] = target.said
    applied = target.applied()
    if applied is None:
        target.create_database()
        result.act("create database %s" % settings["database"])
        applied = {}
    result.before = {"applied": sorted("%s %s" % key for key in applied)}
    pending = pending_files(files, applied, params.get("reapply_schema"))
    result.extra["pending"] = ["%s %s" % (f[0], f[1]) for f in pending]
    result.after = {"applied": sorted(result.before["applied"] + [
        p for p in result.extra["pending"] if p not in result.before["applied"]])}
    if not pending:
        return
    target.lock()
    try:
        # Every decision is taken again under the lock: a concurrent run may have applied some
        # files, or started one and died; what the engine refuses is refused before any file runs.
        pending = pending_files(files, target.applied() or {}, params.get("reapply_schema"))
        target.refuse(pending)
        # What the engine does before the files (MySQL: rehearse them on a copy, keep a snapshot).
        snapshot = target.prepare(pending, ctx, result)
        for kind, name, _path, sql, checksum in pending:
            target.apply(kind, name, sql, checksum, snapshot)
            result.act("apply %s %s" % (kind, name))
    finally:
        target.unlock()


def restore_snapshot(ctx, params, result, settings, database, address):
    """The database put back as a snapshot has it, and nothing else (the stack role's clockwork_restore)."""
    target = database.login(address[0], address[1], settings, params["timeout"], params["wait_for_ready"],
                            params["to_resource"])
    try:
        target.lock()   # no run applies files meanwhile
        try:
            target.restore(ctx, result, params["restore_snapshot"])
        finally:
            target.unlock()
    finally:
        target.close()


def ship_files(params, find, _local):
    """The schema file and the migrations, always the controller's: their content goes into
    schema_content and migrations."""
    if params.get("schema_file"):
        params["schema_file"] = find(params["schema_file"])
        if os.path.isfile(params["schema_file"]) and params.get("schema_content") is None:
            params["schema_content"] = read_text(params["schema_file"])
    if params.get("migrations_dir"):
        directory = params["migrations_dir"] = find(params["migrations_dir"])
        if os.path.isdir(directory) and params.get("migrations") is None:
            params["migrations"] = [{"name": name, "content": read_text(os.path.join(directory, name))}
                                    for name in sorted(os.listdir(directory)) if name.endswith(SQL_SUFFIX)]
    return params


def planned_steps(params):
    """The SQL files the connection applies, with their checksums (raises ClockworkError)."""
    if params.get("restore_snapshot"):
        raise ClockworkError("restore_snapshot: a stack never restores a snapshot by itself (rows clients wrote since "
                             "would be lost); run the stack role with clockwork_restore (database and snapshot), "
                             "which restores it and changes nothing else")
    return [{"kind": kind, "name": name, "sha256": checksum}
            for kind, name, _path, _sql, checksum in sql_files(params)]


def client_url(check, database, env, read_secret=None):
    """(the connection string `from` logs in with, what it was read from) or (None, what is missing).
    Without a part that holds the password, the password is the content of the secret file a variable
    of `from` names (password_delivery: file with a client that reads a compose secret at its own path,
    DATABASE_PASSWORD=/run/secrets/db-password): `read_secret(path)` reads it inside `from`. Raises
    ClockworkError when the template needs a password that nothing gives."""
    if check.get("env_var"):
        return env.get(check["env_var"]), check["env_var"]
    values, names = {}, []
    for name in sorted(check.get("parts") or {}):
        if name not in env:
            return None, name
        names.append(name)
        for key, value in part_values(check["parts"][name], env[name]).items():
            values.setdefault(key, value)
    if values.get("password") is None and read_secret is not None:
        for name, path in secret_paths(env):
            password = read_secret(path)
            if password is not None:
                values["password"] = password
                names.append(name)
                break
    url = render_url(database.defaults["template"] if values.get("password") is not None else
                     database.defaults.get("template_without_password", database.defaults["template"]),
                     values.get("user", check.get("user")), values.get("password"), check["container"],
                     values.get("port", check.get("port")), values.get("database", check.get("database")))
    return url, ", ".join(names)


def secret_paths(env):
    """[(name, path)] of the variables of a client whose value is the path of a secret file that may hold
    its password: under /run/secrets/, named for a password."""
    return [(name, env[name]) for name in sorted(env) if "PASS" in name.upper()
            and (env[name] or "").startswith(SECRETS_DIR) and ".." not in env[name]]


def read_secret_in(engine, container):
    """A read_secret for client_url: the file's content inside `container` (its last newline
    dropped), or None when it cannot be read."""
    def read(path):
        code, out = exec_in(engine, container, ["cat", "--", path], timeout=5)
        return out.rstrip("\r\n") if code == 0 and out.strip() else None
    return read


def check_database(engine, check):
    env = client_env(engine.container(check["env_from"]))
    database = engine_of(check)
    try:
        url, given_by = client_url(check, database, env, read_secret_in(engine, check["env_from"]))
    except ClockworkError as exc:   # the check's failure, not the run's
        return False, "%s cannot log in: %s" % (check["env_from"], exc.msg)
    if not url:
        return False, "%s has no %s" % (check["env_from"], given_by)
    argv, exec_env, expect = database.probe(check, url)
    code, out = exec_in(engine, check["container"], argv, env=exec_env)
    if code == EXEC_NOT_FOUND and database.probe_alternatives:
        # An image that ships the client under another name (MariaDB 11: `mariadb`, no `mysql`).
        candidates = [[program] + argv[1:] for program in database.probe_alternatives]
        code, out, _program = exec_first(engine, check["container"], candidates, env=exec_env)
    for secret in [url] + [exec_env[k] for k in database.probe_secret_env if exec_env.get(k)]:
        out = out.replace(secret, "********")
    answers = out.splitlines() if code == 0 else []
    if code != 0 or (expect not in answers if check.get("schema") else answers != [expect]):
        if code == 0 and check.get("schema"):
            return False, "%s of %s logs in, but schema %s is not recorded in %s" % (
                given_by, check["env_from"], check["schema"][0], database.schema_record())
        return False, "login with %s of %s failed inside %s: %s" % (
            given_by, check["env_from"], check["container"], out or code)
    detail = " and schema %s is recorded" % check["schema"][0] if check.get("schema") else ""
    return True, "%s of %s logs in%s" % (given_by, check["env_from"], detail)


check_database.fields = dict(
    engine=dict(type="str", choices=list(ENGINES), default=DEFAULT_ENGINE),
    container=dict(type=exec_arg, required=True), env_from=dict(type=exec_arg, required=True),
    env_var=dict(type=env_var_name), schema=dict(type="list", elements="str", default=[]),
    parts=dict(type="dict"), user=dict(type="str"), database=dict(type="str"), port=dict(type="int"))


TYPE = ConnectionType(
    "database", DATABASE_ARGS, converge,
    checks={"database": check_database},
    injected_env=injected_env,
    known_env=known_env,
    written_files=written_files,
    validate=validate,
    completable=("connection_string_template", "username", "database_name"),
    controller_files=("schema_file", "migrations_dir"),
    before_to=before_to,
    planned_steps=planned_steps,
    ship_files=ship_files,
    completion=COMPLETION,
    single_to=True,
    drivers=lambda params: (engine_of(params).driver_module,),
)
