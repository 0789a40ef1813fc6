"""The Swarm applier (apply/swarm/applier.py, through stack.run_stack with engine swarm) on the
memory gateway: a one-node swarm in memory (docker/memory_swarm.py) whose tasks run as the memory
engine's containers. What is asserted is read from the engine's services, tasks, containers,
networks, volumes, secrets and configs, and from the reported entries.

Database connections: none. The declaration is the showcase's without `database api -> postgres`
(memory_stacks.showcase(database=False)): on Swarm its login reaches the server through an exec
tunnel into the task (apply/swarm/tasks.py SwarmView.reach), which the memory engine's execs do not
relay. PostgreSQL's password still becomes a Docker secret, as its env names a password.
"""
import hashlib
import re

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.stack import run_stack

import memory_stacks as ms
from memory_stacks import home, instant_waits  # noqa: F401  (fixtures, autouse)
from memory_stacks import NGINX, STACK, entry, run
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError

SERVICES = ["api", "frontend", "postgres", "redis", "storage"]


@pytest.fixture
def base(tmp_path):
    directory = tmp_path / "base"
    directory.mkdir()
    return directory


def declaration(base, state="present", purge=False, api_replicas=2, **changes):
    """The showcase on Swarm: every service with endpoint_mode dnsrr (what this machine's kernel
    answers; the default depends on the host's IPVS), api with two tasks."""
    resources, connections = ms.showcase(database=False, api_replicas=api_replicas, **changes)
    for resource in resources:
        if resource.get("type", "container") == "container":
            resource.setdefault("endpoint_mode", "dnsrr")
    return ms.params(base, resources, connections, engine="swarm", state=state, purge=purge)


def deployed(base):
    engine = ms.new_engine(swarm=True)
    report, _gateway = run(engine, declaration(base))
    assert report["changed"], report["entries"]
    return engine


def service(engine, name):
    return engine.inspect_service(name)


def container_spec(engine, name):
    return service(engine, name)["Spec"]["TaskTemplate"]["ContainerSpec"]


def service_env(engine, name):
    return dict(e.partition("=")[::2] for e in container_spec(engine, name).get("Env") or [])


def running_tasks(engine, name):
    return [t for t in engine.tasks(filters={"service": name}) if t["Status"]["State"] == "running"]


def task_containers(engine, name):
    """The containers of a service's running tasks, as the engine inspects them."""
    return [ms.container(engine, t["Status"]["ContainerStatus"]["ContainerID"]) for t in running_tasks(engine, name)]


def stack_services(engine):
    return sorted(s["Spec"]["Name"] for s in engine.services(filters={"label": "%s=%s" % (ms.STACK_LABEL, STACK)}))


def versions(engine):
    return dict((s["Spec"]["Name"], s["Version"]["Index"]) for s in engine.services())


# -- cold -----------------------------------------------------------------------------------

def test_the_showcase_on_swarm_makes_every_service_with_what_its_connections_contribute(base):
    engine = ms.new_engine(swarm=True)
    report, gateway = run(engine, declaration(base))

    assert report["changed"] is True and report["engine"] == "swarm"
    assert stack_services(engine) == SERVICES
    for name in SERVICES:
        assert entry(report, "service", name)["actions"] == ["create"], name
        wanted = 2 if name == "api" else 1
        assert service(engine, name)["Spec"]["Mode"] == {"Replicated": {"Replicas": wanted}}, name
        tasks = running_tasks(engine, name)
        assert len(tasks) == wanted, name
        for attrs in task_containers(engine, name):
            assert ms.state_of(attrs)[0] == "running", name
    for attrs in task_containers(engine, "api") + task_containers(engine, "redis") + task_containers(engine, "postgres"):
        assert ms.state_of(attrs) == ("running", "healthy")
    # The stack's networks are attachable overlays, labelled ours; each service joins them under its name.
    for name in ("showcase_default", "backend-network"):
        attrs = engine.inspect_network(name)
        assert (attrs["Driver"], attrs["Scope"], attrs["Attachable"]) == ("overlay", "swarm", True), name
        assert attrs["Labels"][ms.STACK_LABEL] == STACK
    networks = dict((n["Target"], n["Aliases"]) for n in service(engine, "api")["Spec"]["TaskTemplate"]["Networks"])
    assert networks == {"showcase_default": ["api"], "backend-network": ["api"]}
    redis = dict((n["Target"], n["Aliases"]) for n in service(engine, "redis")["Spec"]["TaskTemplate"]["Networks"])
    assert redis == {"showcase_default": ["redis"], "backend-network": ["redis"]}
    for attrs in task_containers(engine, "api"):
        assert sorted(attrs["NetworkSettings"]["Networks"]) == ["backend-network", "showcase_default"]
    # What the connections give the services: env, the config file as a config, the shared volume.
    assert service_env(engine, "api")["REDIS_HOST"] == "redis"
    assert service_env(engine, "frontend")["API_URL"] == "http://api:8000"
    api = container_spec(engine, "api")
    assert [(m["Type"], m["Source"], m["Target"]) for m in api["Mounts"]] == [
        ("volume", "app-shared-data", "/data/shared")]
    assert [(m["Type"], m["Source"], m["Target"]) for m in container_spec(engine, "storage")["Mounts"]] == [
        ("volume", "app-shared-data", "/data/shared")]
    assert [c["File"]["Name"] for c in api["Configs"]] == ["/etc/app/config.json"]
    config = [c for c in engine.configs() if c["ID"] == api["Configs"][0]["ConfigID"]][0]
    assert config["Spec"]["Labels"][ms.STACK_LABEL] == STACK
    assert ms.read_file(engine, task_containers(engine, "api")[0]["Id"], "/etc/app/config.json") == \
        b'{"log_level": "info"}', "the task reads the file's content"
    # A password never sits in a service spec: the server's becomes a secret, read from a file.
    postgres = service_env(engine, "postgres")
    assert "POSTGRES_PASSWORD" not in postgres and postgres["POSTGRES_PASSWORD_FILE"] == "/run/secrets/POSTGRES_PASSWORD"
    assert ms.PASSWORD not in str(service(engine, "postgres"))
    assert [s["Spec"]["Name"].startswith("showcase_postgres_POSTGRES_PASSWORD_") for s in engine.secrets()] == [True]
    # Services sharing a volume run on its node (a volume is local to its node).
    assert service(engine, "api")["Spec"]["TaskTemplate"]["Placement"] == \
        service(engine, "storage")["Spec"]["TaskTemplate"]["Placement"] == \
        {"Constraints": ["node.id==%s" % engine.node_id]}
    volume = engine.inspect_volume("app-shared-data")
    assert volume["Labels"][ms.STACK_LABEL] == STACK
    assert any("keeps /var/lib/postgresql/data in an anonymous volume" in w for w in report["warnings"])
    assert gateway.actions[0] == "create container clockwork-lock-showcase"


# -- no-op ----------------------------------------------------------------------------------

def test_the_showcase_unchanged_on_swarm_is_a_no_op_that_writes_nothing(base):
    engine = deployed(base)
    before_versions, before = versions(engine), ms.snapshot(engine)
    tasks = sorted(t["ID"] for t in engine.tasks())
    since = len(engine.calls)

    report, gateway = run(engine, declaration(base))

    assert report["changed"] is False, ms.changed_entries(report)
    assert ms.stack_writes(engine, since, gateway) == []
    assert len(gateway.actions) == 2, "the lock's create and remove, nothing else: %s" % gateway.actions
    assert versions(engine) == before_versions and sorted(t["ID"] for t in engine.tasks()) == tasks
    assert ms.snapshot(engine) == before
    for name in SERVICES:
        assert entry(report, "service", name) == {"kind": "service", "name": name, "changed": False, "actions": [],
                                                  "reasons": []}


# -- an update ------------------------------------------------------------------------------

def test_an_update_changes_only_the_service_that_drifted_and_replaces_its_tasks(base):
    engine = deployed(base)
    before_versions = versions(engine)
    old_tasks = sorted(t["ID"] for t in running_tasks(engine, "api"))
    service_id = service(engine, "api")["ID"]

    report, gateway = run(engine, declaration(base, api={"env": {"FEATURE": "on"}}), diff=True)

    assert ms.changed_entries(report) == [("service", "api", ["update"])]
    assert any("env" in reason for reason in entry(report, "service", "api")["reasons"])
    assert ms.without_lock(gateway.actions) == ["update service api"]
    assert service(engine, "api")["ID"] == service_id, "updated in place, not recreated"
    assert service_env(engine, "api") == {"REDIS_HOST": "redis", "FEATURE": "on"}
    versions_now = versions(engine)
    assert versions_now["api"] != before_versions["api"]
    assert dict((n, v) for n, v in versions_now.items() if n != "api") == \
        dict((n, v) for n, v in before_versions.items() if n != "api"), "no other service was updated"
    new_tasks = running_tasks(engine, "api")
    assert len(new_tasks) == 2 and not set(t["ID"] for t in new_tasks) & set(old_tasks)
    for attrs in task_containers(engine, "api"):
        assert ms.env_of(attrs)["FEATURE"] == "on" and ms.state_of(attrs) == ("running", "healthy")
    shut = [t for t in engine.tasks(filters={"service": "api"}) if t["ID"] in old_tasks]
    assert [t["Status"]["State"] for t in shut] == ["shutdown", "shutdown"]
    # Start-first where two tasks may run at once; stop-first for what mounts a volume.
    assert service(engine, "api")["Spec"]["UpdateConfig"]["Order"] == "stop-first"
    assert service(engine, "frontend")["Spec"]["UpdateConfig"]["Order"] == "start-first"
    diff = [d for d in report["diff"] if d["before_header"] == "service api"][0]
    assert "FEATURE" not in str(diff["before"]) and "FEATURE" in str(diff["after"])
    since = len(engine.calls)
    again, gateway = run(engine, declaration(base, api={"env": {"FEATURE": "on"}}))
    assert again["changed"] is False and ms.stack_writes(engine, since, gateway) == []


def test_a_scale_changes_the_number_of_tasks(base):
    engine = deployed(base)
    report, _gateway = run(engine, declaration(base, api_replicas=3))
    assert ms.changed_entries(report) == [("service", "api", ["update"])]
    assert len(running_tasks(engine, "api")) == 3
    report, _gateway = run(engine, declaration(base, api_replicas=1))
    assert ms.changed_entries(report) == [("service", "api", ["update"])]
    assert len(running_tasks(engine, "api")) == 1
    assert service(engine, "api")["Spec"]["Mode"] == {"Replicated": {"Replicas": 1}}


# -- destroy --------------------------------------------------------------------------------

def foreign_objects(engine):
    """A service, an overlay network, a volume and a secret that are not the stack's."""
    engine.create_network("showcase_other", driver="overlay", attachable=True, labels={"owner": "someone"})
    engine.create_volume("app-shared-data-backup")
    engine.create_secret("showcase_other_secret", b"theirs")
    engine.create_service({"ContainerSpec": {"Image": NGINX}, "Networks": [{"Target": "showcase_other"}]},
                          name="showcase-outsider", labels={"owner": "someone"})


def test_destroy_removes_the_stacks_services_networks_secrets_and_configs_only(base):
    engine = deployed(base)
    foreign_objects(engine)
    outsider = service(engine, "showcase-outsider")

    report, _gateway = run(engine, declaration(base, state="absent"))

    assert report["changed"] is True
    assert sorted(s["Spec"]["Name"] for s in engine.services()) == ["showcase-outsider"]
    assert service(engine, "showcase-outsider")["Version"] == outsider["Version"]
    assert len(running_tasks(engine, "showcase-outsider")) == 1
    assert ms.network_names(engine) == ["showcase_other"]
    assert [s["Spec"]["Name"] for s in engine.secrets()] == ["showcase_other_secret"]
    assert engine.configs() == []
    assert "app-shared-data" in ms.volume_names(engine) and "app-shared-data-backup" in ms.volume_names(engine)
    assert entry(report, "volume", "app-shared-data")["actions"] == ["kept (purge to remove)"]
    removed = [e["name"] for e in report["entries"] if e["kind"] == "service"]
    assert removed == ["frontend", "api", "storage", "redis", "postgres"], "in reverse order"
    assert not [c for c in ms.container_names(engine) if not c.startswith("showcase-outsider.")], \
        "no task of the stack is left"

    report, _gateway = run(engine, declaration(base, state="absent", purge=True))
    assert entry(report, "volume", "app-shared-data")["actions"] == ["remove"]
    assert "app-shared-data" not in ms.volume_names(engine) and "app-shared-data-backup" in ms.volume_names(engine)
    assert sorted(s["Spec"]["Name"] for s in engine.services()) == ["showcase-outsider"]


# -- check mode -----------------------------------------------------------------------------

ROTATED = {"postgres": {"env": {"POSTGRES_PASSWORD": "other456", "POSTGRES_DB": "appdb"}}}  # pragma: allowlist secret
CASES = {"cold": (False, {}), "update": (True, {"api": {"env": {"FEATURE": "on"}}}), "destroy": (True, {}),
         "rotate": (True, ROTATED)}


def case_params(base, case):
    _deploy, changes = CASES[case]
    return declaration(base, state="absent" if case == "destroy" else "present", **changes)


def in_state(base, case):
    return deployed(base) if CASES[case][0] else ms.new_engine(swarm=True)


def comparable(report):
    return [(e["kind"], e["name"], e["changed"], e["actions"]) for e in report["entries"]]


def check_and_real(base, case):
    live, real = in_state(base, case), in_state(base, case)
    before, since = ms.snapshot(live), len(live.calls)
    dry = dry_run_gateway(live=live)
    checked = run_stack(dry, case_params(base, case))
    report, gateway = run(real, case_params(base, case))
    return live, before, since, checked, dry, report, gateway


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_mode_on_swarm_writes_nothing_and_reports_what_the_real_run_does(base, case):
    live, before, since, checked, _dry, report, _gateway = check_and_real(base, case)
    assert [c for c in live.calls[since:] if c.method in ms.WRITES] == []
    assert ms.snapshot(live) == before
    assert checked["changed"] is True and comparable(checked) == comparable(report)


SWARM_ID = re.compile(r"(?<![0-9a-z])[0-9a-z]{25}(?![0-9a-z])")   # a service's, secret's or config's id


def actions(gateway):
    """The gateway's actions without the lock's, with the ids of Swarm's objects made comparable
    between engines (the memory swarm's are its own, as two swarms' are); sorted, as services
    converge in parallel, in no fixed order of their writes."""
    return sorted(SWARM_ID.sub("<id>", a) for a in ms.without_lock(gateway.actions))


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_mode_on_swarm_records_the_actions_the_real_run_performs(base, case):
    _live, _before, _since, _checked, dry, _report, gateway = check_and_real(base, case)
    assert actions(gateway)
    assert actions(dry) == actions(gateway)


def test_a_rotation_checked_names_the_new_secret_and_the_old_ones_removal_as_the_real_run_does(base):
    _live, _before, _since, checked, _dry, report, _gateway = check_and_real(base, "rotate")
    changed = ms.changed_entries(checked)
    assert ("service", "postgres", ["update"]) in changed
    secrets = [(name, actions) for kind, name, actions in changed if kind == "secret"]
    # The old secret stays while a kept release's postgres uses it (a rollback puts that spec back):
    # apply/swarm/secrets.py unused_objects; tests/unit/test_swarm_rollback_memory.py has its removal.
    assert [a for _n, a in secrets] == [["create"]], changed
    assert changed == ms.changed_entries(report)


def answering_checks(engine):
    """The engine's execs answer the checks as the services would: a file's sha256 from the files of
    the container asked, a config is not writable, every GET answers 200."""
    def answer(container, argv, _env):
        if argv[0] == "sha256sum":
            return 0, "%s  %s\n" % (hashlib.sha256(ms.read_file(engine, container, argv[1])).hexdigest(), argv[1])
        if argv[:2] == ["test", "-w"]:
            return 1, ""
        if argv[0] in ("curl", "wget"):
            return 0, "HTTP/1.1 200 OK\r\n\r\nok"
        return 0, ""
    engine.execs = answer
    return engine


@pytest.mark.parametrize("check", [False, True], ids=["real", "check"])
def test_verified_changes_nothing_and_runs_the_checks_on_the_services_as_they_are(base, check):
    engine = answering_checks(deployed(base))
    before, since = ms.snapshot(engine), len(engine.calls)
    gateway = dry_run_gateway(live=engine) if check else ms.RecordingGateway(engine)

    report = run_stack(gateway, declaration(base, state="verified"))

    assert [c for c in engine.calls[since:] if c.method in ms.WRITES] == [] and gateway.actions == []
    assert ms.snapshot(engine) == before and report["changed"] is False
    assert [c["connection"] for c in report["checks"]] == [c["connection"] for c in report["checks"] if c["ok"]], \
        report["checks"]
    assert len(report["checks"]) >= 4


def test_verified_reports_the_drift_it_would_converge_and_checks_the_services_as_they_run(base):
    engine = answering_checks(deployed(base))
    before, since = ms.snapshot(engine), len(engine.calls)
    report, gateway = run(engine, declaration(base, state="verified", api={"env": {"FEATURE": "on"}}))
    assert ms.changed_entries(report) == [("service", "api", ["update"])] and report["changed"] is False
    assert gateway.actions == [] and ms.snapshot(engine) == before
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    tasks = set(c["Id"] for name in SERVICES for c in task_containers(engine, name))
    checked_in = set(c.args[0] for c in engine.calls[since:] if c.method == "exec_create")
    assert checked_in and checked_in <= tasks, "the checks ran in the tasks that run, not in a forecast of them"


# -- failures and concurrent runs -------------------------------------------------------------

def test_a_failed_update_names_its_tasks_errors_and_last_log_lines(base):
    engine = deployed(base)
    for _attempt in range(3):   # the new spec's tries; the previous spec's task, back, starts
        engine.after_start("api", exits=1, logs="nginx: [emerg] unknown directive\n", once=True)
    with pytest.raises(ClockworkError) as failed:
        run(engine, declaration(base, api={"env": {"FEATURE": "on"}}))
    message = failed.value.msg
    # api shares a volume: stop-first, one slot at a time; the first slot's failure pauses the update (as Swarm's
    # FailureAction pause does), the second task keeps the previous spec.
    assert "resource api: service api its update is paused: update paused due to failure" in message, message
    assert "api.1 on memory" in message and "failed (started): task: non-zero exit (1)" in message, message
    assert "last log lines of the newest ended task:\nnginx: [emerg] unknown directive" in message, message
    assert "not converged, as they wait for those or came after: frontend" in message
    # The update was made, its tasks failed: the service went back to the stack's release (apply/swarm/rollback.py).
    assert "\nthe stack is back on release 1 (service api: back to release 1 (stop-first))" in message, message
    assert "FEATURE" not in service_env(engine, "api")


def test_a_failed_start_first_update_leaves_the_previous_task_serving(base):
    engine = deployed(base)
    old = [t["ID"] for t in running_tasks(engine, "frontend")]
    engine.after_start("frontend", exits=1)
    with pytest.raises(ClockworkError):
        run(engine, declaration(base, frontend={"env": {"FEATURE": "on"}}))
    assert [t["ID"] for t in running_tasks(engine, "frontend")] == old


def other_run_made(kind, base):
    """What a concurrent run of the same declaration made just before this run's create."""
    owned = {ms.STACK_LABEL: STACK}
    if kind == "network":
        return lambda e: e.create_network("showcase_default", driver="overlay", attachable=True,
                                          labels=dict(owned, **{ms.RESOURCE_LABEL: "showcase_default"}))
    if kind == "volume":
        return lambda e: e.create_volume("app-shared-data", driver="local",
                                         labels=dict(owned, **{ms.RESOURCE_LABEL: "app-shared-data"}))
    reference = ms.new_engine(swarm=True)
    run(reference, declaration(base))
    call = [c for c in reference.calls if c.method == "create_service" and c.kwargs.get("name") == "redis"][0]
    return lambda e: e.create_service(*call.args, **call.kwargs)


CONFLICTS = {
    "network": ("create_network", "showcase_default", "network with name showcase_default already exists"),
    "volume": ("create_volume", "app-shared-data", "volume app-shared-data already exists"),
    "service": ("create_service", lambda *args, **kwargs: kwargs.get("name") == "redis",
                "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service redis "
                "already exists"),
}


@pytest.mark.parametrize("kind", sorted(CONFLICTS))
def test_a_409_from_a_concurrent_run_converges_on_what_it_made(base, kind):
    method, match, words = CONFLICTS[kind]
    engine = ms.new_engine(swarm=True)
    other_run = other_run_made(kind, base)
    met = []
    engine.fail_next(method, 409, words, match=match, before=lambda e: (met.append(kind), other_run(e)))

    report, _gateway = run(engine, declaration(base))

    assert met == [kind], "the scripted 409 was met"
    assert report["changed"] is True
    assert stack_services(engine) == SERVICES
    assert ms.network_names(engine) == ["backend-network", "showcase_default"]
    for name in SERVICES:
        assert len(running_tasks(engine, name)) == (2 if name == "api" else 1), name
    since = len(engine.calls)
    again, gateway = run(engine, declaration(base))
    assert again["changed"] is False, ms.changed_entries(again)
    assert ms.stack_writes(engine, since, gateway) == []


# -- the memory swarm's updates follow the service's UpdateConfig -----------------------------

def memory_service(engine, name, order, action="pause", parallelism=1, replicas=2):
    engine.create_service({"ContainerSpec": {"Image": NGINX, "Env": ["V=1"]}}, name=name,
                          mode={"Replicated": {"Replicas": replicas}},
                          update_config={"Order": order, "FailureAction": action, "Parallelism": parallelism})
    return engine.inspect_service(name)


def update_env(engine, name, value):
    found = engine.inspect_service(name)
    engine.update_service(found["ID"], found["Version"]["Index"], name=name,
                          task_template={"ContainerSpec": {"Image": NGINX, "Env": ["V=%s" % value]}},
                          mode=found["Spec"]["Mode"], update_config=found["Spec"]["UpdateConfig"])
    return engine.inspect_service(name)


def running_env(engine, name):
    return sorted(t["Spec"]["ContainerSpec"]["Env"][0] for t in running_tasks(engine, name))


def test_the_memory_swarm_rolls_back_a_failed_update_when_the_service_says_so():
    engine = ms.new_engine(swarm=True)
    memory_service(engine, "web", "start-first", action="rollback")
    engine.after_start("web", exits=1, once=True)
    for _attempt in range(2):
        engine.after_start("web", exits=1, once=True)
    after = update_env(engine, "web", 2)
    assert after["UpdateStatus"]["State"] == "rollback_completed"
    assert after["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["V=1"]
    assert running_env(engine, "web") == ["V=1", "V=1"]


def test_a_failed_stop_first_update_pauses_after_the_first_slot_and_continue_goes_on():
    engine = ms.new_engine(swarm=True)
    memory_service(engine, "web", "stop-first")
    engine.after_start("web", exits=1)
    assert update_env(engine, "web", 2)["UpdateStatus"]["State"] == "paused"
    assert running_env(engine, "web") == ["V=1"], "slot 1 stopped first and failed; slot 2 left as it was"

    other = ms.new_engine(swarm=True)
    memory_service(other, "web", "start-first", action="continue", parallelism=0)
    other.after_start("web", exits=1)
    assert update_env(other, "web", 2)["UpdateStatus"]["State"] == "completed"
    assert running_env(other, "web") == ["V=1", "V=1"], "start-first: each slot keeps its task"
