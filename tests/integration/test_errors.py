"""Every failure is one clear message, the same on both paths (in the controller's process
and as a module): errors of the engine are named, never a traceback or a raw HTTP error;
the in-process path honours the task's `environment:` like the module."""
import pytest

from helpers import NGINX_IMAGE, docker, playbook


def stack_task(stack, resources, **extra):
    args = dict(name=stack, resources=resources, connections=[])
    args.update(extra)
    return {"name": "stack", "clockwork.connections.stack": args, "register": "result"}


@pytest.mark.parametrize("where", ["auto", "never"])
def test_task_environment_reaches_the_engine_client(stack, where):
    task = stack_task(stack, [{"name": stack + "-web", "image": NGINX_IMAGE}])
    task["environment"] = {"DOCKER_HOST": "unix:///run/clockwork-no-such-engine.sock"}
    run = playbook([task], env={"CLOCKWORK_STACK_IN_PROCESS": where})
    assert run.rc != 0, run.output
    msg = run.result("stack")["msg"]
    assert msg.startswith("cannot reach the Docker engine"), msg
    assert "Traceback" not in run.output, run.output
    assert docker("ps", "-aq", "--filter", "name=%s-web" % stack) == "", "it went to the default engine"


@pytest.mark.parametrize("where", ["auto", "never"])
def test_an_engine_refusal_is_one_clear_message(stack, where):
    web = stack + "-web"
    _run = playbook([stack_task(stack, [{"name": web, "image": NGINX_IMAGE}])])
    assert _run.rc == 0, _run.output
    # A container the stack does not own, on the stack's network: the engine refuses to remove it.
    docker("run", "-d", "--name", stack + "-intruder", "--network", stack + "_default", NGINX_IMAGE)
    try:
        run = playbook([stack_task(stack, [{"name": web, "image": NGINX_IMAGE}], state="absent")],
                       env={"CLOCKWORK_STACK_IN_PROCESS": where})
        assert run.rc != 0, run.output
        msg = run.result("stack")["msg"]
        assert msg.startswith("the Docker engine refused: ") and "active endpoints" in msg, msg
        assert "Traceback" not in run.output and "400 Client Error" not in msg and "403 Client Error" not in msg, \
            run.details
    finally:
        docker("rm", "-fv", stack + "-intruder")


@pytest.mark.parametrize("where", ["auto", "never"])
def test_a_field_in_another_shape_is_named_with_its_resource_before_any_change(stack, where):
    # Ansible's validator fails with a TypeError on a field with suboptions given in another shape, and names
    # no entry: the plan names each, all at once, the other arguments' problems too.
    web, db = stack + "-web", stack + "-db"
    run = playbook([stack_task(stack, [{"name": web, "image": NGINX_IMAGE, "healthcheck": 1},
                                       {"name": db, "image": NGINX_IMAGE, "logging": "json-file",
                                        "healthcheck": {"bogus": 1}}], state="bogus")],
                   env={"CLOCKWORK_STACK_IN_PROCESS": where})
    assert run.rc != 0, run.output
    msg = run.result("stack")["msg"]
    for said in ("resource %s: healthcheck: must be a mapping" % web, "resource %s: logging: must be a mapping" % db,
                 "resource %s: healthcheck.bogus" % db, "value of state must be one of"):
        assert said in msg, msg
    assert "not iterable" not in msg and "Traceback" not in run.output, run.output
    assert docker("ps", "-aq", "--filter", "label=io.clockwork.stack=%s" % stack) == "", "something was made"
    assert docker("network", "ls", "-q", "--filter", "name=%s_default" % stack) == "", "the network was made"
