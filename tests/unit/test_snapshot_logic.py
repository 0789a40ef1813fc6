"""Snapshots before migrations (issue 35 part 4) on the memory gateway: PostgreSQL's pg_dump in the
server's container, kept in the stack's volume with its index, bounded by snapshot_max_mb, recorded
for the release, and kept while a kept release records it; check mode only says it would; the
restore's words and refusals."""
import io
import json
import posixpath
import tarfile

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import (
    ConnectionContext, ConnectionResult)
from ansible_collections.clockwork.connections.plugins.module_utils.database import dry_run, snapshots
from ansible_collections.clockwork.connections.plugins.module_utils.database.engine_postgresql import PostgresTarget
from ansible_collections.clockwork.connections.plugins.module_utils.database.postgresql_snapshots import (
    HOLDINGS, SETTINGS, conninfo)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import MemoryEngine, memory_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Nothing of a test in the real home (host files go under the stack's home)."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


PASSWORD = "s3cret-pw"  # pragma: allowlist secret
PENDING = [("migration", "V2__email.sql", None, "ALTER TABLE users ADD COLUMN email text;", "c2")]
DUMP = b"PGDMP fake custom-format dump"


class Rows(object):
    def __init__(self, row):
        self.row = row

    def fetchone(self):
        return self.row


class ScriptedPostgres(PostgresTarget):
    """A PostgreSQL target whose queries are scripted: the engine's own prepare, keep_snapshot,
    snapshots and restore run on it as on a server."""

    def __init__(self, tables=2, size=4096, keep=3, max_mb=1):
        self.settings = {"database": "appdb", "user": "app", "password": PASSWORD, "port": 5432,
                         "snapshot_keep": keep, "snapshot_max_mb": max_mb}
        self.server, self.conn, self.locked = "db", object(), False
        self.where = "postgresql at db:5432 as app (database appdb)"
        self.migration_timeout, self.timeout = 600, 3
        self.holdings = (tables, size)
        self.queries = []

    def _sql(self, doing, query, params=None, conn=None):
        self.queries.append(query)
        if query == HOLDINGS:
            return Rows(self.holdings)
        assert query == SETTINGS, query
        return Rows(("app", "UTF8", "en_US.utf8", "en_US.utf8"))


class StreamingEngine(MemoryEngine):
    """The memory engine taking a tar stream into a container as the live engine does: get_archive's
    iterator of chunks, passed on to put_archive without reading a snapshot into memory whole."""

    def _untar(self, attrs, path, data):
        if not isinstance(data, (bytes, bytearray)) and not hasattr(data, "read"):
            data = b"".join(data)
        return MemoryEngine._untar(self, attrs, path, data)


def server(dump=DUMP, code=0, out=""):
    """A memory engine where the stack's PostgreSQL server `db` runs; its pg_dump writes `dump`."""
    live = DockerGateway(api=StreamingEngine())
    live.api.add_image("postgres:15")
    live.create_container("db", "postgres:15", environment=["POSTGRES_PASSWORD=admin-pw"],
                          labels={"io.clockwork.stack": "shop", "io.clockwork.resource": "db"})
    live.start("db")

    def execs(container, argv, env):
        if argv[0] == "pg_dump" and code == 0:
            path = [a for a in argv if a.startswith("--file=")][0][len("--file="):]
            live.api.put_archive(container, posixpath.dirname(path), tar_of(posixpath.basename(path), dump))
        return (code, out) if argv[0] == "pg_dump" else (0, "")
    live.api.execs = execs
    return live


def tar_of(name, data):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def execs(live):
    """(container, argv, env) of the execs run, each argv as the program (without the `timeout N` around it)."""
    return [(c, a[2:] if a[0] == "timeout" else a, e or {}) for c, a, e in live.api.exec_log]


def volume_files(live):
    return live.api._volume_files.get("shop-clockwork-snapshots", {})  # pylint: disable=protected-access


def result():
    return ConnectionResult("database", "api", "db")


def test_a_database_that_holds_tables_is_dumped_inside_its_server_and_kept_in_the_stacks_volume():
    live, target, done = server(), ScriptedPostgres(), result()
    name = target.prepare(PENDING, ConnectionContext(live, "shop"), done)
    assert done.actions == ["snapshot appdb before migration V2__email.sql"]
    snapshot = done.extra["snapshot"]
    assert snapshot["name"] == name and name.startswith("appdb-")
    assert (snapshot["kind"], snapshot["volume"], snapshot["size"]) == ("pg_dump", "shop-clockwork-snapshots", len(DUMP))
    assert set(snapshot) == {"name", "created", "size", "volume", "kind"}
    # The dump ran in the server's container, an argv list, the login in its env, not its command line.
    (container, argv, env), = [e for e in execs(live) if e[1][0] == "pg_dump"]
    assert container == "db"
    assert argv == ["pg_dump", "-w", "-Fc", "--lock-wait-timeout=3s", "--file=/tmp/%s.dump" % name]
    assert env == {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "app", "PGDATABASE": "appdb",
                   "PGCONNECT_TIMEOUT": "5", "PGPASSWORD": PASSWORD}
    assert ("db", ["rm", "-f", "--", "/tmp/%s.dump" % name], {}) in execs(live)
    # The stack owns the volume; the dump and the index are in it; the helper containers are gone.
    volume = live.volume("shop-clockwork-snapshots")
    assert volume["Labels"]["io.clockwork.stack"] == "shop"
    files = volume_files(live)
    assert files["/%s.dump" % name] == DUMP
    index = json.loads(files["/index-db.json"].decode())
    assert [(e["snapshot"], e["kind"], e["before"], e["size"], e["owner"]) for e in index] == [
        (name, "pg_dump", ["migration V2__email.sql"], len(DUMP), "app")]
    assert PASSWORD not in json.dumps(index)
    assert [c["Names"] for c in live.containers(all=True)] == [["/db"]], "the helper containers are gone"


def test_the_last_snapshot_keep_are_kept():
    live = server()
    names = []
    for _run in range(4):
        done = result()
        names.append(ScriptedPostgres(keep=2).prepare(PENDING, ConnectionContext(live, "shop"), done))
    index = json.loads(volume_files(live)["/index-db.json"].decode())
    assert [e["snapshot"] for e in index] == names[-2:]
    removers = [c.kwargs.get("entrypoint") for c in live.api.calls if c.method == "create_container"
                and (c.kwargs.get("entrypoint") or [""])[0] == "rm"]
    assert removers == [["rm", "-f", "--", "/snapshots/%s.dump" % names[0]],
                        ["rm", "-f", "--", "/snapshots/%s.dump" % names[1]]]


def a_release(*snapshot_names):
    """A release of stack shop that records these snapshots of database appdb (releases/schema.py)."""
    return {"time": "2026-12-06T21:00:00Z", "controller": "me@laptop", "plan_digest": "a" * 64, "target": "docker",
            "containers": {}, "services": {}, "checks": [],
            "databases": {"database api -> db": {
                "to": "db", "engine": "postgresql", "database": "appdb", "migrations": [], "migrations_from": "plan",
                "snapshots": [{"name": name, "volume": "shop-clockwork-snapshots", "kind": "pg_dump"}
                              for name in snapshot_names]}}}


def removed(live):
    """The files the helper containers that remove old snapshots were made to remove, in order."""
    return [path for c in live.api.calls if c.method == "create_container"
            and (c.kwargs.get("entrypoint") or [""])[0] == "rm" for path in c.kwargs["entrypoint"][3:]]


def kept_names(live):
    return [e["snapshot"] for e in json.loads(volume_files(live)["/index-db.json"].decode())]


def test_a_snapshot_a_kept_release_records_outlives_snapshot_keep_and_goes_once_its_release_is_pruned():
    live, names = server(), []
    releases = ReleaseStore(live, "shop")
    for run in range(5):   # each run: a snapshot before its migration, then its release (the last 3 kept)
        names.append(ScriptedPostgres(keep=2).prepare(PENDING, ConnectionContext(live, "shop"), result()))
        if run == 3:
            # Releases 1-3 record snapshots 1-3: none is pruned though snapshot_keep is 2.
            assert kept_names(live) == names
        releases.add(a_release(names[-1]), kept=3)
    # Release 1 was pruned by release 4: its snapshot went at the next prune; 2 and 3 stay with their releases.
    assert [r["number"] for r in releases.releases()[0]] == [3, 4, 5]
    assert kept_names(live) == names[1:]
    assert removed(live) == ["/snapshots/%s.dump" % names[0]]
    # With releases 2 gone too, the usual rule: the newest 2 and what releases 3-5 record.
    names.append(ScriptedPostgres(keep=2).prepare(PENDING, ConnectionContext(live, "shop"), result()))
    releases.add(a_release(names[-1]), kept=3)
    assert kept_names(live) == names[2:]
    names.append(ScriptedPostgres(keep=2).prepare(PENDING, ConnectionContext(live, "shop"), result()))
    assert kept_names(live) == names[3:], "release 3 pruned by release 6: its snapshot goes"
    assert removed(live) == ["/snapshots/%s.dump" % name for name in names[:3]]


def test_a_snapshot_no_release_records_is_pruned_as_before_and_unreadable_releases_prune_nothing():
    live, names = server(), []
    ReleaseStore(live, "other").add(a_release("appdb-of-another-stack"))
    ReleaseStore(live, "shop").add(a_release("appdb-in-another-volume"))
    for _run in range(3):   # the single module's snapshots (no release records them): the newest 1
        names.append(ScriptedPostgres(keep=1).prepare(PENDING, ConnectionContext(live, "shop"), result()))
    assert kept_names(live) == names[-1:]
    assert removed(live) == ["/snapshots/%s.dump" % name for name in names[:2]]
    # A release record that cannot be read: keeping one too many costs a file, pruning a needed one a rollback.
    ReleaseStore(live, "shop").shelf.write(1, b"{torn")
    names.append(ScriptedPostgres(keep=1).prepare(PENDING, ConnectionContext(live, "shop"), result()))
    assert kept_names(live) == names[-2:] and len(removed(live)) == 2


def test_kept_and_pruned_spares_what_releases_record():
    index = [{"snapshot": "s%d" % n, "database": "appdb", "created": "t%d" % n} for n in range(1, 5)]
    index.append({"snapshot": "o1", "database": "other", "created": "t0"})
    kept, pruned = snapshots.kept_and_pruned(index, "db", "appdb", 1, frozenset(["s2"]))
    assert pruned == ["s1", "s3"] and [e["snapshot"] for e in kept] == ["o1", "s2", "s4"]
    assert snapshots.kept_and_pruned(index, "db", "appdb", 1, None)[1] == [], "releases unknown: nothing pruned"
    assert snapshots.recorded_by_releases(dry_run_gateway(live=MemoryEngine()), "shop", "v") is None, \
        "check mode prunes nothing"


def test_nothing_to_keep_and_too_large_are_said_and_dump_nothing():
    live = server()
    empty, done = ScriptedPostgres(tables=0), result()
    assert empty.prepare(PENDING, ConnectionContext(live, "shop"), done) is None and done.actions == []
    large, done = ScriptedPostgres(size=3 * 1024 * 1024, max_mb=2), result()
    assert large.prepare(PENDING, ConnectionContext(live, "shop"), done) is None
    warning = "no snapshot of appdb before migration V2__email.sql: it holds 3 MB, over snapshot_max_mb (2)"
    assert done.actions == [warning] and done.extra["warnings"] == ["database api -> db: " + warning]
    assert "snapshot" not in done.extra
    assert live.api.exec_log == [] and live.volume("shop-clockwork-snapshots") is None


def test_a_failing_dump_stops_the_run_before_any_file_with_the_password_masked():
    live = server(code=1, out="pg_dump: error: connection failed: password %s rejected" % PASSWORD)
    with pytest.raises(ClockworkError) as raised:
        ScriptedPostgres().prepare(PENDING, ConnectionContext(live, "shop"), result())
    assert "the snapshot of appdb (pg_dump) failed inside db" in raised.value.msg
    assert "nothing was applied" in raised.value.msg and PASSWORD not in raised.value.msg


@pytest.mark.parametrize("cause", ["lock timeout", "statement timeout"])
def test_a_table_another_session_holds_fails_the_dump_within_the_connections_timeout(cause):
    live = server(code=1, out="pg_dump: error: query failed: ERROR:  canceling statement due to %s\n"
                              "pg_dump: detail: Query was: LOCK TABLE public.users IN ACCESS SHARE MODE" % cause)
    with pytest.raises(ClockworkError) as raised:
        ScriptedPostgres().prepare(PENDING, ConnectionContext(live, "shop"), result())
    assert raised.value.msg == (
        "the snapshot of appdb (pg_dump) waited longer than the connection's timeout (3s) for a lock another session "
        "holds (LOCK TABLE public.users IN ACCESS SHARE MODE); nothing was applied. Run again once that session has "
        "finished, or raise timeout.")


def test_a_role_that_may_not_read_everything_is_dumped_as_the_servers_own():
    live = server(code=1, out="pg_dump: error: query failed: ERROR:  permission denied for table secrets")
    with pytest.raises(ClockworkError) as raised:
        ScriptedPostgres().prepare(PENDING, ConnectionContext(live, "shop"), result())
    assert "as role postgres" in raised.value.msg, raised.value.msg
    dumps = [env for _c, argv, env in execs(live) if argv[0] == "pg_dump"]
    assert [(e["PGUSER"], e["PGPASSWORD"]) for e in dumps] == [("app", PASSWORD), ("postgres", "admin-pw")]


def test_check_mode_says_it_would_snapshot_and_writes_nothing():
    live, recorded = server(), []
    target, done = dry_run.DryRunTarget(ScriptedPostgres(), recorded), result()
    assert target.prepare(PENDING, ConnectionContext(live, "shop"), done) is None
    assert done.actions == ["snapshot appdb before migration V2__email.sql"] and "snapshot" not in done.extra
    assert recorded == ["snapshot appdb before migration V2__email.sql"]
    assert live.api.exec_log == [] and live.volume("shop-clockwork-snapshots") is None


def test_a_restore_names_the_snapshot_its_time_size_and_what_is_lost():
    live = server()
    kept = ScriptedPostgres()
    kept.prepare(PENDING, ConnectionContext(live, "shop"), result())
    recorded, done = [], result()
    done.extra["restore"] = {"created": "2026-12-06 20:55:00 UTC", "size": 3 * 1024 * 1024}
    dry_run.DryRunTarget(ScriptedPostgres(), recorded).restore(ConnectionContext(live, "shop"), done, "appdb-x")
    assert done.actions == ["restore snapshot appdb-x of appdb, taken 2026-12-06 20:55:00 UTC (3.0 MB): rows written "
                            "to appdb after 2026-12-06 20:55:00 UTC are lost"]
    # A snapshot the volume does not hold, or another engine's: refused before any change, naming those kept.
    index = json.loads(volume_files(live)["/index-db.json"].decode())
    with pytest.raises(ClockworkError) as raised:
        ScriptedPostgres().restore(ConnectionContext(live, "shop"), result(), "appdb-missing")
    assert "no snapshot appdb-missing of database appdb in volume shop-clockwork-snapshots (kept: %s); nothing was " \
        "changed" % index[0]["snapshot"] in raised.value.msg
    with pytest.raises(ClockworkError):
        snapshots.entry_of([dict(index[0], kind="mysqldump")], index[0]["snapshot"], "appdb", "pg_dump", "x", "v")


def test_words_and_records():
    assert snapshots.megabytes(3 * 1024 * 1024) == "3.0 MB" and snapshots.megabytes(2048) == "2 kB"
    assert snapshots.file_of({"snapshot": "a"}) == "a.sql", "an earlier version's entry is MySQL's"
    assert snapshots.file_of({"snapshot": "a", "kind": "pg_dump"}) == "a.dump"
    assert snapshots.record({"snapshot": "a", "created": "t", "size": 3}, "v") == {
        "name": "a", "created": "t", "size": 3, "volume": "v", "kind": "mysqldump"}
    assert conninfo("it's\\") == "dbname='it\\'s\\\\'"


# -- issue 34's leftover: the check of a client that reads its password from a compose secret's path --------

def test_the_check_reads_the_password_from_the_secret_file_a_client_variable_names():
    from ansible_collections.clockwork.connections.plugins.module_utils.database.connection_type import (
        check_database, client_url)
    from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES
    parts = {"DATABASE_USER": "{user}", "DATABASE_HOST": "{host}", "DATABASE_DB": "{database}"}
    check = {"container": "db", "parts": parts, "user": "root", "database": "example", "port": 3306,
             "engine": "mysql", "env_from": "backend", "schema": []}
    env = {"DATABASE_USER": "root", "DATABASE_HOST": "db", "DATABASE_DB": "example",
           "DATABASE_PASSWORD": "/run/secrets/db-password"}
    read = {"/run/secrets/db-password": PASSWORD}.get
    url, given_by = client_url(check, ENGINES["mysql"], env, read)
    assert url == "mysql://root:%s@db:3306/example" % PASSWORD
    assert given_by == "DATABASE_DB, DATABASE_HOST, DATABASE_USER, DATABASE_PASSWORD"
    with pytest.raises(ClockworkError):
        client_url(check, ENGINES["mysql"], env, lambda path: None)

    # On the engine: the file read inside the client; a password nothing gives fails the check, not the run.
    live = memory_gateway()
    live.api.add_image("mariadb:10.11")
    for name, environment in (("db", []), ("backend", ["%s=%s" % item for item in sorted(env.items())])):
        live.create_container(name, "mariadb:10.11", environment=environment, labels={"io.clockwork.stack": "shop"})
        live.start(name)
    answers = {"cat": (0, PASSWORD + "\n"), "mysql": (0, "1")}
    live.api.execs = lambda container, argv, env: answers[argv[0]] if argv[0] in answers else (0, "")
    ok, said = check_database(live, check)
    assert ok and said == "DATABASE_DB, DATABASE_HOST, DATABASE_USER, DATABASE_PASSWORD of backend logs in", said
    probes = [(c, a, e) for c, a, e in execs(live) if a[0] == "mysql"]
    assert probes and all(PASSWORD not in " ".join(a) for _c, a, _e in probes)
    assert ("backend", ["cat", "--", "/run/secrets/db-password"], {}) in execs(live)
    answers["cat"] = (1, "cat: /run/secrets/db-password: No such file or directory")
    ok, said = check_database(live, check)
    assert not ok and said.startswith("backend cannot log in: connection_string_template uses {password}"), said


# -- Redis: an RDB copy for each release with `snapshot: true` ---------------------------------------------

def redis_server():
    live = DockerGateway(api=StreamingEngine())
    live.api.add_image("redis:7")
    live.create_container("cache", "redis:7", labels={"io.clockwork.stack": "shop", "io.clockwork.resource": "cache"})
    live.start("cache")
    config = {"appendonly": "no", "dir": "/data", "dbfilename": "dump.rdb"}

    def execs(container, argv, env):
        if argv[0] == "redis-cli" and "--rdb" in argv:
            path = argv[argv.index("--rdb") + 1]
            live.api.put_archive(container, posixpath.dirname(path), tar_of(posixpath.basename(path), b"REDIS0011"))
        if argv[0] == "redis-cli" and argv[-3:-1] == ["CONFIG", "GET"]:
            return 0, "%s\n%s" % (argv[-1], config[argv[-1]])
        if argv[0] == "redis-cli" and argv[-1] == "ping":
            return 0, "PONG"
        return 0, ""
    live.api.execs = execs
    return live, config


def redis_settings():
    return {"port": 6379, "user": None, "password": PASSWORD, "snapshot_keep": 3, "snapshot_max_mb": 1,
            "migration_timeout": 60}


def test_redis_keeps_a_copy_only_on_a_real_run_in_a_stack_and_as_no_action():
    from ansible_collections.clockwork.connections.plugins.module_utils.database import redis_snapshots
    live, _config = redis_server()
    params = {"snapshot": True, "to_resource": "cache"}
    for ctx in (ConnectionContext(live, "shop"), ConnectionContext(dry_run_gateway(live=live.api), "shop", {"x": 1})):
        done = result()
        redis_snapshots.after_login(ctx, params, done, redis_settings())
        assert "snapshot" not in done.extra and live.api.exec_log == []
    done = result()
    redis_snapshots.after_login(ConnectionContext(live, "shop", {"cache": object()}), params, done, redis_settings())
    assert done.actions == [] and not done.changed, "a copy is no change of the run: a rerun stays unchanged"
    assert done.extra["snapshot"]["kind"] == "rdb" and done.extra["snapshot"]["size"] == len(b"REDIS0011")
    (container, argv, env), = [e for e in execs(live) if "--rdb" in e[1]]
    assert argv[:2] == ["redis-cli", "--no-auth-warning"] and PASSWORD not in argv
    assert env == {"REDISCLI_AUTH": PASSWORD}


def test_a_redis_restore_replaces_the_rdb_file_of_the_stopped_server_and_refuses_an_append_only_one():
    from ansible_collections.clockwork.connections.plugins.module_utils.database import redis_snapshots
    live, config = redis_server()
    ctx = ConnectionContext(live, "shop", {"cache": object()})
    first = result()
    redis_snapshots.after_login(ctx, {"snapshot": True, "to_resource": "cache"}, first, redis_settings())
    name = first.extra["snapshot"]["name"]
    config["appendonly"] = "yes"
    with pytest.raises(ClockworkError) as raised:
        redis_snapshots.restore(ctx, result(), redis_settings(), "cache", name, 5)
    assert "writes an append-only file" in raised.value.msg and "nothing was changed" in raised.value.msg
    config["appendonly"] = "no"
    done = result()
    redis_snapshots.restore(ctx, done, redis_settings(), "cache", name, 5)
    assert done.actions[-1] == "restart cache with the copy as its /data/dump.rdb"
    calls = [c.method for c in live.api.calls]
    assert calls.index("stop") < calls.index("start", calls.index("stop")), "stopped before, started after"
    assert live.api._meta[live.container("cache")["Id"]]["files"]["/data/dump.rdb"] == b"REDIS0011"  # pylint: disable=protected-access


def test_snapshot_is_for_redis():
    from ansible_collections.clockwork.connections.plugins.module_utils.database.connection_type import validate
    problems = validate({"engine": "postgresql", "snapshot": True, "from_resource": "api", "to_resource": "db"})
    assert ("snapshot", "is for Redis (an RDB copy for each release); PostgreSQL keeps a snapshot before its files "
                        "by itself") in problems


def test_the_snapshot_a_restore_puts_back_outlives_the_copy_kept_before_it():
    """A failed restore says to run it again: the state kept before it may not prune the snapshot it restores."""
    from ansible_collections.clockwork.connections.plugins.module_utils.database import redis_snapshots
    live, _config = redis_server()
    ctx, settings = ConnectionContext(live, "shop", {"cache": object()}), dict(redis_settings(), snapshot_keep=1)
    first = result()
    redis_snapshots.after_login(ctx, {"snapshot": True, "to_resource": "cache"}, first, settings)
    name = first.extra["snapshot"]["name"]
    done = result()
    redis_snapshots.restore(ctx, done, settings, "cache", name, 5)
    index = json.loads(volume_files(live)["/index-cache.json"].decode())
    assert [e["snapshot"] for e in index] == [name, done.extra["snapshot_before_restore"]]
    assert removed(live) == []
