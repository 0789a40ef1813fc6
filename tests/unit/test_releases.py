"""The release store (releases/store.py, schema.py): atomic, root-only writes through the host
files; every file read as untrusted data: a torn, hostile, oversized or linked file is refused
with one message naming it, never a traceback; and check mode's host files write nothing."""
import json
import os
import stat

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import DryRunFiles, HostFiles
from ansible_collections.clockwork.connections.plugins.module_utils.releases import store as store_module
from ansible_collections.clockwork.connections.plugins.module_utils.releases.schema import release_problem
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import (
    ReleaseStore, kept_count, releases_home)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.view import release_view

STACK = "shop"
SHA = "a" * 64


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def a_release(**changes):
    container = {"resource": "api", "name": "api", "id": "c" * 64, "image": "app:1", "image_id": "sha256:" + SHA,
                 "state": "running", "config": {"Env": ["DB_PASSWORD=hunter2-x", "MODE=a"], "Cmd": ["serve"]},
                 "host_config": {"PortBindings": {}}, "endpoints": {"shop_default": {"Aliases": ["api"]}},
                 "labels": {"io.clockwork.stack": STACK}, "secret_env": ["DB_PASSWORD"]}
    release = {"time": "2026-12-06T18:00:00Z", "controller": "me@laptop", "plan_digest": SHA, "target": "docker",
               "containers": {"api": container}, "services": {},
               "databases": {"database api -> db": {"to": "db", "engine": "postgresql", "database": "app",
                                                    "migrations": [{"kind": "migration", "name": "V1__a.sql",
                                                                    "sha256": SHA, "applied_here": True}],
                                                    "migrations_from": "plan", "snapshots": []}},
               "checks": [{"kind": "running", "container": "db"}]}
    release.update(changes)
    return release


def files_under(path):
    return sorted(os.path.relpath(os.path.join(folder, name), path)
                  for folder, _dirs, names in os.walk(path) for name in names)


def test_a_release_is_written_root_only_and_read_back_whole():
    store = ReleaseStore(HostFiles(), STACK)
    number, pruned = store.add(a_release())
    assert (number, pruned) == (1, [])
    read = store.release(1)
    assert read == dict(a_release(), number=1, stack=STACK, format=1)
    assert files_under(releases_home(STACK)) == ["1/release.json", "index.json"], "no temporary file left"
    assert stat.S_IMODE(os.stat(releases_home(STACK)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.release_path(1)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.index_path).st_mode) == 0o600


def test_numbers_go_on_after_pruning_and_are_never_reused():
    store = ReleaseStore(HostFiles(), STACK)
    for _ in range(4):
        store.add(a_release(), kept=2)
    assert store.index()["releases"] == [3, 4]
    store.add(a_release(), kept=2)
    assert store.index()["releases"] == [4, 5] and store.index()["last"] == 5
    found, missing = store.releases()
    assert [r["number"] for r in found] == [4, 5] and missing == []


def test_a_release_file_gone_is_said_not_failed():
    store = ReleaseStore(HostFiles(), STACK)
    store.add(a_release())
    store.add(a_release())
    os.remove(store.release_path(1))
    found, missing = store.releases()
    assert [r["number"] for r in found] == [2] and missing == [1]


def test_check_mode_host_files_write_nothing():
    store = ReleaseStore(DryRunFiles(), STACK)
    assert store.add(a_release()) == (1, [])
    assert not os.path.exists(releases_home(STACK))
    real = ReleaseStore(HostFiles(), STACK)
    real.add(a_release())
    before = dict((p, open(os.path.join(releases_home(STACK), p), "rb").read()) for p in files_under(releases_home(STACK)))
    assert ReleaseStore(DryRunFiles(), STACK).add(a_release(), kept=1) == (2, [1])
    after = dict((p, open(os.path.join(releases_home(STACK), p), "rb").read()) for p in files_under(releases_home(STACK)))
    assert after == before


def test_a_killed_write_leaves_the_previous_index_whole(monkeypatch):
    store = ReleaseStore(HostFiles(), STACK)
    store.add(a_release())
    index_before = open(store.index_path, "rb").read()

    def killed(_source, _target, **_kwargs):
        raise KeyboardInterrupt("killed between the write and the rename")
    monkeypatch.setattr(store_module.os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        store.add(a_release())
    monkeypatch.undo()
    assert open(store.index_path, "rb").read() == index_before
    assert store.index()["releases"] == [1]
    assert store.add(a_release())[0] == 2, "the next run goes on"


@pytest.mark.parametrize("content, words", [
    (b'{"format": 1, "stack": "shop", "rel', "not JSON"),
    (b"\xff\xfe garbage", "not JSON"),
    (b"[1, 2]", "a mapping expected"),
    (b'{"format": 1, "stack": "other", "releases": [], "current": null, "last": 0}', "of stack 'other'"),
    (b'{"format": 1, "stack": "shop", "releases": [2, 1], "current": 2, "last": 2}', "not in increasing order"),
    (b'{"format": 1, "stack": "shop", "releases": [1], "current": 7, "last": 1}', "current: 7 is not a kept release"),
    (b'{"format": 1, "stack": "shop", "releases": ["../../etc"], "current": null, "last": 1}', "a whole number"),
    (b'{"format": 1, "stack": "shop", "releases": [], "current": null, "last": 0, "run": "x"}', "unknown field run"),
])
def test_a_hostile_or_torn_index_is_refused_naming_the_file(content, words):
    store = ReleaseStore(HostFiles(), STACK)
    store.add(a_release())
    with open(store.index_path, "wb") as handle:
        handle.write(content)
    with pytest.raises(ClockworkError) as caught:
        store.index()
    assert store.index_path in caught.value.msg and words in caught.value.msg
    assert "move it away" in caught.value.msg
    with pytest.raises(ClockworkError):
        store.add(a_release())
    assert open(store.index_path, "rb").read() == content, "nothing written over what it cannot read"


@pytest.mark.parametrize("change, words", [
    (lambda r: r.update(number=2), "where its place says 1"),
    (lambda r: r.update(stack="other"), "stack: 'other'"),
    (lambda r: r.update(time="yesterday"), "time: 'yesterday' is not of the form"),
    (lambda r: r["containers"]["api"].update(config="rm -rf /"), "containers.api.config: a mapping expected"),
    (lambda r: r["containers"]["api"].pop("image_id"), "containers.api: image_id missing"),
    (lambda r: r["databases"]["database api -> db"]["migrations"][0].update(sha256="x"), "sha256: 'x' is not"),
    (lambda r: r.update(target="kubernetes"), "target: 'kubernetes'"),
    (lambda r: r.update(checks=["x"] * 2000), "more than 1000 entries"),
])
def test_a_hostile_release_is_refused_naming_the_file_and_the_field(change, words):
    store = ReleaseStore(HostFiles(), STACK)
    store.add(a_release())
    document = json.loads(open(store.release_path(1)).read())
    change(document)
    with open(store.release_path(1), "w") as handle:
        json.dump(document, handle)
    with pytest.raises(ClockworkError) as caught:
        store.release(1)
    assert caught.value.msg.startswith("%s is not release 1 of stack shop (" % store.release_path(1))
    assert words in caught.value.msg


def test_an_oversized_file_is_refused_before_it_is_read(monkeypatch):
    store = ReleaseStore(HostFiles(), STACK)
    store.add(a_release())
    monkeypatch.setattr(store_module, "MAX_BYTES", 100)
    with pytest.raises(ClockworkError) as caught:
        store.release(1)
    assert "more than a release record ever does" in caught.value.msg and store.release_path(1) in caught.value.msg


def test_a_link_where_a_release_is_expected_is_refused(tmp_path):
    store = ReleaseStore(HostFiles(), STACK)
    store.add(a_release())
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(open(store.release_path(1)).read())
    os.remove(store.release_path(1))
    os.symlink(str(elsewhere), store.release_path(1))
    with pytest.raises(ClockworkError) as caught:
        store.release(1)
    assert "symbolic link" in caught.value.msg


def test_a_link_where_the_releases_directory_is_expected_is_never_written_through(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    os.makedirs(os.path.dirname(releases_home(STACK)))
    os.symlink(str(target), releases_home(STACK))
    with pytest.raises(ClockworkError) as caught:
        ReleaseStore(HostFiles(), STACK).add(a_release())
    assert "symbolic link" in caught.value.msg
    assert os.listdir(str(target)) == []


def test_a_directory_where_a_file_is_expected_is_refused():
    store = ReleaseStore(HostFiles(), STACK)
    store.add(a_release())
    os.remove(store.index_path)
    os.mkdir(store.index_path)
    with pytest.raises(ClockworkError) as caught:
        store.index()
    assert store.index_path in caught.value.msg


@pytest.mark.parametrize("value", [0, -1, 101, "5", True, 2.5])
def test_releases_kept_must_be_a_sensible_whole_number(value):
    with pytest.raises(ClockworkError) as caught:
        kept_count(value)
    assert "releases_kept must be a whole number from 1 to 100" in caught.value.msg


def test_what_is_written_is_what_is_read():
    with pytest.raises(ClockworkError):
        ReleaseStore(HostFiles(), STACK).add(a_release(time="now"))
    assert not os.path.exists(ReleaseStore(HostFiles(), STACK).index_path)
    assert release_problem(dict(a_release(), number=1, stack=STACK, format=1), STACK, 1) is None


def test_the_view_masks_secrets_by_name_by_record_and_anywhere_they_are_repeated():
    release = dict(a_release(), number=3, stack=STACK, format=1)
    release["containers"]["api"]["config"]["Env"] += [
        "PLAIN_COPY=see hunter2-x", "DSN=postgresql://u:p%40ss@db/app", "DB_PASS=hunter2-x"]
    release["containers"]["api"]["config"]["Cmd"] = ["serve", "--requirepass", "r3dis-pw"]
    release["containers"]["api"]["secret_env"] += ["DB_PASS"]
    view = release_view(release, current=3)
    shown = json.dumps(view)
    for secret in ("hunter2-x", "p@ss", "p%40ss", "r3dis-pw"):
        assert secret not in shown, secret
    env = view["containers"]["api"]["env"]
    assert env["DB_PASSWORD"] == env["DB_PASS"] == env["DSN"] == "********"
    assert env["PLAIN_COPY"] == "see ********" and env["MODE"] == "a"
    assert view["containers"]["api"]["command"] == ["serve", "--requirepass", "********"]
    assert view["current"] is True and view["databases"] == release["databases"]


def test_a_release_is_resolved_by_number_current_or_previous_and_a_gone_one_is_refused_naming_it():
    store = ReleaseStore(HostFiles(), STACK)
    with pytest.raises(ClockworkError) as caught:
        store.resolve("previous")
    assert caught.value.msg == "stack shop has no release yet: an apply that changes something records one"
    store.add(a_release(), kept=3)
    with pytest.raises(ClockworkError) as caught:
        store.resolve("previous")
    assert caught.value.msg == "stack shop has no release before its current one (1); the kept releases are 1"
    for _ in range(4):
        store.add(a_release(), kept=3)
    assert store.resolve("current")["number"] == 5 and store.resolve("previous")["number"] == 4
    assert store.resolve(3)["number"] == 3
    with pytest.raises(ClockworkError) as caught:
        store.resolve(2)
    assert caught.value.msg == "release 2 of stack shop was pruned; the kept releases are 3, 4, 5"
    with pytest.raises(ClockworkError) as caught:
        store.resolve(9)
    assert caught.value.msg == "release 9 of stack shop was never recorded; the kept releases are 3, 4, 5"
    with pytest.raises(ClockworkError) as caught:
        store.resolve("latest")
    assert "not 'latest'" in caught.value.msg
    os.remove(store.release_path(4))
    with pytest.raises(ClockworkError) as caught:
        store.resolve("previous")
    assert "release 4 of stack shop is in its index but its file" in caught.value.msg


def test_a_stack_name_that_leads_elsewhere_is_refused():
    for name in ("../etc", "shop/../../x", "", "Shop"):
        with pytest.raises(ClockworkError) as caught:
            ReleaseStore(HostFiles(), name)
        assert caught.value.msg.startswith("name: stack name")
