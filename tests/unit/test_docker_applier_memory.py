"""The docker applier (apply/docker_applier.py, through stack.run_stack) on the memory gateway
(docker/memory.py): every path a run takes on one engine, without Docker. What is asserted is
read from the memory engine's inspects and recorded calls, and from the reported entries.

Database connections: where a test takes the `database` fixture, the showcase's `database api ->
postgres` stays in the declaration and its login to PostgreSQL is replaced by a scripted target
through monkeypatch (memory_stacks.ScriptedDatabase: pure logic, no server), which records the
schema files applied; the other tests declare the stack without it (showcase(database=False)).
Everything else (networks, volumes, files, containers, the lock, recreates, replicas) is the real
code. The waits that still read the process's clock take no time (memory_stacks.VirtualTime).
"""
import hashlib
import json
import os

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.stack import run_stack

import memory_stacks as ms
from memory_stacks import home, instant_waits  # noqa: F401  (fixtures, autouse)
from memory_stacks import NGINX, PG_DATA, STACK, container, entry, read_file, run, showcase


@pytest.fixture
def database(monkeypatch):
    return ms.ScriptedDatabase().install(monkeypatch)


@pytest.fixture
def base(tmp_path):
    directory = tmp_path / "base"
    directory.mkdir()
    return directory


def deployed(base, database=None, **declaration):
    """An engine with the showcase(-like) stack applied cold; (engine, params)."""
    engine = ms.new_engine()
    stack = ms.params(base, *showcase(database=database is not None, **declaration))
    report, _gateway = run(engine, stack)
    assert report["changed"], report["entries"]
    return engine, stack


# -- cold -----------------------------------------------------------------------------------

def test_the_showcase_cold_makes_every_object_with_what_its_connections_contribute(base, database):
    engine = ms.new_engine()
    report, gateway = run(engine, ms.params(base, *showcase()))

    assert report["changed"] is True
    names = ["postgres", "redis", "storage", "api", "frontend"]
    assert ms.container_names(engine) == sorted(names), "the lock went, nothing else is there"
    for name in names:
        attrs = container(engine, name)
        assert attrs["Config"]["Labels"][ms.STACK_LABEL] == STACK
        assert attrs["Config"]["Labels"][ms.RESOURCE_LABEL] == name
        assert ms.state_of(attrs)[0] == "running", name
        assert entry(report, "container", name)["actions"] == ["create", "start"], name
    for name in ("postgres", "redis", "api"):
        assert ms.state_of(container(engine, name)) == ("running", "healthy"), "its healthcheck passed: " + name

    # The stack's network, the network connection's, the shared volume: made and labelled ours.
    assert ms.network_names(engine) == ["backend-network", "showcase_default"]
    for network in engine.networks(names=["backend-network", "showcase_default"]):
        assert network["Labels"][ms.STACK_LABEL] == STACK
    shared = engine.inspect_volume("app-shared-data")
    assert shared["Labels"][ms.STACK_LABEL] == STACK and shared["Driver"] == "local"
    assert entry(report, "network", "showcase_default")["actions"] == ["create network showcase_default"]
    assert entry(report, "connection", "network api -> redis")["actions"] == ["create network backend-network"]
    assert entry(report, "connection", "file api -> storage")["actions"] == ["create volume app-shared-data"]

    # api: the database's URL, redis's host, the config file read-only, the shared volume read-write,
    # and both networks.
    api = container(engine, "api")
    env = ms.env_of(api)
    assert env["DATABASE_URL"] == "postgresql://postgres:%s@postgres:5432/appdb" % ms.PASSWORD
    assert env["REDIS_HOST"] == "redis"
    mounts = ms.mounts_of(api)
    assert mounts["/etc/app/config.json"] == ("bind", str(base / "config.json"), False)
    assert mounts["/data/shared"] == ("volume", "app-shared-data", True)
    assert ms.networks_of(api) == {"showcase_default": ["api"], "backend-network": ["api"]}
    # storage, the other end of the shared volume, mounts it at the same path.
    assert ms.mounts_of(container(engine, "storage"))["/data/shared"] == ("volume", "app-shared-data", True)
    # redis joins the network connection's network under its name; frontend gets api's URL.
    assert ms.networks_of(container(engine, "redis")) == {"showcase_default": ["redis"],
                                                          "backend-network": ["redis"]}
    assert ms.env_of(container(engine, "frontend"))["API_URL"] == "http://api:8000"
    assert ms.networks_of(container(engine, "frontend")) == {"showcase_default": ["frontend"]}
    # PostgreSQL's data directory is the anonymous volume its image declares.
    data = ms.mounts_of(container(engine, "postgres"))[PG_DATA]
    assert data[0] == "volume" and data[1] in ms.volume_names(engine)

    # The file resource is on the host, the schema applied once, through the scripted login.
    assert (base / "config.json").read_text() == '{"log_level": "info"}'
    assert database.applies == [("schema", "schema.sql")]
    assert entry(report, "connection", "database api -> postgres")["actions"] == ["apply schema schema.sql"]
    # Order: every container another one connects to was started before it.
    by_id = dict((container(engine, name)["Id"], name) for name in names)
    started = [by_id.get(c.args[0], c.args[0]) for c in engine.writes() if c.method == "start"]
    assert sorted(started) == sorted(names), started
    for before, after in (("postgres", "api"), ("redis", "api"), ("storage", "api"), ("api", "frontend"),
                          ("redis", "frontend")):
        assert started.index(before) < started.index(after), (before, after, started)
    assert gateway.actions[0] == "create container clockwork-lock-showcase", "the run held the stack's lock"


# -- no-op ----------------------------------------------------------------------------------

def test_the_showcase_unchanged_is_a_no_op_that_writes_nothing(base, database):
    engine, stack = deployed(base, database)
    before, since = ms.snapshot(engine), len(engine.calls)

    report, gateway = run(engine, stack)

    assert report["changed"] is False, ms.changed_entries(report)
    assert ms.changed_entries(report) == []
    assert ms.stack_writes(engine, since, gateway) == []
    assert ms.snapshot(engine) == before
    assert database.applies == [("schema", "schema.sql")], "nothing applied twice"
    # Not even the stack's lock: a dry run of its own found nothing to do (applier.unchanged).
    assert gateway.actions == [], gateway.actions
    assert [c for c in engine.writes() if engine.calls.index(c) >= since] == []


def probed(engine, since):
    """Whether a run looked first on a dry run of its own (its first question: is the engine a manager)."""
    return any(c.method == "services" and "io.clockwork.dry-run=manager" in str(c.kwargs)
               for c in engine.calls[since:])


def test_a_stack_with_containers_to_make_is_not_looked_at_first(base, database):
    """A first deploy changes: it takes the lock at once, without a dry run of its own first."""
    engine = ms.new_engine()
    run(engine, ms.params(base, *ms.showcase()))
    assert not probed(engine, 0)
    since = len(engine.calls)
    run(engine, ms.params(base, *ms.showcase()))
    assert probed(engine, since), "an unchanged stack is looked at first"


def test_a_changed_stack_is_decided_again_under_the_lock(base, database):
    """The lock-free look finds a change: the run converges under the lock from the start."""
    engine, stack = deployed(base, database)
    declared = dict(stack, resources=[dict(r, env=dict(r.get("env") or {}, MODE="two")) if r["name"] == "frontend"
                                      else r for r in stack["resources"]])

    report, gateway = run(engine, declared)

    assert [e[1] for e in ms.changed_entries(report)] == ["frontend"], ms.changed_entries(report)
    assert gateway.actions[0] == "create container clockwork-lock-showcase", gateway.actions
    assert container(engine, "clockwork-lock-showcase") is None, "the lock released"



# -- drift ------------------------------------------------------------------------------------

def test_drift_recreates_with_the_data_of_its_anonymous_and_named_volumes(base, database):
    engine, _stack = deployed(base, database)
    old_pg, old_storage = container(engine, "postgres"), container(engine, "storage")
    anonymous = ms.mounts_of(old_pg)[PG_DATA][1]
    engine.add_file("postgres", PG_DATA + "/PG_VERSION", "15\n")          # the database's data
    engine.add_file("storage", "/data/shared/upload.bin", b"\x00uploaded")  # data in the named volume
    volumes_before = ms.volume_names(engine)
    since = len(engine.calls)

    drifted = ms.params(base, *showcase(postgres={"env": {"POSTGRES_PASSWORD": ms.PASSWORD, "POSTGRES_DB": "appdb",
                                                          "TZ": "UTC"}},
                                        storage={"env": {"STORAGE_MODE": "shared"}}))
    report, gateway = run(engine, drifted, diff=True)

    assert report["changed"] is True
    for name in ("postgres", "storage"):
        done = entry(report, "container", name)
        assert done["actions"] == ["recreate", "start"], done
        assert any("env" in reason for reason in done["reasons"]), done
    new_pg, new_storage = container(engine, "postgres"), container(engine, "storage")
    assert new_pg["Id"] != old_pg["Id"] and new_storage["Id"] != old_storage["Id"]
    assert ms.env_of(new_pg)["TZ"] == "UTC" and ms.env_of(new_storage)["STORAGE_MODE"] == "shared"
    assert ms.state_of(new_pg) == ("running", "healthy")
    # The same volumes, with their data: the anonymous one carried, the named one mounted again.
    assert ms.mounts_of(new_pg)[PG_DATA] == ("volume", anonymous, True)
    assert ms.mounts_of(new_storage)["/data/shared"] == ("volume", "app-shared-data", True)
    assert read_file(engine, "postgres", PG_DATA + "/PG_VERSION") == b"15\n"
    assert read_file(engine, "storage", "/data/shared/upload.bin") == b"\x00uploaded"
    assert read_file(engine, "api", "/data/shared/upload.bin") == b"\x00uploaded", "api shares it still"
    assert ms.volume_names(engine) == volumes_before, "no volume made or lost"
    # The previous containers are gone, none left aside, and the others were not touched.
    assert ms.container_names(engine) == ["api", "frontend", "postgres", "redis", "storage"]
    assert engine.inspect_or_none("container", old_pg["Id"]) is None
    for name in ("redis", "api", "frontend"):
        assert not entry(report, "container", name)["changed"], name
    # Stop-first, as a data directory asks: renamed aside and stopped before the new one exists.
    actions = ms.without_lock(gateway.actions)
    at = actions.index("rename container <id> to postgres_clockwork_old_<id>")
    assert actions[at:at + 5] == ["rename container <id> to postgres_clockwork_old_<id>", "stop container <id>",
                      "create container postgres", "start container postgres", "remove container <id>"], actions
    assert database.applies == [("schema", "schema.sql")], "the schema is not applied again"
    diff = [d for d in report["diff"] if d["before_header"] == "container postgres"]
    assert diff and "TZ" not in str(diff[0]["before"]) and "UTC" in str(diff[0]["after"])
    assert ms.PASSWORD not in str(report["diff"]), "the diff masks the password"
    # And the next run finds nothing to do.
    since = len(engine.calls)
    again, gateway = run(engine, drifted)
    assert again["changed"] is False and ms.stack_writes(engine, since, gateway) == []


# -- a failed recreate ------------------------------------------------------------------------

@pytest.mark.parametrize("health, timeout", [("unhealthy", 30), ("starting", 1)],
                         ids=["turns-unhealthy", "never-healthy-within-its-timeout"])
def test_a_failed_recreate_puts_the_previous_container_back(base, database, health, timeout):
    """api mounts a volume, so it is replaced stop-first; its new container does not become healthy
    (its health stays `starting` until its 1 s timeout, or turns unhealthy at once)."""
    engine, _stack = deployed(base, database, api={"timeout": timeout})
    old = container(engine, "api")
    engine.add_file("api", "/data/shared/kept.txt", "kept")
    engine.after_start("api", health=health, once=True)
    volumes_before = ms.volume_names(engine)

    drifted = ms.params(base, *showcase(api={"timeout": timeout, "env": {"FEATURE": "on"}}))
    with pytest.raises(ClockworkError) as failed:
        run(engine, drifted)

    message = failed.value.msg
    assert "container api could not be recreated, so the previous one is back under its name and running" in message
    assert ("is running (unhealthy) instead of healthy" if health == "unhealthy"
            else "did not become healthy within 1s") in message, message
    back = container(engine, "api")
    assert back["Id"] == old["Id"], "the previous container, not a new one"
    assert ms.state_of(back) == ("running", "healthy")
    assert "FEATURE" not in ms.env_of(back)
    assert ms.networks_of(back) == ms.networks_of(old) and ms.mounts_of(back) == ms.mounts_of(old)
    assert read_file(engine, "api", "/data/shared/kept.txt") == b"kept"
    assert ms.container_names(engine) == ["api", "frontend", "postgres", "redis", "storage"], \
        "the new one is gone, nothing is left aside"
    assert ms.volume_names(engine) == volumes_before
    # Once it can become healthy, the next run recreates it.
    report, _gateway = run(engine, drifted)
    assert entry(report, "container", "api")["actions"] == ["recreate", "start"]
    assert ms.env_of(container(engine, "api"))["FEATURE"] == "on"


def test_a_start_first_replacement_that_fails_leaves_the_old_container_serving(base, database):
    """frontend has no volume and no fixed host port: replaced start-first; its replacement exits."""
    engine, _stack = deployed(base, database)
    old = container(engine, "frontend")
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.rolling import next_name
    engine.after_start(next_name("frontend", old["Id"]), exits=1, logs="nginx: [emerg] bad config\n")
    since = len(engine.calls)

    with pytest.raises(ClockworkError) as failed:
        run(engine, ms.params(base, *showcase(frontend={"env": {"FEATURE": "on"}})))

    message = failed.value.msg
    assert "container frontend: its replacement did not become ready (state exited)" in message, message
    assert "previous container keeps serving, unchanged" in message and "bad config" in message
    kept = container(engine, "frontend")
    assert kept["Id"] == old["Id"] and ms.state_of(kept) == ("running", None)
    assert ms.container_names(engine) == ["api", "frontend", "postgres", "redis", "storage"]
    # The old one was never stopped, renamed or taken off its network.
    touched = [c for c in engine.calls[since:] if c.method in ("stop", "rename", "disconnect_container_from_network")
               and c.args and c.args[0] in (old["Id"], "frontend")]
    assert touched == []


# -- replicas -------------------------------------------------------------------------------

def replicated(base, web=3, worker=2, env=None):
    """web: nginx replicas with a healthcheck, nothing that forbids two at once (start-first);
    worker: Redis replicas, whose image keeps /data in a volume (stop-first); both on the default
    network under their resource's name, worker on a network connection's too."""
    resources = [{"name": "cache", "image": ms.REDIS, "healthcheck": {"test": "redis-cli ping", "interval": "1s"}},
                 {"name": "web", "image": NGINX, "ports": ["80"], "replicas": web, "env": dict(env or {}),
                  "healthcheck": {"test": "curl -f http://localhost/", "interval": "1s"}},
                 {"name": "worker", "image": ms.REDIS, "replicas": worker, "env": dict(env or {})}]
    connections = [{"type": "dependency", "from": "web", "to": "cache"},
                   {"type": "network", "from": "worker", "to": "cache", "network_name": "jobs"}]
    return ms.params(base, resources, connections)


def test_replicas_run_under_one_alias_and_an_update_rolls_one_at_a_time(base):
    engine = ms.new_engine()
    report, _gateway = run(engine, replicated(base))
    assert ms.container_names(engine) == ["cache", "web-1", "web-2", "web-3", "worker-1", "worker-2"]
    for number in (1, 2, 3):
        attrs = container(engine, "web-%d" % number)
        assert ms.networks_of(attrs) == {"showcase_default": ["web"]}, "DNS answers web with each replica"
        assert attrs["Config"]["Labels"]["io.clockwork.replica"] == str(number)
        assert entry(report, "container", "web-%d" % number)["actions"] == ["create", "start"]
    for number in (1, 2):
        assert ms.networks_of(container(engine, "worker-%d" % number)) == {"showcase_default": ["worker"],
                                                                          "jobs": ["worker"]}
    old = dict((name, container(engine, name)["Id"]) for name in ms.container_names(engine))
    data = dict((n, ms.mounts_of(container(engine, n))["/data"][1]) for n in ("worker-1", "worker-2"))

    report, gateway = run(engine, replicated(base, env={"RELEASE": "2"}))

    for number in (1, 2, 3):
        assert entry(report, "container", "web-%d" % number)["actions"] == ["replace start-first", "start"]
    for number in (1, 2):
        assert entry(report, "container", "worker-%d" % number)["actions"] == ["recreate", "start"]
    assert not entry(report, "container", "cache")["changed"]
    for name in ("web-1", "web-2", "web-3", "worker-1", "worker-2"):
        attrs = container(engine, name)
        assert attrs["Id"] != old[name] and ms.env_of(attrs)["RELEASE"] == "2", name
        assert ms.state_of(attrs)[0] == "running"
    for name in data:
        assert ms.mounts_of(container(engine, name))["/data"][1] == data[name], "stop-first carried its data"
    assert ms.container_names(engine) == ["cache", "web-1", "web-2", "web-3", "worker-1", "worker-2"]
    # Rolling: each web replica's replacement serves before its predecessor leaves (start-first), and
    # the next replica is touched only once the previous one is done.
    actions = gateway.actions
    done_at = -1
    for number in (1, 2, 3):
        name, previous = "web-%d" % number, old["web-%d" % number]
        created = actions.index("create container %s_clockwork_next_%s" % (name, previous[:12]))
        renamed = [i for i, a in enumerate(actions) if a.endswith(" to %s" % name)][0]
        new_id = actions[renamed].split()[2]
        assert done_at < created < actions.index("start container %s" % new_id) \
            < actions.index("disconnect container %s from network showcase_default" % previous) \
            < actions.index("stop container %s" % previous) < actions.index("remove container %s" % previous) \
            < renamed, actions
        done_at = renamed
    # worker is a resource of its own, which converges beside web: its replicas are ordered among themselves.
    done_at = -1
    for number in (1, 2):
        name, previous = "worker-%d" % number, old["worker-%d" % number]
        aside = actions.index("rename container %s to %s_clockwork_old_%s" % (previous, name, previous[:12]))
        assert done_at < aside < actions.index("stop container %s" % previous) \
            < actions.index("create container %s" % name) < actions.index("start container %s" % name) \
            < actions.index("remove container %s" % previous), actions
        done_at = actions.index("remove container %s" % previous)


def test_scaling_up_and_down_touches_only_the_replicas_concerned(base):
    engine = ms.new_engine()
    run(engine, replicated(base, web=1))
    assert ms.container_names(engine) == ["cache", "web", "worker-1", "worker-2"]
    first = container(engine, "web")["Id"]

    since = len(engine.calls)
    report, _gateway = run(engine, replicated(base, web=3))
    assert ms.changed_entries(report) == [("container", "web-1", ["rename web to web-1"]),
                                          ("container", "web-2", ["create", "start"]),
                                          ("container", "web-3", ["create", "start"])]
    assert container(engine, "web-1")["Id"] == first, "the one there was kept, under its replica's name"
    assert not [c for c in engine.calls[since:] if c.method in ("stop", "start", "restart") and c.args[0] == first], \
        "and not restarted"
    for name in ("web-1", "web-2", "web-3"):
        assert ms.networks_of(container(engine, name)) == {"showcase_default": ["web"]}
    kept = dict((n, container(engine, n)["Id"]) for n in ("web-1", "web-2"))

    report, _gateway = run(engine, replicated(base, web=2))
    assert ms.changed_entries(report) == [("container", "web-3", ["remove"])]
    assert entry(report, "container", "web-3")["reasons"] == ["replicas"]
    assert ms.container_names(engine) == ["cache", "web-1", "web-2", "worker-1", "worker-2"]
    assert dict((n, container(engine, n)["Id"]) for n in kept) == kept

    report, _gateway = run(engine, replicated(base, web=1))
    assert ms.changed_entries(report) == [("container", "web", ["rename web-1 to web"]),
                                          ("container", "web-2", ["remove"])]
    assert ms.container_names(engine) == ["cache", "web", "worker-1", "worker-2"]
    assert container(engine, "web")["Id"] == first and ms.state_of(container(engine, "web"))[0] == "running"
    since = len(engine.calls)
    report, gateway = run(engine, replicated(base, web=1))
    assert report["changed"] is False and ms.stack_writes(engine, since, gateway) == []


# -- destroy --------------------------------------------------------------------------------

def foreign_objects(engine):
    """A container, a network and a volume that are not the stack's (no label), one of them on a
    network of the stack's name pattern and one with a name the stack's objects have as a prefix."""
    engine.create_network("showcase_other", labels={"owner": "someone"})
    engine.create_volume("app-shared-data-backup")
    engine.create_container(NGINX, name="showcase-outsider", labels={"owner": "someone"},
                            host_config={"NetworkMode": "showcase_other",
                                         "Mounts": [{"Type": "volume", "Source": "app-shared-data-backup",
                                                     "Target": "/backup"}]})
    engine.start("showcase-outsider")
    # Another stack's container, with its own stack label.
    engine.create_container(NGINX, name="other-stack-web", labels={ms.STACK_LABEL: "other"})
    return ms.snapshot(engine)


def only_foreign(snap):
    return dict((kind, dict((k, v) for k, v in objects.items() if k in FOREIGN[kind])) for kind, objects in snap.items())


FOREIGN = {"containers": ("showcase-outsider", "other-stack-web"), "networks": ("showcase_other",),
           "volumes": ("app-shared-data-backup",)}


def test_destroy_removes_what_carries_the_stacks_label_and_keeps_volumes_unless_purged(base, database):
    engine, stack = deployed(base, database)
    foreign = only_foreign(foreign_objects(engine))
    anonymous = sorted(m[1] for n in ("postgres", "redis") for t, m in ms.mounts_of(container(engine, n)).items()
                       if t in (PG_DATA, "/data"))
    assert len(anonymous) == 2

    report, _gateway = run(engine, dict(stack, state="absent"))

    assert report["changed"] is True
    assert ms.container_names(engine) == ["other-stack-web", "showcase-outsider"]
    assert ms.network_names(engine) == ["showcase_other"]
    assert ms.volume_names(engine) == sorted(["app-shared-data", "app-shared-data-backup"] + anonymous), \
        "the data stays without purge"
    assert only_foreign(ms.snapshot(engine)) == foreign, "the foreign objects are as they were"
    for name in ("frontend", "api", "storage", "redis", "postgres"):
        assert entry(report, "container", name)["actions"] == ["stop", "remove"], name
    # In reverse order: what connects to something goes before it.
    removed = [e["name"] for e in report["entries"] if e["kind"] == "container"]
    assert removed.index("frontend") < removed.index("api") < removed.index("postgres"), removed
    assert entry(report, "volume", "app-shared-data") == {
        "kind": "volume", "name": "app-shared-data", "changed": False, "actions": ["kept (purge to remove)"],
        "reasons": []}
    for volume in anonymous:
        assert entry(report, "volume", volume[:12])["actions"] == ["anonymous, kept (purge to remove)"]

    # Again with purge: the stack's named volume goes.
    report, _gateway = run(engine, dict(stack, state="absent", purge=True))
    assert "app-shared-data" not in ms.volume_names(engine)
    assert only_foreign(ms.snapshot(engine)) == foreign
    assert entry(report, "volume", "app-shared-data")["actions"] == ["remove"]


def test_a_purge_after_a_destroy_removes_the_anonymous_volumes_it_kept(base, database):
    engine, stack = deployed(base, database)
    anonymous = sorted(m[1] for n in ("postgres", "redis") for t, m in ms.mounts_of(container(engine, n)).items()
                       if t in (PG_DATA, "/data"))
    run(engine, dict(stack, state="absent"))
    assert set(anonymous) <= set(ms.volume_names(engine))
    report, _gateway = run(engine, dict(stack, state="absent", purge=True))
    assert ms.volume_names(engine) == [], report["entries"]


def test_destroy_with_purge_at_once(base, database):
    engine, stack = deployed(base, database)
    foreign = only_foreign(foreign_objects(engine))
    report, _gateway = run(engine, dict(stack, state="absent", purge=True))
    assert report["changed"] is True
    assert ms.container_names(engine) == ["other-stack-web", "showcase-outsider"]
    assert ms.network_names(engine) == ["showcase_other"]
    assert ms.volume_names(engine) == ["app-shared-data-backup"]
    assert only_foreign(ms.snapshot(engine)) == foreign


# -- concurrent runs --------------------------------------------------------------------------

def labels(name):
    return {ms.STACK_LABEL: STACK, ms.RESOURCE_LABEL: name}


def replayed_create(base, name, binds=None):
    """What a concurrent run of the same declaration sends to create container `name`: its call,
    taken from a run on another engine, replayed on the one given (the images are the same);
    `binds`: the volumes a recreate carries."""
    reference = ms.new_engine()
    run(reference, ms.params(base, *showcase(database=False)))
    call = [c for c in reference.calls if c.method == "create_container" and c.kwargs.get("name") == name][0]
    kwargs = dict(call.kwargs)
    if binds:
        kwargs["host_config"] = dict(kwargs["host_config"], Binds=binds)
    return lambda engine: engine.create_container(*call.args, **kwargs)


CONFLICTS = {
    # object: (the engine call, its match, what the other run made just before, the engine's words)
    "network": ("create_network", "showcase_default",
                lambda base: lambda e: e.create_network("showcase_default", driver="bridge",
                                                        labels=labels("showcase_default")),
                "network with name showcase_default already exists"),
    "volume": ("create_volume", "app-shared-data",
               lambda base: lambda e: e.create_volume("app-shared-data", driver="local",
                                                      labels=labels("app-shared-data")),
               "volume app-shared-data already exists"),
    "container": ("create_container", lambda *args, **kwargs: kwargs.get("name") == "storage",
                  lambda base: replayed_create(base, "storage"),
                  'Conflict. The container name "/storage" is already in use by container "0123". You have to '
                  'remove (or rename) that container to be able to reuse that name.'),
}


@pytest.mark.parametrize("kind", sorted(CONFLICTS))
def test_a_409_from_a_concurrent_run_converges_on_what_it_made(base, kind):
    """Another run (on another controller: the lock is per stack, a run of another declaration of
    it may race) creates the object between this run's read and its create: the engine answers
    409. The object is ours with the settings wanted: it is used, and the run converges."""
    method, match, made, words = CONFLICTS[kind]
    engine = ms.new_engine()
    stack = ms.params(base, *showcase(database=False))
    other_run = made(base)
    met = []
    engine.fail_next(method, 409, words, match=match, before=lambda e: (met.append(kind), other_run(e)))

    report, _gateway = run(engine, stack)

    assert report["changed"] is True
    assert met == [kind], "the scripted 409 was met"
    assert ms.container_names(engine) == ["api", "frontend", "postgres", "redis", "storage"]
    assert ms.network_names(engine) == ["backend-network", "showcase_default"], "one network of each name"
    assert "app-shared-data" in ms.volume_names(engine)
    for name in ms.container_names(engine):
        assert ms.state_of(container(engine, name))[0] == "running", name
    # What the other run made is what the stack uses.
    if kind == "network":
        made_id = [n["Id"] for n in engine.networks(names=["showcase_default"])][0]
        assert container(engine, "api")["NetworkSettings"]["Networks"]["showcase_default"]["NetworkID"] == made_id
    elif kind == "volume":
        assert ms.mounts_of(container(engine, "storage"))["/data/shared"] == ("volume", "app-shared-data", True)
    else:
        creates = [c for c in engine.calls if c.method == "create_container" and c.kwargs.get("name") == "storage"]
        assert len(creates) == 1, "this run's create was refused, the other run's container is the one there"
        assert entry(report, "container", "storage")["actions"] == ["create", "start"]
    # And the next run has nothing to do.
    since = len(engine.calls)
    again, gateway = run(engine, stack)
    assert again["changed"] is False, ms.changed_entries(again)
    assert ms.stack_writes(engine, since, gateway) == []


def test_a_409_for_a_container_someone_else_made_is_an_error_that_leaves_it_alone(base):
    engine = ms.new_engine()
    engine.fail_next("create_container", 409, 'Conflict. The container name "/storage" is already in use',
                     match=lambda *args, **kwargs: kwargs.get("name") == "storage",
                     before=lambda e: e.create_container(NGINX, name="storage", labels={"owner": "someone"}))
    with pytest.raises(ClockworkError) as failed:
        run(engine, ms.params(base, *showcase(database=False)))
    assert "cannot create container storage: another container took the name meanwhile" in failed.value.msg
    assert "left alone" in failed.value.msg
    theirs = container(engine, "storage")
    assert theirs["Config"]["Labels"] == {"owner": "someone"} and ms.state_of(theirs)[0] == "created"


# -- a killed run ---------------------------------------------------------------------------------

def killed_recreate(engine, base, name, stage):
    """What a run killed in the middle of a stop-first recreate of `name` leaves: the previous
    container renamed aside and stopped, and, by `stage`, no new one yet ("aside"), a new one created
    but never started ("created"), or a new one that runs ("running")."""
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import aside_name
    old = container(engine, name)
    aside = aside_name(name, old["Id"])
    engine.rename(old["Id"], aside)
    engine.stop(old["Id"])
    if stage != "aside":
        carried = ["%s:%s:rw" % (m["Name"], m["Destination"]) for m in old["Mounts"] if m["Type"] == "volume"
                   and ms.HEX_ID.match(m["Name"])]
        replayed_create(base, name, carried)(engine)
        if stage == "running":
            engine.start(name)
    return old, aside


@pytest.mark.parametrize("stage", ["aside", "created", "running"])
def test_a_run_killed_in_a_recreate_is_repaired_by_the_next(base, stage):
    engine, stack = deployed(base, database=None)
    data = ms.mounts_of(container(engine, "postgres"))[PG_DATA][1]
    engine.add_file("postgres", PG_DATA + "/PG_VERSION", "15\n")
    old, aside = killed_recreate(engine, base, "postgres", stage)
    left = container(engine, "postgres")

    report, _gateway = run(engine, stack)

    done = entry(report, "container", "postgres")
    assert done["changed"] is True
    if stage == "running":
        # The new one ran: the recreate had done its work; the previous one goes.
        assert done["actions"] == ["remove %s, left by an interrupted run" % aside], done
        assert container(engine, "postgres")["Id"] == left["Id"]
        assert engine.inspect_or_none("container", old["Id"]) is None
    else:
        # The replacement never ran: the previous container comes back, with its data, and runs.
        assert done["actions"] == ["restore postgres from %s, left by an interrupted run" % aside, "start"], done
        assert container(engine, "postgres")["Id"] == old["Id"]
        if left is not None:
            assert engine.inspect_or_none("container", left["Id"]) is None, "the never-started one is gone"
    restored = container(engine, "postgres")
    assert ms.state_of(restored) == ("running", "healthy")
    assert ms.mounts_of(restored)[PG_DATA][1] == data
    assert read_file(engine, "postgres", PG_DATA + "/PG_VERSION") == b"15\n"
    assert ms.container_names(engine) == ["api", "frontend", "postgres", "redis", "storage"], "nothing left aside"
    since = len(engine.calls)
    again, gateway = run(engine, stack)
    assert again["changed"] is False and ms.stack_writes(engine, since, gateway) == []


@pytest.mark.parametrize("old_running", [True, False], ids=["beside-the-old", "old-gone"])
def test_a_run_killed_in_a_start_first_replacement_is_completed_or_dropped(base, old_running):
    """frontend is replaced start-first: a killed run leaves `frontend_clockwork_next_<id>` running,
    beside the previous one (dropped: the convergence replaces it again if need be) or after the
    previous one was removed (it takes the name)."""
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.rolling import next_name
    engine, stack = deployed(base, database=None)
    old = container(engine, "frontend")
    temporary = next_name("frontend", old["Id"])
    engine.create_container(NGINX, name=temporary, labels=labels("frontend"))
    engine.start(temporary)
    new_id = container(engine, temporary)["Id"]
    if not old_running:
        engine.stop(old["Id"])
        engine.remove_container(old["Id"])

    report, _gateway = run(engine, stack)

    done = entry(report, "container", "frontend")
    if old_running:
        assert done["actions"] == ["remove %s, left by an interrupted run" % temporary], done
        assert container(engine, "frontend")["Id"] == old["Id"]
        assert engine.inspect_or_none("container", new_id) is None
    else:
        assert done["actions"][0] == "complete the replacement of frontend by %s, left by an interrupted run" \
            % temporary, done
        # The one it completed was made by hand here, without the declared settings: replaced again.
        assert done["actions"][1:] == ["replace start-first", "start"], done
    assert ms.container_names(engine) == ["api", "frontend", "postgres", "redis", "storage"]
    assert ms.state_of(container(engine, "frontend"))[0] == "running"
    again, _gateway = run(engine, stack)
    assert again["changed"] is False, ms.changed_entries(again)


# -- check mode ---------------------------------------------------------------------------------

DRIFT = dict(postgres={"env": {"POSTGRES_PASSWORD": ms.PASSWORD, "POSTGRES_DB": "appdb", "TZ": "UTC"}},
             frontend={"env": {"FEATURE": "on"}})
# case -> (the engine's state before, the declaration's changes, the state asked)
CASES = {"cold": (False, {}, "present"), "drift": (True, DRIFT, "present"), "destroy": (True, {}, "absent")}


def in_state(base, case, database):
    """A new engine in the state the case starts from."""
    deploy, _changes, _state = CASES[case]
    if not deploy:
        return ms.new_engine()
    return deployed(base, database)[0]


def case_params(base, case, database=True):
    _deploy, changes, state = CASES[case]
    return ms.params(base, *showcase(database=database, **changes), state=state)


def comparable(report, base_dirs=(), kinds=None):
    """The entries as two engines can agree on them: ids, and base directories, named alike."""
    def same(text):
        for directory in base_dirs:
            text = text.replace(str(directory), "<base>")
        return ms.HEX_ID.sub("<id>", text)
    return [(e["kind"], same(e["name"]), e["changed"], [same(a) for a in e["actions"]])
            for e in report["entries"] if kinds is None or e["kind"] in kinds]


DOCKER_KINDS = ("container", "network", "volume", "connection")


def check_and_real(base, database, case):
    """The case run in check mode on a dry run over one engine, then for real on another in the same
    state (in this order: the scripted database is shared, and check mode applies nothing to it).
    Returns (the live stand-in, its snapshot before, its call count before, check report, dry gateway,
    real report, real gateway)."""
    live, real = in_state(base, case, database), in_state(base, case, database)
    before, since = ms.snapshot(live), len(live.calls)
    dry = dry_run_gateway(live=live)
    checked = run_stack(dry, case_params(base, case), diff=True)
    report, gateway = run(real, case_params(base, case), diff=True)
    return live, before, since, checked, dry, report, gateway


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_mode_on_a_dry_run_writes_nothing_and_reports_what_the_real_run_does(base, database, case):
    live, before, since, checked, _dry, report, _gateway = check_and_real(base, database, case)
    assert [c for c in live.calls[since:] if c.method in ms.WRITES] == [], "no write reached the engine under it"
    assert ms.snapshot(live) == before
    assert checked["changed"] is True and report["changed"] is True
    assert comparable(checked, kinds=DOCKER_KINDS) == comparable(report, kinds=DOCKER_KINDS)
    if case == "cold":
        assert database.applies == [("schema", "schema.sql")], "applied once, by the real run"


def test_check_mode_tells_a_new_host_file_as_the_real_run_writes_it(base, database):
    _live, _before, _since, checked, _dry, report, _gateway = check_and_real(base, database, "cold")
    assert comparable(checked, kinds=("file",)) == comparable(report, kinds=("file",))


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_mode_records_the_actions_the_real_run_performs(base, database, case):
    _live, _before, _since, _checked, dry, _report, gateway = check_and_real(base, database, case)
    assert ms.without_lock(gateway.actions), "the real run wrote"
    # The same actions; between containers that converge in parallel the order is the threads'.
    assert sorted(ms.without_lock(dry.actions)) == sorted(ms.without_lock(gateway.actions))


def unchanged_on_a_dry_run(tmp_path, case):
    """The case run as for real (check_mode=False) on a dry run's gateway over one engine, and for
    real on another in the same state, each with a base directory of its own. Without the database
    connection: its server side has no dry-run target yet (the scripted login would apply the schema)."""
    dry_base, real_base = tmp_path / "dry", tmp_path / "real"
    dry_base.mkdir()
    real_base.mkdir()
    live, real = in_state(dry_base, case, None), in_state(real_base, case, None)
    before, since = ms.snapshot(live), len(live.calls)
    dry = dry_run_gateway(live=live)
    checked = run_stack(dry, case_params(dry_base, case, database=False))
    report, gateway = run(real, case_params(real_base, case, database=False))
    return live, before, since, dry_base, real_base, checked, dry, report, gateway


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_applier_unchanged_on_a_dry_run_records_the_real_runs_actions(tmp_path, case):
    """Check mode by construction (issue 33): no write reaches the engine under the dry run, which
    records the actions the real run performs and reports the same entries."""
    live, before, since, dry_base, real_base, checked, dry, report, gateway = unchanged_on_a_dry_run(tmp_path, case)
    assert [c for c in live.calls[since:] if c.method in ms.WRITES] == []
    assert ms.snapshot(live) == before
    assert ms.without_lock(gateway.actions)
    # The same actions; between containers that converge in parallel the order is the threads'.
    assert sorted(ms.without_lock(dry.actions)) == sorted(ms.without_lock(gateway.actions))
    if case == "drift":
        assert "rename container <id> to postgres_clockwork_old_<id>" in ms.without_lock(dry.actions)
    bases = (dry_base, real_base)
    assert comparable(checked, bases, DOCKER_KINDS) == comparable(report, bases, DOCKER_KINDS)


def test_the_applier_unchanged_on_a_dry_run_writes_no_host_file(tmp_path):
    _live, _before, _since, dry_base, _real_base, _checked, _dry, _report, _gateway = \
        unchanged_on_a_dry_run(tmp_path, "cold")
    assert not (dry_base / "config.json").exists()


# -- what the memory engine scripts, met by the applier's waits --------------------------------

def test_a_container_healthy_after_a_while_is_waited_for(base):
    engine = ms.new_engine()
    engine.after_start("redis", health="starting", then="healthy", after=5)
    report, _gateway = run(engine, ms.params(base, *showcase(database=False)))
    assert entry(report, "container", "redis")["actions"] == ["create", "start"]
    assert ms.state_of(container(engine, "redis")) == ("running", "healthy")


def test_a_fixed_host_port_is_free_on_the_memory_engine_whatever_this_machine_holds(base):
    import socket
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        engine = ms.new_engine()
        report, _gateway = run(engine, ms.params(base, *showcase(database=False,
                                                                 frontend={"ports": ["%d:80" % port]})))
    finally:
        holder.close()
    bindings = container(engine, "frontend")["NetworkSettings"]["Ports"]["80/tcp"]
    assert str(port) in [b["HostPort"] for b in bindings], report["entries"]


# -- verified -----------------------------------------------------------------------------------

def answering(engine):
    """The execs the showcase's checks run, answered as its servers answer them (the memory engine
    runs no program): the config file's checksum, and the API's health."""
    config = hashlib.sha256(showcase()[0][2]["content"].encode("utf-8")).hexdigest()
    engine.execs = {"sha256sum": lambda _container, argv, _env: (0, "%s  %s" % (config, argv[1])),
                    "curl": (0, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok")}
    return engine


def test_verified_converges_on_a_dry_run_of_its_own_and_checks_the_stack_as_it_runs(base):
    engine, stack = deployed(base)
    answering(engine)
    since = len(engine.calls)

    report, gateway = run(engine, dict(stack, state="verified"))

    assert report["changed"] is False and ms.changed_entries(report) == []
    assert [(c["connection"], c["ok"]) for c in report["checks"]] == [
        ("network api -> redis", True), ("file api -> config_file", True), ("file api -> storage", True),
        ("service_mesh frontend -> api", True), ("dependency frontend -> redis", True)], report["checks"]
    assert [c for c in engine.calls[since:] if c.method in ms.WRITES] == [], "no write, not even the lock's"
    assert gateway.actions == []
    # A declaration the stack does not run yet: its entries say what a deploy would do, and the
    # checks run against the containers as they are, nothing changed.
    drifted = ms.params(base, *showcase(database=False, frontend={"env": {"FEATURE": "on"}}), state="verified")
    before = ms.snapshot(engine)
    report, gateway = run(engine, drifted)
    assert report["changed"] is False
    assert entry(report, "container", "frontend")["actions"] == ["replace start-first", "start"]
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert ms.snapshot(engine) == before and gateway.actions == []
    assert "FEATURE" not in ms.env_of(container(engine, "frontend"))


def test_verified_of_a_broken_stack_fails_its_checks_and_starts_nothing(base):
    engine, stack = deployed(base)
    answering(engine)
    engine.stop("redis")
    with pytest.raises(ClockworkError) as failed:
        run(engine, dict(stack, state="verified"))
    # The memory engine answers the DNS check's exec as it always does: the dependency's check fails.
    assert failed.value.msg == "1 of 5 checks failed: dependency frontend -> redis: redis is exited, unhealthy"
    assert ms.state_of(container(engine, "redis"))[0] == "exited", "verified started nothing (its dry run would)"


def test_verified_waits_for_no_container_of_its_own(base):
    """postgres (nothing connects to it here) and api (frontend's service mesh ends at it) turned
    unhealthy: a deploy would wait for them and fail; verified runs the checks, which say what they see."""
    engine, stack = deployed(base)
    answering(engine)
    for name in ("postgres", "api"):
        engine.set_health(name, "unhealthy")
    report, gateway = run(engine, dict(stack, state="verified"))
    assert [c["ok"] for c in report["checks"]] == [True] * 5, report["checks"]
    assert gateway.actions == []


# -- the anonymous volumes a destroy kept ---------------------------------------------------------

def destroyed(base, database):
    """The showcase deployed, then destroyed without purge: (engine, declaration, the anonymous
    volumes it kept)."""
    engine, stack = deployed(base, database)
    anonymous = sorted(m[1] for n in ("postgres", "redis") for t, m in ms.mounts_of(container(engine, n)).items()
                       if t in (PG_DATA, "/data"))
    report, _gateway = run(engine, dict(stack, state="absent"))
    for volume in anonymous:
        assert entry(report, "volume", volume[:12])["actions"] == ["anonymous, kept (purge to remove)"]
    return engine, stack, anonymous


def kept_record(stack=STACK):
    return os.path.join(os.path.expanduser("~"), ".clockwork", stack, "kept-volumes", "anonymous.json")


def test_a_purge_in_check_mode_after_a_destroy_says_it_removes_the_kept_volumes_and_removes_none(base, database):
    engine, stack, anonymous = destroyed(base, database)
    before, since = ms.snapshot(engine), len(engine.calls)
    recorded = open(kept_record()).read()

    checked = run_stack(dry_run_gateway(live=engine), dict(stack, state="absent", purge=True))

    for volume in anonymous:
        assert entry(checked, "volume", volume[:12])["actions"] == ["remove anonymous volume"]
    assert [c for c in engine.calls[since:] if c.method in ms.WRITES] == [] and ms.snapshot(engine) == before
    assert open(kept_record()).read() == recorded, "the record stays as it was"
    again, _gateway = run(engine, dict(stack, state="absent"))
    assert again["changed"] is False, ms.changed_entries(again)


def test_the_record_of_kept_volumes_is_data_that_names_only_what_the_stack_may_remove(base, database):
    engine, stack, anonymous = destroyed(base, database)
    theirs = "f" * 64
    engine.create_volume(theirs, labels={ms.STACK_LABEL: "other"})   # another stack's, named like an anonymous one
    with open(kept_record()) as handle:
        names = json.load(handle)["anonymous"]
    assert names == anonymous
    with open(kept_record(), "w") as handle:
        json.dump({"anonymous": names + [theirs, "app-shared-data", "../x", 7]}, handle)

    report, _gateway = run(engine, dict(stack, state="absent", purge=True))

    assert ms.volume_names(engine) == [theirs], report["entries"]
    assert not os.path.exists(os.path.dirname(kept_record())), "nothing kept: no record"
    with open(os.path.join(str(base), "not-json"), "w") as handle:
        handle.write("{")
    os.makedirs(os.path.dirname(kept_record()))
    os.rename(os.path.join(str(base), "not-json"), kept_record())
    with pytest.raises(ClockworkError) as failed:
        run(engine, dict(stack, state="absent", purge=True))
    assert failed.value.msg == ("%s is not the record of the volumes a destroy of stack showcase kept (JSON with a "
                                "list `anonymous`): remove it and run again" % kept_record())
    assert ms.volume_names(engine) == [theirs]
