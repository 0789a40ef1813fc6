"""Safe recreation on a real engine: anonymous volumes are carried over, the old container
is put back when its replacement fails, and what an interrupted run left is repaired."""
import re
import socket

import pytest

from helpers import NGINX_IMAGE, POSTGRES_IMAGE, docker, engine_state, inspect, playbook, remove_stack

ASIDE = "_clockwork_old_"
DATA = "/var/lib/postgresql/data"


@pytest.fixture
def stack(stack):
    """The shared fixture, plus the anonymous volumes of the stack's containers: a carried volume
    is bound by name, so `docker rm -v` keeps it and it has to be removed by name."""
    yield stack
    remove_with_volumes(stack)
    remove_stack(stack)


def remove_with_volumes(stack):
    ids = docker("ps", "-aq", "--filter", "label=io.clockwork.stack=%s" % stack).split()
    volumes = set()
    for container_id in ids:
        volumes.update(m["Name"] for m in inspect("container", container_id)["Mounts"]
                       if m["Type"] == "volume" and re.match(r"^[0-9a-f]{64}$", m["Name"]))
    if ids:
        docker("rm", "-fv", *ids)
    for volume in volumes:
        docker("volume", "rm", volume, check=False)


def stack_state(stack):
    """What the engine holds of this stack (the engine is shared with other tests)."""
    state = engine_state()
    return dict((kind, [line for line in lines if stack in line]) for kind, lines in state.items())


def pg_task(stack, mark="a", **overrides):
    args = dict(name=stack + "-pg", image=POSTGRES_IMAGE, stack=stack,
                env={"POSTGRES_PASSWORD": "pw-%s" % stack, "MARK": mark},
                healthcheck={"test": "pg_isready -U postgres", "interval": "1s", "retries": 60}, timeout=90)
    args.update(overrides)
    return {"name": "pg", "clockwork.connections.container": args, "register": "pg"}


def psql(container, query):
    return docker("exec", container, "psql", "-U", "postgres", "-tAc", query)


def data_volume(container):
    [mount] = [m for m in inspect("container", container)["Mounts"] if m["Destination"] == DATA]
    return mount["Name"]


def leftovers(name):
    return docker("ps", "-a", "--filter", "name=%s%s" % (name, ASIDE), "--format", "{{.Names}}").split()


def deployed_with_a_row(stack):
    """A postgres container without any declared volume, holding one row in its anonymous VOLUME."""
    pg = stack + "-pg"
    first = playbook([pg_task(stack)])
    assert first.rc == 0, first.output
    psql(pg, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survivor')")
    return pg, inspect("container", pg)["Id"], data_volume(pg)


def assert_one_clean_failure(run, name):
    assert run.rc != 0, run.output
    msg = run.result("pg")["msg"]
    assert "container %s could not be recreated, so the previous one is back under its name and running" \
        % name in msg, msg
    assert "Traceback" not in run.output, run.output
    return msg


def test_anonymous_volume_survives_forced_recreate(stack):
    pg = stack + "-pg"
    before = stack_state(stack)
    check = playbook([pg_task(stack)], check=True)
    assert check.rc == 0 and check.result("pg")["actions"] == ["create", "start"], check.details
    assert stack_state(stack) == before
    pg, old_id, volume = deployed_with_a_row(stack)
    again = playbook([pg_task(stack)])
    assert again.rc == 0 and again.result("pg")["changed"] is False, again.details

    drift_check = playbook([pg_task(stack, mark="b")], check=True)
    assert drift_check.result("pg")["actions"] == ["recreate", "start"], drift_check.details
    assert inspect("container", pg)["Id"] == old_id

    recreated = playbook([pg_task(stack, mark="b")])
    assert recreated.rc == 0, recreated.output
    assert recreated.result("pg")["actions"] == ["recreate", "start"], recreated.details
    assert recreated.result("pg")["reasons"] == ["env MARK"], recreated.details
    attrs = inspect("container", pg)
    assert attrs["Id"] != old_id and attrs["State"]["Health"]["Status"] == "healthy"
    assert data_volume(pg) == volume, "the anonymous volume was not carried over"
    assert psql(pg, "SELECT v FROM kept") == "survivor"
    assert inspect("container", old_id) is None, "the replaced container was not removed"
    assert leftovers(pg) == []

    # The carried volume is not a declared mount: no drift, and a second recreate carries it again.
    idempotent = playbook([pg_task(stack, mark="b")])
    assert idempotent.rc == 0 and idempotent.result("pg")["changed"] is False, idempotent.details
    _run = playbook([pg_task(stack, mark="c")])
    assert _run.rc == 0, _run.output
    assert data_volume(pg) == volume and psql(pg, "SELECT v FROM kept") == "survivor"
    last_check = playbook([pg_task(stack, mark="c")], check=True)
    assert last_check.rc == 0 and last_check.result("pg")["changed"] is False, last_check.details


def test_recreate_with_a_missing_bind_source_puts_the_old_container_back(stack, tmp_path):
    pg, old_id, volume = deployed_with_a_row(stack)
    missing = str(tmp_path / "no-such-dir")
    bad = playbook([pg_task(stack, mark="b", mounts=[{"type": "bind", "source": missing, "target": "/srv/x"}])])
    msg = assert_one_clean_failure(bad, pg)
    assert "bind source path does not exist" in msg and missing in msg, msg
    attrs = inspect("container", pg)
    assert attrs["Id"] == old_id and attrs["State"]["Running"]
    assert psql(pg, "SELECT v FROM kept") == "survivor"
    assert leftovers(pg) == []

    fixed = playbook([pg_task(stack, mark="b")])
    assert fixed.rc == 0, fixed.output
    assert fixed.result("pg")["actions"] == ["recreate", "start"], fixed.details
    assert data_volume(pg) == volume and psql(pg, "SELECT v FROM kept") == "survivor"
    _run = playbook([pg_task(stack, mark="b")])
    assert _run.result("pg")["changed"] is False, _run.details


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_recreate_on_a_taken_port_puts_the_old_container_back(stack):
    pg, old_id, volume = deployed_with_a_row(stack)
    port = free_port()
    blocker = stack + "-blocker"
    docker("run", "-d", "--name", blocker, "--label", "io.clockwork.stack=%s" % stack,
           "-p", "127.0.0.1:%d:80" % port, NGINX_IMAGE)
    bad = playbook([pg_task(stack, mark="b", ports=["127.0.0.1:%d:5432" % port])])
    msg = assert_one_clean_failure(bad, pg)
    assert "cannot start container %s" % pg in msg and "%d" % port in msg, msg
    attrs = inspect("container", pg)
    assert attrs["Id"] == old_id and attrs["State"]["Running"]
    assert psql(pg, "SELECT v FROM kept") == "survivor"
    assert leftovers(pg) == []

    docker("rm", "-f", blocker)
    fixed = playbook([pg_task(stack, mark="b", ports=["127.0.0.1:%d:5432" % port])])
    assert fixed.rc == 0, fixed.output
    assert data_volume(pg) == volume and psql(pg, "SELECT v FROM kept") == "survivor"
    assert inspect("container", pg)["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"] == str(port)
    # The old container, stopped aside, frees its host port for its replacement.
    same_port = playbook([pg_task(stack, mark="c", ports=["127.0.0.1:%d:5432" % port])])
    assert same_port.rc == 0 and same_port.result("pg")["actions"] == ["recreate", "start"], same_port.output
    assert inspect("container", pg)["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"] == str(port)
    assert psql(pg, "SELECT v FROM kept") == "survivor"


def test_unhealthy_replacement_puts_the_old_container_back(stack):
    pg, old_id, _volume = deployed_with_a_row(stack)
    bad = playbook([pg_task(stack, healthcheck={"test": "exit 1", "interval": "1s", "retries": 1}, timeout=30)])
    msg = assert_one_clean_failure(bad, pg)
    assert "unhealthy" in msg, msg
    attrs = inspect("container", pg)
    assert attrs["Id"] == old_id and attrs["State"]["Health"]["Status"] == "healthy"
    assert psql(pg, "SELECT v FROM kept") == "survivor"
    assert leftovers(pg) == []


def test_stopped_container_is_recreated_stopped_and_put_back_stopped(stack):
    pg, _old_id, volume = deployed_with_a_row(stack)
    _run = playbook([pg_task(stack, state="stopped")])
    assert _run.result("pg")["actions"] == ["stop"], _run.details
    recreated = playbook([pg_task(stack, mark="b", state="stopped")])
    assert recreated.rc == 0 and recreated.result("pg")["actions"] == ["recreate"], recreated.details
    attrs = inspect("container", pg)
    assert attrs["State"]["Status"] == "created" and data_volume(pg) == volume
    bad = playbook([pg_task(stack, mark="c", state="started", mounts=[
        {"type": "bind", "source": "/nonexistent/clockwork", "target": "/srv/x"}])])
    assert bad.rc != 0 and "the previous one is back under its name, with its volumes" in bad.result("pg")["msg"], \
        bad.details
    assert inspect("container", pg)["Id"] == attrs["Id"] and inspect("container", pg)["State"]["Status"] == "created"
    started = playbook([pg_task(stack, mark="b")])
    assert started.rc == 0 and started.result("pg")["actions"] == ["start"], started.details
    assert psql(pg, "SELECT v FROM kept") == "survivor"


def test_interrupted_recreate_is_repaired_by_the_next_run(stack):
    pg, old_id, volume = deployed_with_a_row(stack)
    aside = "%s%s%s" % (pg, ASIDE, old_id[:12])

    # Killed after renaming aside and stopping: the name is free, the old container is aside.
    docker("rename", pg, aside)
    docker("stop", aside)
    state = stack_state(stack)
    check = playbook([pg_task(stack)], check=True)
    assert check.rc == 0, check.output
    assert check.result("pg")["actions"] == ["restore %s from %s, left by an interrupted run" % (pg, aside), "start"], \
        check.details
    assert stack_state(stack) == state
    repaired = playbook([pg_task(stack)])
    assert repaired.rc == 0, repaired.output
    assert repaired.result("pg")["actions"] == check.result("pg")["actions"], repaired.details + check.details
    assert inspect("container", pg)["Id"] == old_id and leftovers(pg) == []
    assert psql(pg, "SELECT v FROM kept") == "survivor"
    _run = playbook([pg_task(stack)])
    assert _run.result("pg")["changed"] is False, _run.details

    # Killed after creating the replacement, before starting it: the old one comes back, then
    # the change is made again, safely.
    docker("rename", pg, aside)
    docker("stop", aside)
    docker("create", "--name", pg, "--label", "io.clockwork.stack=%s" % stack, POSTGRES_IMAGE)
    # Never started, so the harness's mount events do not see its anonymous volume: the
    # restore keeps it (it may hold data), and this test removes it at the end.
    made_here = [m["Name"] for m in inspect("container", pg)["Mounts"]]
    repaired = playbook([pg_task(stack, mark="b")])
    assert repaired.rc == 0, repaired.output
    assert repaired.result("pg")["actions"][:2] == [
        "restore %s from %s, left by an interrupted run" % (pg, aside), "recreate"], repaired.details
    assert leftovers(pg) == [] and data_volume(pg) == volume
    assert psql(pg, "SELECT v FROM kept") == "survivor"

    # Killed after the replacement ran, before removing the old one: the old one goes.
    current = inspect("container", pg)["Id"]
    stale = "%s%s%s" % (pg, ASIDE, "0123456789ab")
    docker("create", "--name", stale, "--label", "io.clockwork.stack=%s" % stack, POSTGRES_IMAGE)
    made_here += [m["Name"] for m in inspect("container", stale)["Mounts"]]
    repaired = playbook([pg_task(stack, mark="b")])
    assert repaired.rc == 0, repaired.output
    assert repaired.result("pg")["actions"] == ["remove %s, left by an interrupted run" % stale], repaired.details
    assert inspect("container", pg)["Id"] == current and leftovers(pg) == []
    _run = playbook([pg_task(stack, mark="b")])
    assert _run.result("pg")["changed"] is False, _run.details
    # What the removed containers kept is no one's now; the data volume is in use, and stays.
    assert data_volume(pg) == volume and volume not in made_here
    for orphan in made_here:
        assert not docker("ps", "-aq", "--filter", "volume=" + orphan)
        docker("volume", "rm", orphan)


def test_a_container_aside_of_another_stack_is_left_alone(stack):
    pg = stack + "-pg"
    foreign = "%s%s%s" % (pg, ASIDE, "0123456789ab")
    docker("create", "--name", foreign, NGINX_IMAGE)
    try:
        run = playbook([pg_task(stack)])
        assert run.rc == 0, run.output
        assert run.result("pg")["actions"] == ["create", "start"], run.details
        assert inspect("container", foreign) is not None
    finally:
        docker("rm", "-f", foreign)


def stack_task(stack, mark, healthcheck=None):
    ready = {"test": "pg_isready -U postgres", "interval": "1s", "retries": 60}
    resources = [{"name": stack + "-pg", "image": POSTGRES_IMAGE, "timeout": 90,
                  "env": {"POSTGRES_PASSWORD": "pw-%s" % stack, "MARK": mark},
                  "healthcheck": healthcheck or ready},
                 {"name": stack + "-web", "image": NGINX_IMAGE}]
    connections = [{"type": "dependency", "from": stack + "-web", "to": stack + "-pg"}]
    return {"name": "pg", "clockwork.connections.stack": dict(name=stack, resources=resources,
                                                              connections=connections)}


@pytest.mark.parametrize("in_process", ["auto", "never"])
def test_stack_recreate_keeps_the_data_and_waits_before_removing_the_old_one(stack, in_process):
    """The stack defers readiness waits; a recreate still waits for the new container first."""
    env = {"CLOCKWORK_STACK_IN_PROCESS": in_process}
    pg = stack + "-pg"
    first = playbook([stack_task(stack, "a")], env=env)
    assert first.rc == 0, first.output
    psql(pg, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survivor')")
    volume = data_volume(pg)
    recreated = playbook([stack_task(stack, "b")], env=env)
    assert recreated.rc == 0, recreated.output
    entry = [e for e in recreated.result("pg")["entries"] if e["name"] == pg][0]
    assert entry["actions"] == ["recreate", "start"], recreated.details
    assert data_volume(pg) == volume and psql(pg, "SELECT v FROM kept") == "survivor"
    assert leftovers(pg) == []

    unhealthy = {"test": "exit 1", "interval": "1s", "retries": 1}
    bad = playbook([stack_task(stack, "c", healthcheck=unhealthy)], env=env)
    assert bad.rc != 0 and "Traceback" not in bad.output, bad.output
    assert "container %s could not be recreated, so the previous one is back under its name and running" % pg \
        in bad.result("pg")["msg"], bad.details
    assert "MARK=b" in inspect("container", pg)["Config"]["Env"]
    assert psql(pg, "SELECT v FROM kept") == "survivor" and leftovers(pg) == []
    again = playbook([stack_task(stack, "b")], env=env)
    assert again.rc == 0 and again.result("pg")["changed"] is False, again.details
