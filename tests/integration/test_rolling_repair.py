"""A start-first update killed half-way, on a real engine: whatever the moment, the next run
leaves one container under the name with the declared spec and nothing of the attempt, and a
dry run before it changes nothing. The states are made as the killed run leaves them: the
replacement `<name>_clockwork_next_<id>` beside the old container, alone, or beside a stopped one."""
from helpers import NGINX_IMAGE, as_text, docker, engine_state, inspect, playbook

NEXT = "_clockwork_next_"


def stack_task(stack, resources, connections):
    return {"name": "stack", "register": "result",
            "clockwork.connections.stack": dict(name=stack, resources=resources, connections=connections)}


def web_stack(stack, mode):
    web = stack + "-web"
    return web, stack_task(stack, [{"name": web, "image": NGINX_IMAGE, "env": {"MODE": mode},
                                    "healthcheck": {"test": ["CMD", "curl", "-fsS", "http://localhost/"],
                                                    "interval": "1s", "retries": 30}}], [])


def env_mode(container):
    env = dict(e.split("=", 1) for e in inspect("container", container)["Config"]["Env"])
    return env.get("MODE")


def replacement(stack, web, mode, state="running"):
    """What a killed run leaves: a replacement of the new spec under the temporary name."""
    name = web + NEXT + "0123456789ab"
    docker("create", "--name", name, "--network", stack + "_default", "--network-alias", web,
           "--label", "io.clockwork.stack=%s" % stack, "--label", "io.clockwork.resource=%s" % web,
           "--label", "io.clockwork.ports=", "-e", "MODE=%s" % mode, NGINX_IMAGE)
    if state == "running":
        docker("start", name)
    return name


def stack_state(stack):
    """What the engine holds of this stack (the engine is shared with other tests)."""
    return dict((kind, [line for line in lines if stack in line]) for kind, lines in engine_state().items())


def stack_containers(stack):
    return sorted(docker("ps", "-a", "--filter", "label=io.clockwork.stack=%s" % stack,
                         "--format", "{{.Names}}").split())


def repaired(stack, web, task, expected_actions):
    """check (nothing changes) -> apply -> idempotent -> check again."""
    before = stack_state(stack)
    check = playbook([task], check=True)
    assert check.rc == 0, check.output
    assert stack_state(stack) == before
    assert check.result()["changed"] is True, check.details
    run = playbook([task])
    assert run.rc == 0, run.output
    [entry] = [e for e in run.result()["entries"] if e["kind"] == "container"]
    assert entry["actions"][:len(expected_actions)] == expected_actions, as_text(entry)
    assert stack_containers(stack) == [web]
    again = playbook([task])
    assert again.rc == 0 and again.result()["changed"] is False, again.output
    _run = playbook([task], check=True)
    assert _run.result()["changed"] is False, _run.details
    return run


def test_a_replacement_beside_the_running_old_container_is_dropped_and_the_update_made_again(stack):
    web, task = web_stack(stack, "a")
    _run = playbook([task])
    assert _run.rc == 0, _run.output
    leftover = replacement(stack, web, "b")
    web, task = web_stack(stack, "b")
    repaired(stack, web, task, ["remove %s, left by an interrupted run" % leftover, "replace start-first"])
    assert env_mode(web) == "b" and inspect("container", web)["State"]["Health"]["Status"] == "healthy"


def test_a_replacement_whose_old_container_is_gone_takes_the_name(stack):
    web, task = web_stack(stack, "a")
    _run = playbook([task])
    assert _run.rc == 0, _run.output
    leftover = replacement(stack, web, "b")
    docker("rm", "-f", web)   # killed after removing the old one, before the rename
    web, task = web_stack(stack, "b")
    run = repaired(stack, web, task, [
        "complete the replacement of %s by %s, left by an interrupted run" % (web, leftover)])
    # Made by hand without the healthcheck, the replacement then differs from the spec: replaced once more.
    assert "replace start-first" in [e for e in run.result()["entries"] if e["kind"] == "container"][0]["actions"], \
        run.details
    assert env_mode(web) == "b"


def test_a_replacement_whose_old_container_was_stopped_takes_the_name_and_the_old_one_goes(stack):
    web, task = web_stack(stack, "a")
    _run = playbook([task])
    assert _run.rc == 0, _run.output
    old_id = inspect("container", web)["Id"]
    leftover = replacement(stack, web, "b")
    docker("stop", web)   # killed after stopping the old one
    web, task = web_stack(stack, "b")
    repaired(stack, web, task, [
        "complete the replacement of %s by %s, left by an interrupted run" % (web, leftover)])
    assert inspect("container", web)["Id"] != old_id and env_mode(web) == "b"


def test_a_replacement_that_never_started_is_removed(stack):
    web, task = web_stack(stack, "a")
    _run = playbook([task])
    assert _run.rc == 0, _run.output
    old_id = inspect("container", web)["Id"]
    leftover = replacement(stack, web, "a", state="created")
    check = playbook([task], check=True)
    assert check.rc == 0 and check.result()["changed"] is True, check.details
    run = playbook([task])
    assert run.rc == 0, run.output
    [entry] = [e for e in run.result()["entries"] if e["kind"] == "container"]
    assert entry["actions"] == ["remove %s, left by an interrupted run" % leftover], run.details
    assert stack_containers(stack) == [web] and inspect("container", web)["Id"] == old_id
    _run = playbook([task])
    assert _run.result()["changed"] is False, _run.details
