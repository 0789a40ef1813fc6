"""database_connection against real PostgreSQL and Redis containers."""
import os
import time

import pytest

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, as_text, docker, env_of, inspect, playbook

PASSWORD = "secret123"  # pragma: allowlist secret


def on_network(stack, name):
    """Containers resolve each other by name only on a user network (the stack module adds one)."""
    docker("network", "create", "--label", "io.clockwork.stack=" + stack, stack + "-net", check=False)
    return [{"name": stack + "-net", "aliases": [name]}]


def postgres_task(name, stack, password=PASSWORD):
    return {"name": "postgres", "clockwork.connections.container": {
        "name": name, "image": POSTGRES_IMAGE, "stack": stack, "ports": ["5432"],
        "networks": on_network(stack, name),
        "env": {"POSTGRES_PASSWORD": password, "POSTGRES_DB": "appdb"},
        # A start period: a loaded machine may take seconds to initialise the data directory.
        "healthcheck": {"test": "pg_isready -U postgres", "interval": "1s", "start_period": "60s"}}}


def start_postgres(pg, stack):
    run = playbook([postgres_task(pg, stack)])
    assert run.rc == 0, run.output


def db_task(stack, pg, **extra):
    args = {"from": stack + "-api", "to": pg, "username": "postgres", "password": PASSWORD,
            "database_name": "appdb", "stack": stack, "timeout": 20}
    args.update(extra)
    return {"name": "db", "clockwork.connections.database_connection": args, "register": "db"}


def shown(run, registered="db"):
    """The registered result's non-secret fields: the task's own output is hidden on purpose."""
    return run.result("show " + registered)["msg"]


def show(registered="db"):
    return {"name": "show " + registered, "debug": {"msg": {
        "actions": "{{ %s.actions }}" % registered, "pending": "{{ %s.pending | default([]) }}" % registered}}}


def api_task(stack, *registered):
    return {"name": "api", "clockwork.connections.container": {
        "name": stack + "-api", "image": NGINX_IMAGE, "stack": stack,
        "networks": on_network(stack, stack + "-api"),
        "contributions": ["{{ %s.contribution }}" % r for r in registered]}}


def psql(container, query):
    return docker("exec", container, "psql", "-U", "postgres", "-d", "appdb", "-tAc", query)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "schema.sql").write_text("CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);\n"
                                         "INSERT INTO users (name) VALUES ('ada');\n")
    (tmp_path / "migrations").mkdir()
    return tmp_path


def test_schema_once_check_apply_idempotent_check(stack, workdir):
    pg = stack + "-pg"
    wd = str(workdir)
    # No server yet: check mode reports what it would do and fails on nothing.
    early = playbook([db_task(stack, pg, schema_file="schema.sql")], check=True, workdir=wd)
    assert early.rc == 0, early.output
    assert early.result("db")["changed"] is True, early.details

    _run = playbook([postgres_task(pg, stack)], workdir=wd)
    assert _run.rc == 0, _run.output
    check = playbook([db_task(stack, pg, schema_file="schema.sql"), show()], check=True, diff=True, workdir=wd)
    assert check.rc == 0, check.output
    assert check.result("db")["changed"] is True, check.details
    assert shown(check)["pending"] == ["schema schema.sql"], check.details
    assert "censored" in check.result("db"), "the result holding DATABASE_URL must be hidden:\n" + check.details
    # Check mode ran no SQL that changes anything: no tracking table, no users table.
    assert psql(pg, "SELECT to_regclass('clockwork_schema_migrations') IS NULL, to_regclass('users') IS NULL") == "t|t"

    applied = playbook([db_task(stack, pg, schema_file="schema.sql"), api_task(stack, "db"),
                        {"name": "verify", "clockwork.connections.verify": {"checks": "{{ db.contribution.checks }}"}}],
                       workdir=wd)
    assert applied.rc == 0, applied.output
    assert applied.result("db")["changed"] is True, applied.details
    assert psql(pg, "SELECT name FROM users") == "ada"
    assert env_of(stack + "-api")["DATABASE_URL"] == "postgresql://postgres:%s@%s:5432/appdb" % (PASSWORD, pg)
    assert applied.result("verify")["checks"][0]["ok"] is True, applied.details

    again = playbook([db_task(stack, pg, schema_file="schema.sql"), api_task(stack, "db")], workdir=wd)
    assert again.rc == 0, again.output
    assert not again.changed, again.details
    assert psql(pg, "SELECT count(*) FROM users") == "1"
    last = playbook([db_task(stack, pg, schema_file="schema.sql")], check=True, workdir=wd)
    assert last.rc == 0 and not last.changed, last.details


def test_password_never_in_verbose_output(stack, workdir):
    pg = stack + "-pg"
    start_postgres(pg, stack)
    run = playbook([db_task(stack, pg, schema_file="schema.sql"), api_task(stack, "db")],
                   verbose=True, diff=True, workdir=str(workdir))
    assert run.rc == 0, run.output
    assert PASSWORD not in run.output, run.output
    assert "database %s-api -> %s: apply schema schema.sql" % (stack, pg) in run.output, run.output
    # ...and yet the container got the real URL.
    assert PASSWORD in env_of(stack + "-api")["DATABASE_URL"]


def test_migrations_natural_order_new_drift_and_rollback(stack, workdir):
    pg = stack + "-pg"
    wd, migrations = str(workdir), workdir / "migrations"
    (migrations / "10_add_email.sql").write_text("ALTER TABLE users ADD COLUMN email text;\n")
    (migrations / "2_create_orders.sql").write_text("CREATE TABLE orders (id int);\n")
    start_postgres(pg, stack)
    first = playbook([db_task(stack, pg, schema_file="schema.sql", migrations_dir="migrations"), show()],
                     workdir=wd)
    assert first.rc == 0, first.output
    # 2_ before 10_: 10_ only works once the schema is there, and the record order shows it.
    assert shown(first)["actions"] == [
        "apply schema schema.sql", "apply migration 2_create_orders.sql", "apply migration 10_add_email.sql"], \
        first.details
    assert psql(pg, "SELECT name FROM clockwork_schema_migrations ORDER BY applied_at, name") == \
        "schema.sql\n2_create_orders.sql\n10_add_email.sql"

    (migrations / "11_add_index.sql").write_text("CREATE INDEX users_name ON users (name);\n")
    new = playbook([db_task(stack, pg, migrations_dir="migrations", schema_file="schema.sql"), show()], workdir=wd)
    # A database that holds tables gets a snapshot before its files (issue 35: a rollback may restore it).
    assert shown(new)["actions"] == ["snapshot appdb before migration 11_add_index.sql",
                                     "apply migration 11_add_index.sql"], new.details

    # A failing migration: its first statement would succeed, the second is a syntax error.
    (migrations / "12_broken.sql").write_text("CREATE TABLE half_done (id int);\n\nCREATE TABLEX oops;\n")
    broken = playbook([db_task(stack, pg, migrations_dir="migrations", schema_file="schema.sql")], workdir=wd)
    assert broken.rc != 0, broken.output
    msg = broken.result("db")["msg"]
    assert "migration 12_broken.sql failed at line 3" in msg and "syntax error" in msg and "rolled back" in msg, \
        broken.details
    assert "Traceback" not in broken.output, broken.output
    assert psql(pg, "SELECT to_regclass('half_done') IS NULL") == "t"
    assert psql(pg, "SELECT count(*) FROM users") == "1"
    assert "12_broken.sql" not in psql(pg, "SELECT string_agg(name, ',') FROM clockwork_schema_migrations")
    os.unlink(str(migrations / "12_broken.sql"))

    # Editing an applied migration is drift: refused, naming the file.
    (migrations / "2_create_orders.sql").write_text("CREATE TABLE orders (id bigint);\n")
    drift = playbook([db_task(stack, pg, migrations_dir="migrations", schema_file="schema.sql")], workdir=wd)
    assert drift.rc != 0, drift.output
    assert "migration 2_create_orders.sql was applied with sha256" in drift.result("db")["msg"], drift.details

    # An edited schema file is refused too, unless asked to re-apply.
    (migrations / "2_create_orders.sql").write_text("CREATE TABLE orders (id int);\n")
    (workdir / "schema.sql").write_text("CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, name text);\n")
    refused = playbook([db_task(stack, pg, migrations_dir="migrations", schema_file="schema.sql")], workdir=wd)
    assert refused.rc != 0 and "schema schema.sql was applied" in refused.result("db")["msg"], refused.details
    reapplied = playbook([db_task(stack, pg, migrations_dir="migrations", schema_file="schema.sql",
                                  reapply_schema=True), show()], workdir=wd)
    assert reapplied.rc == 0 and shown(reapplied)["actions"] == [
        "snapshot appdb before schema schema.sql", "apply schema schema.sql"], reapplied.details


def test_creates_a_missing_database(stack, workdir):
    pg = stack + "-pg"
    start_postgres(pg, stack)
    run = playbook([db_task(stack, pg, database_name="reports", schema_file="schema.sql"), show()],
                   workdir=str(workdir))
    assert run.rc == 0, run.output
    assert shown(run)["actions"] == ["create database reports", "apply schema schema.sql"], run.details
    assert docker("exec", pg, "psql", "-U", "postgres", "-d", "reports", "-tAc", "SELECT count(*) FROM users") == "1"


def test_wrong_password_unreachable_and_bad_template_fail_cleanly(stack):
    pg = stack + "-pg"
    start_postgres(pg, stack)
    wrong = playbook([db_task(stack, pg, password="not-the-password", timeout=20)])
    assert wrong.rc != 0, wrong.output
    msg = wrong.result("db")["msg"]
    assert "password authentication failed" in msg and "after 1 attempt" in msg, wrong.details
    assert "Traceback" not in wrong.output, wrong.output

    unreachable = playbook([db_task(stack, pg, login_host="127.0.0.1", login_port=1, timeout=2)])
    assert unreachable.rc != 0, unreachable.output
    msg = unreachable.result("db")["msg"]
    assert "login to postgresql at 127.0.0.1:1" in msg and "(timeout 2s)" in msg and "refused" in msg, \
        unreachable.details

    bad = playbook([db_task(stack, pg, connection_string_template="postgresql://{user}@{hostname}/{database}")])
    assert bad.rc != 0, bad.output
    assert "unknown placeholder {hostname}" in bad.result("db")["msg"], bad.details


def test_redis_with_and_without_password(stack):
    plain, secured = stack + "-redis", stack + "-redis-auth"
    run = playbook([
        {"name": "plain", "clockwork.connections.container": {"name": plain, "image": REDIS_IMAGE, "stack": stack,
                                                             "networks": on_network(stack, plain)}},
        {"name": "secured", "clockwork.connections.container": {
            "name": secured, "image": REDIS_IMAGE, "stack": stack, "command": ["--requirepass", "r3dis-pw"],
            "networks": on_network(stack, secured)}},
        {"name": "r1", "register": "r1", "clockwork.connections.database_connection": {
            "from": stack + "-api", "to": plain, "engine": "redis", "stack": stack}},
        {"name": "r2", "register": "r2", "clockwork.connections.database_connection": {
            "from": stack + "-api", "to": secured, "engine": "redis", "password": "r3dis-pw",
            "env_var_name": "CACHE_URL", "stack": stack}},
        api_task(stack, "r1", "r2"),
        {"name": "verify", "clockwork.connections.verify": {
            "checks": "{{ r1.contribution.checks + r2.contribution.checks }}"}},
    ], verbose=True)
    assert run.rc == 0, run.output
    env = env_of(stack + "-api")
    assert env["REDIS_URL"] == "redis://%s:6379/0" % plain
    assert env["CACHE_URL"] == "redis://:r3dis-pw@%s:6379/0" % secured
    assert "r3dis-pw" not in run.output, run.output
    assert [c["ok"] for c in run.result("verify")["checks"]] == [True, True], run.details
    wrong = playbook([{"name": "r", "clockwork.connections.database_connection": {
        "from": "x", "to": secured, "engine": "redis", "password": "nope", "stack": stack}}])
    # The server's command says another password: a rotation that cannot be done here, said clearly.
    assert wrong.rc != 0 and "Traceback" not in wrong.output, wrong.output
    assert "requirepass" in wrong.result("r")["msg"] and secured in wrong.result("r")["msg"], wrong.details
    schema = playbook([{"name": "r", "clockwork.connections.database_connection": {
        "from": "x", "to": plain, "engine": "redis", "schema_file": "/etc/hostname", "stack": stack}}])
    assert schema.rc != 0 and "Redis has no schema" in schema.result("r")["msg"], schema.details


def test_a_server_that_does_not_answer_times_out(stack):
    pg = stack + "-pg"
    start_postgres(pg, stack)
    docker("pause", pg)   # the address answers nothing: connections hang until their time-out
    try:
        run = playbook([db_task(stack, pg, timeout=3)])
    finally:
        docker("unpause", pg)
    assert run.rc != 0, run.output
    msg = run.result("db")["msg"]
    assert "login to postgresql at" in msg and "(timeout 3s)" in msg, run.details
    assert "Traceback" not in run.output, run.output


# -- no user value in a shell; database safety ------------------------------------------

def holding(pg, sql):
    """Run `sql` in a session of its own that stays open (another run, another client)."""
    docker("exec", "-d", pg, "psql", "-U", "postgres", "-d", "appdb", "-c", sql)
    for _attempt in range(100):
        if psql(pg, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' "
                    "AND wait_event = 'PgSleep'") == "1":
            return
        time.sleep(0.1)
    raise AssertionError("the holding session did not start")


def release(pg):
    psql(pg, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' "
             "AND pid <> pg_backend_pid()")


def test_a_schema_file_named_like_a_command_is_only_a_name(stack, workdir):
    pg, api = stack + "-pg", stack + "-api"
    name = "x$(touch pwned-%s)'q\" `touch pwned-%s`.sql" % (stack, stack)
    (workdir / name).write_text((workdir / "schema.sql").read_text())
    start_postgres(pg, stack)
    run = playbook([db_task(stack, pg, schema_file=name), api_task(stack, "db"),
                    {"name": "verify", "clockwork.connections.verify": {"checks": "{{ db.contribution.checks }}"}}],
                   workdir=str(workdir))
    assert run.rc == 0, run.output
    report = run.result("verify")["checks"][0]
    assert report["ok"] is True and report["msg"].endswith("and schema %s is recorded" % name), as_text(report)
    assert psql(pg, "SELECT name FROM public.clockwork_schema_migrations") == name
    for container in (pg, api):
        assert docker("exec", container, "find", "/", "-xdev", "-name", "pwned-" + stack) == ""


PG_DUMP = """--
-- PostgreSQL database dump
--
SET statement_timeout = 0;
SET lock_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET default_table_access_method = heap;

CREATE TABLE public.users (
    id integer NOT NULL,
    name text NOT NULL
);

CREATE FUNCTION public.greeting(who text) RETURNS text
    LANGUAGE plpgsql
    AS $$
BEGIN
    RETURN 'hello; COMMIT ' || who;
END
$$;

INSERT INTO public.users (id, name) VALUES (1, 'ada; COMMIT;');
"""


def test_a_pg_dump_file_that_empties_search_path(stack, workdir):
    pg = stack + "-pg"
    (workdir / "schema.sql").write_text(PG_DUMP)
    # Unqualified, as migrations are written: it runs with the session the file found, not the dump's.
    (workdir / "migrations" / "2_email.sql").write_text("ALTER TABLE users ADD COLUMN email text;\n")
    start_postgres(pg, stack)
    tasks = [db_task(stack, pg, schema_file="schema.sql", migrations_dir="migrations"), api_task(stack, "db"),
             {"name": "verify", "clockwork.connections.verify": {"checks": "{{ db.contribution.checks }}"}}]
    run = playbook(tasks, workdir=str(workdir))
    assert run.rc == 0, run.output
    assert run.result("verify")["checks"][0]["ok"] is True, run.details
    assert psql(pg, "SELECT name, email IS NULL FROM users") == "ada; COMMIT;|t"
    assert psql(pg, "SELECT public.greeting('x')") == "hello; COMMIT x"
    assert psql(pg, "SELECT string_agg(kind || ' ' || name, ',' ORDER BY applied_at, name) "
                    "FROM public.clockwork_schema_migrations") == "schema schema.sql,migration 2_email.sql"
    again = playbook(tasks, workdir=str(workdir))
    assert again.rc == 0 and not again.changed, again.output


def test_a_file_that_ends_the_transaction_is_refused(stack, workdir):
    pg = stack + "-pg"
    (workdir / "schema.sql").write_text("CREATE TABLE users (id int);\n-- COMMIT; in a comment is fine\n"
                                        "INSERT INTO users VALUES (1);\ncommit;\nCREATE TABLE after_commit (id int);\n")
    start_postgres(pg, stack)
    run = playbook([db_task(stack, pg, schema_file="schema.sql")], workdir=str(workdir))
    assert run.rc != 0, run.output
    msg = run.result("db")["msg"]
    # Refused with the declaration's other problems, before any change.
    assert "nothing was changed" in msg and "schema_file: schema schema.sql line 4: COMMIT ends the transaction" in msg, msg
    assert "Traceback" not in run.output, run.output
    assert psql(pg, "SELECT to_regclass('users') IS NULL, to_regclass('after_commit') IS NULL") == "t|t"


def test_a_later_file_that_ends_the_transaction_stops_the_earlier_ones_too(stack, workdir):
    pg = stack + "-pg"
    migrations = workdir / "migrations"
    (migrations / "1_orders.sql").write_text("CREATE TABLE orders (id int);\n")
    (migrations / "2_block.sql").write_text("BEGIN;\nALTER TABLE orders ADD COLUMN total int;\nCOMMIT;\n")
    start_postgres(pg, stack)
    run = playbook([db_task(stack, pg, schema_file="schema.sql", migrations_dir="migrations")], workdir=str(workdir))
    assert run.rc != 0, run.output
    assert "migrations_dir: migration 2_block.sql line 1: BEGIN ends the transaction" in run.result("db")["msg"], \
        run.details
    assert psql(pg, "SELECT to_regclass('users') IS NULL, to_regclass('orders') IS NULL") == "t|t"


def test_lock_waits_are_bounded(stack, workdir):
    pg = stack + "-pg"
    start_postgres(pg, stack)
    _run = playbook([db_task(stack, pg, schema_file="schema.sql")], workdir=str(workdir))
    assert _run.rc == 0, _run.output
    (workdir / "migrations" / "2_email.sql").write_text("ALTER TABLE users ADD COLUMN email text;\n")

    # Another run holds clockwork's lock: this one gives up after its timeout, saying who holds it.
    holding(pg, "SELECT pg_advisory_lock(%d), pg_sleep(120)" % 0x636C6F636B)
    try:
        started = time.monotonic()
        run = playbook([db_task(stack, pg, schema_file="schema.sql", migrations_dir="migrations", timeout=3)],
                       workdir=str(workdir))
        took = time.monotonic() - started
    finally:
        release(pg)
    assert run.rc != 0, run.output
    msg = run.result("db")["msg"]
    assert "another run holds clockwork's schema lock on this database (server process" in msg, msg
    assert "psql" in msg and "timeout (3s); nothing was applied" in msg, run.details
    assert took < 20, took

    # A session holds a lock on the table the migration changes: lock_timeout bounds the wait.
    holding(pg, "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);")
    try:
        run = playbook([db_task(stack, pg, schema_file="schema.sql", migrations_dir="migrations", timeout=3)],
                       workdir=str(workdir))
    finally:
        release(pg)
    assert run.rc != 0, run.output
    msg = run.result("db")["msg"]
    # pg_dump's snapshot before the files meets the lock first, bounded by the same timeout.
    assert "waited longer than the connection's timeout (3s) for a lock another session holds" in msg, msg
    assert "nothing was applied" in msg, msg
    assert "Traceback" not in run.output, run.output
    assert psql(pg, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' "
                    "AND column_name = 'email'") == "0"
    _run = playbook([db_task(stack, pg, schema_file="schema.sql", migrations_dir="migrations")], workdir=str(workdir))
    assert _run.rc == 0, _run.output


def test_a_role_that_may_not_create_the_missing_database(stack):
    pg = stack + "-pg"
    start_postgres(pg, stack)
    psql(pg, "CREATE ROLE limited LOGIN PASSWORD 'limited-pw' NOCREATEDB")
    run = playbook([db_task(stack, pg, username="limited", password="limited-pw", database_name="nothere")])
    assert run.rc != 0, run.output
    msg = run.result("db")["msg"]
    assert "database nothere does not exist and role limited cannot create it: permission denied to create " \
           "database; create it, or let the connection log in as a role with CREATEDB" in msg, msg
    assert "Traceback" not in run.output, run.output
    # Check mode reports the database it would create, and changes nothing.
    check = playbook([db_task(stack, pg, username="limited", password="limited-pw", database_name="nothere"),
                      show()], check=True)
    assert check.rc == 0, check.output
    assert shown(check)["actions"] == ["create database nothere"], check.details


def test_a_wrong_user_and_a_wrong_password_each_get_their_message(stack):
    pg = stack + "-pg"
    start_postgres(pg, stack)
    user = playbook([db_task(stack, pg, username="nosuchuser")])
    assert user.rc != 0, user.output
    assert 'role "nosuchuser" does not exist on the server: check username' in user.result("db")["msg"], user.details
    password = playbook([db_task(stack, pg, password="not-the-password")])
    assert password.rc != 0, password.output
    assert 'wrong password for role "postgres"' in password.result("db")["msg"], password.details
    assert "not-the-password" not in user.output + password.output, user.output + password.output
