"""Issue 34 part 3: a build-only container resource on the real engine. Its context (a Dockerfile
FROM the local nginx test image, and a site) is read on the controller, sent as POST /build's tar
(the classic builder: no BuildKit), and the image is rebuilt only when the content changes; an
edited source file rebuilds and rolls the container start-first. check -> apply -> idempotent ->
check again, asserted on what `docker inspect` and `docker exec` see.

Three ways in: the stack run in this process over the live gateway (as the action runs it
in-process, its tar where the action puts it), the playbook through the stack action, and a remote
Docker host over SSH with the context on the controller only. And the memory engine's POST /build
answers as the live one."""
import os
import shutil

import pytest
import yaml

from ansible_collections.clockwork.connections.plugins.module_utils.apply.build import (
    BUILD_HASH_LABEL)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.stack import STACK_ARGUMENT_SPEC, run_stack
from ansible_collections.clockwork.connections.plugins.plugin_utils.build_context import ship_builds
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from helpers import NGINX_IMAGE, as_text, docker, inspect, playbook, remove_stack
from test_remote_ssh import sshd, tar_of  # noqa: F401  (sshd: the fixture, an sshd of the test's own)

# Every image the build makes, its intermediate ones included, carries the test's label (TEST_LABEL=<stack>).
TEST_LABEL = "org.example.build-test"
DOCKERFILE = "FROM %s\nLABEL %s=%%s\nCOPY site/ /srv/site/\nLABEL org.example.app=web\n" % (NGINX_IMAGE, TEST_LABEL)


@pytest.fixture
def app(tmp_path, stack):
    root = tmp_path / "app"
    (root / "site").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE % stack)
    (root / ".dockerignore").write_text("*.log\n")
    (root / "site" / "index.html").write_text("<h1>v1</h1>\n")
    return root


@pytest.fixture
def images(stack):
    """The images the test made, removed at its end, after the stack's containers (the stack's
    cleanup removes containers, networks and volumes; images are the test's own): its tags, and
    every image, intermediate ones too, with the test's label."""
    made = set()
    yield made
    remove_stack(stack)
    made.update(docker("image", "ls", "-a", "-q", "--filter", "label=%s=%s" % (TEST_LABEL, stack)).split())
    for ref in sorted(made):
        docker("rmi", "-f", ref, check=False)


# Stops at once on SIGTERM and on the nginx image's SIGQUIT: as PID 1 a plain `sleep` ignores both,
# and each replacement or removal waited for Docker's 10 s stop timeout.
IDLE = ["sh", "-c", "trap 'exit 0' TERM QUIT; while true; do sleep 0.2; done"]


def web_resource(stack, app):
    return {"name": stack + "-web", "build": {"context": str(app), "args": {"FLAVOUR": "plain"}},
            "update_order": "start-first", "command": IDLE}


def dangling(stack):
    """The dangling images (no tag) of the test's builds."""
    return docker("image", "ls", "-q", "--filter", "dangling=true", "--filter",
                  "label=%s=%s" % (TEST_LABEL, stack)).split()


def served(container):
    return docker("exec", container, "cat", "/srv/site/index.html")


# -- in process, over the live gateway --------------------------------------------------------

def converge(stack, app, tmp_path, check=False):
    """One run of the stack as the action runs it in-process: the context read and its tar put
    where the module reads it (a directory of the task's, here tmp_path), then run_stack."""
    web = web_resource(stack, app)
    kept = tmp_path / "remote-tmp"
    kept.mkdir(exist_ok=True)
    resources = ship_builds([web], lambda p: p, lambda local: shutil.copy(local, str(kept)))
    validated = ArgumentSpecValidator(STACK_ARGUMENT_SPEC).validate(dict(
        name=stack, resources=resources, connections=[], base_dir=str(tmp_path)))
    assert not validated.error_messages, validated.error_messages
    gateway = dry_run_gateway() if check else DockerGateway()
    report = run_stack(gateway, validated.validated_parameters)
    return report, gateway


def builds(gateway):
    return [a for a in gateway.actions if a.startswith("build image ")]


def said(report, gateway):
    """What a run in-process did, for the message of a failed assertion: its entries and its gateway's actions."""
    return {"entries": report.get("entries"), "actions": gateway.actions}


def test_build_on_the_live_engine_check_apply_idempotent_and_an_edit_rolls(stack, app, tmp_path, images):
    name, tag = stack + "-web", "%s-%s-web:clockwork" % (stack, stack)
    images.add(tag)

    report, gateway = converge(stack, app, tmp_path, check=True)
    assert report["changed"] and builds(gateway) == ["build image " + tag], as_text(said(report, gateway))
    assert inspect("image", tag) is None and inspect("container", name) is None, "check mode built nothing"

    report, gateway = converge(stack, app, tmp_path)
    assert report["changed"] and builds(gateway) == ["build image " + tag], as_text(said(report, gateway))
    image = inspect("image", tag)
    images.add(image["Id"])
    assert image["Config"]["Labels"][BUILD_HASH_LABEL].startswith("sha256:")
    assert image["Config"]["Labels"]["org.example.app"] == "web"
    first = inspect("container", name)
    assert first["Image"] == image["Id"] and first["State"]["Running"]
    assert served(name) == "<h1>v1</h1>"

    for check in (False, True):   # idempotent, then check again
        report, gateway = converge(stack, app, tmp_path, check=check)
        assert not report["changed"], as_text(said(report, gateway))
        assert builds(gateway) == [], as_text(said(report, gateway))
    assert inspect("container", name)["Id"] == first["Id"]

    (app / "debug.log").write_text("ignored by .dockerignore: no rebuild")
    report, gateway = converge(stack, app, tmp_path)
    assert not report["changed"] and builds(gateway) == [], as_text(said(report, gateway))

    (app / "site" / "index.html").write_text("<h1>v2</h1>\n")
    report, gateway = converge(stack, app, tmp_path, check=True)
    assert report["changed"] and builds(gateway) == ["build image " + tag], as_text(said(report, gateway))
    assert inspect("container", name)["Id"] == first["Id"] and inspect("image", tag)["Id"] == image["Id"]

    report, gateway = converge(stack, app, tmp_path)
    assert report["changed"] and builds(gateway) == ["build image " + tag], as_text(said(report, gateway))
    rebuilt = inspect("image", tag)
    images.add(rebuilt["Id"])
    second = inspect("container", name)
    assert rebuilt["Id"] != image["Id"] and second["Image"] == rebuilt["Id"] and second["Id"] != first["Id"]
    assert served(name) == "<h1>v2</h1>"
    assert any(a.startswith("create container %s_clockwork_next_" % name) for a in gateway.actions), \
        "start-first: the new container ran beside the old one\n" + as_text(said(report, gateway))
    # The previous image stays while release 1 (5 kept by default) runs it: a rollback needs it.
    assert inspect("image", image["Id"]) is not None and dangling(stack) == [image["Id"][7:19]]

    for check in (False, True):
        report, gateway = converge(stack, app, tmp_path, check=check)
        assert not report["changed"] and builds(gateway) == [], as_text(said(report, gateway))


def test_a_failing_build_names_the_resource_and_leaves_nothing(stack, app, tmp_path, images):
    (app / "Dockerfile").write_text(DOCKERFILE % stack + "RUN exit 3\n")
    images.add("%s-%s-web:clockwork" % (stack, stack))
    with pytest.raises(Exception) as caught:
        converge(stack, app, tmp_path)
    message = getattr(caught.value, "msg", str(caught.value))
    assert "resource %s-web: build: image %s-%s-web:clockwork could not be built: " % (stack, stack, stack) in message
    assert "returned a non-zero code: 3" in message
    assert inspect("container", stack + "-web") is None


# -- the playbook, through the stack action -----------------------------------------------------

def stack_task(stack, app):
    web = web_resource(stack, app)
    return {"name": "stack", "clockwork.connections.stack": {"name": stack, "resources": [web]}, "register": "result"}


def test_build_only_service_through_the_playbook(stack, app, tmp_path, images):
    name, tag = stack + "-web", "%s-%s-web:clockwork" % (stack, stack)
    images.add(tag)
    tasks = [stack_task(stack, app)]
    run = playbook(tasks, check=True)
    assert run.rc == 0 and run.result("stack")["changed"] is True, run.details
    assert inspect("image", tag) is None

    run = playbook(tasks)
    assert run.rc == 0 and run.result("stack")["changed"] is True, run.details
    image = inspect("image", tag)
    images.add(image["Id"])
    first = inspect("container", name)
    assert first["Image"] == image["Id"] and served(name) == "<h1>v1</h1>"

    for check in (False, True):
        run = playbook(tasks, check=check)
        assert run.rc == 0 and run.result("stack")["changed"] is False, run.details

    (app / "site" / "index.html").write_text("<h1>v2</h1>\n")
    run = playbook(tasks, check=True)
    assert run.rc == 0 and run.result("stack")["changed"] is True, run.details
    assert inspect("container", name)["Id"] == first["Id"]
    run = playbook(tasks)
    assert run.rc == 0 and run.result("stack")["changed"] is True, run.details
    rebuilt = inspect("image", tag)
    images.add(rebuilt["Id"])
    assert rebuilt["Id"] != image["Id"] and inspect("container", name)["Image"] == rebuilt["Id"]
    assert served(name) == "<h1>v2</h1>"
    for check in (False, True):
        run = playbook(tasks, check=check)
        assert run.rc == 0 and run.result("stack")["changed"] is False, run.details


def test_a_context_beside_the_playbook_holding_the_stacks_own_files(stack, app, tmp_path, images):
    """`build: .` where the stack writes its diagram (diagram_path) and where a lock file lies: neither is part
    of the context, so the run that writes the diagram does not make the next one rebuild; an edit rebuilds and
    the previous image goes (releases_kept 1: no release runs it any more). check -> apply -> rerun changed=0 ->
    check changed=0, each time."""
    name, tag = stack + "-web", "%s-%s-web:clockwork" % (stack, stack)
    images.add(tag)
    diagram = app / (stack + ".stack.md")
    task = stack_task(stack, app)
    task["clockwork.connections.stack"].update(diagram_path=str(diagram), releases_kept=1)
    tasks = [task]

    def rounds(changed):
        run = playbook(tasks, check=True)
        assert run.rc == 0 and run.result("stack")["changed"] is changed, run.details
        run = playbook(tasks)
        assert run.rc == 0 and run.result("stack")["changed"] is changed, run.details
        for check in (False, True):
            again = playbook(tasks, check=check)
            assert again.rc == 0 and again.result("stack")["changed"] is False, again.details
        return inspect("image", tag)

    image = rounds(True)
    images.add(image["Id"])
    assert diagram.exists(), "the diagram is written into the context directory"
    (app / "clockwork.lock.yml").write_text("connections: {}\n")
    diagram.write_text(diagram.read_text() + "\nedited by hand\n")
    for check in (False, True):
        run = playbook(tasks, check=check)
        assert run.rc == 0 and [e for e in run.result("stack")["entries"] if e["kind"] == "build"] == [], run.details
    assert inspect("image", tag)["Id"] == image["Id"]

    (app / "site" / "index.html").write_text("<h1>v2</h1>\n")
    rebuilt = rounds(True)
    images.add(rebuilt["Id"])
    assert rebuilt["Id"] != image["Id"] and inspect("container", name)["Image"] == rebuilt["Id"]
    assert inspect("image", image["Id"]) is None and dangling(stack) == [], "the previous image is removed"
    assert inspect("image", tag)["Config"]["Labels"]["io.clockwork.build-stack"] == stack
    assert served(name) == "<h1>v2</h1>"


# -- a remote Docker host over SSH: the context exists on the controller only ---------------------

def ssh_controller_files(stack):
    """The playbook directory (a play on the SSH target whose stack builds from `app/`, after a task
    on the controller writes the site's page from -e site=...), as a tar, as test_remote_ssh sends it."""
    web = web_resource(stack, "app")
    play = [{"hosts": "remote", "gather_facts": False, "tasks": [
        {"name": "The page, edited on the controller", "delegate_to": "localhost",
         "ansible.builtin.copy": {"content": "<h1>{{ site }}</h1>\n", "dest": "{{ playbook_dir }}/app/site/index.html"}},
        {"name": "The target cannot see the controller's files",
         "ansible.builtin.stat": {"path": "{{ playbook_dir }}/app/Dockerfile"}, "register": "seen"},
        {"name": "Proof", "ansible.builtin.assert": {"that": ["not seen.stat.exists"]}},
        {"name": "stack", "clockwork.connections.stack": {"name": stack, "resources": [web]}, "register": "result"},
    ]}]
    files = {"play.yml": yaml.safe_dump(play), "app/Dockerfile": DOCKERFILE % stack, "app/.dockerignore": "*.log\n",
             "app/site/index.html": "<h1>v0</h1>\n"}
    return tar_of(files)


def test_build_on_a_remote_docker_host_over_ssh(sshd, stack, tmp_path, images, monkeypatch):
    import test_remote_ssh   # its controller in a private mount namespace, run over its sshd
    monkeypatch.setattr(test_remote_ssh, "controller_files", ssh_controller_files)
    name, tag = stack + "-web", "%s-%s-web:clockwork" % (stack, stack)
    images.add(tag)
    steps = [["-e", "site=v1"], ["-e", "site=v1"], ["--check", "-e", "site=v1"], ["--check", "-e", "site=v1"],
             ["-e", "site=v2"], ["-e", "site=v2"], ["--check", "-e", "site=v2"]]
    runs = test_remote_ssh.run_as_controller(sshd, stack, steps, str(tmp_path))
    outputs = "\n".join(r[1] for r in runs)
    for rc, output, _results in runs:
        assert rc == 0 and "Traceback" not in output, outputs
    changed = [test_remote_ssh.recap_changed(r[1]) for r in runs]
    # cold: the page written and the stack built; rerun and checks: nothing; an edited page: written, built, rolled.
    assert changed == [2, 0, 0, 0, 2, 0, 0], outputs
    stack_result = [r for r in runs[4][2] if r["_task"] == "stack"][0]
    assert stack_result["invocation"]["module_args"]["base_dir"].endswith("/.clockwork/" + stack), \
        "the module ran on the target:\n" + as_text(stack_result)
    image = inspect("image", tag)
    images.add(image["Id"])
    assert inspect("container", name)["Image"] == image["Id"] and served(name) == "<h1>v2</h1>", outputs


# -- the memory engine's POST /build answers as the live one --------------------------------------

PARITY_DOCKERFILE = ("FROM %s AS base\nLABEL %s=%%s\nENV GREETING=hello MODE=\"two words\"\nFROM base AS web\n"
                     "COPY site/ /srv/site/\nEXPOSE 8080 9000/udp\nWORKDIR /srv\nUSER nobody\n"
                     "CMD [\"sleep\", \"3600\"]\nLABEL tier=front\nFROM base AS other\nCMD sh -c 'echo other'\n"
                     % (NGINX_IMAGE, TEST_LABEL))


def built_config(gateway, archive, tag, **options):
    """What the collection reads of a built image, or the error the build gave: (type name, status, words)."""
    from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import APIError
    try:
        gateway.build(archive, tag, **options)
    except APIError as exc:
        return (type(exc).__name__, exc.status_code, exc.explanation.splitlines()[0])
    config = gateway.image(tag)["Config"]
    return dict((k, config.get(k)) for k in ("Labels", "Env", "Cmd", "Entrypoint", "ExposedPorts", "WorkingDir", "User"))


def test_the_memory_engine_builds_as_the_live_one(stack, app, tmp_path, images):
    from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import MemoryEngine
    from ansible_collections.clockwork.connections.plugins.plugin_utils.build_context import read_context
    (app / "Dockerfile").write_text(PARITY_DOCKERFILE % stack)
    (app / "Dockerfile.fails").write_text("FROM %s\nLABEL %s=%s\nRUN exit 3\n" % (NGINX_IMAGE, TEST_LABEL, stack))
    (app / "Dockerfile.absent-base").write_text("FROM example.invalid/nothing:1\n")
    (app / "Dockerfile.copies-ignored").write_text("FROM %s\nLABEL %s=%s\nCOPY debug.log /x\n" % (NGINX_IMAGE, TEST_LABEL, stack))
    (app / "debug.log").write_text("excluded by .dockerignore")
    live = DockerGateway()
    memory = DockerGateway(api=MemoryEngine(images={NGINX_IMAGE: inspect("image", NGINX_IMAGE)["Config"]}))
    tag = "%s-parity:clockwork" % stack
    images.add(tag)
    cases = [dict(), dict(target="base"), dict(target="other", labels={"x": "1"}, args={"UNUSED": "1"}),
             dict(dockerfile="Dockerfile.fails"), dict(dockerfile="Dockerfile.absent-base"),
             dict(dockerfile="Dockerfile.none"), dict(target="nowhere"), dict(dockerfile="Dockerfile.copies-ignored")]
    for case in cases:
        read = read_context(str(app), dockerfile=case.get("dockerfile", "Dockerfile") if case.get("dockerfile") !=
                            "Dockerfile.none" else "Dockerfile", directory=str(tmp_path))
        answers = [built_config(gw, read.archive, tag, **case) for gw in (live, memory)]
        if case.get("dockerfile") == "Dockerfile.absent-base":
            answers = [a[:2] for a in answers]   # the words are the registry's (none can be reached here)
        assert answers[0] == answers[1], as_text({"case": case, "live": answers[0], "memory": answers[1]})


def test_hostile_contexts_through_the_playbook(stack, app, tmp_path, images):
    """A link out of the context is sent as a link (the image holds the link, not the file it names);
    a Dockerfile outside the context is refused before anything is touched, naming resource and field."""
    name, tag = stack + "-web", "%s-%s-web:clockwork" % (stack, stack)
    images.add(tag)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET-OUTSIDE-THE-CONTEXT")
    os.symlink(str(outside / "secret.txt"), str(app / "site" / "leak.txt"))
    task = stack_task(stack, app)
    task["clockwork.connections.stack"]["resources"][0]["build"]["dockerfile"] = "../outside/Dockerfile"
    (outside / "Dockerfile").write_text(DOCKERFILE % stack)
    run = playbook([task])
    assert run.rc != 0 and "resource %s: build.dockerfile: '../outside/Dockerfile' is not a file inside the build " \
        "context" % name in run.output, run.details
    assert inspect("image", tag) is None and inspect("container", name) is None, run.details

    run = playbook([stack_task(stack, app)])
    assert run.rc == 0, run.details
    images.add(inspect("image", tag)["Id"])
    assert docker("exec", name, "readlink", "/srv/site/leak.txt") == str(outside / "secret.txt"), run.details
    assert "SECRET-OUTSIDE" not in docker("exec", name, "sh", "-c", "cat /srv/site/leak.txt 2>&1 || true"), run.details


def test_a_failed_build_never_shows_a_secret_build_argument(stack, app, tmp_path, images):
    """The build's output echoes the token (the step that fails prints it): masked in the error, in
    -vvv and in the result, as every declared secret."""
    token = "tok-%s-s3cret" % stack[-8:]
    (app / "Dockerfile").write_text(DOCKERFILE % stack + "ARG API_TOKEN\nRUN echo \"token is $API_TOKEN\" && exit 3\n")
    images.add("%s-%s-web:clockwork" % (stack, stack))
    task = stack_task(stack, app)
    task["clockwork.connections.stack"]["resources"][0]["build"]["args"] = {"API_TOKEN": token}
    run = playbook([task], env={"ANSIBLE_VERBOSITY": "3"})
    assert run.rc != 0 and "returned a non-zero code: 3" in run.output, run.details
    assert "resource %s-web: build: image " % stack in run.output, run.details
    assert token not in run.output and token not in as_text(run.results), run.details
