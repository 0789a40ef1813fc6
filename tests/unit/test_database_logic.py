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
