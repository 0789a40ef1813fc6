"""restore_data on a rollback, on the memory gateway (issue 35 part 3): the clients of each database
stopped first, each database restored from the snapshot the next deploy took before its migrations
(database/restore.py restore_connection, Helper S's: replaced here by a recorder, its own tests are
tests/unit/test_snapshot*.py), then the release's containers started; refused before any change
when no later deploy is kept or the declaration does not give the database's login."""
import json

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionResult
from ansible_collections.clockwork.connections.plugins.module_utils.database import restore, snapshots
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore

import memory_stacks as ms
from memory_stacks import home, instant_waits  # noqa: F401  (fixtures, autouse)
from memory_stacks import STACK, container, run, showcase

LABEL = "database api -> postgres"
KEPT = ["appdb-20261206T205500Z-ab12cd"]
SNAPSHOT = {"name": "appdb-20261206T205500Z-ab12cd", "created": "2026-12-06T20:55:00Z", "size": 4096,
            "kind": "pg_dump"}


@pytest.fixture
def base(tmp_path):
    directory = tmp_path / "base"
    directory.mkdir()
    return directory


@pytest.fixture
def database(monkeypatch):
    return ms.ScriptedDatabase().install(monkeypatch)


@pytest.fixture
def restored(monkeypatch):
    """Each restore_connection call: (the api's state then, the connection's label, the snapshot's name)."""
    calls = []

    def fake(gateway, stack, connection, snapshot):
        api = gateway.container("api")
        calls.append((api["State"]["Status"], connection["label"], snapshot["name"], gateway.dry_run))
        result = ConnectionResult("database", "api", "postgres")
        result.act("restore snapshot %s of appdb, taken %s: rows written to appdb after %s are lost"
                   % (snapshot["name"], snapshot["created"], snapshot["created"]))
        result.extra["restore"] = {"snapshot": snapshot["name"], "created": snapshot["created"],
                                   "lost": "rows written to appdb after %s are lost" % snapshot["created"]}
        return result
    monkeypatch.setattr(restore, "restore_connection", fake)
    # The server's snapshot volume keeps it (read through a helper container on a real engine).
    monkeypatch.setattr(snapshots.SnapshotStore, "index", lambda self: [{"snapshot": name} for name in KEPT])
    return calls


def two_releases(base, snapshot=True):
    """Release 1, release 2 (a new frontend env) whose deploy took a snapshot of appdb."""
    engine = ms.new_engine()
    run(engine, ms.params(base, *showcase()))
    run(engine, ms.params(base, *showcase(frontend={"env": {"MODE": "two"}})))
    store = ReleaseStore(ms.RecordingGateway(engine), STACK)
    release = store.release(2)
    assert LABEL in release["databases"], release["databases"]
    if snapshot:
        release["databases"][LABEL]["snapshots"] = [SNAPSHOT]
        store.shelf.write(2, json.dumps(release).encode())
    return engine


def test_restore_data_stops_the_clients_restores_then_starts_the_release(base, database, restored):
    engine = two_releases(base)
    report, _ = run(engine, ms.params(base, *showcase(), state="rolled_back", release="1", restore_data=True))

    assert restored == [("exited", "connection " + LABEL, SNAPSHOT["name"], False)], "api stopped first"
    assert [(e["kind"], e["name"], e["actions"][0].split(" of ")[0]) for e in report["entries"] if e["changed"]] == [
        ("container", "api", "stop"), ("database", LABEL, "restore snapshot " + SNAPSHOT["name"]),
        ("container", "frontend", "replace start-first"), ("container", "api", "start")]
    actions = [e["actions"] for e in report["entries"] if e["kind"] == "database"]
    assert "rows written to appdb after 2026-12-06T20:55:00Z are lost" in actions[0][0]
    assert report["restored"][0]["release"] == 2 and report["restored"][0]["database"] == LABEL
    assert ms.state_of(container(engine, "api"))[0] == "running", "started again"
    assert "MODE" not in ms.env_of(container(engine, "frontend")), "frontend on release 1"
    assert report["release"]["number"] == 3

    # A rerun of the same rollback restores nothing again (rows written since are kept) and changes nothing.
    report, _ = run(engine, ms.params(base, *showcase(), state="rolled_back", release="previous", restore_data=True))
    assert len(restored) == 1 and report["changed"] is False


def test_check_mode_says_what_would_be_lost_and_changes_nothing(base, database, restored):
    engine = two_releases(base)
    before = ms.snapshot(engine)
    from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_over
    from ansible_collections.clockwork.connections.plugins.module_utils.stack import run_stack
    report = run_stack(dry_run_over(ms.RecordingGateway(engine)),
                       ms.params(base, *showcase(), state="rolled_back", release="1", restore_data=True))
    assert restored[0][3] is True and ms.snapshot(engine) == before
    assert any("are lost" in a for e in report["entries"] for a in e["actions"])


def test_restore_data_without_the_declaration_is_refused_before_any_change(base, database, restored):
    engine = two_releases(base)
    before = ms.snapshot(engine)
    with pytest.raises(ClockworkError) as refused:
        run(engine, ms.params(base, [], [], state="rolled_back", release="1", restore_data=True))
    assert "restore_data needs the login of database connection %s" % LABEL in refused.value.msg
    assert ms.snapshot(engine) == before and restored == []


def test_restore_data_with_no_later_deploy_is_refused(base, database, restored):
    engine = two_releases(base)
    with pytest.raises(ClockworkError) as refused:
        run(engine, ms.params(base, *showcase(), state="rolled_back", release="2", restore_data=True))
    assert "no deploy after release 2 is kept" in refused.value.msg


def test_a_snapshot_the_volume_no_longer_keeps_is_refused_before_any_change(base, database, restored, monkeypatch):
    engine = two_releases(base)
    before = ms.snapshot(engine)
    monkeypatch.setattr(snapshots.SnapshotStore, "index", lambda self: [{"snapshot": "appdb-later"}])
    with pytest.raises(ClockworkError) as refused:
        run(engine, ms.params(base, *showcase(), state="rolled_back", release="1", restore_data=True))
    assert "the snapshot %s of %s (taken by release 2) is no longer kept" % (SNAPSHOT["name"], LABEL) \
        in refused.value.msg, refused.value.msg
    assert "nothing was changed" in refused.value.msg and restored == []
    assert ms.snapshot(engine) == before
