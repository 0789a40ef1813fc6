"""Releases and stack_info on the real engine (issue 35 parts 1 and 5).

A small stack (a Redis server, and an nginx `web` with a secret env value that depends on it) is
deployed with the stack module twice, a change of web's env between: check -> apply -> idempotent ->
check of the first declaration, then the second. Each apply that changed something is a release kept in
the engine (images clockwork-releases:<stack>.<n>, one root-only file each). stack_info, from a playbook
in another directory (another controller directory), lists both, names the current one, reports no
drift and healthy checks, and then the drift of a container stopped by hand; in check mode it answers
alike and writes nothing; its -vvv output carries no secret. A third release is made through the same
engine reached as a remote one (DOCKER_HOST=tcp://..., in-process, another home): stack_info over the
local socket, from yet another directory, finds it; and stack_info over tcp:// finds all three.

Releases are recorded by releases.record.record_release, which apply/applier.py apply_state calls at the
end of an apply that changed something (its answer is the result's `release`). Where a stack task's
result has no `release` yet (the call is not wired into the applier), the test calls the hook itself
right after the task, with the task's arguments and result, on the live engine: what apply_state does."""
import io
import json
import os
import subprocess
import tarfile
import tempfile

import docker as docker_sdk
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import record_release
from ansible_collections.clockwork.connections.plugins.module_utils.releases.recreate import create_body
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore
from ansible_collections.clockwork.connections.plugins.module_utils.stack import STACK_ARGUMENT_SPEC

from helpers import NGINX_IMAGE, REDIS_IMAGE, EngineOverTcp, docker, env_of, inspect, playbook, run_playbook

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


def deploy(args, check=False, loud=False, env=None):
    """The stack task (`loud`: with -vvv --diff; `env`: the playbook's environment over this one's); then,
    for a real run that changed something, the release hook unless the applier called it already. (the run,
    the task's result)."""
    tasks = [{"name": "stack", "clockwork.connections.stack": args, "register": "result"}]
    if env:
        run = playbook(tasks, check=check, env=env)
    elif loud:
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


def stack_info(stack, check=False, workdir=None, verbose=False, env=None):
    """stack_info in a playbook of its own directory (another controller directory than the deploy's)."""
    workdir = workdir or tempfile.mkdtemp(prefix="clockwork-other-controller-")
    path = os.path.join(workdir, "info.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": "info", "clockwork.connections.stack_info": {"name": stack}, "register": "info"}]}], handle)
    run = run_playbook(path, check=check, extra_args=("-vvv",) if verbose else (), env=env)
    assert run.rc == 0, run.details
    return run, run.result("info")


def stack_state(stack):
    """What the engine holds of the stack (other tests' objects come and go on the same engine)."""
    label = "label=io.clockwork.stack=%s" % stack
    return {"containers": sorted(docker("ps", "-a", "--filter", label, "--format",
                                        "{{.ID}} {{.Names}} {{.State}}").splitlines()),
            "networks": sorted(docker("network", "ls", "--filter", label, "--format", "{{.ID}} {{.Name}}").splitlines()),
            "lock": docker("ps", "-a", "--filter", "name=clockwork-lock-%s" % stack, "--format", "{{.ID}}")}


def release_records(stack):
    """{tag: (the one file's TarInfo mode, its bytes)} of the stack's release images, as `docker save` gives them."""
    records = {}
    for line in docker("images", "--filter", "label=io.clockwork.releases-of=" + stack, "--format",
                       "{{.Repository}}:{{.Tag}}").split():
        saved = tarfile.open(fileobj=io.BytesIO(subprocess.run(["docker", "save", line], check=True,
                                                               capture_output=True).stdout))
        layer = json.loads(saved.extractfile("manifest.json").read())[0]["Layers"][-1]
        files = tarfile.open(fileobj=io.BytesIO(saved.extractfile(layer).read()))
        member = files.getmembers()[0]
        records[line.split(":", 1)[1]] = (member.name, member.mode, files.extractfile(member).read())
    return records


def test_stack_info_lists_the_releases_any_controller_directory_finds(stack):
    first, second = declaration(stack, "one"), declaration(stack, "two")
    web = stack + "-web"

    # check -> apply -> idempotent -> check, of the first declaration: one release.
    checked_run, checked = deploy(first, check=True)
    assert checked["changed"] is True, checked_run.details
    assert release_records(stack) == {}, "check mode records nothing"
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

    # Images of one root-only file in the engine; they keep the env, as Docker's own record does.
    records = release_records(stack)
    assert sorted(records) == ["%s.%s" % (stack, n) for n in ("1", "2", "index")], records.keys()
    assert set((name, mode) for name, mode, _data in records.values()) == {("release.json", 0o600)}
    assert TOKEN.encode() in records[stack + ".2"][2]
    labels = inspect("image", "clockwork-releases:%s.2" % stack)["Config"]["Labels"]
    assert labels == {"io.clockwork.releases-of": stack}, "whose they are, nothing of what they hold"
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
    assert info["release_images"] == "clockwork-releases:%s.*" % stack, run.details
    assert [r["missing_images"] for r in info["releases"]] == [{}, {}], run.details

    # Check mode: the same answer, nothing written, nothing changed on the engine.
    records_before, engine_before = release_records(stack), stack_state(stack)
    run, checked_info = stack_info(stack, check=True)
    assert checked_info["changed"] is False, run.details
    assert checked_info["releases"] == info["releases"] and checked_info["drift"] == [], run.details
    assert release_records(stack) == records_before
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
    body, later = create_body(ReleaseStore(DockerGateway(), stack).release(1)["containers"][web])
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

    # The same engine reached as a remote one (no local socket: the collection cannot tell it is this
    # machine's), in-process, from another home: the release it records is in the engine, where the local
    # socket's stack_info, from yet another directory and home, finds it; and tcp://'s finds all three.
    docker("start", web)
    elsewhere = {"HOME": tempfile.mkdtemp(prefix="clockwork-other-home-")}
    with EngineOverTcp() as url:
        over_tcp = DockerGateway(environment={"DOCKER_HOST": url})
        assert not over_tcp.is_local and over_tcp.files_reach_engine(), "the engine this machine's socket answers for"
        remote = dict(elsewhere, DOCKER_HOST=url)
        run, third = deploy(declaration(stack, "three"), env=remote)
        assert third["changed"] is True and third["release"]["number"] == 3, run.details
        run, again = deploy(declaration(stack, "three"), env=remote)
        assert again["changed"] is False and again["release"] is None, run.details
        run, remote_info = stack_info(stack, env=remote)
        assert [r["number"] for r in remote_info["releases"]] == [1, 2, 3], run.details
    assert not os.path.exists(os.path.join(elsewhere["HOME"], ".clockwork", stack, "releases")), "none on the controller"
    run, info = stack_info(stack, env={"HOME": tempfile.mkdtemp(prefix="clockwork-other-home-")})
    assert [r["number"] for r in info["releases"]] == [1, 2, 3] and info["current"] == 3, run.details
    assert info["releases"][2]["containers"][web]["env"]["MODE"] == "three", run.details
    assert info["drift"] == [], run.details
