"""Snapshots before migrations on the real engine (issue 35 part 4): PostgreSQL's pg_dump -Fc in the server's
container, kept in the stack's volume, recorded in the result; the restore a rollback's restore_data calls
(database/restore.py restore_connection) puts schema and every row back exactly; MariaDB's through the same call;
Redis's RDB copy for each release of a stack, put back with the server stopped."""
import json

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import CONNECTION_ARGS, ConnectionContext
from ansible_collections.clockwork.connections.plugins.module_utils.database.connection_type import DATABASE_ARGS, TYPE
from ansible_collections.clockwork.connections.plugins.module_utils.database.restore import restore_connection
from ansible_collections.clockwork.connections.plugins.module_utils.database.snapshots import megabytes
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore
from ansible_collections.clockwork.connections.plugins.module_utils.stack import STACK_ARGUMENT_SPEC, run_stack
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, REDIS_IMAGE, as_text, docker, inspect, playbook
from test_mysql import MARIADB_IMAGE, ROOT_PASSWORD, deploy, mysql
from test_mysql_migrations_safety import dump
from test_database import PASSWORD, api_task, db_task, postgres_task, psql, workdir  # noqa: F401  (workdir: fixture)


@pytest.fixture
def mariadb_workdir(tmp_path):
    (tmp_path / "schema.sql").write_text("CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50));\n"
                                         "INSERT INTO users (name) VALUES ('ada');\n")
    (tmp_path / "migrations").mkdir()
    return tmp_path


V2 = "ALTER TABLE users ADD COLUMN email text;\nUPDATE users SET email = name || '@example.com';\n"


def dumped(pg):
    """The whole database as pg_dump writes it (plain SQL): schema and every row; without the random key of
    its \\restrict lines (pg_dump 15.14 on), different on every dump."""
    out = docker("exec", pg, "pg_dump", "-U", "postgres", "--no-password", "appdb")
    return "\n".join(line for line in out.splitlines() if not line.startswith(("\\restrict ", "\\unrestrict ")))


def in_volume(stack, *argv):
    """A program of the server's image over the stack's snapshot volume (read-only), labelled as the stack's."""
    return docker("run", "--rm", "--label", "io.clockwork.stack=" + stack, "-v",
                  stack + "-clockwork-snapshots:/snapshots:ro", "--entrypoint", argv[0], POSTGRES_IMAGE, *argv[1:])


def run(stack, pg, wd, check=False, diff=False):
    tasks = [db_task(stack, pg, schema_file="schema.sql", migrations_dir="migrations"), api_task(stack, "db"),
             {"name": "show", "debug": {"msg": {"actions": "{{ db.actions }}",
                                                "snapshot": "{{ db.snapshot | default(None) }}"}}}]
    done = playbook(tasks, check=check, diff=diff, workdir=wd)
    assert done.rc == 0, done.output
    return done, done.result("show")["msg"]


def connection(stack, pg):
    """The connection's parameters as a plan has them (what a rollback passes to restore_connection)."""
    params = dict((name, spec.get("default")) for name, spec in dict(CONNECTION_ARGS, **DATABASE_ARGS).items())
    params.update(from_resource=stack + "-api", to_resource=pg, stack=stack, username="postgres", password=PASSWORD,
                  database_name="appdb", timeout=20, label="database %s-api -> %s" % (stack, pg))
    return params


def test_a_migration_snapshots_the_database_and_the_restore_puts_back_every_row(stack, workdir):
    pg, wd = stack + "-pg", str(workdir)
    server = playbook([postgres_task(pg, stack)])
    assert server.rc == 0, server.output
    first, shown = run(stack, pg, wd)
    # The schema made the tables: there was nothing to keep before it.
    assert not any(a.startswith("snapshot") for a in shown["actions"]) and not shown["snapshot"], first.details
    assert inspect("volume", stack + "-clockwork-snapshots") is None
    psql(pg, "INSERT INTO users (name) VALUES ('grace'), ('linus')")
    before = dumped(pg)

    (workdir / "migrations" / "V2__email.sql").write_text(V2)
    checked, shown = run(stack, pg, wd, check=True, diff=True)
    assert checked.result("db")["changed"] is True, checked.details
    assert shown["actions"] == ["snapshot appdb before migration V2__email.sql", "apply migration V2__email.sql"], \
        checked.details
    assert "snapshot appdb before migration V2__email.sql, apply migration V2__email.sql" in checked.output, \
        checked.output
    assert inspect("volume", stack + "-clockwork-snapshots") is None, "check mode made the volume"
    assert dumped(pg) == before, "check mode changed the database"

    applied, shown = run(stack, pg, wd)
    assert applied.result("db")["changed"] is True, applied.details
    assert shown["actions"] == ["snapshot appdb before migration V2__email.sql", "apply migration V2__email.sql"], \
        applied.details
    snapshot = shown["snapshot"]
    assert set(snapshot) == {"name", "created", "size", "volume", "kind"}, applied.details
    assert (snapshot["kind"], snapshot["volume"]) == ("pg_dump", stack + "-clockwork-snapshots"), applied.details
    assert psql(pg, "SELECT email FROM users ORDER BY id") == "ada@example.com\ngrace@example.com\nlinus@example.com"
    # The dump is in the stack's volume, with its index; pg_restore reads its table of contents.
    volume = inspect("volume", stack + "-clockwork-snapshots")
    assert volume["Labels"]["io.clockwork.stack"] == stack
    files = in_volume(stack, "ls", "-l", "/snapshots").splitlines()
    assert any(line.endswith(" %s.dump" % snapshot["name"]) and " %d " % snapshot["size"] in line
               for line in files), "\n".join(files) + applied.details
    contents = in_volume(stack, "pg_restore", "-l", "/snapshots/%s.dump" % snapshot["name"])
    assert "TABLE DATA public users" in contents, contents
    index = json.loads(in_volume(stack, "cat", "/snapshots/index-%s.json" % pg))
    assert [(e["snapshot"], e["before"]) for e in index] == [(snapshot["name"], ["migration V2__email.sql"])], \
        json.dumps(index) + applied.details
    assert PASSWORD not in applied.output and PASSWORD not in json.dumps(index), applied.output

    again, shown = run(stack, pg, wd)
    assert not again.changed and shown["actions"] == [], again.details
    last, shown = run(stack, pg, wd, check=True)
    assert not last.changed and shown["actions"] == [], last.details

    # A row written after the snapshot; the restore would lose it, and says so. Check mode first: nothing changes.
    psql(pg, "INSERT INTO users (name, email) VALUES ('late', 'late@example.com')")
    after_v2 = dumped(pg)
    assert after_v2 != before
    would = restore_connection(dry_run_gateway(), stack, connection(stack, pg), snapshot)
    assert would.actions == ["restore snapshot %s of appdb, taken %s (%s): rows written to appdb after %s are lost" % (
        snapshot["name"], snapshot["created"], megabytes(snapshot["size"]), snapshot["created"])], would.actions
    assert would.extra["restore"]["lost"] == "rows written to appdb after %s are lost" % snapshot["created"], \
        json.dumps(would.extra)
    assert dumped(pg) == after_v2

    done = restore_connection(DockerGateway(), stack, connection(stack, pg), snapshot)
    assert done.changed and done.actions[0].startswith(
        "restore snapshot %s of appdb, taken %s before migration V2__email.sql" % (snapshot["name"], snapshot["created"])
    ), as_text(done.actions)
    assert done.actions[1] == "keep the state before the restore as snapshot %s" % \
        done.extra["snapshot_before_restore"], as_text(done.actions)
    assert dumped(pg) == before, "schema and rows are not as before V2"
    index = json.loads(in_volume(stack, "cat", "/snapshots/index-%s.json" % pg))
    assert [e["before"] for e in index] == [["migration V2__email.sql"], ["restore of %s" % snapshot["name"]]], \
        json.dumps(index) + as_text(done.actions)

    # A snapshot that is not there: refused before any change, naming the ones kept.
    try:
        restore_connection(DockerGateway(), stack, connection(stack, pg), {"name": "appdb-19700101T000000Z-000000"})
        raise AssertionError("a missing snapshot was restored")
    except ClockworkError as exc:
        assert "no snapshot appdb-19700101T000000Z-000000 of database appdb" in exc.msg and \
            snapshot["name"] in exc.msg, exc.msg + applied.details
    assert dumped(pg) == before


def test_mariadb_is_restored_through_the_same_call(stack, mariadb_workdir):
    """MariaDB's snapshot (the rehearsal's mysqldump) is recorded in the same shape, and restore_connection puts it
    back: schema and rows as mariadb-dump saw them before the migration."""
    wd = mariadb_workdir
    first = deploy(stack, wd)
    assert first.rc == 0, first.output
    mysql(stack, "INSERT INTO users (name) VALUES ('grace')")
    before = dump(stack)
    (wd / "migrations" / "20_backfill.sql").write_text(
        "ALTER TABLE users ADD COLUMN nick VARCHAR(50);\nUPDATE users SET nick = LEFT(name, 3);\n")
    applied = deploy(stack, wd)
    assert applied.rc == 0, applied.output
    index = json.loads(docker("run", "--rm", "--label", "io.clockwork.stack=" + stack, "-v",
                              stack + "-clockwork-snapshots:/snapshots:ro", "--entrypoint", "cat",
                              MARIADB_IMAGE, "/snapshots/index-%s-db.json" % stack))
    entry, = index
    assert (entry["kind"], entry["before"]) == ("mysqldump", ["migration 20_backfill.sql"]) and entry["size"] > 0, index
    assert dump(stack) != before
    params = dict((name, spec.get("default")) for name, spec in dict(CONNECTION_ARGS, **DATABASE_ARGS).items())
    params.update(from_resource=stack + "-app", to_resource=stack + "-db", stack=stack, engine="mariadb",
                  password=ROOT_PASSWORD, database_name="shop", timeout=60)
    record = {"name": entry["snapshot"], "created": entry["created"], "size": entry["size"], "kind": "mysqldump",
              "volume": stack + "-clockwork-snapshots"}
    would = restore_connection(dry_run_gateway(), stack, params, record)
    assert would.actions[0].endswith("rows written to shop after %s are lost" % entry["created"]), would.actions
    assert dump(stack) != before
    done = restore_connection(DockerGateway(), stack, params, record)
    assert done.actions[0].startswith("restore snapshot %s of shop, taken %s before migration 20_backfill.sql" % (
        entry["snapshot"], entry["created"])), done.actions
    assert dump(stack) == before
    assert ROOT_PASSWORD not in json.dumps(done.actions)


def redis_stack(stack, api_env):
    # Names of the stack's own: container names are the engine's, shared with other tests.
    cache, api = stack + "-cache", stack + "-api"
    resources = [{"name": cache, "image": REDIS_IMAGE, "command": ["redis-server", "--requirepass", PASSWORD]},
                 {"name": api, "image": NGINX_IMAGE, "env": api_env}]
    connections = [{"type": "database", "from": api, "to": cache, "engine": "redis", "password": PASSWORD,
                    "snapshot": True, "snapshot_keep": 1, "timeout": 30}]   # 1: releases keep theirs
    validated = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(dict(name=stack, resources=resources,
                                                                         connections=connections))
    assert not validated.error_messages, validated.error_messages
    return validated.validated_parameters


def redis_cli(stack, *args):
    return docker("exec", "-e", "REDISCLI_AUTH=" + PASSWORD, stack + "-cache", "redis-cli", "--no-auth-warning", *args)


def copies(stack):
    return json.loads(docker("run", "--rm", "--label", "io.clockwork.stack=" + stack, "-v",
                             stack + "-clockwork-snapshots:/snapshots:ro", "--entrypoint", "sh", REDIS_IMAGE, "-c",
                             "cat /snapshots/index-*.json"))


def test_redis_keeps_an_rdb_copy_for_each_release_and_the_restore_puts_it_back(stack):
    first = run_stack(DockerGateway(), redis_stack(stack, {"MODE": "one"}))
    assert first["changed"] and len(copies(stack)) == 1, as_text(first)
    redis_cli(stack, "SET", "greeting", "from release 2")
    check = run_stack(dry_run_gateway(), redis_stack(stack, {"MODE": "two"}))
    assert check["changed"] and len(copies(stack)) == 1, "check mode kept a copy: " + as_text(check)
    second = run_stack(DockerGateway(), redis_stack(stack, {"MODE": "two"}))
    assert second["changed"], as_text(second)
    kept = copies(stack)
    # snapshot_keep is 1, but release 1 (kept) records the first copy: it stays.
    assert len(kept) == 2 and kept[-1]["kind"] == "rdb" and kept[-1]["size"] > 0, kept
    release = ReleaseStore(DockerGateway(), stack).release(second["release"]["number"])
    snapshot, = release["databases"]["database %s-api -> %s-cache" % (stack, stack)]["snapshots"]
    assert (snapshot["name"], snapshot["kind"]) == (kept[-1]["snapshot"], "rdb"), as_text(release["databases"])
    again = run_stack(DockerGateway(), redis_stack(stack, {"MODE": "two"}))
    last = run_stack(dry_run_gateway(), redis_stack(stack, {"MODE": "two"}))
    assert not again["changed"] and not last["changed"] and len(copies(stack)) == 2, as_text(again) + as_text(last)

    redis_cli(stack, "SET", "greeting", "written later")
    redis_cli(stack, "SET", "other", "written later")
    connection = dict((name, spec.get("default")) for name, spec in dict(CONNECTION_ARGS, **DATABASE_ARGS).items())
    connection.update(from_resource=stack + "-api", to_resource=stack + "-cache", stack=stack, engine="redis", password=PASSWORD,
                      timeout=30)
    would = restore_connection(dry_run_gateway(), stack, connection, snapshot)
    assert would.actions[0].startswith("restore snapshot %s of %s-cache, taken %s" % (
        snapshot["name"], stack, snapshot["created"])), would.actions
    assert redis_cli(stack, "GET", "greeting") == "written later"
    done = restore_connection(DockerGateway(), stack, connection, snapshot)
    assert done.actions[-1].startswith("restart %s-cache with the copy as its /data/" % stack), done.actions
    assert redis_cli(stack, "GET", "greeting") == "from release 2" and redis_cli(stack, "EXISTS", "other") == "0"
    assert PASSWORD not in json.dumps(done.actions), as_text(done.actions)


def test_a_role_that_owns_less_than_the_database_holds_is_snapshotted_and_restored_as_the_servers_own(stack):
    """The connection's role may not read a table of the administrator's: pg_dump runs as the server's own role
    (POSTGRES_PASSWORD of its env), and so does the restore, which gives the database back to its owner."""
    pg = stack + "-pg"
    server = playbook([postgres_task(pg, stack), api_task(stack)])
    assert server.rc == 0, server.output
    psql(pg, "CREATE ROLE app LOGIN PASSWORD 'app-pw'; ALTER DATABASE appdb OWNER TO app")
    psql(pg, "CREATE TABLE admin_only (id int); INSERT INTO admin_only VALUES (42)")
    docker("exec", pg, "psql", "-U", "app", "-d", "appdb", "-c", "CREATE TABLE users (id int); INSERT INTO users "
           "VALUES (1), (2)")
    params = connection(stack, pg)
    v1 = {"name": "V1.sql", "content": "CREATE TABLE notes (id int);"}
    v2 = {"name": "V2.sql", "content": "ALTER TABLE users ADD COLUMN x int; UPDATE users SET x = 7;"}
    params.update(username="app", password="app-pw", migrations_dir="/nowhere", migrations=[v1])
    assert TYPE.run(ConnectionContext(DockerGateway(), stack), params).extra["snapshot"]
    before = dumped(pg)
    params["migrations"] = [v1, v2]
    applied = TYPE.run(ConnectionContext(DockerGateway(), stack), params)
    assert applied.actions == ["snapshot appdb before migration V2.sql", "apply migration V2.sql"]
    psql(pg, "INSERT INTO admin_only VALUES (43)")
    done = restore_connection(DockerGateway(), stack, params, applied.extra["snapshot"])
    assert done.changed and dumped(pg) == before
    assert psql(pg, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'appdb'") == "app"
