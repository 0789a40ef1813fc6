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
