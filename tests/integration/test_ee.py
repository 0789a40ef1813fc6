"""The execution environment (`make ee`, ee/build.py): built with ansible-builder on a local base,
it runs playbooks/showcase.yml under ansible-navigator against the host's engine, and holds no
secret and no Debian mirror address.

The showcase's container names are fixed: the test holds `/tmp/clockwork-showcase.lock`, like
every test that deploys the showcase, and gives the stack a name of its own."""
import fcntl
import importlib.util
import os
import re
import subprocess
import sys

import pytest
import yaml

from helpers import ROOT, VENV_BIN, clear_fixed_names, docker, engine_state, inspect
from test_swarm import SHOWCASE_LOCK, _locked

EE_FILE = os.path.join(ROOT, "execution-environment.yml")
SHOWCASE_NAMES = ["postgres", "redis", "storage", "api", "frontend", "backend-network", "app-shared-data"]
# ansible-runner's event markers and terminal escapes around navigator's stdout lines.
NOISE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|(?:eyJ[A-Za-z0-9+/=]*|e30=)(?=\x1b)")
SECRET_NAME = re.compile(r"(?i)(secret|password|passwd|token|api_?key|credential|private)")


def image_tag():
    with open(EE_FILE) as handle:
        return yaml.safe_load(handle)["options"]["tags"][0]


@pytest.fixture(scope="module")
def ee_image():
    """`make ee`'s build (a matching image is reused). It may skip only where the image cannot
    be built, saying why, and never in CI."""
    build = subprocess.run([sys.executable, os.path.join(ROOT, "ee/build.py")], cwd=ROOT,
                           capture_output=True, text=True, timeout=1800)
    if build.returncode != 0:
        reason = "the execution environment cannot be built here:\n" + (build.stdout + build.stderr)[-3000:]
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return image_tag()


def debian_mirror_host():
    """The host part of the mirror this machine's apt uses, read as tests/images/build.py reads it."""
    spec = importlib.util.spec_from_file_location("clockwork_images", os.path.join(ROOT, "tests/images/build.py"))
    images = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(images)
    return re.sub(r"^\w+://([^/]+).*$", r"\1", images.debian_mirror())


def test_image_holds_no_secret_and_no_mirror(ee_image):
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", ee_image)
    attrs = inspect("image", ee_image)
    env = "\n".join(attrs["Config"]["Env"] or [])
    apt_files = docker("run", "--rm", "--entrypoint", "sh", ee_image, "-c",
                       "find /etc/apt -type f -exec cat {} +; ls /etc/pip.conf /opt/ee-wheels 2>&1; true")
    mirror = debian_mirror_host()
    for where, text in (("docker history", history), ("the image's env", env), ("/etc/apt", apt_files)):
        assert mirror not in text, "the Debian mirror is named in %s" % where
        # The host's index, proxy and certificate settings stay on the host.
        assert not re.search(r"(?i)\b(PIP_(CERT|CLIENT_CERT|INDEX_URL|EXTRA_INDEX_URL|FIND_LINKS|TRUSTED_HOST)|https?_proxy|no_proxy)=", text), where
        for name, value in os.environ.items():
            if SECRET_NAME.search(name) and len(value) >= 6:
                assert value not in text, "the value of $%s is in %s" % (name, where)
    assert "No such file" in apt_files, "the build's offline pip.conf or its wheels were left in the image"
    assert attrs["Config"]["Labels"]["ansible-execution-environment"] == "true"


def test_image_declares_the_collection_and_its_libraries(ee_image):
    """The collection comes in through ansible-galaxy, its Python needs through its
    meta/execution-environment.yml; ansible-core is the one the venv pins."""
    probe = docker("run", "--rm", "--entrypoint", "sh", ee_image, "-c",
                   "export HOME=/tmp; ansible-galaxy collection list clockwork.connections; ansible --version | head -1;"
                   " python3 -c 'import docker, psycopg, redis, pymysql, cryptography; print(\"libraries ok\")'")
    assert "clockwork.connections" in probe and "libraries ok" in probe, probe
    with open(os.path.join(ROOT, "requirements.txt")) as handle:
        pinned = re.search(r"^ansible-core==(\S+)", handle.read(), re.M).group(1)
    assert "core %s]" % pinned in probe, probe


def navigator(stack, *args):
    """`ansible-navigator run playbooks/showcase.yml` in the EE, as README shows it."""
    cmd = [os.path.join(VENV_BIN, "ansible-navigator"), "run", "playbooks/showcase.yml", "--mode", "stdout",
           "--ee", "true", "--ce", "docker", "--eei", image_tag(), "--pp", "never",
           "--eev", "/var/run/docker.sock:/var/run/docker.sock", "--co=--network=host",
           "--pae", "false", "--lf", os.devnull,
           "-e", "@tests/images/local-images.yml", "-e", "showcase_stack_name=" + stack] + list(args)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    return proc.returncode, NOISE.sub("", proc.stdout + proc.stderr)


def recap_changed(output):
    return int(re.search(r"changed=(\d+)", output.split("PLAY RECAP")[-1]).group(1))


def showcase_objects(stack):
    """The engine's objects of this stack, or with the showcase's fixed names."""
    names = set(SHOWCASE_NAMES) | {stack + "_default"}
    state = engine_state()
    return dict((kind, [line for line in lines if line.split()[-1 if kind == "volumes" else 1] in names
                        or stack in line]) for kind, lines in state.items())


@pytest.fixture
def showcase_in_ee(stack, ee_image):
    with _locked(SHOWCASE_LOCK, fcntl.LOCK_EX):
        clear_fixed_names(keep=stack)
        try:
            yield stack
        finally:
            navigator(stack, "-e", "clockwork_state=absent", "-e", "clockwork_purge=true")
            for leftover in ("playbooks/%s.stack.md" % stack, "playbooks/config.json"):
                if os.path.exists(os.path.join(ROOT, leftover)):
                    os.unlink(os.path.join(ROOT, leftover))
            # The stack fixture then removes by label whatever the destroy left.


def test_showcase_in_the_ee_check_deploy_rerun(showcase_in_ee):
    stack = showcase_in_ee
    before = showcase_objects(stack)
    rc, check = navigator(stack, "--check")
    assert rc == 0, check
    assert showcase_objects(stack) == before, "--check in the EE changed Docker's state"
    assert "container api: would be created" in check, check

    rc, deploy = navigator(stack)
    assert rc == 0, deploy
    assert "secret123" not in deploy, "the password was printed:\n" + deploy
    for line in ("check database api -> postgres [ok]", "check service_mesh frontend -> api [ok]",
                 "check file api -> storage [ok]", "check network api -> redis [ok]"):
        assert line in deploy, deploy
    assert inspect("container", "api")["Config"]["Labels"]["io.clockwork.stack"] == stack
    assert docker("exec", "api", "cat", "/etc/app/config.json") == '{"log_level": "info"}'
    ids = dict((name, inspect("container", name)["Id"]) for name in SHOWCASE_NAMES[:5])

    rc, rerun = navigator(stack)
    assert rc == 0 and recap_changed(rerun) == 0, rerun
    assert dict((name, inspect("container", name)["Id"]) for name in SHOWCASE_NAMES[:5]) == ids
    state = showcase_objects(stack)
    rc, recheck = navigator(stack, "--check")
    assert rc == 0 and recap_changed(recheck) == 0, recheck
    assert showcase_objects(stack) == state
