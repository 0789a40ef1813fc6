"""The container module on a real engine."""
from helpers import NGINX_IMAGE, STOPPED_GRACEFULLY, docker, engine_state, env_of, inspect, playbook


def web_task(stack, **overrides):
    args = dict(name=stack + "-web", image=NGINX_IMAGE, stack=stack,
                ports=["80", "127.0.0.1::80"], env={"GREETING": "hello", "MODE": "a"},
                healthcheck={"test": "curl -fsS http://localhost/", "interval": "1s"})
    args.update(overrides)
    return {"name": "web", "clockwork.connections.container": args, "register": "web"}


def test_check_apply_idempotent_check(stack):
    name = stack + "-web"
    before = engine_state()
    first_check = playbook([web_task(stack)], check=True, diff=True)
    assert first_check.rc == 0, first_check.output
    assert first_check.result("web")["changed"] is True, first_check.details
    assert first_check.result("web")["actions"] == ["create", "start"], first_check.details
    assert engine_state() == before, "check mode changed Docker's state"

    applied = playbook([web_task(stack)])
    assert applied.rc == 0, applied.output
    result = applied.result("web")
    assert result["changed"] is True, applied.details
    assert result["container"]["state"] == "running", applied.details
    assert result["container"]["health"] == "healthy", applied.details
    attrs = inspect("container", name)
    assert attrs["Id"] == result["container"]["id"], applied.details
    assert attrs["Config"]["Labels"]["io.clockwork.stack"] == stack
    assert attrs["Config"]["Labels"]["io.clockwork.resource"] == name
    assert env_of(name)["GREETING"] == "hello"
    assert docker("exec", name, "curl", "-fsS", "http://localhost/").startswith("<!DOCTYPE html>")

    again = playbook([web_task(stack)])
    assert again.rc == 0, again.output
    assert again.result("web")["changed"] is False, again.details
    assert inspect("container", name)["Id"] == attrs["Id"]

    last_check = playbook([web_task(stack)], check=True, diff=True)
    assert last_check.rc == 0, last_check.output
    assert last_check.result("web")["changed"] is False, last_check.details


def test_env_drift_recreates_and_diff_names_it(stack):
    name = stack + "-web"
    _run = playbook([web_task(stack)])
    assert _run.rc == 0, _run.output
    old_id = inspect("container", name)["Id"]

    # Env given in another order is the same configuration: nothing happens.
    same = playbook([web_task(stack, env={"MODE": "a", "GREETING": "hello"})])
    assert same.result("web")["changed"] is False, same.details
    assert inspect("container", name)["Id"] == old_id

    drift_check = playbook([web_task(stack, env={"GREETING": "hello", "MODE": "b"})], check=True, diff=True)
    assert drift_check.result("web")["actions"] == ["recreate", "start"], drift_check.details
    assert drift_check.result("web")["reasons"] == ["env MODE"], drift_check.details
    assert inspect("container", name)["Id"] == old_id, "check mode recreated the container"

    drifted = playbook([web_task(stack, env={"GREETING": "hello", "MODE": "b"})], diff=True)
    assert drifted.rc == 0, drifted.output
    assert drifted.result("web")["changed"] is True, drifted.details
    assert drifted.result("web")["reasons"] == ["env MODE"], drifted.details
    assert drifted.result("web")["actions"] == ["recreate", "start"], drifted.details
    assert '-        "MODE": "a"' in drifted.output and '+        "MODE": "b"' in drifted.output, drifted.output
    assert inspect("container", name)["Id"] != old_id
    assert env_of(name)["MODE"] == "b"


def test_port_forms_and_published_port(stack):
    name = stack + "-web"
    run = playbook([web_task(stack, ports=[{"container_port": 80, "host_ip": "127.0.0.1"}, "8000"])])
    assert run.rc == 0, run.output
    assert run.result("web")["container"]["ports"] == ["80/tcp", "8000/tcp"], run.details
    bindings = inspect("container", name)["HostConfig"]["PortBindings"]
    assert "8000/tcp" not in bindings
    assert bindings["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": ""}]
    published = inspect("container", name)["NetworkSettings"]["Ports"]["80/tcp"][0]
    assert published["HostIp"] == "127.0.0.1" and int(published["HostPort"]) > 0
    # The dict form and the string form of the same ports are the same configuration.
    same = playbook([web_task(stack, ports=["127.0.0.1::80", "8000/tcp"])])
    assert same.result("web")["changed"] is False, same.details


def test_state_stopped_then_absent(stack):
    name = stack + "-web"
    _run = playbook([web_task(stack)])
    assert _run.rc == 0, _run.output
    stopped = playbook([web_task(stack, state="stopped")])
    assert stopped.result("web")["actions"] == ["stop"], stopped.details
    assert inspect("container", name)["State"]["Status"] == "exited"
    _run = playbook([web_task(stack, state="stopped")])
    assert _run.result("web")["changed"] is False, _run.details
    removed = playbook([web_task(stack, state="absent")])
    assert removed.result("web")["changed"] is True, removed.details
    assert inspect("container", name) is None
    _run = playbook([web_task(stack, state="absent")])
    assert _run.result("web")["changed"] is False, _run.details


def test_absent_stops_the_container_before_removing_it(stack, tmp_path):
    name = stack + "-web"
    mounts = [{"type": "bind", "source": str(tmp_path), "target": "/data"}]
    task = web_task(stack, command=STOPPED_GRACEFULLY, mounts=mounts, healthcheck=None)
    _run = playbook([task])
    assert _run.rc == 0, _run.output
    absent = dict(task, **{"clockwork.connections.container": dict(task["clockwork.connections.container"],
                                                                  state="absent")})
    _run = playbook([absent], check=True)
    assert _run.result("web")["changed"] is True, _run.details
    assert inspect("container", name)["State"]["Running"] and not (tmp_path / "marker").exists()
    removed = playbook([absent])
    assert removed.result("web")["actions"] == ["stop", "remove"], removed.output
    assert inspect("container", name) is None
    assert (tmp_path / "marker").read_text() == "stopped\n", "removed without its stop signal"
    _run = playbook([absent])
    assert _run.result("web")["changed"] is False, _run.details


def test_refuses_a_container_the_stack_does_not_own(stack):
    name = stack + "-web"
    docker("run", "-d", "--name", name, NGINX_IMAGE)
    try:
        run = playbook([web_task(stack)])
        assert run.rc != 0, run.output
        msg = run.result("web")["msg"]
        assert "not owned by stack %s" % stack in msg and name in msg, run.details
        assert "Traceback" not in run.output, run.output
        removal = playbook([web_task(stack, state="absent")])
        assert removal.rc != 0, removal.output
        assert inspect("container", name) is not None, "a foreign container was removed"
    finally:
        docker("rm", "-f", name)


def test_missing_image_names_the_image(stack):
    run = playbook([web_task(stack, image="clockwork-test/no-such-image:1")])
    assert run.rc != 0, run.output
    msg = run.result("web")["msg"]
    assert "clockwork-test/no-such-image:1" in msg and "could not be pulled" in msg, run.details
    assert inspect("container", stack + "-web") is None


def test_container_that_exits_fails_with_its_logs(stack):
    run = playbook([web_task(stack, command=["sh", "-c", "echo boom-from-inside; exit 3"],
                             healthcheck=None)])
    assert run.rc != 0, run.output
    msg = run.result("web")["msg"]
    assert "exited" in msg and "boom-from-inside" in msg, run.details


def test_unhealthy_fails_at_once_with_logs(stack):
    run = playbook([web_task(stack, command=["sh", "-c", "echo warming-up-log; exec nginx -g 'daemon off;'"],
                             healthcheck={"test": "exit 1", "interval": "1s", "retries": 1}, timeout=60)])
    assert run.rc != 0, run.output
    msg = run.result("web")["msg"]
    assert "unhealthy" in msg and "warming-up-log" in msg, run.details


def test_never_healthy_times_out_with_logs(stack):
    # Many retries: the health stays "starting", so the timeout is what ends the wait.
    run = playbook([web_task(stack, healthcheck={"test": "exit 1", "interval": "1s", "retries": 1000},
                             timeout=3)])
    assert run.rc != 0, run.output
    msg = run.result("web")["msg"]
    assert "did not become healthy within 3s" in msg and "health starting" in msg, run.details


def test_recreation_keeps_networks_attached_later(stack):
    name = stack + "-web"
    network = stack + "-extra"
    _run = playbook([web_task(stack)])
    assert _run.rc == 0, _run.output
    docker("network", "create", "--label", "io.clockwork.stack=" + stack, network)
    docker("network", "connect", "--alias", "webby", network, name)
    _run = playbook([web_task(stack, env={"GREETING": "changed"})])
    assert _run.result("web")["changed"] is True, _run.details
    networks = inspect("container", name)["NetworkSettings"]["Networks"]
    assert network in networks and "webby" in networks[network]["Aliases"]


def test_check_mode_on_empty_engine_leaves_nothing(stack):
    before = engine_state()
    run = playbook([web_task(stack), web_task(stack, name=stack + "-other")], check=True)
    assert run.rc == 0, run.output
    assert engine_state() == before
