"""Pure logic of database_connection: URLs, ordering, drift (no server)."""
import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import render_url, resolved_settings
from ansible_collections.clockwork.connections.plugins.module_utils.database.sql_files import natural_key, pending_files as plan

SEED_TEMPLATE = "postgresql://{user}:{password}@{host}:{port}/{database}"


def test_seed_url_exactly():
    assert render_url(SEED_TEMPLATE, "postgres", "secret123", "postgres", 5432, "appdb") == \
        "postgresql://postgres:secret123@postgres:5432/appdb"


def test_user_and_password_are_url_encoded():
    url = render_url(SEED_TEMPLATE, "app user", "p@ss:w/rd%", "db", 5432, "appdb")
    assert url == "postgresql://app%20user:p%40ss%3Aw%2Frd%25@db:5432/appdb"


@pytest.mark.parametrize("template, placeholder", [
    ("postgresql://{user}@{hostname}/x", "{hostname}"),
    ("postgresql://{user}:{password!r}@{host}", "{password}"),
    ("postgresql://{password:>30}", "{password}"),
])
def test_unknown_placeholders_and_format_specs_are_refused(template, placeholder):
    with pytest.raises(ClockworkError) as error:
        render_url(template, "u", "p", "h", 1, "d")
    assert "unknown placeholder %s" % placeholder in error.value.msg


def test_password_placeholder_without_password():
    with pytest.raises(ClockworkError, match="no password"):
        render_url(SEED_TEMPLATE, "u", None, "h", 1, "d")


def test_redis_defaults_with_and_without_password():
    plain = resolved_settings({"engine": "redis"}, None)
    assert (plain["template"], plain["env_var_name"], plain["port"], plain["database"]) == \
        ("redis://{host}:{port}/{database}", "REDIS_URL", 6379, "0")
    secured = resolved_settings({"engine": "redis", "password": "x"}, 6380)
    assert render_url(secured["template"], secured["user"], "x", "cache", secured["port"], secured["database"]) == \
        "redis://:x@cache:6380/0"


def test_postgres_defaults():
    settings = resolved_settings({"password": "x"}, None)
    assert (settings["user"], settings["database"], settings["port"], settings["env_var_name"]) == \
        ("postgres", "postgres", 5432, "DATABASE_URL")


def test_natural_version_order():
    names = ["10_y.sql", "2_x.sql", "1_a.sql", "2_b.sql", "100_z.sql"]
    assert sorted(names, key=natural_key) == ["1_a.sql", "2_b.sql", "2_x.sql", "10_y.sql", "100_z.sql"]


FILES = [("schema", "schema.sql", "/p/schema.sql", "sql", "aaa"),
         ("migration", "1_a.sql", "/p/m/1_a.sql", "sql", "bbb")]


def test_plan_skips_applied_and_refuses_drift():
    assert plan(FILES, {}, False) == FILES
    assert plan(FILES, {("schema", "schema.sql"): "aaa"}, False) == FILES[1:]
    with pytest.raises(ClockworkError, match="migration 1_a.sql was applied with sha256 old"):
        plan(FILES, {("migration", "1_a.sql"): "old"}, False)
    with pytest.raises(ClockworkError, match="reapply_schema"):
        plan(FILES, {("schema", "schema.sql"): "old"}, False)
    assert plan(FILES, {("schema", "schema.sql"): "old", ("migration", "1_a.sql"): "bbb"}, True) == FILES[:1]


# -- a SQL file that ends the transaction itself is refused before anything runs --------

from ansible_collections.clockwork.connections.plugins.module_utils.database.engine_postgresql import login_problem  # noqa: E402
from ansible_collections.clockwork.connections.plugins.module_utils.database.sql_files import (  # noqa: E402
    refuse_transaction_control, sql_statements, transaction_control)


@pytest.mark.parametrize("sql, found", [
    ("CREATE TABLE a (id int);\nCOMMIT;\n", (2, "COMMIT")),
    ("BEGIN;\nCREATE TABLE a ();\nCOMMIT;\n", (1, "BEGIN")),
    ("select 1;\n\n  rollback;", (3, "ROLLBACK")),
    ("SELECT 1;\nend;", (2, "END")),
    ("SELECT 1; abort;", (1, "ABORT")),
    ("start transaction;", (1, "START TRANSACTION")),
    ("PREPARE TRANSACTION 'x';", (1, "PREPARE TRANSACTION")),
    ("COMMIT PREPARED 'x';", (1, "COMMIT")),
    ("SELECT 'multi\nline';\n/* a\ncomment */ COMMIT", (4, "COMMIT")),
    ("SELECT 1 -- trailing\n;COMMIT", (2, "COMMIT")),
])
def test_statements_that_end_the_transaction(sql, found):
    assert transaction_control(sql) == found


@pytest.mark.parametrize("sql", [
    "-- COMMIT;\nSELECT 'COMMIT;';\n/* COMMIT; /* nested */ COMMIT; */ SELECT 1;",
    "CREATE FUNCTION f() RETURNS void AS $$ BEGIN COMMIT; END $$ LANGUAGE plpgsql;",
    "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN; COMMIT; $x$ $body$ LANGUAGE plpgsql;",
    "CREATE FUNCTION f() RETURNS text AS 'BEGIN; COMMIT;' LANGUAGE sql;",
    "SELECT E'it\\'s; COMMIT';\nSELECT 1;",
    "SELECT 'it''s; COMMIT';\nSELECT \"a;\"\"COMMIT\" FROM t;",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END;",
    "SAVEPOINT s; ROLLBACK TO SAVEPOINT s; ROLLBACK TO s; RELEASE s;",
    "CREATE TABLE endings (\"end\" int, commit_at int, begin_at int);",
    "SELECT pg_catalog.set_config('search_path', '', false);\nCREATE TABLE public.t (id int);",
    "PREPARE q AS SELECT 1;",
])
def test_statements_that_keep_it(sql):
    assert transaction_control(sql) is None


def test_statement_lines_count_newlines_inside_strings_and_comments():
    sql = "SELECT 'a\nb';\n/* x\ny */\nCREATE TABLE t ();\n$$\n$$;\nDROP TABLE t"
    assert [(line, words[0]) for line, words in sql_statements(sql)] == [(1, "SELECT"), (5, "CREATE"), (6, "$"),
                                                                         (8, "DROP")]


def test_refusal_names_the_file_and_the_line():
    files = [("schema", "schema.sql", "/p/schema.sql", "CREATE TABLE a ();\n", "x"),
             ("migration", "2_b.sql", "/p/m/2_b.sql", "CREATE TABLE b ();\n\nCOMMIT;\n", "y")]
    with pytest.raises(ClockworkError) as error:
        refuse_transaction_control(files)
    assert error.value.msg.startswith("migration 2_b.sql line 3: COMMIT ends the transaction")
    assert "Nothing was applied" in error.value.msg


SETTINGS = {"user": "app", "database": "appdb"}
REFUSED = 'connection failed: connection to server at "10.0.0.2", port 5432 failed: FATAL:  %s'


def test_a_wrong_user_and_a_wrong_password_each_get_their_message():
    said = REFUSED % 'password authentication failed for user "app"'
    assert login_problem(said, SETTINGS, lambda user: "missing").startswith(
        'role "app" does not exist on the server: check username')
    assert login_problem(said, SETTINGS, lambda user: "exists").startswith('wrong password for role "app"')
    unknown = login_problem(said, SETTINGS)
    assert "the password is wrong, or role \"app\" does not exist" in unknown
    # A server that trusts the client says so itself.
    assert login_problem(REFUSED % 'role "app" does not exist', SETTINGS).startswith('role "app" does not exist')
    assert login_problem(REFUSED % 'database "other" does not exist', SETTINGS).startswith(
        'database "other" does not exist: check database_name')
    assert login_problem("connection refused", SETTINGS) is None


# -- check mode by construction: the same converge on a dry run (database/dry_run.py) ----------

import collections  # noqa: E402
import copy  # noqa: E402

from ansible_collections.clockwork.connections.plugins.module_utils.connection import (  # noqa: E402
    CONNECTION_ARGS, ConnectionContext)
from ansible_collections.clockwork.connections.plugins.module_utils.database import dry_run  # noqa: E402
from ansible_collections.clockwork.connections.plugins.module_utils.database.connection_type import (  # noqa: E402
    DATABASE_ARGS, TYPE)
from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES  # noqa: E402
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway  # noqa: E402
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import memory_gateway  # noqa: E402

OLD, NEW = "old-pw", "new-pw"  # pragma: allowlist secret
SCHEMA = "CREATE TABLE users (id int);"
Declared = collections.namedtuple("Declared", "env command")
Rehearsal = collections.namedtuple("Rehearsal", "login")


class ScriptedServer(object):
    """A PostgreSQL server in pure logic, in place of the engine's login, session and ALTER ROLE:
    which databases it has and what each applied, its role's password, and every write it took."""

    def __init__(self, password=OLD, databases=None):
        self.password = password
        self.databases = {} if databases is None else databases   # name -> {(kind, name): checksum}
        self.logins = []   # (host, read_only, password)
        self.writes = []

    def install(self, monkeypatch):
        engine = ENGINES["postgresql"]
        monkeypatch.setattr(engine, "login", self.login)
        monkeypatch.setattr(engine, "session", self.session)
        monkeypatch.setattr(engine, "set_password", self.set_password)
        return self

    def login(self, host, port, settings, timeout, wait, read_only, server, engine):
        self.logins.append((host, read_only, settings["password"]))
        if settings["password"] != self.password:
            raise ClockworkError("login to postgresql at %s: password authentication failed" % host)
        return ScriptedTarget(self, settings)

    def session(self, host, port, user, password, database, timeout):
        return object() if password == self.password else None

    def set_password(self, session, identity, password, carried, admin=None):
        self.writes.append("password of %s" % identity)
        self.password = password


class ScriptedTarget(object):
    def __init__(self, server, settings):
        self.server, self.settings, self.conn = server, settings, object()

    def applied(self):
        found = self.server.databases.get(self.settings["database"])
        return None if found is None else dict(found)

    def create_database(self):
        self.server.writes.append("create database")
        self.server.databases[self.settings["database"]] = {}

    def lock(self):
        self.server.writes.append("lock")

    def unlock(self):
        pass

    def refuse(self, pending):
        pass

    def prepare(self, pending, ctx, result):
        """As MySQL's: a rehearsal that logs in with the target's own session, then a copy and a snapshot."""
        return self.rehearse_on_copy(Rehearsal(("postgres", self.settings.get("password"), self.conn)), pending, 3)

    def rehearse_on_copy(self, rehearsal, pending, keep):
        self.server.writes.append("snapshot")
        return "snap-1"

    def apply(self, kind, name, sql, checksum, snapshot=None):
        self.server.writes.append("apply %s %s after %s" % (kind, name, snapshot))
        self.server.databases[self.settings["database"]][(kind, name)] = checksum

    def close(self):
        pass


def database_params(**given):
    params = dict((name, spec.get("default")) for name, spec in dict(CONNECTION_ARGS, **DATABASE_ARGS).items())
    params.update(from_resource="api", to_resource="db", stack="shop", password=OLD, database_name="appdb",
                  schema_file="schema.sql", schema_content=SCHEMA, wait_for_ready=False)
    params.update(given)
    return params


def with_server(password=OLD, client_password=None):
    """A memory engine where the stack's server `db` runs (its env says `password`), and `api` with its URL."""
    live = memory_gateway()
    live.api.add_image("postgres:15")
    live.create_container("db", "postgres:15", environment=["POSTGRES_PASSWORD=" + password],
                          labels={"io.clockwork.stack": "shop", "io.clockwork.resource": "db"})
    live.start("db")
    if client_password:
        live.create_container("api", "postgres:15", labels={"io.clockwork.stack": "shop"}, environment=[
            "DATABASE_URL=postgresql://postgres:%s@db:5432/appdb" % client_password])
    return live


def converge(gateway, params):
    return TYPE.run(ConnectionContext(gateway, "shop"), params)


def test_a_dry_run_reads_through_a_read_only_login_and_records_the_writes(monkeypatch):
    """Check mode is the same converge on a dry run's gateway: what it reports is what the real run
    does, and no write reaches the server."""
    dry_server, real_server = ScriptedServer(), ScriptedServer()
    live = with_server()
    dry_server.install(monkeypatch)
    checked = converge(dry_run_gateway(live=live.api), database_params())
    assert dry_server.writes == [] and [read_only for _h, read_only, _p in dry_server.logins] == [True]
    real_server.install(monkeypatch)
    done = converge(live, database_params())
    assert real_server.writes == ["create database", "lock", "snapshot", "apply schema schema.sql after snap-1"]
    assert [read_only for _h, read_only, _p in real_server.logins] == [False]
    assert checked.actions == done.actions == ["create database appdb", "apply schema schema.sql"]
    assert (checked.before, checked.after) == (done.before, done.after) == (
        {"applied": []}, {"applied": ["schema schema.sql"]})
    again = ScriptedServer(databases=copy.deepcopy(real_server.databases)).install(monkeypatch)
    assert converge(dry_run_gateway(live=live.api), database_params()).actions == [] and again.writes == []


def test_a_server_the_dry_run_would_create_or_start_is_not_logged_in_to(monkeypatch):
    server = ScriptedServer().install(monkeypatch)
    empty = dry_run_gateway(live=memory_gateway().api)     # a task before this one would create `db`
    nothing = converge(empty, database_params())
    made = dry_run_gateway(live=memory_gateway().api)
    made.api.add_image("postgres:15")
    made.create_container("db", "postgres:15", labels={"io.clockwork.stack": "shop"})
    made.start("db")                                      # only in the dry run's forecast
    stopped = with_server()
    stopped.stop("db")                                    # a run would start it first
    for gateway in (made, dry_run_gateway(live=stopped.api)):
        result = converge(gateway, database_params())
        assert (result.actions, result.extra["server"]) == (nothing.actions, nothing.extra["server"])
    assert nothing.actions == ["apply schema schema.sql"] and nothing.extra["server"] == "does not exist yet"
    assert nothing.after == {"applied": ["schema schema.sql"]}
    assert server.logins == [] and server.writes == []


def test_a_server_the_dry_run_changes_is_read_where_it_runs_now(monkeypatch):
    """A recreate keeps the server's data: a dry run reads it from the container that still runs."""
    server = ScriptedServer(databases={"appdb": {}}).install(monkeypatch)
    live = with_server()
    converge(live, database_params())
    address = live.container("db")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    dry = dry_run_gateway(live=live.api)
    ctx, params = ConnectionContext(dry, "shop"), database_params()
    result = TYPE.new_result(params)
    TYPE.before_to(ctx, params, Declared({"POSTGRES_PASSWORD": OLD}, None), result)
    dry.stop("db")
    dry.rename("db", "db_old")
    dry.create_container("db", "postgres:15", labels={"io.clockwork.stack": "shop"})
    dry.start("db")
    assert dry.forecast("db")
    del server.logins[:]
    TYPE.converge(ctx, params, result)
    assert result.actions == [] and server.logins == [(address, True, OLD)]


def test_a_rotation_on_a_dry_run_is_recorded_and_the_server_read_with_the_password_it_has(monkeypatch):
    for gateway_of, password_after, read_with in ((lambda live: dry_run_gateway(live=live.api), OLD, OLD),
                                                  (lambda live: live, NEW, NEW)):
        server = ScriptedServer(databases={"appdb": {}}).install(monkeypatch)
        live = with_server(client_password=OLD)
        result = converge(gateway_of(live), database_params(password=NEW))
        assert result.actions == ["rotate the password of role postgres", "apply schema schema.sql"]
        assert server.password == password_after and server.logins[-1][2] == read_with


def test_a_rotation_of_a_stopped_server_on_a_dry_run_says_it_would_and_reads_nothing(monkeypatch):
    server = ScriptedServer(databases={"appdb": {}}).install(monkeypatch)
    live = with_server(client_password=OLD)
    live.stop("db")
    result = converge(dry_run_gateway(live=live.api), database_params(password=NEW))
    assert result.actions == ["rotate the password of role postgres"]
    assert result.extra["server"] == "not readable before its password is rotated"
    assert server.logins == [] and server.writes == []


def test_the_engines_own_steps_run_on_a_dry_run_with_its_writes_recorded():
    """MySQL's rehearsal decides as in a real run; the copy and the snapshot are only recorded."""
    server = ScriptedServer(databases={"appdb": {}})
    target = dry_run.DryRunTarget(ScriptedTarget(server, {"database": "appdb"}), [])
    pending = [("schema", "schema.sql", None, SCHEMA, "c")]
    assert target.prepare(pending, None, None) is None and target.apply("schema", "schema.sql", SCHEMA, "c") is None
    assert server.writes == [] and target.recorded == ["rehearse schema.sql on a copy and keep a snapshot",
                                                       "apply schema schema.sql"]
    assert target.snapshots(None) is None, "a dry run reads no snapshot volume"
