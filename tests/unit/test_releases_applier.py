"""Releases recorded by the docker applier's runs on the memory gateway (issue 35 part 1): a cold
deploy, then a changed one, give releases 1 and 2 with each container's image by ID; a run that
changes nothing records none; the last `releases_kept` are kept; check mode writes nothing; what a
release shows has no secret in it, while the root-only record keeps what Docker's own record keeps.

The hook is `releases.record.record_release`, which apply/applier.py apply_state calls at the end of
an apply that changed something and whose answer it puts in the report as `release`. Until that
call is in place, `deploy` below calls the hook itself, exactly as apply_state does (same
arguments, under no lock: these runs are one at a time)."""
import io
import json
import tarfile

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.masking import forms
from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import (
    record_release, stack_containers)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore
from ansible_collections.clockwork.connections.plugins.module_utils.releases.view import (
    release_view, secrets_of, stack_drift)
from ansible_collections.clockwork.connections.plugins.module_utils.stack import run_stack

import memory_stacks as ms
from memory_stacks import home, instant_waits  # noqa: F401  (fixtures, autouse)
from memory_stacks import NGINX, PASSWORD, STACK, container, run, showcase

CONTROLLER = "deployer@laptop"
NEW_NGINX = "clockwork-test/nginx:1.23"


@pytest.fixture
def base(tmp_path):
    directory = tmp_path / "base"
    directory.mkdir()
    return directory


@pytest.fixture
def database(monkeypatch):
    return ms.ScriptedDatabase().install(monkeypatch)


def deploy(engine, stack_params, gateway=None):
    """One run of the stack module's logic, then the hook as apply_state calls it (unless the
    applier already did: its report names the release). (report, the release's answer)."""
    # What the stack action plugin passes: the controller's user@host (the spec's `controller`).
    stack_params = dict(stack_params, controller=CONTROLLER)
    if gateway is None:
        report, gateway = run(engine, stack_params)
    else:
        report = run_stack(gateway, stack_params)
    if "release" not in report:
        report["release"] = record_release(gateway, stack_params["name"], stack_params, report, controller=CONTROLLER)
    return report, report["release"]


def store(engine):
    return ReleaseStore(ms.RecordingGateway(engine), STACK)


def image_id(engine, name):
    return container(engine, name)["Image"]


def test_a_cold_then_a_changed_deploy_are_releases_1_and_2_with_their_image_ids(base, database):
    engine = ms.new_engine()
    new_image = engine.add_image(NEW_NGINX, {"ExposedPorts": ["80/tcp"], "Cmd": ["nginx", "-g", "daemon off;"]})
    report, release = deploy(engine, ms.params(base, *showcase()))
    assert report["changed"] and release["number"] == 1 and release["pruned"] == []
    first = {name: image_id(engine, name) for name in ("postgres", "redis", "storage", "api", "frontend")}

    report, release = deploy(engine, ms.params(base, *showcase(frontend={"image": NEW_NGINX})))
    assert report["changed"] and release["number"] == 2
    assert image_id(engine, "frontend") == new_image != first["frontend"]

    one, two = store(engine).release(1), store(engine).release(2)
    assert store(engine).index()["releases"] == [1, 2] and store(engine).index()["current"] == 2
    assert dict((n, c["image_id"]) for n, c in one["containers"].items()) == first
    assert two["containers"]["frontend"]["image_id"] == new_image
    assert two["containers"]["frontend"]["image"] == NEW_NGINX
    assert two["containers"]["api"]["image_id"] == first["api"]
    for release in (one, two):
        assert release["controller"] == CONTROLLER and release["target"] == "docker"
        assert len(release["plan_digest"]) == 64
        # Everything the create takes, read back from the engine: the config, the host config, the endpoints.
        api = release["containers"]["api"]
        assert api["config"]["Cmd"] == container(engine, "api")["Config"]["Cmd"]
        assert api["host_config"]["Mounts"] == container(engine, "api")["HostConfig"]["Mounts"]
        assert sorted(api["endpoints"]) == ["backend-network", "showcase_default"]
        assert api["endpoints"]["backend-network"]["Aliases"] == ["api"]
        assert api["labels"][ms.RESOURCE_LABEL] == "api"
    assert one["plan_digest"] != two["plan_digest"]
    # The database's files with their checksums; applied by release 1, already there in release 2.
    label = "database api -> postgres"
    assert [(m["kind"], m["name"], m["applied_here"]) for m in one["databases"][label]["migrations"]] == [
        ("schema", "schema.sql", True)]
    assert [m["applied_here"] for m in two["databases"][label]["migrations"]] == [False]
    assert one["databases"][label]["migrations"][0]["sha256"] == database.applied[("schema", "schema.sql")]
    assert one["databases"][label]["migrations_from"] == "plan"
    assert one["databases"][label]["database"] == "appdb" and one["databases"][label]["to"] == "postgres"


def test_a_run_that_changes_nothing_records_no_release(base):
    engine = ms.new_engine()
    stack = ms.params(base, *showcase(database=False))
    deploy(engine, stack)
    report, release = deploy(engine, stack)
    assert report["changed"] is False and release is None
    assert store(engine).index()["releases"] == [1]


def test_the_last_releases_kept_are_kept_and_the_older_removed(base):
    engine = ms.new_engine()
    for number in range(1, 5):
        stack = ms.params(base, *showcase(database=False, frontend={"env": {"RELEASE": str(number)}}))
        stack["releases_kept"] = 2
        _report, release = deploy(engine, stack)
        assert release["number"] == number
    assert release["pruned"] == [2]
    assert store(engine).index() == {"format": 1, "stack": STACK, "releases": [3, 4], "current": 4, "last": 4}
    assert ms.release_tags(engine) == ["3", "4", "index"], "the pruned releases' images removed"
    assert ms.env_of(container(engine, "frontend"))["RELEASE"] == "4"
    assert dict(e.partition("=")[::2] for e in store(engine).release(3)["containers"]["frontend"]["config"]["Env"])[
        "RELEASE"] == "3"


def test_the_default_keeps_five(base):
    engine = ms.new_engine()
    for number in range(1, 8):
        deploy(engine, ms.params(base, *showcase(database=False, frontend={"env": {"RELEASE": str(number)}})))
    assert store(engine).index()["releases"] == [3, 4, 5, 6, 7]


def test_check_mode_records_nothing_and_says_the_number_a_run_would_record(base):
    engine = ms.new_engine()
    deploy(engine, ms.params(base, *showcase(database=False)))
    before, writes = engine.images(), len(engine.writes())
    dry = dry_run_gateway(live=engine)
    report, release = deploy(engine, ms.params(base, *showcase(database=False, frontend={"env": {"NEW": "1"}})),
                             gateway=dry)
    assert report["changed"] and release["number"] == 2
    assert engine.images() == before and len(engine.writes()) == writes, "the dry run wrote nothing"
    assert "release record: write clockwork-releases:%s.2" % STACK in dry.actions, "what it would record"
    assert store(engine).index()["releases"] == [1]


def test_check_mode_of_a_cold_deploy_makes_no_record(base):
    engine = ms.new_engine()
    dry = dry_run_gateway(live=engine)
    _report, release = deploy(None, ms.params(base, *showcase(database=False)), gateway=dry)
    assert release["number"] == 1
    assert ms.release_tags(engine) == [] and engine.writes() == []


def test_the_records_are_root_only_and_hold_what_docker_keeps_while_the_view_holds_no_secret(base, database):
    engine = ms.new_engine()
    env = {"API_TOKEN": "tok-3141592653", "UPSTREAM": "http://u:pa%24%24word@api:8000/"}
    deploy(engine, ms.params(base, *showcase(frontend={"env": env})))
    for name in ("index", "1"):
        saved = tarfile.open(fileobj=io.BytesIO(b"".join(engine.get_image("clockwork-releases:%s.%s" % (STACK, name)))))
        layer = json.loads(saved.extractfile("manifest.json").read())[0]["Layers"][-1]
        files = tarfile.open(fileobj=io.BytesIO(saved.extractfile(layer).read()))
        assert [(m.name, m.mode, m.uid) for m in files.getmembers()] == [("release.json", 0o600, 0)], name
        labels = engine.inspect_image("clockwork-releases:%s.%s" % (STACK, name))["Config"]["Labels"]
        assert labels == {"io.clockwork.releases-of": STACK}, "the image's labels say whose, nothing else"
    raw = files.extractfile("release.json").read().decode()
    assert PASSWORD in raw, "the record keeps the env as Docker's own record does (root-only)"

    release = store(engine).release(1)
    assert "POSTGRES_PASSWORD" in release["containers"]["postgres"]["secret_env"]
    assert "DATABASE_URL" in release["containers"]["api"]["secret_env"]
    view = release_view(release, current=1)
    shown = json.dumps(view)
    for secret in (PASSWORD, "tok-3141592653", "pa$$word", "pa%24%24word"):
        for form in forms(secret):
            assert form not in shown, form
    assert view["containers"]["postgres"]["env"]["POSTGRES_PASSWORD"] == "********"
    assert view["containers"]["api"]["env"]["DATABASE_URL"] == "********"
    assert view["containers"]["frontend"]["env"]["API_TOKEN"] == "********"
    assert view["containers"]["postgres"]["env"]["POSTGRES_DB"] == "appdb", "what is no secret stays readable"
    assert view["current"] is True and view["number"] == 1
    assert PASSWORD in secrets_of(release) and "tok-3141592653" in secrets_of(release)
    # Labels never carry one.
    for attrs in stack_containers(ms.RecordingGateway(engine), STACK).values():
        assert PASSWORD not in json.dumps(attrs["Config"]["Labels"])


def test_drift_names_the_fields_the_running_stack_changed_since_its_release(base):
    engine = ms.new_engine()
    engine.add_image(NEW_NGINX, {"ExposedPorts": ["80/tcp"]})
    stack = ms.params(base, *showcase(database=False, frontend={"env": {"MODE": "a", "SECRET_KEY": "k-271828"}}))
    deploy(engine, stack)
    gateway = ms.RecordingGateway(engine)
    release = store(engine).release(1)
    assert stack_drift(release, stack_containers(gateway, STACK)) == []

    # Outside the release: frontend changed by hand (another image, another env), storage removed,
    # a container of the stack that no release knows.
    changed = ms.params(base, *showcase(database=False, frontend={"image": NEW_NGINX,
                                                                  "env": {"MODE": "b", "SECRET_KEY": "k-314159"}}))
    run(engine, changed)
    engine.remove_container("storage", force=True)
    drift = dict((d["container"], d["changes"]) for d in stack_drift(release, stack_containers(ms.RecordingGateway(
        engine), STACK)))
    assert drift["storage"] == ["missing"]
    assert drift["frontend"][0].startswith("image (release %s sha256:" % NGINX)
    assert "env MODE" in drift["frontend"] and "env SECRET_KEY" in drift["frontend"]
    assert "k-314159" not in json.dumps(drift) and "k-271828" not in json.dumps(drift)
    assert set(drift) == {"storage", "frontend"}


def test_stack_info_lists_the_releases_masked_the_current_one_its_drift_and_health(base):
    from ansible_collections.clockwork.connections.plugins.module_utils.releases.info import stack_info
    engine = ms.new_engine()
    env = {"MODE": "a", "API_TOKEN": "tok-1618033988"}
    deploy(engine, ms.params(base, *showcase(database=False, frontend={"env": env})))
    deploy(engine, ms.params(base, *showcase(database=False, frontend={"env": dict(env, MODE="b")})))
    gateway = ms.RecordingGateway(engine)
    result, secrets = stack_info(gateway, STACK, health=False)
    assert result["changed"] is False and result["current"] == 2 and result["missing"] == []
    assert [r["number"] for r in result["releases"]] == [1, 2]
    assert [r["current"] for r in result["releases"]] == [False, True]
    assert [r["containers"]["frontend"]["env"]["MODE"] for r in result["releases"]] == ["a", "b"]
    assert result["releases"][1]["containers"]["frontend"]["env"]["API_TOKEN"] == "********"
    assert "tok-1618033988" not in json.dumps(result) and "tok-1618033988" in secrets
    assert result["drift"] == []
    assert result["release_images"] == "clockwork-releases:%s.*" % STACK
    assert [a for a in gateway.actions] == [], "it only reads"

    engine.stop("redis")
    result, _secrets = stack_info(ms.RecordingGateway(engine), STACK, health=False)
    assert result["drift"] == [{"container": "redis", "changes": ["state (release running, running exited)"]}]
    assert result["health"] == [] and result["healthy"] is None

    # On a dry run's gateway (check mode), alike.
    checked, _secrets = stack_info(dry_run_gateway(live=engine), STACK, health=False)
    assert checked == result


def test_stack_info_of_a_stack_without_releases(base):
    from ansible_collections.clockwork.connections.plugins.module_utils.releases.info import stack_info
    result, secrets = stack_info(ms.RecordingGateway(ms.new_engine()), STACK)
    assert (result["releases"], result["current"], result["drift"], result["health"]) == ([], None, [], [])
    assert secrets == set()


def test_health_runs_the_recorded_checks_once_and_refuses_a_malformed_one(base):
    from ansible_collections.clockwork.connections.plugins.module_utils.releases.health import connection_health
    engine = ms.new_engine()
    deploy(engine, ms.params(base, *showcase(database=False)))
    checks = [c for c in store(engine).release(1)["checks"] if c["kind"] == "running"]
    assert checks == [{"kind": "running", "connection": "dependency frontend -> redis", "target": "redis",
                       "condition": "healthy"}]
    hostile = [{"kind": "running", "connection": "x", "condition": "healthy"},
               {"kind": "shell", "connection": "y", "command": "rm -rf /"}, "not a check"]
    reports = connection_health(ms.RecordingGateway(engine), checks + hostile)
    assert reports[0]["ok"] is True, reports
    assert [r["ok"] for r in reports[1:]] == [None, None, None]
    assert reports[2]["msg"] == "not run: the release records it wrongly (unknown check kind 'shell')"
    assert all(r["msg"].startswith("not run: the release records it wrongly") for r in reports[1:])
    engine.stop("redis")
    assert connection_health(ms.RecordingGateway(engine), checks)[0]["ok"] is False


def test_a_recorded_container_gives_the_create_body_that_makes_it_again_by_image_id(base):
    from ansible_collections.clockwork.connections.plugins.module_utils.releases.recreate import (
        create_body, missing_images)
    engine = ms.new_engine()
    deploy(engine, ms.params(base, *showcase(database=False)))
    release = store(engine).release(1)
    api = container(engine, "api")
    body, later = create_body(release["containers"]["api"])
    assert body["Image"] == api["Image"] and body["Image"].startswith("sha256:")
    assert "Hostname" not in body, "the engine names it after the new container's id"
    assert dict(body, Image=api["Config"]["Image"]) == dict(
        dict((k, v) for k, v in api["Config"].items() if k != "Hostname"),
        HostConfig=api["HostConfig"], NetworkingConfig={"EndpointsConfig": {"showcase_default": {"Aliases": ["api"]}}})
    assert later == {"backend-network": {"Aliases": ["api"]}}
    assert missing_images(ms.RecordingGateway(engine), release) == {}
    # An image removed since (the memory engine removes none: the record names one it never had).
    release["containers"]["frontend"]["image_id"] = "sha256:" + "0" * 64
    assert missing_images(ms.RecordingGateway(engine), release) == {"frontend": "sha256:" + "0" * 64}


def swarm_declaration(base, **changes):
    resources, connections = showcase(database=False, api_replicas=2, **changes)
    for resource in resources:
        if resource.get("type", "container") == "container":
            resource.setdefault("endpoint_mode", "dnsrr")
    return ms.params(base, resources, connections, engine="swarm")


def test_on_swarm_a_release_keeps_each_service_whole_spec_and_stack_info_reads_its_drift(base):
    from ansible_collections.clockwork.connections.plugins.module_utils.releases.info import stack_info
    engine = ms.new_engine(swarm=True)
    _report, release = deploy(engine, swarm_declaration(base, frontend={"env": {"MODE": "a", "API_TOKEN": "tok-577"}}))
    assert release["number"] == 1
    _report, release = deploy(engine, swarm_declaration(base, frontend={"env": {"MODE": "b", "API_TOKEN": "tok-577"}}))
    assert release["number"] == 2
    one, two = store(engine).release(1), store(engine).release(2)
    assert one["target"] == "swarm" and one["containers"] == {}
    frontend = engine.inspect_service("frontend")
    assert two["services"]["frontend"]["spec"] == frontend["Spec"], "the whole spec, not only PreviousSpec"
    assert two["services"]["frontend"]["id"] == frontend["ID"]
    assert two["services"]["frontend"]["version"] == frontend["Version"]["Index"]
    assert "MODE=a" in one["services"]["frontend"]["spec"]["TaskTemplate"]["ContainerSpec"]["Env"]

    result, secrets = stack_info(ms.RecordingGateway(engine), STACK, health=False)
    assert [r["services"]["frontend"]["env"]["MODE"] for r in result["releases"]] == ["a", "b"]
    # On Swarm a secret env value is a Docker secret: the spec, so the release, holds its reference only.
    # (its name says TOKEN: masked as masking.py masks any such name's value)
    assert result["releases"][1]["services"]["frontend"]["env"]["API_TOKEN_FILE"] == "********"
    assert "API_TOKEN_FILE=/run/secrets/API_TOKEN" in two["services"]["frontend"]["spec"]["TaskTemplate"][
        "ContainerSpec"]["Env"]
    assert "tok-577" not in store(engine).shelf.read(2).decode()
    assert result["releases"][1]["services"]["api"]["replicas"] == 2
    assert "tok-577" not in json.dumps(result) and "tok-577" not in secrets
    assert result["drift"] == []

    engine.remove_service("storage")
    result, _secrets = stack_info(ms.RecordingGateway(engine), STACK, health=False)
    assert result["drift"] == [{"service": "storage", "changes": ["missing"]}]
