"""The release store (releases/store.py, shelf.py, schema.py): records kept in the engine as images
of one root-only file, written so a killed run leaves the previous index whole, read as untrusted
data (a torn, hostile, oversized or foreign record is refused with one message naming it, never a
traceback, and nothing extracted), and a dry run's writes kept to itself."""
import io
import json
import os
import tarfile

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import memory_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.releases import shelf as shelf_module
from ansible_collections.clockwork.connections.plugins.module_utils.releases.schema import release_problem
from ansible_collections.clockwork.connections.plugins.module_utils.releases.shelf import (
    FILE, OWNER_LABEL, REPOSITORY, file_in_saved_image)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore, kept_count
from ansible_collections.clockwork.connections.plugins.module_utils.releases.view import release_view

STACK = "shop"
SHA = "a" * 64


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


def engine_and_store():
    gateway = memory_gateway()
    return gateway.api, ReleaseStore(gateway, STACK)


def release_images(engine):
    """{tag: labels} of the release store's images on `engine`."""
    return dict((tag, image["Labels"]) for image in engine.images() for tag in image["RepoTags"] or []
                if tag.startswith(REPOSITORY + ":"))


def saved_file(engine, reference):
    """The TarInfo and bytes of the one file of a release image, as `docker save` gives it."""
    saved = tarfile.open(fileobj=io.BytesIO(b"".join(engine.get_image(reference))))
    layer = json.loads(saved.extractfile("manifest.json").read())[0]["Layers"][-1]
    files = tarfile.open(fileobj=io.BytesIO(saved.extractfile(layer).read()))
    return files.getmembers(), files.extractfile(FILE).read()


def overwrite(store, name, content):
    """A record whose content is `content`, written past every check (what somebody else could tag)."""
    store.shelf.write(name, content)


def test_a_release_is_kept_in_the_engine_root_only_and_read_back_whole():
    engine, store = engine_and_store()
    number, pruned = store.add(a_release())
    assert (number, pruned) == (1, [])
    assert store.release(1) == dict(a_release(), number=1, stack=STACK, format=1)
    # Two images, labelled with whose releases they are and nothing of what they hold.
    assert release_images(engine) == {"clockwork-releases:shop.1": {OWNER_LABEL: STACK},
                                      "clockwork-releases:shop.index": {OWNER_LABEL: STACK}}
    members, data = saved_file(engine, "clockwork-releases:shop.1")
    assert [(m.name, m.mode, m.uid) for m in members] == [(FILE, 0o600, 0)]
    assert json.loads(data.decode())["containers"]["api"]["config"]["Env"][0] == "DB_PASSWORD=hunter2-x"
    store.add(a_release())
    assert sorted(release_images(engine)) == ["clockwork-releases:shop.1", "clockwork-releases:shop.2",
                                              "clockwork-releases:shop.index"]
    assert len(engine.images()) == 3, "the index's previous image went with the new one"


def test_numbers_go_on_after_pruning_and_are_never_reused():
    engine, store = engine_and_store()
    for _ in range(4):
        store.add(a_release(), kept=2)
    assert store.index()["releases"] == [3, 4]
    store.add(a_release(), kept=2)
    assert store.index()["releases"] == [4, 5] and store.index()["last"] == 5
    found, missing = store.releases()
    assert [r["number"] for r in found] == [4, 5] and missing == []
    assert sorted(release_images(engine)) == ["clockwork-releases:shop.4", "clockwork-releases:shop.5",
                                              "clockwork-releases:shop.index"], "pruned releases' images removed"


def test_a_release_record_gone_is_said_not_failed():
    engine, store = engine_and_store()
    store.add(a_release())
    store.add(a_release())
    engine.remove_image("clockwork-releases:shop.1")
    found, missing = store.releases()
    assert [r["number"] for r in found] == [2] and missing == [1]


def test_another_stacks_releases_are_its_own():
    gateway = memory_gateway()
    ReleaseStore(gateway, STACK).add(a_release())
    assert ReleaseStore(gateway, "shop2").index()["releases"] == []


def test_check_mode_writes_nothing_to_the_engine():
    engine, store = engine_and_store()
    dry = dry_run_gateway(live=engine)
    assert ReleaseStore(dry, STACK).add(a_release()) == (1, [])
    assert release_images(engine) == {} and engine.writes() == []
    store.add(a_release())
    before = dict((tag, saved_file(engine, tag)[1]) for tag in release_images(engine))
    dry = dry_run_gateway(live=engine)
    assert ReleaseStore(dry, STACK).add(a_release(), kept=1) == (2, [1])
    assert "release record: write clockwork-releases:shop.2" in dry.actions
    assert dict((tag, saved_file(engine, tag)[1]) for tag in release_images(engine)) == before
    assert [c.method for c in engine.writes()] == ["import_image_from_data"] * 2, "only the real run's two"


def test_a_killed_write_leaves_the_previous_index_whole():
    engine, store = engine_and_store()
    store.add(a_release())
    index_before = store.index()
    engine.fail_next("import_image_from_data", 500, "killed", match=lambda *a, **k: k.get("tag") == "shop.index")
    with pytest.raises(ClockworkError) as caught:
        store.add(a_release())
    assert caught.value.msg.startswith("cannot write image clockwork-releases:shop.index: ")
    assert store.index() == index_before
    assert store.add(a_release())[0] == 2, "the next run goes on"
    assert store.release(2)["number"] == 2


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
def test_a_hostile_or_torn_index_is_refused_naming_the_image(content, words):
    engine, store = engine_and_store()
    store.add(a_release())
    overwrite(store, "index", content)
    with pytest.raises(ClockworkError) as caught:
        store.index()
    assert "image clockwork-releases:shop.index" in caught.value.msg and words in caught.value.msg
    writes = len(engine.writes())
    with pytest.raises(ClockworkError):
        store.add(a_release())
    assert len(engine.writes()) == writes, "nothing written over what it cannot read"


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
def test_a_hostile_release_is_refused_naming_the_image_and_the_field(change, words):
    _engine, store = engine_and_store()
    store.add(a_release())
    document = store.release(1)
    change(document)
    overwrite(store, 1, json.dumps(document).encode())
    with pytest.raises(ClockworkError) as caught:
        store.release(1)
    assert caught.value.msg.startswith("image clockwork-releases:shop.1 is not release 1 of stack shop (")
    assert words in caught.value.msg


def test_an_oversized_record_is_refused_before_it_is_read_whole(monkeypatch):
    _engine, store = engine_and_store()
    store.add(a_release())
    monkeypatch.setattr(shelf_module, "MAX_BYTES", 100)
    monkeypatch.setattr(shelf_module, "SAVE_OVERHEAD", 100)
    with pytest.raises(ClockworkError) as caught:
        store.release(1)
    assert caught.value.msg.startswith("image clockwork-releases:shop.1 is larger than 200 bytes")


def a_layer(*members):
    """A tar of (TarInfo fields, data) members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for key, value in fields.items():
                setattr(info, key, value)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def saved(layer, manifest=None):
    manifest = [{"Config": "c.json", "RepoTags": [], "Layers": ["l/layer.tar"]}] if manifest is None else manifest
    return a_layer(({"name": "manifest.json"}, json.dumps(manifest).encode()), ({"name": "l/layer.tar"}, layer))


@pytest.mark.parametrize("data, words", [
    (saved(a_layer(({"name": FILE, "type": tarfile.SYMTYPE, "linkname": "/etc/shadow"}, b""))), "not a file"),
    (saved(a_layer(({"name": "../" + FILE}, b"{}"))), "holds no release.json"),
    (saved(a_layer(({"name": FILE}, b"{}")), manifest={"Layers": "x"}), "its manifest names no layer"),
    (saved(a_layer(({"name": FILE}, b"{}")), manifest=[{"Layers": ["../../etc/passwd"]}]), "holds no ../../etc"),
    (b"not a tar at all", "is not a release record"),
    (a_layer(({"name": "manifest.json"}, b"{not json")), "is not a release record"),
])
def test_an_image_that_is_not_a_release_record_is_refused_and_nothing_is_extracted(data, words, tmp_path):
    os.chdir(str(tmp_path))
    with pytest.raises(ClockworkError) as caught:
        file_in_saved_image(data, "image x")
    assert caught.value.msg.startswith("image x") and words in caught.value.msg
    assert os.listdir(str(tmp_path)) == []


def test_an_image_somebody_else_tagged_as_a_record_is_refused_naming_it():
    engine, store = engine_and_store()
    engine.add_image("clockwork-releases:shop.index", {"Labels": {"x": "y"}})
    with pytest.raises(ClockworkError) as caught:
        store.index()
    assert caught.value.msg.startswith("image clockwork-releases:shop.index (move it away: docker rmi ")


@pytest.mark.parametrize("value", [0, -1, 101, "5", True, 2.5])
def test_releases_kept_must_be_a_sensible_whole_number(value):
    with pytest.raises(ClockworkError) as caught:
        kept_count(value)
    assert "releases_kept must be a whole number from 1 to 100" in caught.value.msg


def test_what_is_written_is_what_is_read():
    engine, store = engine_and_store()
    with pytest.raises(ClockworkError):
        store.add(a_release(time="now"))
    assert engine.writes() == []
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
    engine, store = engine_and_store()
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
    engine.remove_image("clockwork-releases:shop.4")
    with pytest.raises(ClockworkError) as caught:
        store.resolve("previous")
    assert caught.value.msg == ("release 4 of stack shop is in its index but its record (image "
                                "clockwork-releases:shop.4) is gone")


def test_a_stack_name_that_leads_elsewhere_is_refused():
    for name in ("../etc", "shop/../../x", "", "Shop"):
        with pytest.raises(ClockworkError) as caught:
            ReleaseStore(memory_gateway(), name)
        assert caught.value.msg.startswith("name: stack name")


def test_the_stacks_lock_is_never_made_from_a_release_records_image():
    """The lock's container is made from the engine's smallest image, and a release record is the smallest
    of all: made from one, it would keep that record from being pruned (409) while the lock is held."""
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.lock import stack_lock
    gateway = memory_gateway()
    store = ReleaseStore(gateway, STACK)
    store.add(a_release())
    with stack_lock(gateway, STACK):
        lock, = [c for c in gateway.api.containers(all=True) if c["Names"][0].startswith("/clockwork-lock-")]
        assert lock["Image"] == "clockwork/lock:empty", "no other image than the records: an empty one is made"
        store.add(a_release(), kept=1)
    assert store.index()["releases"] == [2]
    assert sorted(release_images(gateway.api)) == ["clockwork-releases:shop.2", "clockwork-releases:shop.index"]


def test_a_stack_name_too_long_for_a_records_tag_is_refused_by_the_plan_before_anything():
    from ansible_collections.clockwork.connections.plugins.module_utils.common import stack_name_problem
    assert stack_name_problem("a" * 100) is None
    problem = stack_name_problem("a" * 101)
    assert problem.startswith("stack name 'aaa") and "101 characters long, more than 100" in problem
