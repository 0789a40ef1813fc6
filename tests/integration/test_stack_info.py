"""Releases and stack_info on the real engine (issue 35 parts 1 and 5).

A small stack (a Redis server, and an nginx `web` with a secret env value that depends on it) is
deployed with the stack module twice, a change of web's env between: check -> apply -> idempotent ->
check of the first declaration, then the second. Each apply that changed something is a release on
the Docker host (~/.clockwork/<stack>/releases, root-only files). stack_info, from a playbook in another
directory (another controller directory), lists both, names the current one, reports no drift and
healthy checks, and then the drift of a container stopped by hand; in check mode it answers alike and
writes nothing; its -vvv output carries no secret.

Releases are recorded by releases.record.record_release, which apply/applier.py apply_state calls at the
end of an apply that changed something (its answer is the result's `release`). Where a stack task's
result has no `release` yet (the call is not wired into the applier), the test calls the hook itself
right after the task, with the task's arguments and result, on the live engine: what apply_state does."""
import json
import os
import shutil
import stat
import tempfile

import docker as docker_sdk
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import HostFiles
from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import record_release
from ansible_collections.clockwork.connections.plugins.module_utils.releases.recreate import create_body
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore, releases_home
from ansible_collections.clockwork.connections.plugins.module_utils.stack import STACK_ARGUMENT_SPEC

from helpers import NGINX_IMAGE, REDIS_IMAGE, docker, env_of, inspect, playbook, run_playbook

TOKEN = "tok-5ecret-8271"   # pragma: allowlist secret
CONTROLLER = "tester@integration"


def declaration(stack, mode):
    cache, web = stack + "-cache", stack + "-web"
    return dict(
        name=stack,
        resources=[
            dict(name=cache, image=REDIS_IMAGE, healthcheck={"test": "redis-cli ping", "interval": "1s",
                                                             "retries": 30}),
            dict(name=web, image=NGINX_IMAGE, env={"MODE": mode, "API_TOKEN": TOKEN}),
        ],
        connections=[dict(type="dependency", **{"from": web, "to": cache})])


def deploy(args, check=False, loud=False):
    """The stack task (`loud`: with -vvv --diff); then, for a real run that changed something, the
    release hook unless the applier called it already. (the run, the task's result)."""
    tasks = [{"name": "stack", "clockwork.connections.stack": args, "register": "result"}]
    if loud:
        path = os.path.join(tempfile.mkdtemp(prefix="clockwork-test-"), "play.yml")
        with open(path, "w") as handle:
            yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], handle)
        run = run_playbook(path, diff=True, extra_args=("-vvv",))
    else:
        run = playbook(tasks, check=check)
    assert run.rc == 0, run.details
    result = run.result("stack")
    if not check and "release" not in result:
        validated = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(json.loads(json.dumps(args)))
        assert not validated.error_messages, validated.error_messages
        result["release"] = record_release(DockerGateway(), args["name"], validated.validated_parameters, result,
                                           controller=CONTROLLER)
    return run, result


def stack_info(stack, check=False, workdir=None, verbose=False):
    """stack_info in a playbook of its own directory (another controller directory than the deploy's)."""
    workdir = workdir or tempfile.mkdtemp(prefix="clockwork-other-controller-")
    path = os.path.join(workdir, "info.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "info", "clockwork.connections.stack_info": {"name": stack}, "register": "info"}]}], handle)
    run = run_playbook(path, check=check, extra_args=("-vvv",) if verbose else ())
    assert run.rc == 0, run.details
    return run, run.result("info")


def stack_state(stack):
    """What the engine holds of the stack (other tests' objects come and go on the same engine)."""
    label = "label=io.clockwork.stack=%s" % stack
    return {"containers": sorted(docker("ps", "-a", "--filter", label, "--format",
                                        "{{.ID}} {{.Names}} {{.State}}").splitlines()),
            "networks": sorted(docker("network", "ls", "--filter", label, "--format", "{{.ID}} {{.Name}}").splitlines()),
            "lock": docker("ps", "-a", "--filter", "name=clockwork-lock-%s" % stack, "--format", "{{.ID}}")}


def release_files(stack):
    home = releases_home(stack)
    return dict((os.path.relpath(os.path.join(folder, name), home), open(os.path.join(folder, name), "rb").read())
                for folder, _dirs, names in os.walk(home) for name in names)


def test_stack_info_lists_the_releases_any_controller_directory_finds(stack):
    try:
        first, second = declaration(stack, "one"), declaration(stack, "two")
        web = stack + "-web"

        # check -> apply -> idempotent -> check, of the first declaration: one release.
        checked_run, checked = deploy(first, check=True)
        assert checked["changed"] is True, checked_run.details
        assert not os.path.exists(releases_home(stack)), "check mode records nothing"
        run, applied = deploy(first)
        assert applied["changed"] is True and applied["release"]["number"] == 1, run.details
        run, again = deploy(first)
        assert again["changed"] is False and again["release"] is None, run.details
        run, checked = deploy(first, check=True)
        assert checked["changed"] is False, run.details
        first_image = inspect("container", web)["Image"]

        # The second declaration: release 2.
        run, changed = deploy(second, loud=True)
        assert changed["changed"] is True and changed["release"]["number"] == 2, run.details
        assert "API_TOKEN" in run.output and "MODE" in run.output, run.details   # -vvv --diff shows the env, masked
        for run in (checked_run, run):
            assert TOKEN not in run.output, run.details

        # Root-only files on the Docker host; they keep the env, as Docker's own record does.
        home = releases_home(stack)
        assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
        files = release_files(stack)
        assert sorted(files) == ["1/release.json", "2/release.json", "index.json"]
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(home, name)).st_mode) == 0o600, name
        assert TOKEN.encode() in files["2/release.json"]
        for container in (stack + "-web", stack + "-cache"):
            assert TOKEN not in json.dumps(inspect("container", container)["Config"]["Labels"]), "never in a label"

        # stack_info from another controller directory: the same releases, the current one, no drift, healthy.
        run, info = stack_info(stack)
        assert info["changed"] is False, run.details
        assert [r["number"] for r in info["releases"]] == [1, 2] and info["current"] == 2, run.details
        assert [r["current"] for r in info["releases"]] == [False, True], run.details
        assert [r["containers"][web]["env"]["MODE"] for r in info["releases"]] == ["one", "two"], run.details
        assert all(r["containers"][web]["env"]["API_TOKEN"] == "********" for r in info["releases"]), run.details
        assert info["releases"][0]["containers"][web]["image_id"] == first_image, run.details
        assert info["releases"][1]["containers"][web]["image_id"] == inspect("container", web)["Image"], run.details
        assert info["releases"][1]["containers"][web]["image"] == NGINX_IMAGE, run.details
        assert info["drift"] == [], run.details
        assert info["healthy"] is True and info["health"][0]["connection"] == "dependency %s -> %s" % (
            web, stack + "-cache"), run.details
        assert info["release_directory"] == home, run.details
        assert [r["missing_images"] for r in info["releases"]] == [{}, {}], run.details

        # Check mode: the same answer, nothing written, nothing changed on the engine.
        files_before, engine_before = release_files(stack), stack_state(stack)
        run, checked_info = stack_info(stack, check=True)
        assert checked_info["changed"] is False, run.details
        assert checked_info["releases"] == info["releases"] and checked_info["drift"] == [], run.details
        assert release_files(stack) == files_before
        assert stack_state(stack) == engine_before

        # -vvv: the module's arguments, its result, Ansible's own lines: no secret.
        run, _info = stack_info(stack, verbose=True)
        assert TOKEN not in run.output, run.details
        assert '"API_TOKEN": "********"' in run.output or "'API_TOKEN': '********'" in run.output, run.details

        # A container stopped by hand: the drift names it and its state.
        docker("stop", "-t", "2", web)
        run, info = stack_info(stack)
        assert info["drift"] == [{"container": web, "changes": ["state (release running, running exited)"]}], \
            run.details

        # The record is enough to make the container again exactly as it ran: the engine's create takes
        # its body as it is (a copy, never started, under another name; the stack fixture removes it).
        body, later = create_body(ReleaseStore(HostFiles(), stack).release(1)["containers"][web])
        client = docker_sdk.APIClient(version="auto")
        try:
            client.create_container_from_config(body, stack + "-copy")
        finally:
            client.close()
        assert later == {}
        copy, ran = inspect("container", stack + "-copy"), inspect("container", web)
        assert copy["Image"] == first_image
        assert copy["HostConfig"] == ran["HostConfig"]
        same = ("Cmd", "Entrypoint", "Labels", "ExposedPorts", "WorkingDir", "User", "Healthcheck", "StopSignal")
        assert dict((k, copy["Config"].get(k)) for k in same) == dict((k, ran["Config"].get(k)) for k in same)
        assert env_of(stack + "-copy")["MODE"] == "one" and env_of(stack + "-copy")["API_TOKEN"] == TOKEN, "its env"
    finally:
        shutil.rmtree(releases_home(stack), ignore_errors=True)
        # The stack's home, when nothing else is in it (the stack fixture removes the Docker objects).
        try:
            os.rmdir(os.path.dirname(releases_home(stack)))
        except OSError:
            pass
