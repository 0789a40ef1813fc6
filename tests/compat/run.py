#!/usr/bin/env python3
"""make compat: the showcase lifecycle and the stack's error paths on every supported
ansible-core, on the controller's Python and on the oldest supported target Python.

Each combination has a venv of its own under .venv/compat/, kept while its Python and its
requirement pins stay the same. For each: the showcase is deployed from nothing, rerun
(changed=0, same containers), verified (--tags assert), dry-run with a changed declaration
(--check --diff: reports the recreates, shows no password, Docker unchanged), bad declarations fail naming their
entry with no traceback and touch nothing, and the showcase is destroyed. Then a compose file
someone else wrote (Jinja in its values, its .env and an env_file; a database password) is
imported by playbooks/compose_import.yml, the written files deployed with vars_files, the same
file deployed by the role's clockwork_compose_file (each rerun changed=0, the containers holding
the literal text, no command run, no password shown), and the written stack exported by
playbooks/compose_export.yml and imported again to the same declaration. A failure names
its combination and step, and fails the run.

Then the README's compatibility table must be what ran (with the Pythons scripts/sanity.sh
recorded), and meta/runtime.yml's requires_ansible the tested range.

Usage: run.py [--only NAME ...] [--update-readme]
"""
import argparse
import contextlib
import difflib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

from pythons import find as find_python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENVS = os.path.join(ROOT, ".venv", "compat")   # ignored by git, galaxy build and ansible-lint with .venv
MAIN_VENV = os.path.join(ROOT, ".venv")
OUTPUT = os.path.join(ROOT, "tests", "output", "compat")
SANITY_RECORD = os.path.join(OUTPUT, "sanity.json")
README = os.path.join(ROOT, "README.md")
RUNTIME = os.path.join(ROOT, "meta", "runtime.yml")
SHOWCASE = os.path.join(ROOT, "playbooks", "showcase.yml")
LOCAL_IMAGES = ["-e", "@" + os.path.join(ROOT, "tests", "images", "local-images.yml")]
LOCK = "/tmp/clockwork-showcase.lock"   # the showcase's container names are fixed: one deployer at a time
TABLE_START, TABLE_END = "<!-- compat-table: start -->", "<!-- compat-table: end -->"


def _requirements():
    with open(os.path.join(ROOT, "requirements.txt")) as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


# The runtime libraries as pinned for make test; a controller combination swaps ansible-core.
LIBRARIES = [r for r in _requirements() if not r.startswith("ansible-core")]

COMBINATIONS = [
    {"name": "oldest", "title": "oldest supported ansible-core", "python": "3.11",
     "requirements": ["ansible-core==2.17.0"] + LIBRARIES},
    # The compose import once failed here ("a string or stream input is required": the C YAML
    # loader refuses the unsafe text of 2.17 and 2.18).
    {"name": "core-2-18", "title": "ansible-core 2.18", "python": "3.12",
     "requirements": ["ansible-core==2.18.19"] + LIBRARIES},
    {"name": "newest", "title": "newest ansible-core, on the newest supported Python here", "python": "3.13",
     "requirements": ["ansible-core==2.21.5"] + LIBRARIES},
    # make test's controller (.venv); the stack module runs on the target's Python, as on a remote
    # host: the newest releases of its libraries that still support 3.8.
    {"name": "target-py38", "title": "the module on the oldest supported target Python", "python": "3.8",
     "controller": MAIN_VENV, "in_process": False,
     "requirements": ["docker==7.2.0", "psycopg[binary]==3.2.13", "redis==6.1.1", "cryptography==47.0.0"]},
]


class Failure(Exception):
    pass


def log(message):
    print("compat: " + message, flush=True)


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def python_facts(python, code):
    out = run([python, "-c", code], timeout=120)
    if out.returncode != 0:
        raise Failure("%s -c %r failed:\n%s" % (python, code, out.stdout + out.stderr))
    return out.stdout.strip()


# --- venvs --------------------------------------------------------------------------------

def venv(name, version, requirements):
    """The venv of `name` on Python `version`, (re)built when its path, the interpreter or a pin changed."""
    base = find_python(version)
    if not base:
        raise Failure("no Python %s on this machine (looked in pyenv's versions and on PATH): install it, for "
                      "example with `pyenv install %s`" % (version, version))
    exact = python_facts(base, "import sys; print(sys.version.split()[0])")
    path = os.path.join(VENVS, name)
    # A venv's scripts name its path in their #! line: one built elsewhere is built again.
    stamp = hashlib.sha256(json.dumps([path, exact, requirements]).encode()).hexdigest()
    stamp_file = os.path.join(path, ".compat-stamp")
    if os.path.exists(stamp_file):
        with open(stamp_file) as handle:
            if handle.read() == stamp:
                return path
    started = time.time()
    shutil.rmtree(path, ignore_errors=True)
    for cmd in ([base, "-m", "venv", path],
                [os.path.join(path, "bin", "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
                + requirements):
        out = run(cmd, timeout=900)
        if out.returncode != 0:
            raise Failure("building the venv failed: %s\n%s" % (" ".join(cmd), out.stdout + out.stderr))
    with open(stamp_file, "w") as handle:
        handle.write(stamp)
    log("venv %s: Python %s, %s (%.0f s)" % (name, exact, " ".join(requirements), time.time() - started))
    return path


def prepare(combo):
    """Venvs built; the facts the table is made of."""
    own = venv(combo["name"], combo["python"], combo["requirements"])
    controller = combo.get("controller", own)
    if not os.path.exists(os.path.join(controller, "bin", "ansible-playbook")):
        raise Failure("no ansible-playbook in %s (make venv builds it)" % controller)
    python = os.path.join(controller, "bin", "python")
    target = os.path.join(own, "bin", "python")
    facts = dict(combo, venv=own, controller_bin=os.path.join(controller, "bin"), target_interpreter=target,
                 in_process=combo.get("in_process", True))
    facts["ansible_core"] = python_facts(python, "from ansible.release import __version__; print(__version__)")
    facts["controller_python"] = python_facts(python, "import sys; print('%d.%d' % sys.version_info[:2])")
    facts["target_python"] = python_facts(target, "import sys; print('%d.%d' % sys.version_info[:2])")
    # What the modules need, importable where they run.
    python_facts(target, "import docker, psycopg, redis, cryptography")
    return facts


# --- one ansible-playbook run -------------------------------------------------------------

class Play(object):
    def __init__(self, cmd, proc, results):
        self.cmd = cmd
        self.rc = proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr
        self.output = proc.stdout + proc.stderr
        self.results = results

    def recap(self):
        """localhost's PLAY RECAP counters."""
        found = re.search(r"^localhost\s*:\s*(.*)$", self.output.split("PLAY RECAP")[-1], re.M)
        if not found:
            raise Failure("no PLAY RECAP in:\n" + self.shown())
        return dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", found.group(1)))

    def result(self, task):
        matching = [r for r in self.results if r["_task"] == task or r["_task"].endswith(" : " + task)]
        if not matching:
            raise Failure("no result for task %r:\n%s" % (task, self.shown()))
        return matching[-1]

    def shown(self):
        """The command, its exit code, its whole stdout and stderr: what a failure prints, so that
        its cause is known without a rerun (its last lines alone may be warnings on stderr)."""
        return "$ %s\nexit code %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            " ".join(self.cmd), self.rc, self.stdout, self.stderr)


def playbook(facts, path, *args):
    results_file = tempfile.NamedTemporaryFile(prefix="clockwork-compat-", suffix=".json", delete=False).name
    # No model endpoint from the machine: the showcase needs none.
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("CLOCKWORK_", "OPENAI_", "ANSIBLE_")))
    env.update(PATH=facts["controller_bin"] + os.pathsep + env.get("PATH", ""),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(ROOT, "tests", "integration", "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="clockwork_results",
               ANSIBLE_NOCOLOR="1",
               CLOCKWORK_RESULTS_FILE=results_file)
    cmd = [os.path.join(facts["controller_bin"], "ansible-playbook"), path]
    if not facts["in_process"]:
        env["CLOCKWORK_STACK_IN_PROCESS"] = "never"
        cmd += ["-e", "ansible_python_interpreter=" + facts["target_interpreter"]]
    cmd += list(args)
    proc = run(cmd, cwd=ROOT, env=env, timeout=600)
    try:
        with open(results_file) as handle:
            results = json.load(handle)
    except ValueError:
        results = []
    os.unlink(results_file)
    return Play(cmd, proc, results)


def showcase(facts, *args):
    return playbook(facts, SHOWCASE, *(LOCAL_IMAGES + list(args)))


def expect(condition, message, play=None):
    """`play`: the run the condition is about, shown whole when it does not hold."""
    if not condition:
        raise Failure(message + ("\n" + play.shown() if play else ""))


def expect_ok(play, changed=None):
    recap = play.recap()
    expect(play.rc == 0 and recap.get("failed") == 0, "the run failed", play)
    if changed == 0:
        tasks = [r["_task"] for r in play.results if r.get("changed")]
        expect(recap.get("changed") == 0 and not tasks,
               "changed=%d where nothing should change (%s)" % (recap.get("changed"), tasks), play)
    elif changed:
        expect(recap.get("changed", 0) >= 1, "changed=0 where a change was due", play)
    return recap


# --- Docker, as the docker CLI sees it ----------------------------------------------------

def docker(*args):
    out = run(["docker"] + list(args), timeout=120)
    if out.returncode != 0:
        raise Failure("docker %s: %s" % (" ".join(args), out.stderr.strip()))
    return out.stdout.strip()


def showcase_declaration():
    with open(os.path.join(ROOT, "roles", "showcase", "defaults", "main.yml")) as handle:
        return yaml.safe_load(handle)


def engine_state(stack, names):
    """What docker ps -a / network ls / volume ls list for the stack: everything carrying its label
    or one of its declared names, with ids, states, start times, mounts and network members.
    Objects of other stacks on a shared engine are left out; every object of this one is here."""
    def owned(line):
        name, owner = (line.split("\t") + [""])[:2]
        return owner == stack or name in names

    def listed(*command):
        return [line.split("\t")[0] for line in docker(*command).splitlines() if owned(line)]

    fmt = '{{.Names}}\t{{.Label "io.clockwork.stack"}}'
    containers = listed("ps", "-a", "--format", fmt)
    networks = listed("network", "ls", "--format", fmt.replace("Names", "Name"))
    volumes = listed("volume", "ls", "--format", fmt.replace("Names", "Name"))
    containers = json.loads(docker("inspect", *containers)) if containers else []
    networks = json.loads(docker("network", "inspect", *networks)) if networks else []
    return {
        "containers": sorted("%s %s %s %s %s" % (c["Id"], c["Name"], c["State"]["Status"], c["State"]["StartedAt"],
                                                 sorted((m["Destination"], m.get("Name") or m["Source"])
                                                        for m in c["Mounts"])) for c in containers),
        "networks": sorted("%s %s %s" % (n["Id"], n["Name"], sorted(n.get("Containers") or {})) for n in networks),
        "volumes": sorted(volumes),
    }


def expect_unchanged(before, after, message):
    gone = dict((k, sorted(set(before[k]) - set(after[k]))) for k in before)
    new = dict((k, sorted(set(after[k]) - set(before[k]))) for k in before)
    expect(before == after, "%s: gone %s, new %s" % (message, gone, new))


def running_ids(names):
    return dict((name, docker("inspect", "-f", "{{.Id}} {{.State.Status}}", name)) for name in names)


# --- the steps ----------------------------------------------------------------------------

def verified(play):
    """The checks that ran: in the converge call (the role verifies in the same pass when it
    deploys and asserts) or in the separate verify task (--tags assert)."""
    found = [r for r in play.results if r["_status"] != "skipped" and (
        r["_task"].endswith(" : Verify every connection from inside the containers")
        or r["_task"].endswith(" : Converge stack showcase") and r.get("verified"))]
    expect(len(found) == 1 and "checks" in found[0], "no single verify result: %s" % found, play)
    return found[0]["checks"]


def step_clean(facts, ctx):
    play = showcase(facts, "-e", "clockwork_state=absent", "-e", "clockwork_purge=true")
    expect_ok(play)
    # What is left is not the stack's (destroy never touches unlabelled objects): the baseline.
    ctx["baseline"] = engine_state("showcase", ctx["names"])
    owned = docker("ps", "-aq", "--filter", "label=io.clockwork.stack=showcase") + docker(
        "network", "ls", "-q", "--filter", "label=io.clockwork.stack=showcase") + docker(
        "volume", "ls", "-q", "--filter", "label=io.clockwork.stack=showcase")
    expect(not owned, "the showcase's objects are left after a purge: %s" % owned.split())


def step_deploy(facts, ctx):
    play = showcase(facts, "-vvv")
    expect_ok(play, changed=True)
    checks = verified(play)
    expect(checks and all(c.get("ok") is True for c in checks), "a check failed: %s" % checks, play)
    # Where the stack converged: a module process on the target's Python, or none at all.
    marker = "TASK [clockwork.connections.stack : Converge stack"
    expect(marker in play.output, "no converge task in the output", play)
    converge = play.output.split(marker)[1].split("TASK [")[0]
    executed = re.findall(r"EXEC /bin/sh -c '(\S+)", converge)
    if facts["in_process"]:
        expect(not executed, "the stack ran as a module (%s), not in the controller's process" % executed, play)
    else:
        expect(executed == [facts["target_interpreter"]],
               "the stack module did not run on %s: %s" % (facts["target_interpreter"], executed), play)
    ctx["ids"] = running_ids(ctx["containers"])
    expect(all(v.endswith(" running") for v in ctx["ids"].values()), "not all running: %s" % ctx["ids"])


def step_rerun(facts, ctx):
    expect_ok(showcase(facts), changed=0)
    expect(running_ids(ctx["containers"]) == ctx["ids"], "the rerun replaced or stopped a container")


def step_assert(facts, ctx):
    play = showcase(facts, "--tags", "assert")
    expect_ok(play, changed=0)
    checks = verified(play)
    expected = len(ctx["declaration"]["showcase_connections"])
    expect(len(checks) == expected and all(c.get("ok") is True for c in checks),
           "%d checks, %d expected, all ok: %s" % (len(checks), expected, checks), play)


def step_check_changed(facts, ctx):
    # A new database password and one more env var for the frontend: the dry run must report the
    # recreates with their reasons, never show the password, and change nothing.
    password = "Compat-%s-pw" % os.getpid()
    resources = ctx["declaration"]["showcase_resources"]
    changed = [dict(r, env=dict(r.get("env") or {}, COMPAT_MARK="changed")) if r["name"] == "frontend" else r
               for r in resources]
    with tempfile.NamedTemporaryFile("w", prefix="clockwork-compat-", suffix=".json", delete=False) as handle:
        json.dump({"showcase_resources": changed, "showcase_db_password": password}, handle)
    before = engine_state("showcase", ctx["names"])
    try:
        play = showcase(facts, "-e", "@" + handle.name, "--check", "--diff", "-v")
    finally:
        os.unlink(handle.name)
    expect_ok(play, changed=True)
    expect(password not in play.output and password not in json.dumps(play.results),
           "the new password was shown", play)
    entries = dict((e["name"], e) for e in play.result("Converge stack showcase")["entries"] if e["kind"] == "container")
    # postgres (a volume) is recreated stop-first; api and frontend (none) are replaced start-first.
    replaced = ("recreate", "replace start-first")
    recreated = dict((name, e["reasons"]) for name, e in entries.items() if set(replaced) & set(e["actions"]))
    expect(sorted(recreated) == ["api", "frontend", "postgres"]
           and recreated["frontend"] == ["env COMPAT_MARK"] and "env POSTGRES_PASSWORD" in recreated["postgres"]
           and "env DATABASE_URL" in recreated["api"],
           "the dry run should replace api, frontend and postgres for their env: %s" % recreated, play)
    expect_unchanged(before, engine_state("showcase", ctx["names"]), "--check changed Docker")


# Each message must name its entry (type and both ends) and the problem; the wording around may change.
ERRORS = [
    ("unknown resource", [{"type": "dependency", "from": "{a}", "to": "{ghost}"}],
     ["dependency {a} -> {ghost}", "unknown resource {ghost}"]),
    ("cycle", [{"type": "network", "from": "{a}", "to": "{b}", "network_name": "{stack}-n"},
               {"type": "dependency", "from": "{b}", "to": "{a}"}],
     ["cycle", "{a} -> {b} -> {a}"]),
    ("field of another type", [{"type": "dependency", "from": "{a}", "to": "{b}", "network_name": "{stack}-n"}],
     ["dependency {a} -> {b}", "network_name"]),
]


def step_errors(facts, ctx):  # pylint: disable=unused-argument
    stack = "cwtest-compat-%s-%d" % (facts["name"], os.getpid())
    names = dict(stack=stack, a=stack + "-a", b=stack + "-b", ghost=stack + "-ghost")
    with open(LOCAL_IMAGES[1][1:]) as handle:
        image = yaml.safe_load(handle)["showcase_nginx_image"]
    resources = [{"name": names[n], "image": image} for n in ("a", "b")]
    tasks = [{"name": title, "ignore_errors": True, "clockwork.connections.stack": {
        "name": stack, "resources": resources, "connections": _fill(connections, names)}}
        for title, connections, _ in ERRORS]
    workdir = tempfile.mkdtemp(prefix="clockwork-compat-")
    path = os.path.join(workdir, "errors.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], handle)
    watched = set(names.values()) | {stack + "-n", stack + "_default"}
    before = engine_state(stack, watched)
    try:
        play = playbook(facts, path)
    finally:
        shutil.rmtree(workdir)
        for kind in ("container", "network"):   # whatever a failing run left: ours by label only
            left = docker(kind, "ls", "-q" if kind == "network" else "-aq", "--filter",
                          "label=io.clockwork.stack=" + stack).split()
            if left:
                docker(kind, "rm", *(["-f"] if kind == "container" else []), *left)
    expect(play.rc == 0 and play.recap().get("ignored") == len(ERRORS), "not every bad declaration failed", play)
    expect("Traceback" not in play.output, "a traceback was printed", play)
    for title, _, wanted in ERRORS:
        result = play.result(title)
        msg = result.get("msg", "")
        expect(result["_status"] == "failed" and not result.get("changed"), "%s: did not fail cleanly" % title, play)
        # ansible-core 2.19+ adds exception "(traceback unavailable)" to every failure: a crash has a traceback.
        expect(not set(result) & {"module_stderr", "module_stdout"} and "Traceback" not in str(result.get("exception")),
               "%s: the module crashed: %s" % (title, result), play)
        for part in wanted:
            expect(_fill(part, names) in msg, "%s: %r is not in the message %r" % (title, _fill(part, names), msg),
                   play)
    expect_unchanged(before, engine_state(stack, watched), "a bad declaration touched Docker")


def _fill(value, names):
    """{a}, {b}, ... in strings (also inside lists and dicts) replaced by the names."""
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: names[m.group(1)], value)
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return dict((k, _fill(v, names)) for k, v in value.items())
    return value


# -- a compose file someone else wrote: imported, deployed, exported ----------------------------

def _compose_project(directory, stack, marker):
    """A compose file with Jinja where a value, the .env and an env_file hold text, and a database
    whose password (Jinja too) reaches the client as DATABASE_URL: (the literal env of web, the password)."""
    with open(LOCAL_IMAGES[1][1:]) as handle:
        images = yaml.safe_load(handle)
    run = "{{ lookup('pipe', 'touch %s') }}" % marker
    password = "Compat{{7*7}}-%d" % os.getpid()   # templated, it would hold 49
    web, db = "web-" + stack, "db-" + stack
    document = {"services": {
        web: {"image": images["showcase_nginx_image"], "env_file": ["web.env"],
              "environment": {"PLAIN": run, "ENDRAW": "{% endraw %}" + run + "{% raw %}", "API_TOKEN": "${API_TOKEN}",
                              "DATABASE_URL": "postgresql://app:${DB_PASSWORD}@%s:5432/app" % db},
              "labels": {"note": run}, "depends_on": {db: {"condition": "service_healthy"}}},
        db: {"image": images["showcase_postgres_image"],
             "environment": {"POSTGRES_USER": "app", "POSTGRES_DB": "app", "POSTGRES_PASSWORD": "${DB_PASSWORD}"},
             "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U app -d app"], "interval": "1s", "retries": 60}}}}
    files = {"compose.yaml": yaml.safe_dump(document, sort_keys=False),
             ".env": "API_TOKEN='%s'\nDB_PASSWORD='%s'\n" % (run, password),
             "web.env": "FROM_ENV_FILE={%% raw %%}%s\n" % run}
    for name, content in files.items():
        with open(os.path.join(directory, name), "w") as handle:
            handle.write(content)
    literal = {"PLAIN": run, "ENDRAW": "{% endraw %}" + run + "{% raw %}", "API_TOKEN": run,
               "FROM_ENV_FILE": "{% raw %}" + run}
    return literal, password


def _role_play(directory, name, role_vars=None, vars_files=None):
    play = {"hosts": "localhost", "gather_facts": False,
            "tasks": [{"name": "Deploy", "ansible.builtin.include_role": {"name": "clockwork.connections.stack"},
                       "vars": role_vars or {}}]}
    if vars_files:
        play["vars_files"] = vars_files
    path = os.path.join(directory, name)
    with open(path, "w") as handle:
        yaml.safe_dump([play], handle)
    return path


def _no_secret(play, password, marker, what):
    from urllib.parse import quote  # pylint: disable=import-outside-toplevel
    for form in (password, quote(password, safe=""), password.replace("{{7*7}}", "49")):
        expect(form not in play.output and form not in json.dumps(play.results),
               "%s: the password (or what templating it gives) is in the output" % what, play)
    expect(not os.path.exists(marker), "%s: a command of the compose file ran (the marker exists)" % what, play)


def _deploy_twice(facts, path, stack, literal, password, marker, what):
    """apply (changed), rerun (changed=0); the containers hold the literal text; then destroyed."""
    expect_ok(playbook(facts, path, "--diff"), changed=True)
    again = playbook(facts, path, "--diff", "-v")
    expect_ok(again, changed=0)
    _no_secret(again, password, marker, what)
    env = dict(line.split("=", 1) for line in json.loads(docker("inspect", "web-" + stack))[0]["Config"]["Env"])
    wrong = dict((k, env.get(k)) for k, v in literal.items() if env.get(k) != v)
    expect(not wrong, "%s: the container's env is not the file's text: %s" % (what, wrong))
    db_env = json.loads(docker("inspect", "db-" + stack))[0]["Config"]["Env"]
    expect("POSTGRES_PASSWORD=" + password in db_env, "%s: the database's password is not the literal one" % what)
    expect_ok(playbook(facts, path, "-e", "clockwork_state=absent", "-e", "clockwork_purge=true"), changed=True)


class _Unsafe(str):
    pass


class _VarsLoader(yaml.SafeLoader):
    """A written vars file as data: !unsafe text marked, compared as text."""


_VarsLoader.add_constructor("!unsafe", lambda loader, node: _Unsafe(loader.construct_scalar(node)))


def _declaration(path):
    """A written vars file's data, every string plain (so that it can be dumped for a diff)."""
    def plain(node):
        if isinstance(node, dict):
            return dict((plain(k), plain(v)) for k, v in node.items())
        if isinstance(node, list):
            return [plain(v) for v in node]
        return str(node) if isinstance(node, str) else node
    with open(path) as handle:
        return plain(yaml.load(handle, Loader=_VarsLoader))


def _remove_stack(stack):
    for kind, listing in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"]),
                          ("volume", ["volume", "ls", "-q"])):
        found = docker(*(listing + ["--filter", "label=io.clockwork.stack=" + stack])).split()
        if found:
            run(["docker", kind, "rm"] + (["-fv"] if kind == "container" else []) + found, timeout=120)
    # Its releases, which a destroy keeps (releases/shelf.py), and its files on this Docker host.
    records = sorted(set(docker("images", "-q", "--filter", "label=io.clockwork.releases-of=" + stack).split()))
    if records:
        run(["docker", "rmi", "-f"] + records, timeout=120)
    shutil.rmtree(os.path.join(os.path.expanduser("~"), ".clockwork", stack), ignore_errors=True)


def step_compose(facts, ctx):  # pylint: disable=unused-argument
    stack = "cwtest-compat-%s-%d" % (re.sub(r"[^a-z0-9]", "", facts["name"]), os.getpid())
    workdir = tempfile.mkdtemp(prefix="clockwork-compat-compose-")
    marker = os.path.join(workdir, "marker")
    try:
        literal, password = _compose_project(workdir, stack, marker)
        out = os.path.join(workdir, "stack.yml")
        secrets = os.path.join(workdir, "stack.secrets.yml")
        imported = playbook(facts, os.path.join(ROOT, "playbooks", "compose_import.yml"), "-v",
                            "-e", "compose_file=" + os.path.join(workdir, "compose.yaml"), "-e", "out=" + out,
                            "-e", "stack=" + stack)
        expect_ok(imported)
        _no_secret(imported, password, marker, "compose_import.yml")
        with open(out) as handle:
            expect(password not in handle.read(), "stack.yml holds the password")
        expect(os.stat(secrets).st_mode & 0o777 == 0o600, "stack.secrets.yml is not mode 0600")

        # The written files, as their header says; then the compose file itself, through the role.
        _deploy_twice(facts, _role_play(workdir, "vars_files.yml", vars_files=[out, secrets]), stack, literal,
                      password, marker, "the written files deployed with vars_files")
        _deploy_twice(facts, _role_play(workdir, "compose_file.yml", role_vars={
            "clockwork_stack_name": stack, "clockwork_compose_file": os.path.join(workdir, "compose.yaml")}),
            stack, literal, password, marker, "the role's clockwork_compose_file")

        # Exported, and imported again: the same declaration.
        exported_dir = os.path.join(workdir, "exported")
        os.makedirs(exported_dir)
        exported = playbook(facts, os.path.join(ROOT, "playbooks", "compose_export.yml"),
                            "-e", "out=" + os.path.join(exported_dir, "compose.yaml"), "-e", "stack_file=" + out,
                            "-e", "@" + secrets)
        expect_ok(exported)
        _no_secret(exported, password, marker, "compose_export.yml")
        with open(os.path.join(exported_dir, "compose.yaml")) as handle:
            expect(password not in handle.read(), "the exported compose file holds the password")
        again = os.path.join(exported_dir, "stack.yml")
        reimported = playbook(facts, os.path.join(ROOT, "playbooks", "compose_import.yml"),
                              "-e", "compose_file=" + os.path.join(exported_dir, "compose.yaml"), "-e", "out=" + again,
                              "-e", "stack=" + stack)
        expect_ok(reimported)
        first, second = _declaration(out), _declaration(again)
        keys = ("clockwork_stack_name", "clockwork_resources", "clockwork_connections")
        expect([first.get(k) for k in keys] == [second.get(k) for k in keys],
               "import -> export -> import gave another declaration:\n%s" % "".join(difflib.unified_diff(
                   yaml.safe_dump(dict((k, first.get(k)) for k in keys)).splitlines(True),
                   yaml.safe_dump(dict((k, second.get(k)) for k in keys)).splitlines(True), "imported", "re-imported")))
        expect(sorted(_declaration(secrets).values()) == sorted(
            _declaration(os.path.join(exported_dir, "stack.secrets.yml")).values()),
            "the secrets imported again are not the same")
    finally:
        _remove_stack(stack)
        shutil.rmtree(workdir, ignore_errors=True)


def step_destroy(facts, ctx):
    expect_ok(showcase(facts, "-e", "clockwork_state=absent", "-e", "clockwork_purge=true"), changed=True)
    expect_unchanged(ctx["baseline"], engine_state("showcase", ctx["names"]), "destroy did not restore the start")


STEPS = [("clean", step_clean), ("deploy", step_deploy), ("rerun changed=0", step_rerun),
         ("--tags assert", step_assert), ("--check on a changed declaration", step_check_changed),
         ("error paths", step_errors), ("destroy", step_destroy),
         ("compose import, deploy and export", step_compose)]


def label(facts):
    where = "in the controller's process" if facts["in_process"] else "as a module on the target"
    return "%s: ansible-core %s, controller Python %s, target Python %s (%s)" % (
        facts["name"], facts["ansible_core"], facts["controller_python"], facts["target_python"], where)


def run_combination(facts):
    declaration = showcase_declaration()
    containers = [r["name"] for r in declaration["showcase_resources"] if r.get("type", "container") == "container"]
    names = set(containers)
    for connection in declaration["showcase_connections"]:
        names.update(connection[k] for k in ("network_name", "volume_name") if connection.get(k))
    ctx = {"declaration": declaration, "containers": containers, "names": names}
    started = time.time()
    for title, step in STEPS:
        at = time.time()
        try:
            step(facts, ctx)
        except Exception as exc:  # pylint: disable=broad-except  # any error fails this combination, named
            log("FAILED [%s] %s: %s%s" % (label(facts), title, "" if isinstance(exc, Failure)
                                          else type(exc).__name__ + ": ", exc))
            with contextlib.suppress(Exception):
                showcase(facts, "-e", "clockwork_state=absent", "-e", "clockwork_purge=true")
            return False
        log("  %-34s ok (%.1f s)" % (title, time.time() - at))
    log("ok [%s] in %.0f s" % (label(facts), time.time() - started))
    return True


# --- the table and requires_ansible ----------------------------------------------------------

def version_key(version):
    return tuple(int(part) for part in version.split("."))


def versions_range(versions):
    ordered = sorted(set(versions), key=version_key)
    return ordered[0] if len(ordered) == 1 else "%s – %s" % (ordered[0], ordered[-1])


def requires_ansible(combos):
    cores = sorted(version_key(c["ansible_core"]) for c in combos)
    return ">=%d.%d.%d,<%d.%d.0" % (cores[0] + (cores[-1][0], cores[-1][1] + 1))


def table(combos, sanity, suite, engine):
    cores = [c["ansible_core"] for c in combos] + [sanity["ansible_core"], suite["ansible_core"]]
    controllers = sorted(set(c["controller_python"] for c in combos) | {sanity["controller_python"]}, key=version_key)
    targets = sorted(set(c["target_python"] for c in combos) | set(sanity["target_pythons"]), key=version_key)
    lines = [
        "| ansible-core | controller Python | target Python | Docker engine API |",
        "|---|---|---|---|",
        "| %s (`requires_ansible: %s`) | %s | %s | %s (Docker Engine %s) |" % (
            versions_range(cores), requires_ansible(combos), ", ".join(controllers), ", ".join(targets),
            engine["api"], engine["version"]),
        "",
        "| run | ansible-core | controller Python | target Python | where the stack converges |",
        "|---|---|---|---|---|",
    ]
    for c in combos:
        lines.append("| compat: %s | %s | %s | %s | %s |" % (
            c["title"], c["ansible_core"], c["controller_python"], c["target_python"],
            "in the controller's process" if c["in_process"] else
            "a module on the target (`CLOCKWORK_STACK_IN_PROCESS=never`)"))
    lines.append("| pytest: unit and integration | %s | %s | %s | in the controller's process, and as a module |" % (
        suite["ansible_core"], suite["controller_python"], suite["controller_python"]))
    lines.append("| ansible-test sanity (compile and import per target Python) | %s | %s | %s | - |" % (
        sanity["ansible_core"], sanity["controller_python"], ", ".join(sanity["target_pythons"])))
    return "\n".join(lines) + "\n"


def readme_table():
    """README's text, split around the table between the markers (None when they are missing)."""
    with open(README) as handle:
        text = handle.read()
    if TABLE_START not in text or TABLE_END not in text:
        return None
    head, rest = text.split(TABLE_START, 1)
    table_text, tail = rest.split(TABLE_END, 1)
    return head, table_text.strip("\n") + "\n", tail


def check_documents(combos, update):
    """README's table and requires_ansible against what ran; False when they differ."""
    if not os.path.exists(SANITY_RECORD):
        log("FAILED: no %s: run `make sanity` (scripts/sanity.sh) first; it records the Pythons it covered"
            % os.path.relpath(SANITY_RECORD, ROOT))
        return False
    with open(SANITY_RECORD) as handle:
        sanity = json.load(handle)
    main_python = os.path.join(MAIN_VENV, "bin", "python")
    suite = {"ansible_core": python_facts(main_python, "from ansible.release import __version__; print(__version__)"),
             "controller_python": python_facts(main_python, "import sys; print('%d.%d' % sys.version_info[:2])")}
    api, version = docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Version}}").split()
    wanted = table(combos, sanity, suite, {"api": api, "version": version})
    ok = True
    parts = readme_table()
    if parts is None:
        log("FAILED: README has no %s ... %s markers" % (TABLE_START, TABLE_END))
        ok = False
    elif parts[1] != wanted and update:
        with open(README, "w") as handle:
            handle.write(parts[0] + TABLE_START + "\n" + wanted + TABLE_END + parts[2])
        log("README's compatibility table written")
    elif parts[1] != wanted:
        diff = difflib.unified_diff(parts[1].splitlines(True), wanted.splitlines(True), "README.md", "this run")
        log("FAILED: README's compatibility table is not what ran (`tests/compat/run.py --update-readme` "
            "writes it):\n" + "".join(diff))
        ok = False
    with open(RUNTIME) as handle:
        declared = yaml.safe_load(handle).get("requires_ansible")
    if declared != requires_ansible(combos):
        log("FAILED: meta/runtime.yml says requires_ansible: %r; tested: %r" % (declared, requires_ansible(combos)))
        ok = False
    return ok


def check_newest(facts):
    """The newest combination runs on the newest Python its ansible-core supports that is here."""
    code = "from ansible_test._internal.constants import CONTROLLER_PYTHON_VERSIONS as v; print(' '.join(v))"
    supported = python_facts(os.path.join(facts["venv"], "bin", "python"), code).split()
    here = [v for v in supported if find_python(v)]
    newest = max(here, key=version_key)
    if newest != facts["controller_python"]:
        raise Failure("ansible-core %s supports Python %s and this machine has it: run the newest combination on it"
                      % (facts["ansible_core"], newest))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=[c["name"] for c in COMBINATIONS],
                        help="run only this combination (no README check)")
    parser.add_argument("--update-readme", action="store_true", help="write the table README should have")
    args = parser.parse_args()
    started = time.time()
    chosen = [c for c in COMBINATIONS if not args.only or c["name"] in args.only]
    prepared, failed = [], []
    for combo in chosen:
        try:
            facts = prepare(combo)
            if combo["name"] == "newest":
                check_newest(facts)
            prepared.append(facts)
        except Failure as exc:
            log("FAILED [%s: %s] setup: %s" % (combo["name"], combo["title"], exc))
            failed.append(combo["name"])
    os.makedirs(OUTPUT, exist_ok=True)
    with open(LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            at = time.time()
            log("waiting for %s: another run is deploying the showcase" % LOCK)
            fcntl.flock(lock, fcntl.LOCK_EX)
            log("waited %.0f s" % (time.time() - at))
        for facts in prepared:
            log(label(facts))
            if not run_combination(facts):
                failed.append(facts["name"])
    with open(os.path.join(OUTPUT, "results.json"), "w") as handle:
        json.dump([dict((k, v) for k, v in f.items() if k != "requirements") for f in prepared], handle, indent=1)
    if not failed and not args.only and not check_documents(prepared, args.update_readme):
        failed.append("README/meta")
    log("%s in %.0f s" % ("FAILED: " + ", ".join(failed) if failed else "all combinations passed",
                          time.time() - started))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
