"""Rollback's edges on the real engine (issue 35, "What must hold", the items the memory engine
proved first: tests/unit/test_rollback_memory.py).

- A rollback killed half-way (SIGKILL of the ansible-playbook process group and of its worker,
  which setsid() takes out of that group, once the first container is back on release 1 and the
  second is not) is completed by the next run of the same rollback: --check names what is left
  and changes nothing, the run does it (the successor left beside the second container removed),
  every container is on release 1's spec (docker inspect: env, image id), nothing is left aside,
  then a rerun and --check change nothing.
- A rollback to a release whose image was removed (`docker rmi`), one that was pruned
  (releases_kept: 1) or one never recorded (99) is refused before any change, naming the release
  (and the image): docker inspect of every container of the stack and the release files are the
  same before and after, in check mode as in a real run.
- stack_info run from a playbook in another directory (another working directory and
  playbook_dir) lists the same releases as from the deploying playbook's directory."""
import json
import os
import subprocess
import tempfile
import time
import uuid

import pytest
import yaml

from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore

from helpers import NGINX_IMAGE, ROOT, VENV_BIN, Run, docker, inspect, kill_run, playbook

HEALTHY = {"test": ["CMD", "curl", "-fsS", "http://localhost/"], "interval": "1s", "retries": 30}


def declaration(stack, mode, image_a=NGINX_IMAGE, health=None, releases_kept=None):
    """Two nginx containers, `<stack>-a` and `<stack>-b`, both with an env MODE that a release changes."""
    resources = [dict(name=stack + suffix, image=image, env={"MODE": mode}, stop_grace_period="1s")
                 for suffix, image in (("-a", image_a), ("-b", NGINX_IMAGE))]
    for resource in resources:
        if health:
            resource["healthcheck"] = health
    args = dict(name=stack, resources=resources)
    if releases_kept is not None:
        args["releases_kept"] = releases_kept
    return args


def task(args):
    return {"name": "stack", "clockwork.connections.stack": args, "register": "result"}


def rollback(stack, release="previous"):
    return task(dict(name=stack, state="rolled_back", release=release))


def names_of(stack):
    """The names of every container named after the stack (the lock's too), labelled or not."""
    return sorted(n for n in docker("ps", "-a", "--format", "{{.Names}}").split()
                  if n.startswith(stack) or n.endswith(stack))


def spec(name):
    """What a release fixes of a container and docker inspect shows: its image id and env."""
    attrs = inspect("container", name)
    return attrs and (attrs["Image"], sorted(attrs["Config"]["Env"]))


def inspected(stack):
    """docker inspect of every container of the stack, its health log aside (a healthcheck runs on)."""
    found = {}
    for ident in docker("ps", "-aq", "--filter", "label=io.clockwork.stack=%s" % stack).split():
        attrs = inspect("container", ident)
        attrs["State"].pop("Health", None)
        found[attrs["Name"]] = attrs
    return found


def release_index(stack):
    """The stack's release index, as the engine keeps it."""
    return ReleaseStore(DockerGateway(), stack).index()


def release_records(stack):
    """The images that hold the stack's release records: a write replaces one (a new id)."""
    return sorted(docker("images", "--filter", "label=io.clockwork.releases-of=" + stack, "--format",
                         "{{.ID}} {{.Tag}}").splitlines())


def deploy(args, number, pruned=()):
    """A deploy that changed something and recorded release `number`, pruning `pruned`."""
    run = playbook([task(args)])
    assert run.rc == 0 and run.result("stack")["changed"] is True, run.details
    release = run.result("stack")["release"]
    assert release["number"] == number and sorted(release["pruned"]) == list(pruned), run.details


def test_a_rollback_killed_half_way_is_completed_by_the_next_run_of_it(stack, tmp_path):
    a, b = stack + "-a", stack + "-b"
    deploy(declaration(stack, "one", health=HEALTHY), 1)
    one = dict((name, spec(name)) for name in (a, b))
    deploy(declaration(stack, "two", health=HEALTHY), 2)
    two = dict((name, spec(name)) for name in (a, b))
    assert all(one[n][1] != two[n][1] for n in (a, b)), (one, two)

    check = playbook([rollback(stack)], check=True)
    assert check.rc == 0 and check.result("stack")["changed"] is True, check.details
    assert sorted(e["name"] for e in check.result("stack")["entries"] if e["changed"]) == [a, b], check.details
    assert dict((name, spec(name)) for name in (a, b)) == two, "check mode changed nothing"

    # The rollback as a process group of its own, killed once one container is back on release 1:
    # the other (healthy only after a second) is not back yet.
    path = str(tmp_path / "rollback.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [rollback(stack)]}], handle)
    proc = subprocess.Popen([os.path.join(VENV_BIN, "ansible-playbook"), path, "-i",
                             os.path.join(ROOT, "playbooks/inventory.ini")],
                            env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline, back = time.monotonic() + 60, []
    while not back and time.monotonic() < deadline and proc.poll() is None:
        back = [name for name in (a, b) if spec(name) == one[name]]
        time.sleep(0.05)
    workers = kill_run(proc)
    killed_output = proc.communicate()[0].decode(errors="replace")
    assert len(back) == 1 and workers, "killed (with its worker processes %s) once the first container was back " \
        "(%s), not before or after:\n%s" % (workers, back, killed_output)
    time.sleep(2)   # were a worker left alive, it would carry on meanwhile
    left = [n for n in names_of(stack) if "_clockwork_" in n]   # a successor started beside b, as a rule
    half = dict((name, spec(name)) for name in (a, b))
    assert [n for n in (a, b) if half[n] != one[n]] == [n for n in (a, b) if n not in back], \
        "half-way: %s\n%s" % (half, killed_output)
    assert release_index(stack)["current"] == 2, \
        "the killed rollback recorded no release"

    check = playbook([rollback(stack)], check=True)
    assert check.rc == 0 and check.result("stack")["changed"] is True, check.details
    assert sorted(e["name"] for e in check.result("stack")["entries"] if e["changed"] and e["name"] != "leftovers") \
        == [n for n in (a, b) if n not in back], check.details
    assert dict((name, spec(name)) for name in (a, b)) == half and \
        [n for n in names_of(stack) if "_clockwork_" in n] == left, "check mode changed nothing\n" + check.details

    run = playbook([rollback(stack)], diff=True)
    assert run.rc == 0 and run.result("stack")["changed"] is True, run.details
    assert run.result("stack")["release"]["number"] == 3 and run.result("stack")["rolled_back_to"] == 1, run.details
    entries = run.result("stack")["entries"]
    assert sorted(e["name"] for e in entries if e["changed"] and e["name"] != "leftovers") == \
        [n for n in (a, b) if n not in back], "the rerun did what the killed run had not\n" + run.details
    for name in left:
        assert name in json.dumps([e for e in entries if e["name"] == "leftovers"]), \
            "the rerun removed %s, left by the killed run\n%s" % (name, run.details)
    assert dict((name, spec(name)) for name in (a, b)) == one, "every container on release 1's spec\n" + run.details
    assert names_of(stack) == [a, b], "nothing left aside (_clockwork_next_/_old_), no lock\n" + run.details
    for name in (a, b):
        assert inspect("container", name)["State"]["Running"], run.details

    again = playbook([rollback(stack)])
    assert again.rc == 0 and again.result("stack")["changed"] is False, again.details
    check = playbook([rollback(stack)], check=True)
    assert check.rc == 0 and check.result("stack")["changed"] is False, check.details
    assert dict((name, spec(name)) for name in (a, b)) == one


@pytest.fixture
def throwaway_image():
    """A local image of its own id (nginx with a label), for release 1 only; removed by the test, else here."""
    tag = "clockwork-test/nginx:gone-%s" % uuid.uuid4().hex[:8]
    subprocess.run(["docker", "build", "-q", "-t", tag, "--label", "io.clockwork.test=" + tag, "-"],
                   input="FROM %s\n" % NGINX_IMAGE, text=True, check=True, capture_output=True,
                   env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"})
    image_id = inspect("image", tag)["Id"]
    yield tag, image_id
    docker("rmi", tag, check=False)


def refused(stack, release, words):
    """A rollback to `release`, in check mode then for real (twice), refused before any change:
    rc != 0, its message has each of `words`, the stack's containers and release files as they were."""
    before, records = inspected(stack), release_records(stack)
    for check in (True, False, False):
        run = playbook([rollback(stack, release)], check=check)
        assert run.rc != 0, run.details
        message = run.result("stack")["msg"]
        for word in words:
            assert word in message, "%r not in the message\n%s" % (word, run.details)
        assert "Traceback" not in run.output, run.details
        assert inspected(stack) == before, "a refused rollback changed a container\n" + run.details
        assert release_records(stack) == records, "a refused rollback recorded something\n" + run.details


def test_a_rollback_to_a_removed_image_or_a_gone_release_is_refused_before_any_change(stack, throwaway_image):
    tag, image_id = throwaway_image
    a = stack + "-a"
    deploy(declaration(stack, "one", image_a=tag), 1)
    assert inspect("container", a)["Image"] == image_id
    deploy(declaration(stack, "two"), 2)
    docker("rmi", tag)
    assert inspect("image", image_id) is None, "the image of release 1 is gone"

    for which in ("previous", "1"):
        refused(stack, which, ["release 1", image_id[:19], a, "nothing was changed"])

    # Release 3 keeps only itself: 1 and 2 are pruned; 99 was never recorded.
    deploy(declaration(stack, "three", releases_kept=1), 3, pruned=[1, 2])
    assert release_index(stack)["releases"] == [3]
    refused(stack, "1", ["release 1 of stack %s was pruned" % stack])
    refused(stack, "2", ["release 2 of stack %s was pruned" % stack])
    refused(stack, "99", ["release 99 of stack %s was never recorded" % stack])
    refused(stack, "previous", ["stack %s has no release before its current one (3)" % stack])


def run_in(directory, tasks, check=False):
    """ansible-playbook of `tasks` from a playbook in `directory`, run there (its working directory
    and playbook_dir); a helpers.Run, with every task's result."""
    path = os.path.join(directory, "play.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], handle)
    results_file = os.path.join(tempfile.mkdtemp(prefix="clockwork-results-"), "results.json")
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("CLOCKWORK_LLM_", "OPENAI_")))
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, "tests/integration/callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="clockwork_results", CLOCKWORK_RESULTS_FILE=results_file)
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), path, "-i", os.path.join(ROOT, "playbooks/inventory.ini")]
    proc = subprocess.run(cmd + (["--check"] if check else []), cwd=directory, env=env, capture_output=True,
                          text=True, timeout=300)
    try:
        with open(results_file) as handle:
            results = json.load(handle)
    except (OSError, ValueError):
        results = []
    return Run(proc, results)


def test_stack_info_from_another_controller_directory_lists_the_same_releases(stack, tmp_path):
    first, other = tmp_path / "deployer", tmp_path / "elsewhere"
    first.mkdir()
    other.mkdir()
    info = {"name": "info", "clockwork.connections.stack_info": {"name": stack}, "register": "info"}

    for check, changed in ((True, True), (False, True), (False, False), (True, False)):
        run = run_in(str(first), [task(declaration(stack, "one"))], check=check)
        assert run.rc == 0 and run.result("stack")["changed"] is changed, run.details
    run = run_in(str(first), [task(declaration(stack, "two"))])
    assert run.rc == 0 and run.result("stack")["release"]["number"] == 2, run.details

    here = run_in(str(first), [info])
    assert here.rc == 0 and [r["number"] for r in here.result("info")["releases"]] == [1, 2], here.details
    mine = here.result("info")["releases"]
    assert all(r["time"] and "@" in r["controller"] for r in mine), here.details
    for check in (False, True):
        there = run_in(str(other), [info], check=check)
        assert there.rc == 0 and there.result("info")["changed"] is False, there.details
        theirs = there.result("info")["releases"]
        assert [(r["number"], r["time"], r["controller"]) for r in theirs] == \
            [(r["number"], r["time"], r["controller"]) for r in mine], there.details + here.details
        assert theirs == mine and there.result("info")["current"] == 2, there.details + here.details
    assert not [n for n in os.listdir(str(other)) if n != "play.yml"], "stack_info wrote nothing beside its playbook"


@pytest.fixture(autouse=True)
def purged(stack):
    """The stack removed by the collection itself at the end (state absent, purge), then its
    ~/.clockwork/<stack> (the stack fixture removes whatever is left on the engine)."""
    yield
    run = playbook([task(dict(name=stack, state="absent", purge=True, resources=[]))])
    home = os.path.join(os.path.expanduser("~"), ".clockwork", stack)
    subprocess.run(["rm", "-rf", home], check=False)
    assert run.rc == 0, run.details
