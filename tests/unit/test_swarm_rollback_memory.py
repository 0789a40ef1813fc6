"""A Swarm stack back on a release (issue 35 part 6: apply/swarm/rollback.py) on the memory swarm:
after a failed deploy (SwarmApplier.return_to) and on demand (SwarmApplier.rolled_back), and the
secrets a kept release needs kept (apply/swarm/secrets.py).

What is asserted is read from the engine: each service's Spec compared with the one its release
recorded (releases/record.py stack_services), its tasks, the secrets. Both go through the stack
module's entry point (run_stack: apply/applier.py apply_state calls the hooks)."""
import json

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.applier import SwarmApplier
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionResult
from ansible_collections.clockwork.connections.plugins.module_utils.database import restore
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.stack import run_stack
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore, dumps

import memory_stacks as ms
from memory_stacks import home, instant_waits  # noqa: F401  (fixtures, autouse)
from memory_stacks import NGINX, STACK, run


@pytest.fixture
def base(tmp_path):
    directory = tmp_path / "base"
    directory.mkdir()
    return directory


def declaration(base, extra=(), **changes):
    resources, connections = ms.showcase(database=False, api_replicas=2, **changes)
    resources.extend(extra)
    for resource in resources:
        if resource.get("type", "container") == "container":
            resource.setdefault("endpoint_mode", "dnsrr")
    return ms.params(base, resources, connections, engine="swarm")


def store(engine):
    """The stack's releases, in `engine` (a memory engine, or a gateway over one)."""
    return ReleaseStore(engine if isinstance(engine, DockerGateway) else ms.RecordingGateway(engine), STACK)


def specs(engine):
    """name -> Spec of the stack's services now."""
    return dict((s["Spec"]["Name"], s["Spec"]) for s in engine.services(filters={"label": "%s=%s" % (
        ms.STACK_LABEL, STACK)}))


def recorded(engine, number):
    return dict((name, s["spec"]) for name, s in store(engine).release(number)["services"].items())


def running_tasks(engine, name):
    return sorted(t["ID"] for t in engine.tasks(filters={"service": name}) if t["Status"]["State"] == "running")


def env(spec):
    return dict(e.partition("=")[::2] for e in spec["TaskTemplate"]["ContainerSpec"].get("Env") or [])


def released(engine, base, **changes):
    """Apply a declaration that changes something: the release it recorded."""
    report, _gateway = run(engine, declaration(base, **changes))
    assert report["changed"] and report.get("release"), report
    return report["release"]["number"]


def failed_deploy(engine, params):
    """The failure's message of a deploy that fails (apply_state: the stack went back, it says how)."""
    with pytest.raises(ClockworkError) as failed:
        run(engine, params)
    return failed.value.msg


def rolled_back(engine, base, which, check=False, restore_data=False, gateway=None):
    """`state: rolled_back` to `which` (a number or "previous") through the stack module's entry point;
    (report, gateway)."""
    gateway = gateway or (dry_run_gateway(live=engine) if check else ms.RecordingGateway(engine))
    params = ms.params(base, [], [], engine="swarm", state="rolled_back", release=str(which),
                       restore_data=restore_data)
    return run_stack(gateway, params), gateway


# -- a failed deploy ---------------------------------------------------------------------------

def test_a_failed_deploy_puts_every_service_it_updated_back_on_the_previous_release_and_removes_what_it_made(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    before = specs(engine)
    serving = running_tasks(engine, "frontend")
    engine.after_start("frontend", exits=1)
    extra = [{"name": "extra", "image": NGINX}]
    message = failed_deploy(engine, declaration(base, extra=extra, api={"env": {"FEATURE": "on"}},
                                                frontend={"env": {"FEATURE": "on"}}))

    assert "service frontend" in message
    assert specs(engine) == before == recorded(engine, first), "api, updated by the run, and frontend are on release 1"
    assert "extra" not in specs(engine), "a service new in the failed run is removed"
    assert running_tasks(engine, "frontend") == serving, "start-first: the previous task served throughout"
    assert len(running_tasks(engine, "api")) == 2
    assert "the stack is back on release %d (" % first in message, message
    assert "service api: back to release %d (stop-first)" % first in message, message
    assert "service extra: removed (not in release %d)" % first in message, message
    assert "service frontend: back to release %d (start-first)" % first in message, message
    assert store(engine).index()["current"] == first, "a failed run records no release"


def test_a_failed_first_deploy_has_no_release_to_go_back_to(base):
    engine = ms.new_engine(swarm=True)
    engine.after_start("frontend", exits=1)
    gateway = ms.RecordingGateway(engine)
    applier = SwarmApplier(gateway, declaration(base))
    with pytest.raises(ClockworkError):
        applier.present()
    assert applier.return_to({"target": "docker", "number": 1, "services": {}, "containers": {}}) == []
    applier.close()


def test_a_service_whose_return_fails_is_named_with_the_release(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    engine.after_start("frontend", exits=1)
    gateway = ms.RecordingGateway(engine)
    applier = SwarmApplier(gateway, declaration(base, frontend={"image": ms.REDIS}))
    with pytest.raises(ClockworkError):
        applier.present()
    # The old task is gone meanwhile (its node lost): the return must start a task, which fails.
    for task in engine._tasks.values():   # pylint: disable=protected-access
        if task["Status"]["State"] == "running" and task["ServiceID"] == engine.inspect_service("frontend")["ID"]:
            engine._shutdown(task)   # pylint: disable=protected-access
    with pytest.raises(ClockworkError) as failed:
        applier.return_to(store(gateway).release(first))
    assert "did not come back on release %d whole: service frontend" % first in failed.value.msg
    applier.close()


# -- rollback on demand ------------------------------------------------------------------------

def test_rollback_puts_each_service_on_the_release_spec_removes_the_others_and_a_rerun_changes_nothing(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    second = released(engine, base, extra=[{"name": "extra", "image": NGINX}], api={"env": {"FEATURE": "on"}},
                      frontend={"env": {"FEATURE": "on"}})
    assert env(specs(engine)["api"])["FEATURE"] == "on"
    serving = running_tasks(engine, "redis")

    report, gateway = rolled_back(engine, base, "previous")

    assert report["changed"] is True and report["release"]["number"] == second + 1
    assert report["rolled_back_to"] == first
    assert specs(engine) == recorded(engine, first)
    assert running_tasks(engine, "redis") == serving, "a service already on the release is left alone"
    changed = ms.changed_entries(report)
    assert ("service", "api", ["update"]) in changed
    assert ("service", "frontend", ["update"]) in changed
    assert ("service", "extra", ["remove"]) in changed
    assert ms.entry(report, "service", "extra")["reasons"] == ["not in release %d" % first]
    assert ms.entry(report, "service", "api")["reasons"] == ["env FEATURE", "spec.Labels"]   # its spec-hash
    assert not [e for e in changed if e[1] in ("redis", "postgres", "storage")]
    assert any("update service api" in a for a in gateway.actions)
    assert recorded(engine, second + 1) == recorded(engine, first), "the rollback is recorded as a new release of the same specs"

    again, gateway = rolled_back(engine, base, "previous")   # the rollback's own release: the same target
    assert again["changed"] is False and ms.without_lock(gateway.actions) == []
    assert again["rolled_back_to"] == first and store(engine).index()["current"] == second + 1


def test_rollback_in_check_mode_records_the_actions_of_the_real_run_and_changes_nothing(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    released(engine, base, api={"env": {"FEATURE": "on"}}, frontend={"env": {"FEATURE": "on"}})
    before, since = ms.snapshot(engine), len(engine.calls)
    checked, dry = rolled_back(engine, base, first, check=True)
    assert [c for c in engine.calls[since:] if c.method in ms.WRITES] == []
    assert ms.snapshot(engine) == before

    report, gateway = rolled_back(engine, base, first)
    assert checked["changed"] is True
    assert ms.changed_entries(checked) == ms.changed_entries(report)
    assert sorted(a for a in dry.actions if "service" in a) == sorted(a for a in gateway.actions if "service" in a)

    checked, dry = rolled_back(engine, base, first, check=True)
    assert checked["changed"] is False and [a for a in dry.actions if "service" in a] == []


def test_rollback_creates_a_service_of_the_release_that_is_gone(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    engine.remove_service("storage")
    report, _gateway = rolled_back(engine, base, first)
    assert ("service", "storage", ["create"]) in ms.changed_entries(report)
    assert specs(engine)["storage"] == recorded(engine, first)["storage"]
    assert len(running_tasks(engine, "storage")) == 1


def test_rollback_leaves_services_of_other_stacks_alone(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    engine.create_service({"ContainerSpec": {"Image": NGINX}}, name="outsider", labels={"owner": "someone"})
    outsider = engine.inspect_service("outsider")["Version"]
    report, _gateway = rolled_back(engine, base, first)
    assert report["changed"] is False
    assert engine.inspect_service("outsider")["Version"] == outsider


def test_rollback_is_refused_before_any_change_when_an_image_is_gone(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    released(engine, base, api={"env": {"FEATURE": "on"}}, frontend={"image": ms.REDIS})
    del engine._images[engine.inspect_image(NGINX)["Id"]]   # pylint: disable=protected-access  # `docker rmi -f`
    before, since, gateway = ms.snapshot(engine), len(engine.calls), ms.RecordingGateway(engine)
    with pytest.raises(ClockworkError) as refused:
        rolled_back(engine, base, first, gateway=gateway)
    assert "release %d" % first in refused.value.msg and NGINX in refused.value.msg, refused.value.msg
    assert "frontend" in refused.value.msg
    assert ms.stack_writes(engine, since, gateway) == [] and ms.snapshot(engine) == before


def test_rollback_is_refused_before_any_change_when_a_secret_it_names_is_gone(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    released(engine, base, postgres={"env": {"POSTGRES_PASSWORD": "other456", "POSTGRES_DB": "appdb"}})  # pragma: allowlist secret
    old = [r["SecretName"] for r in recorded(engine, first)["postgres"]["TaskTemplate"]["ContainerSpec"]["Secrets"]]
    for secret in engine.secrets():
        if secret["Spec"]["Name"] in old:
            engine.remove_secret(secret["ID"])   # by hand: the stack itself keeps it (below)
    since, gateway = len(engine.calls), ms.RecordingGateway(engine)
    with pytest.raises(ClockworkError) as refused:
        rolled_back(engine, base, first, gateway=gateway)
    assert "service postgres: secret %s" % old[0] in refused.value.msg, refused.value.msg
    assert ms.stack_writes(engine, since, gateway) == []


def test_rollback_refuses_restore_data_and_a_release_of_the_docker_target(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    with pytest.raises(ClockworkError) as refused:
        rolled_back(engine, base, first, restore_data=True)
    assert "restore_data: no deploy after release %d is kept" % first in refused.value.msg, refused.value.msg
    gateway = ms.RecordingGateway(engine)
    applier = SwarmApplier(gateway, ms.params(base, [], [], engine="swarm"))
    with pytest.raises(ClockworkError) as refused:
        applier.rolled_back(dict(store(engine).release(first), target="docker"), False)
    assert "made with engine docker" in refused.value.msg
    applier.close()


# -- secrets a kept release needs --------------------------------------------------------------

ROTATED = {"postgres": {"env": {"POSTGRES_PASSWORD": "other456", "POSTGRES_DB": "appdb"}}}  # pragma: allowlist secret


def secret_names(engine):
    return sorted(s["Spec"]["Name"] for s in engine.secrets())


def test_a_rotated_secret_stays_while_a_kept_release_uses_it_and_a_rollback_finds_it(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    old = secret_names(engine)
    released(engine, base, **ROTATED)
    assert set(old) < set(secret_names(engine)), "the old password's secret is kept for release %d" % first
    report, _gateway = rolled_back(engine, base, first)
    assert ("service", "postgres", ["update"]) in ms.changed_entries(report)
    assert specs(engine)["postgres"] == recorded(engine, first)["postgres"]


def test_a_secret_goes_once_no_kept_release_uses_it(base):
    engine = ms.new_engine(swarm=True)
    run(engine, declaration(base))
    old = set(secret_names(engine))
    rotated = declaration(base, **ROTATED)
    rotated["releases_kept"] = 1
    report, _gateway = run(engine, rotated)
    assert old < set(secret_names(engine)), "release 1 is the current one while the run collects"
    report, _gateway = run(engine, rotated)   # release 1 was pruned when release 2 was recorded
    removed = [e["name"] for e in report["entries"] if e["kind"] == "secret" and e["changed"]]
    assert sorted(removed) == sorted(old - set(secret_names(engine))) and removed
    assert not old & set(secret_names(engine)) - set(
        r["SecretName"] for s in specs(engine).values() for r in s["TaskTemplate"]["ContainerSpec"].get("Secrets") or [])


def test_an_unreadable_release_keeps_every_secret(base):
    engine = ms.new_engine(swarm=True)
    run(engine, declaration(base))
    old = set(secret_names(engine))
    released(engine, base, **ROTATED)
    store(engine).shelf.write(1, b"not json")
    rotated = declaration(base, **ROTATED)
    rotated["releases_kept"] = 1
    report, _gateway = run(engine, dict(rotated, resources=rotated["resources"]))
    assert old <= set(secret_names(engine))
    assert not [e for e in report["entries"] if e["kind"] == "secret" and e["changed"]]


def image_of(engine, name):
    """The image the service's running tasks were created from, by id."""
    ids = set()
    for task in engine.tasks(filters={"service": name}):
        if task["Status"]["State"] == "running":
            ids.add(ms.container(engine, task["Status"]["ContainerStatus"]["ContainerID"])["Image"])
    return ids


def test_a_rollback_runs_the_image_the_release_ran_when_its_tag_was_rebuilt_since(base):
    engine = ms.new_engine(swarm=True)
    old = engine.inspect_image(NGINX)["Id"]
    first = released(engine, base)
    new = engine.add_image(NGINX, {"Cmd": ["nginx", "-g", "daemon off;"], "Env": ["REBUILT=1"]})   # `docker build -t`
    assert new != old
    released(engine, base)   # the same declaration: the tag's new image rolls the tasks
    assert image_of(engine, "frontend") == {new}

    report, _gateway = rolled_back(engine, base, first)
    assert ("service", "frontend", ["update"]) in ms.changed_entries(report)
    assert image_of(engine, "frontend") == {old} and image_of(engine, "api") == {old}
    assert specs(engine)["frontend"]["TaskTemplate"]["ContainerSpec"]["Image"] == old, "pinned by id"
    again, _gateway = rolled_back(engine, base, "previous")
    assert again["changed"] is False


def test_a_failed_deploy_leaves_a_service_it_did_not_touch_as_it_is(base):
    engine = ms.new_engine(swarm=True)
    released(engine, base)
    redis = engine.inspect_service("redis")
    spec = redis["Spec"]
    engine.update_service(redis["ID"], redis["Version"]["Index"], task_template=spec["TaskTemplate"],
                          name="redis", labels=dict(spec["Labels"], by="hand"), mode=spec["Mode"],
                          endpoint_spec=spec["EndpointSpec"], update_config=spec.get("UpdateConfig"))
    engine.after_start("frontend", exits=1)
    message = failed_deploy(engine, declaration(base, frontend={"env": {"FEATURE": "on"}}))
    assert "service frontend: back to release 1 (start-first)" in message and "service redis" not in message
    assert engine.inspect_service("redis")["Spec"]["Labels"]["by"] == "hand"


def test_a_service_that_became_a_job_is_made_again_as_the_release_had_it(base):
    engine = ms.new_engine(swarm=True)
    migrate = {"name": "migrate", "image": NGINX, "command": ["sh", "-c", "echo migrated"]}
    first = released(engine, base, extra=[migrate])
    assert "Replicated" in specs(engine)["migrate"]["Mode"]
    params = declaration(base, extra=[migrate])
    params["connections"].append({"type": "dependency", "from": "frontend", "to": "migrate",
                                  "condition": "completed_successfully"})
    params = ms.params(base, params["resources"], params["connections"], engine="swarm")
    report, _gateway = run(engine, params)
    assert "ReplicatedJob" in specs(engine)["migrate"]["Mode"], report["entries"]

    report, _gateway = rolled_back(engine, base, first)
    assert ("service", "migrate", ["recreate"]) in ms.changed_entries(report)
    assert specs(engine)["migrate"] == recorded(engine, first)["migrate"]
    assert rolled_back(engine, base, "previous")[0]["changed"] is False


def test_a_failed_deploy_removes_the_secrets_only_it_made(base):
    engine = ms.new_engine(swarm=True)
    released(engine, base)
    kept = secret_names(engine)
    engine.after_start("postgres", exits=1)
    message = failed_deploy(engine, declaration(base, **ROTATED))
    assert "service postgres: back to release 1" in message, message
    assert secret_names(engine) == kept


TOKEN = "tok-Secret-4711"   # pragma: allowlist secret


def test_the_diff_of_a_rollback_shows_what_changes_and_no_secret(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base, api={"env": {"API_TOKEN": TOKEN + "a"}, "plain_env": ["API_TOKEN"]})
    released(engine, base, api={"env": {"API_TOKEN": TOKEN + "b", "FEATURE": "on"}, "plain_env": ["API_TOKEN"]})
    gateway = dry_run_gateway(live=engine)
    params = ms.params(base, [], [], engine="swarm", state="rolled_back", release=str(first))
    report = run_stack(gateway, params, diff=True)
    assert TOKEN not in str(report), "no value of a secret, old or new"
    diff = [d for d in report["diff"] if d["before_header"] == "service api"]
    assert diff and diff[0]["before"]["env"]["FEATURE"] == "on" and "FEATURE" not in diff[0]["after"]["env"]
    reasons = ms.entry(report, "service", "api")["reasons"]
    assert "env API_TOKEN" in reasons and "env FEATURE" in reasons, reasons


# -- an overlay network of other settings (apply/swarm/preflight.py) ----------------------------

def test_a_network_resource_whose_settings_changed_is_refused_before_any_change_on_swarm(base):
    engine = ms.new_engine(swarm=True)
    backend = {"name": "backend", "type": "network", "network_name": "showcase_backend", "internal": True}
    api = {"name": "web", "image": NGINX, "endpoint_mode": "dnsrr", "networks": [{"name": "showcase_backend"}]}
    report, _gateway = run(engine, ms.params(base, [api, backend], [], engine="swarm"))
    assert ms.entry(report, "network", "showcase_backend")["changed"] is True
    since, gateway = len(engine.calls), ms.RecordingGateway(engine)
    with pytest.raises(ClockworkError) as refused:
        run_stack(gateway, ms.params(base, [dict(api, env={"A": "1"}), dict(backend, internal=False)], [],
                                     engine="swarm"))
    assert "network showcase_backend exists with other settings (internal)" in refused.value.msg
    assert "nothing was changed" in refused.value.msg
    assert ms.stack_writes(engine, since, gateway) == []
    report, _gateway = run(engine, ms.params(base, [api, backend], [], engine="swarm"))
    assert report["changed"] is False


def test_a_rollback_that_failed_half_way_is_completed_by_the_next_run_of_it(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    second = released(engine, base, api={"env": {"FEATURE": "on"}}, frontend={"env": {"FEATURE": "on"}})
    engine.fail_next("update_service", 500, "rpc error: code = Unavailable desc = the manager went away",
                     match=lambda *args, **kwargs: kwargs.get("name") == "frontend")
    with pytest.raises(ClockworkError) as failed:
        rolled_back(engine, base, "previous")
    assert "service frontend: the Swarm manager refused its return to release %d (update)" % first in \
        failed.value.msg
    assert store(engine).index()["current"] == second, "nothing recorded: the rollback did not finish"
    assert specs(engine)["api"] == recorded(engine, first)["api"] and specs(engine)["frontend"] != recorded(engine, first)["frontend"]

    report, _gateway = rolled_back(engine, base, "previous")
    assert ms.changed_entries(report) == [("service", "frontend", ["update"])]
    assert specs(engine) == recorded(engine, first) and report["release"]["number"] == second + 1


def test_a_rollback_after_a_destroy_and_a_deploy_finds_its_secrets_made_again_by_name(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    run(engine, dict(declaration(base), state="absent"))
    run(engine, declaration(base, api={"env": {"FEATURE": "on"}}))   # the same secrets and configs, new ids
    report, _gateway = rolled_back(engine, base, first)
    assert ("service", "api", ["update"]) in ms.changed_entries(report)
    postgres = specs(engine)["postgres"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert [s["SecretID"] for s in postgres] == [s["ID"] for s in engine.secrets()
                                                 if s["Spec"]["Name"] == postgres[0]["SecretName"]]
    assert env(specs(engine)["api"]).get("FEATURE") is None
    assert rolled_back(engine, base, "previous")[0]["changed"] is False


def test_a_rollback_after_a_destroy_is_refused_naming_what_is_gone(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    run(engine, dict(declaration(base), state="absent"))
    run(engine, declaration(base, **ROTATED))   # postgres's password is another secret now
    since, gateway = len(engine.calls), ms.RecordingGateway(engine)
    with pytest.raises(ClockworkError) as refused:
        rolled_back(engine, base, first, gateway=gateway)
    assert "cannot go back to release %d: what its services use is gone (service postgres: secret showcase_postgres_" \
        % first in refused.value.msg and "nothing was changed" in refused.value.msg, refused.value.msg
    assert ms.stack_writes(engine, since, gateway) == []


class Networks(object):
    """A gateway's network reads, by id or name."""

    def __init__(self, *networks):
        self.known = dict((key, n) for n in networks for key in (n["Id"], n["Name"]))

    def network(self, ref):
        return self.known.get(ref)


def test_a_network_the_release_names_by_a_gone_id_is_taken_by_its_recorded_name():
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.rollback import renetworked
    spec = {"TaskTemplate": {"Networks": [{"Target": "old1", "Aliases": ["api"]}, {"Target": "kept2"}]}}
    gateway = Networks({"Id": "new1", "Name": "shop_default"}, {"Id": "kept2", "Name": "shop_back"})
    moved = renetworked(gateway, spec, {"old1": "shop_default", "kept2": "shop_back"})
    assert moved["TaskTemplate"]["Networks"] == [{"Target": "new1", "Aliases": ["api"]}, {"Target": "kept2"}]
    assert spec["TaskTemplate"]["Networks"][0]["Target"] == "old1", "the record is not changed"
    assert renetworked(gateway, spec, None) is spec, "a release that recorded no names: as it is"
    assert renetworked(Networks({"Id": "kept2", "Name": "shop_back"}), spec, {"old1": "shop_default"}) is spec


# -- restore_data ------------------------------------------------------------------------------

LABEL = "database api -> postgres"
SNAPSHOT = {"name": "appdb-20261206T205500Z-ab12cd", "created": "2026-12-06 20:55:00 UTC", "size": 4096,
            "volume": "%s-clockwork-snapshots" % STACK, "kind": "pg_dump"}


@pytest.fixture
def restored(monkeypatch):
    """Each restore_connection call (database/restore.py, Helper S's, tested on its own): (the api's
    running tasks then, the connection's label, the snapshot, a dry run, the server's task located)."""
    calls = []

    def fake(gateway, stack, connection, snapshot):
        api = gateway.base.service("api")
        tasks = [t for t in gateway.base.tasks(filters={"service": api["ID"]}) if t["Status"]["State"] == "running"]
        node, task = gateway.locate(connection["to_resource"])
        calls.append((len(tasks), connection["label"], snapshot["name"], gateway.dry_run,
                      node is not None and task != connection["to_resource"]))
        result = ConnectionResult("database", "api", "postgres")
        result.act("restore snapshot %s of appdb, taken %s (4 kB): rows written to appdb after %s are lost"
                   % (snapshot["name"], snapshot["created"], snapshot["created"]))
        result.extra["restore"] = {"snapshot": snapshot["name"], "created": snapshot["created"],
                                   "lost": "rows written to appdb after %s are lost" % snapshot["created"]}
        return result
    monkeypatch.setattr(restore, "restore_connection", fake)
    return calls


def with_login(base, which, restore_data=True):
    """A rollback given the declaration's database connection api -> postgres (the login it restores with)."""
    resources, connections = ms.showcase(database=True)
    params = ms.params(base, resources, connections, engine="swarm", state="rolled_back", release=str(which),
                       restore_data=restore_data)
    return params


def snapshotted(engine, number, in_volume=True):
    """Release `number` as if its deploy took SNAPSHOT of appdb before its migrations; the snapshot in
    the stack's volume (its index, as database/snapshots.py keeps it) unless `in_volume` is False."""
    release = store(engine).release(number)
    release["databases"][LABEL] = {"to": "postgres", "engine": "postgresql", "database": "appdb", "migrations": [],
                                   "migrations_from": "plan", "snapshots": [SNAPSHOT]}
    store(engine).shelf.write(number, dumps(release))
    if in_volume:
        engine.create_volume(SNAPSHOT["volume"])
        index = [{"snapshot": SNAPSHOT["name"], "database": "appdb", "created": SNAPSHOT["created"], "kind": "pg_dump",
                  "size": 4096, "before": ["migration V2__label.sql"]}]
        engine._volume_files.setdefault(SNAPSHOT["volume"], {})["/index-postgres.json"] = \
            json.dumps(index).encode()   # pylint: disable=protected-access


def restore_run(engine, base, which, check=False, gateway=None):
    gateway = gateway or (dry_run_gateway(live=engine) if check else ms.RecordingGateway(engine))
    return run_stack(gateway, with_login(base, which)), gateway


def test_restore_data_scales_the_clients_to_0_restores_through_the_servers_task_then_puts_the_release_back(
        base, restored):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    second = released(engine, base, frontend={"env": {"FEATURE": "on"}})
    snapshotted(engine, second)
    report, _gateway = restore_run(engine, base, first)

    assert restored == [(0, "connection " + LABEL, SNAPSHOT["name"], False, True)], \
        "api's tasks stopped before the restore, which went to the task of postgres"
    assert [(e["kind"], e["name"], e["actions"][0].split(",")[0]) for e in report["entries"] if e["changed"]] == [
        ("service", "api", "stop"), ("database", LABEL, "restore snapshot %s of appdb" % SNAPSHOT["name"]),
        ("service", "frontend", "update"), ("service", "api", "update")]
    database = [e for e in report["entries"] if e["kind"] == "database"][0]
    assert "rows written to appdb after 2026-12-06 20:55:00 UTC are lost" in database["actions"][0]
    assert specs(engine) == recorded(engine, first), "every service on release 1's spec, api's 2 replicas included"
    assert len(running_tasks(engine, "api")) == 2
    assert report["restored"] == [dict(SNAPSHOT_RESTORED, database=LABEL, release=second)]
    assert store(engine).release(report["release"]["number"])["restored_data"] is True

    # A rerun of the same rollback restores nothing again (rows written since are kept) and changes nothing.
    report, _gateway = restore_run(engine, base, "previous")
    assert len(restored) == 1 and report["changed"] is False, ms.changed_entries(report)
    checked, _gateway = restore_run(engine, base, "previous", check=True)
    assert len(restored) == 1 and checked["changed"] is False


SNAPSHOT_RESTORED = {"snapshot": SNAPSHOT["name"], "created": SNAPSHOT["created"],
                     "lost": "rows written to appdb after %s are lost" % SNAPSHOT["created"]}


def test_check_mode_names_the_snapshot_and_what_is_lost_and_changes_nothing(base, restored):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    second = released(engine, base, frontend={"env": {"FEATURE": "on"}})
    snapshotted(engine, second, in_volume=False)   # a dry run reads no volume
    before, since = specs(engine), len(engine.calls)
    report, gateway = restore_run(engine, base, first, check=True)

    assert [call[3] for call in restored] == [True]
    assert ("service", "api", ["stop"]) in ms.changed_entries(report)
    database = [e for e in report["entries"] if e["kind"] == "database"][0]
    assert "restore snapshot %s of appdb, taken 2026-12-06 20:55:00 UTC (4 kB)" % SNAPSHOT["name"] in \
        database["actions"][0] and "are lost" in database["actions"][0]
    assert specs(engine) == before and [c for c in engine.calls[since:] if c.method in ms.WRITES] == []
    assert store(engine).index()["current"] == second


def test_a_snapshot_missing_from_the_volume_is_refused_before_any_change_naming_it(base, restored):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    second = released(engine, base, frontend={"env": {"FEATURE": "on"}})
    snapshotted(engine, second, in_volume=False)
    before, since, gateway = specs(engine), len(engine.calls), ms.RecordingGateway(engine)
    with pytest.raises(ClockworkError) as refused:
        restore_run(engine, base, first, gateway=gateway)
    assert "restore_data: snapshot %s of %s (taken 2026-12-06 20:55:00 UTC by release %d, before its migrations) " \
        "is not in volume %s on the node of service postgres (kept: none); nothing was changed" % (
            SNAPSHOT["name"], LABEL, second, SNAPSHOT["volume"]) in refused.value.msg, refused.value.msg
    assert restored == [] and specs(engine) == before
    assert ms.stack_writes(engine, since, gateway) == []


def test_restore_data_without_the_declarations_login_or_with_a_global_client_is_refused(base, restored):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    second = released(engine, base, frontend={"env": {"FEATURE": "on"}})
    snapshotted(engine, second)
    with pytest.raises(ClockworkError) as refused:
        rolled_back(engine, base, first, restore_data=True)
    assert "restore_data needs the login of database connection %s" % LABEL in refused.value.msg
    applier = SwarmApplier(ms.RecordingGateway(engine), with_login(base, first))
    release = store(engine).release(first)
    api = engine.inspect_service("api")
    engine.remove_service(api["ID"])   # made again global (no update changes a service's mode)
    engine.create_service(api["Spec"]["TaskTemplate"], name="api", mode={"Global": {}}, labels=api["Spec"]["Labels"])
    since, gateway = len(engine.calls), applier.engine
    with pytest.raises(ClockworkError) as refused:
        applier.rolled_back(release, True)
    assert "service api is global: its tasks cannot be scaled to 0" in refused.value.msg
    assert restored == [] and ms.stack_writes(engine, since, gateway) == []
    applier.close()


def test_restore_data_of_a_redis_copy_is_refused_on_swarm_before_any_change(base, restored):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    applier = SwarmApplier(ms.RecordingGateway(engine), with_login(base, first))
    since = len(engine.calls)
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm import rollback
    with pytest.raises(ClockworkError) as refused:
        rollback.clients_to_stop(applier, [("redis api -> cache", {"from_resource": "api"}, dict(SNAPSHOT, kind="rdb"),
                                            2)])
    assert "restore_data: redis api -> cache keeps Redis copies" in refused.value.msg, refused.value.msg
    assert "nothing was changed" in refused.value.msg
    assert ms.stack_writes(engine, since, applier.engine) == []
    applier.close()


def test_a_restore_that_fails_leaves_the_clients_stopped_and_the_same_rollback_completes_it(
        base, restored, monkeypatch):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    second = released(engine, base, frontend={"env": {"FEATURE": "on"}})
    snapshotted(engine, second)
    working = restore.restore_connection

    def failing(gateway, stack, connection, snapshot):
        raise ClockworkError("database api -> postgres: loading snapshot %s into appdb (pg_restore) failed" %
                             snapshot["name"])
    monkeypatch.setattr(restore, "restore_connection", failing)
    with pytest.raises(ClockworkError) as failed:
        restore_run(engine, base, first)
    assert "(pg_restore) failed\nservice api stays scaled to 0: the same rollback run again completes it" in \
        failed.value.msg, failed.value.msg
    assert running_tasks(engine, "api") == [] and store(engine).index()["current"] == second

    monkeypatch.setattr(restore, "restore_connection", working)
    report, _gateway = restore_run(engine, base, first)
    assert [c[0] for c in restored] == [0]
    assert specs(engine) == recorded(engine, first) and len(running_tasks(engine, "api")) == 2
    assert report["release"]["number"] == second + 1


# -- jobs are never run again by going back; a failed run's new networks go -------------------

MIGRATE = {"name": "migrate", "image": NGINX, "command": ["sh", "-c", "echo migrated v1"]}
SEED = {"name": "seed", "image": NGINX, "command": ["sh", "-c", "echo seeded"]}


def with_jobs(base, jobs=(MIGRATE,), **changes):
    """The declaration with `jobs`, each a replicated job (frontend waits for it to complete)."""
    params = declaration(base, extra=list(jobs), **changes)
    params["connections"].extend({"type": "dependency", "from": "frontend", "to": job["name"],
                                  "condition": "completed_successfully"} for job in jobs)
    return ms.params(base, params["resources"], params["connections"], engine="swarm")


def runs_of(engine, name):
    """How many times the job ran to completion (its completed tasks, one per run of one completion)."""
    return len([t for t in engine.tasks(filters={"service": name}) if t["Status"]["State"] == "complete"])


def test_a_failed_deploy_does_not_run_a_job_again_and_removes_a_job_it_created(base):
    engine = ms.new_engine(swarm=True)
    report, _gateway = run(engine, with_jobs(base))
    first = report["release"]["number"]
    assert "ReplicatedJob" in specs(engine)["migrate"]["Mode"] and runs_of(engine, "migrate") == 1
    engine.after_start("frontend", exits=1)
    v2 = dict(MIGRATE, command=["sh", "-c", "echo migrated v2"])
    message = failed_deploy(engine, with_jobs(base, jobs=(v2, SEED), frontend={"env": {"FEATURE": "on"}}))

    assert runs_of(engine, "migrate") == 2, "v1 once, v2 once: going back does not run release 1's job again"
    assert specs(engine)["migrate"]["TaskTemplate"]["ContainerSpec"]["Args"] == v2["command"][1:] or \
        "echo migrated v2" in str(specs(engine)["migrate"]["TaskTemplate"]["ContainerSpec"]), "left as it ran"
    assert "job migrate is not run again: it ran with this run's spec (1 of 1 completed); release %d's spec " \
        "differs (" % first in message, message
    assert "seed" not in specs(engine), "a job the failed run created is removed as any new service"
    assert "service seed: removed (not in release %d; a job: what its completed tasks did is not undone)" % first \
        in message, message
    assert specs(engine)["frontend"] == recorded(engine, first)["frontend"]
    assert store(engine).index()["current"] == first


def test_a_rollback_does_not_run_a_job_again_and_says_so(base):
    engine = ms.new_engine(swarm=True)
    first = run(engine, with_jobs(base))[0]["release"]["number"]
    v2 = dict(MIGRATE, command=["sh", "-c", "echo migrated v2"])
    second = run(engine, with_jobs(base, jobs=(v2, SEED), api={"env": {"FEATURE": "on"}}))[0]["release"]["number"]
    assert runs_of(engine, "migrate") == 2 and runs_of(engine, "seed") == 1
    ran = specs(engine)["migrate"]

    checked, _dry = rolled_back(engine, base, first, check=True)
    report, _gateway = rolled_back(engine, base, first)
    assert ms.changed_entries(checked) == ms.changed_entries(report)
    assert runs_of(engine, "migrate") == 2 and specs(engine)["migrate"] == ran, "release 2's job stays as it ran"
    migrate = ms.entry(report, "service", "migrate")
    assert migrate["changed"] is False and migrate["actions"][0].startswith(
        "job migrate is not run again: it ran with release %d's spec (1 of 1 completed)" % second), migrate
    assert ("service", "seed", ["remove"]) in ms.changed_entries(report) and "seed" not in specs(engine)
    assert ms.entry(report, "service", "seed")["reasons"] == [
        "not in release %d" % first, "a job: what its completed tasks did is not undone"]
    assert specs(engine)["api"] == recorded(engine, first)["api"]

    again, _gateway = rolled_back(engine, base, "previous")
    assert again["changed"] is False and runs_of(engine, "migrate") == 2, ms.changed_entries(again)


def test_a_rollback_does_not_make_a_job_of_the_release_again(base):
    engine = ms.new_engine(swarm=True)
    first = run(engine, with_jobs(base))[0]["release"]["number"]
    engine.remove_service("migrate")
    report, _gateway = rolled_back(engine, base, first)
    assert "migrate" not in specs(engine)
    assert ms.entry(report, "service", "migrate")["actions"] == [
        "job migrate of release %d is not made again: making it would run it again" % first]


def network_names(engine):
    return set(ms.network_names(engine))


def test_a_failed_deploy_removes_the_networks_it_made_and_leaves_an_external_one(base):
    engine = ms.new_engine(swarm=True)
    engine.create_network("shared_ext", driver="overlay", attachable=True)   # made by hand, not the stack's
    first = released(engine, base)
    extra = [{"name": "extra", "type": "network", "network_name": "showcase_extra"},
             {"name": "shared", "type": "network", "network_name": "shared_ext", "external": True}]
    engine.after_start("frontend", exits=1)
    message = failed_deploy(engine, declaration(base, extra=extra, frontend={
        "env": {"FEATURE": "on"}, "networks": [{"name": "showcase_extra"}, {"name": "shared_ext"}]}))

    assert specs(engine)["frontend"] == recorded(engine, first)["frontend"]
    assert "showcase_extra" not in network_names(engine), "made by the failed run: removed"
    assert "network showcase_extra: removed (made by this run, not in release %d)" % first in message, message
    assert "shared_ext" in network_names(engine), "an external network is never removed"
    assert "showcase_default" in network_names(engine) and "backend-network" in network_names(engine)


def test_a_new_network_another_stacks_service_uses_is_left(base):
    engine = ms.new_engine(swarm=True)
    first = released(engine, base)
    extra = [{"name": "extra", "type": "network", "network_name": "showcase_extra"}]
    engine.after_start("frontend", exits=1)
    gateway = ms.RecordingGateway(engine)
    applier = SwarmApplier(gateway, declaration(base, extra=extra, frontend={
        "env": {"FEATURE": "on"}, "networks": [{"name": "showcase_extra"}]}))
    with pytest.raises(ClockworkError):
        applier.present()
    engine.create_service({"ContainerSpec": {"Image": NGINX}}, name="outsider", labels={"owner": "someone"},
                          networks=[engine.inspect_network("showcase_extra")["Id"]])
    lines = applier.return_to(store(gateway).release(first))
    assert "showcase_extra" in network_names(engine)
    assert "network showcase_extra: left (used by service outsider)" in lines, lines
    applier.close()


def test_a_job_left_as_it_ran_needs_nothing_of_the_release_spec(base):
    engine = ms.new_engine(swarm=True)
    engine.add_image("clockwork-test/migrate:1", {"Cmd": ["sh"]})
    engine.add_image("clockwork-test/migrate:2", {"Cmd": ["sh"]})
    first = run(engine, with_jobs(base, jobs=(dict(MIGRATE, image="clockwork-test/migrate:1"),)))[0]["release"]["number"]
    run(engine, with_jobs(base, jobs=(dict(MIGRATE, image="clockwork-test/migrate:2"),), api={"env": {"FEATURE": "on"}}))
    del engine._images[engine.inspect_image("clockwork-test/migrate:1")["Id"]]   # pylint: disable=protected-access
    report, _gateway = rolled_back(engine, base, first)   # not refused: release 1's job is not made again
    assert ms.entry(report, "service", "migrate")["actions"][0].startswith("job migrate is not run again")
    assert specs(engine)["api"] == recorded(engine, first)["api"] and runs_of(engine, "migrate") == 2
