"""Going back to a release on the memory gateway (issue 35 parts 2 and 3): a failed deploy puts
back what it replaced or added; `state: rolled_back` returns the stack to a kept release and
records that as a new one; a release that is gone or whose image is gone is refused before any
change; a rollback killed half-way is completed by the next run of it; check mode makes the same
calls as the real run and changes nothing."""
import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.apply.rolling import next_name
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_over
from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import stack_containers
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore
from ansible_collections.clockwork.connections.plugins.module_utils.releases.view import stack_drift
from ansible_collections.clockwork.connections.plugins.module_utils.stack import run_stack

import memory_stacks as ms
from memory_stacks import home, instant_waits  # noqa: F401  (fixtures, autouse)
from memory_stacks import NGINX, REDIS, STACK, container, entry, run

NEW_API = "clockwork-test/nginx:api-2"
TOKEN = "tok-5ecret-9911"   # pragma: allowlist secret


@pytest.fixture
def base(tmp_path):
    directory = tmp_path / "base"
    directory.mkdir()
    return directory


def declaration(api_image=NGINX, mode="one", extra=False, api_replicas=2, db_env=None):
    """db (Redis: a volume, stop-first), api (2 replicas with a healthcheck: start-first), frontend."""
    resources = [
        {"name": "db", "image": REDIS, "env": db_env or {},
         "healthcheck": {"test": "redis-cli ping", "interval": "1s", "retries": 30}},
        {"name": "api", "image": api_image, "replicas": api_replicas, "timeout": 5,
         "env": {"API_TOKEN": TOKEN},
         "healthcheck": {"test": "curl -fsS http://localhost/", "interval": "1s", "retries": 3}},
        {"name": "frontend", "image": NGINX, "env": {"MODE": mode}},
    ]
    if extra:
        resources.append({"name": "worker", "image": NGINX})
    connections = [{"type": "dependency", "from": "api", "to": "db"}]
    return resources, connections


def new_engine():
    engine = ms.new_engine()
    engine.add_image(NEW_API, {"ExposedPorts": ["80/tcp"], "Cmd": ["nginx", "-g", "daemon off;"], "Labels": {"v": "2"}})
    return engine


def params(base, *declared, **options):
    return ms.params(base, *declared, controller="deployer@laptop", **options)


def rollback(base, release="previous", **options):
    return params(base, [], [], state="rolled_back", release=str(release), **options)


def store(engine):
    return ReleaseStore(ms.RecordingGateway(engine), STACK)


def running(engine):
    return dict((name, attrs["Id"]) for name, attrs in stack_containers(ms.RecordingGateway(engine), STACK).items())


def drift_from(engine, number):
    return stack_drift(store(engine).release(number), stack_containers(ms.RecordingGateway(engine), STACK))


def two_releases(base, engine):
    """Release 1, then release 2 with a new frontend env (good): the stack on release 2."""
    report, _ = run(engine, params(base, *declaration()))
    assert report["release"]["number"] == 1
    report, _ = run(engine, params(base, *declaration(mode="two")))
    assert report["release"]["number"] == 2
    assert ms.env_of(container(engine, "frontend"))["MODE"] == "two"


# -- part 2: a failed deploy goes back --------------------------------------------------------

def test_a_failed_deploy_puts_back_what_it_replaced_and_removes_what_it_added(base):
    engine = new_engine()
    report, _ = run(engine, params(base, *declaration()))
    assert report["release"]["number"] == 1
    api_1 = container(engine, "api-1")
    engine.after_start(next_name("api-1", api_1["Id"]), health="unhealthy")

    with pytest.raises(ClockworkError) as failed:
        run(engine, params(base, *declaration(api_image=NEW_API, mode="two", extra=True)))

    message = failed.value.msg
    assert "api-1: its replacement did not become ready" in message, message
    assert "the stack is back on release 1 (" in message and "replace start-first frontend" in message, message
    assert "remove worker" in message, message
    assert failed.value.details["returned_to"] == 1
    assert drift_from(engine, 1) == [], "every container on release 1's record"
    assert ms.env_of(container(engine, "frontend"))["MODE"] == "one"
    assert container(engine, "api-1")["Id"] == api_1["Id"], "the api kept serving, untouched"
    assert "worker" not in ms.container_names(engine)
    assert store(engine).index()["current"] == 1, "a failed deploy records no release"
    assert TOKEN not in message

    # The declaration of release 1 finds the stack as it left it.
    report, _ = run(engine, params(base, *declaration()))
    assert report["changed"] is False, [e for e in report["entries"] if e["changed"]]


def test_a_check_that_fails_after_the_deploy_sends_the_stack_back_too(base):
    """Every container ready, but a connection's check fails (the frontend no longer reaches db): the
    release failed as much as one whose container never became ready."""
    engine = new_engine()
    resources, connections = declaration()
    connections = connections + [{"type": "network", "from": "frontend", "to": "db", "network_name": "backend"}]
    report, _ = run(engine, params(base, resources, connections, verify=True))
    assert report["release"]["number"] == 1 and [c["ok"] for c in report["checks"]] == [True, True], report["checks"]
    engine.execs = lambda _container, _argv, _env: (1, "connection refused")

    with pytest.raises(ClockworkError) as failed:
        run(engine, params(base, declaration(mode="two")[0], connections, verify=True))

    message = failed.value.msg
    assert "network frontend -> db" in message and "the stack is back on release 1 (" in message, message
    assert "replace start-first frontend" in message, message
    assert failed.value.details["returned_to"] == 1
    assert ms.env_of(container(engine, "frontend"))["MODE"] == "one" and drift_from(engine, 1) == []
    assert store(engine).index()["current"] == 1, "a failed deploy records no release"


def test_a_failed_first_deploy_behaves_as_before(base):
    engine = new_engine()
    engine.after_start("api-1", health="unhealthy")
    with pytest.raises(ClockworkError) as failed:
        run(engine, params(base, *declaration()))
    assert "back on release" not in failed.value.msg
    assert store(engine).index()["current"] is None


def test_a_failure_before_any_change_says_nothing_of_a_return(base):
    engine = new_engine()
    run(engine, params(base, *declaration()))
    with pytest.raises(ClockworkError) as failed:
        run(engine, params(base, *declaration(api_image="clockwork-test/none:1")))
    assert "back on release" not in failed.value.msg


# -- part 3: rollback on demand ---------------------------------------------------------------

def test_rollback_previous_returns_every_container_and_records_a_new_release(base):
    engine = new_engine()
    two_releases(base, engine)
    before = running(engine)

    report, gateway = run(engine, rollback(base), diff=True)

    assert report["changed"] and report["rolled_back_to"] == 1 and report["release"]["number"] == 3
    assert entry(report, "container", "frontend")["actions"] == ["replace start-first"]
    assert entry(report, "container", "frontend")["reasons"] == ["env MODE"]
    assert ms.env_of(container(engine, "frontend"))["MODE"] == "one"
    assert drift_from(engine, 1) == [] and drift_from(engine, 3) == []
    after = running(engine)
    assert dict((n, i) for n, i in after.items() if n != "frontend") == \
        dict((n, i) for n, i in before.items() if n != "frontend"), "nothing else touched"
    three = store(engine).release(3)
    assert three["rolled_back_to"] == 1 and store(engine).index()["current"] == 3
    assert TOKEN not in repr(report["diff"]) and "MODE" in repr(report["diff"])

    # A rerun changes nothing and records nothing.
    report, _ = run(engine, rollback(base))
    assert report["changed"] is False and "release" not in report
    assert store(engine).index()["current"] == 3


def test_rollback_to_a_number_removes_containers_the_release_did_not_have(base):
    engine = new_engine()
    run(engine, params(base, *declaration()))
    run(engine, params(base, *declaration(extra=True, api_replicas=3)))
    assert "worker" in ms.container_names(engine) and "api-3" in ms.container_names(engine)
    volumes = ms.volume_names(engine)

    report, _ = run(engine, rollback(base, 1))

    assert entry(report, "container", "worker")["actions"] == ["remove"]
    assert entry(report, "container", "api-3")["actions"] == ["remove"]
    assert "worker" not in ms.container_names(engine) and "api-3" not in ms.container_names(engine)
    assert ms.volume_names(engine) == volumes, "volumes kept"
    assert drift_from(engine, 1) == []


def test_a_pruned_release_or_a_removed_image_is_refused_before_any_change(base):
    engine = new_engine()
    run(engine, params(base, *declaration(), releases_kept=2))
    run(engine, params(base, *declaration(mode="two"), releases_kept=2))
    run(engine, params(base, *declaration(mode="three"), releases_kept=2))
    since = len(engine.calls)
    with pytest.raises(ClockworkError) as refused:
        run(engine, rollback(base, 1))
    assert "release 1 of stack showcase was pruned; the kept releases are 2, 3" in refused.value.msg
    with pytest.raises(ClockworkError) as refused:
        run(engine, rollback(base, 7))
    assert "release 7 of stack showcase was never recorded" in refused.value.msg

    image = container(engine, "frontend")["Image"]
    engine._images.pop(image)   # pylint: disable=protected-access  # removed behind the stack's back
    with pytest.raises(ClockworkError) as refused:
        run(engine, rollback(base))
    assert "cannot go back to release 2" in refused.value.msg and image[:19] in refused.value.msg
    assert "nothing was changed" in refused.value.msg
    writes = [c for c in engine.calls[since:] if c.method in ms.WRITES and "lock" not in repr(c.args)]
    assert [c.method for c in writes if c.method != "remove_container" and c.method != "create_container"] == []
    assert store(engine).index()["current"] == 3


def test_a_rollback_killed_half_way_is_completed_by_the_next_run_of_it(base):
    engine = new_engine()
    two_releases(base, engine)
    # Killed right after it made frontend's successor beside the old one: the successor is left.
    old = container(engine, "frontend")
    gateway = ms.RecordingGateway(engine)
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.docker_rollback import ContainersBack
    back = ContainersBack(gateway, STACK, store(engine).release(1))
    new_id = back._make("frontend", old, as_name=next_name("frontend", old["Id"]), serving_alias=True)  # pylint: disable=protected-access
    gateway.start(new_id)
    assert any("_clockwork_next_" in n for n in ms.container_names(engine))

    report, _ = run(engine, rollback(base))

    assert report["changed"] and report["release"]["number"] == 3
    assert not any("_clockwork_" in n for n in ms.container_names(engine))
    assert drift_from(engine, 1) == []
    report, _ = run(engine, rollback(base))
    assert report["changed"] is False


def test_check_mode_makes_the_same_calls_as_the_real_run_and_changes_nothing(base):
    engine = new_engine()
    two_releases(base, engine)
    before = ms.snapshot(engine)
    since = len(engine.calls)

    dry = dry_run_over(ms.RecordingGateway(engine))
    checked = run_stack(dry, rollback(base), diff=True)
    assert [c for c in engine.calls[since:] if c.method in ms.WRITES] == [] and ms.snapshot(engine) == before
    assert checked["changed"] and checked["release"]["number"] == 3 and store(engine).index()["current"] == 2

    report, gateway = run(engine, rollback(base), diff=True)
    assert ms.without_lock(dry.actions) == ms.without_lock(gateway.actions)
    assert [(e["name"], e["actions"], e["reasons"]) for e in checked["entries"]] == \
        [(e["name"], e["actions"], e["reasons"]) for e in report["entries"]]
    assert checked["diff"] == report["diff"] and TOKEN not in repr(checked)


def test_a_stack_deployed_anew_after_a_destroy_does_not_return_to_its_old_release(base):
    engine = new_engine()
    run(engine, params(base, *declaration()))
    run(engine, params(base, [], [], state="absent"))
    engine.after_start("api-1", health="unhealthy")
    with pytest.raises(ClockworkError) as failed:
        run(engine, params(base, *declaration(mode="two")))
    assert "back on release" not in failed.value.msg
    assert "frontend" not in ms.container_names(engine) or \
        ms.env_of(container(engine, "frontend"))["MODE"] == "two", "nothing of the old release came back"


def test_a_database_replaced_by_the_failed_run_goes_back_stop_first_with_its_data_volume(base):
    engine = new_engine()
    run(engine, params(base, *declaration()))
    data = [m["Name"] for m in container(engine, "db")["Mounts"] if m["Destination"] == "/data"]
    api_1 = container(engine, "api-1")
    engine.after_start(next_name("api-1", api_1["Id"]), health="unhealthy")

    with pytest.raises(ClockworkError) as failed:
        run(engine, params(base, *declaration(api_image=NEW_API, db_env={"MAXMEMORY": "64mb"})))

    assert "recreate db" in failed.value.msg, failed.value.msg
    assert "MAXMEMORY" not in ms.env_of(container(engine, "db"))
    assert [m["Name"] for m in container(engine, "db")["Mounts"] if m["Destination"] == "/data"] == data, \
        "the same data volume"
    assert drift_from(engine, 1) == []
    report, _ = run(engine, params(base, *declaration()))
    assert report["changed"] is False, [e for e in report["entries"] if e["changed"]]


def test_a_network_the_release_used_and_a_later_one_removed_is_made_again(base):
    engine = new_engine()
    resources, connections = declaration()
    connections.append({"type": "network", "from": "frontend", "to": "db", "network_name": "cache-net",
                        "driver": "bridge", "internal": True})
    run(engine, params(base, resources, connections))
    assert store(engine).release(1)["networks"]["cache-net"]["internal"] is True
    run(engine, params(base, *declaration(mode="two")))
    gateway = ms.RecordingGateway(engine)
    if gateway.network("cache-net") is not None:   # the stack kept it: removed by hand
        for name in ("frontend", "db"):
            if "cache-net" in container(engine, name)["NetworkSettings"]["Networks"]:
                gateway.disconnect(name, "cache-net")
        gateway.remove_network("cache-net")
    assert ms.RecordingGateway(engine).network("cache-net") is None

    report, _ = run(engine, rollback(base, 1))

    assert entry(report, "network", "cache-net")["actions"] == ["create network cache-net"]
    assert ms.RecordingGateway(engine).network("cache-net")["Internal"] is True
    assert drift_from(engine, 1) == []


def test_an_external_network_is_not_recorded_to_be_made_again():
    from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import network_settings
    assert network_settings([{"name": "outside", "settings": None, "by": "resource outside"},
                             {"name": "mine", "settings": {"driver": "bridge", "internal": False, "enable_ipv6": False,
                                                           "subnet": None, "gateway": None}, "by": "stack"}]) == {
        "mine": {"driver": "bridge", "internal": False, "enable_ipv6": False, "subnet": None, "gateway": None}}
