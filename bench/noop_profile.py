#!/usr/bin/env python3
"""Where the time of an unchanged showcase rerun goes, against an empty `ansible-playbook`.

The showcase is deployed from nothing (under the showcase lock: its container names are fixed), then
rounds alternate three commands, their order rotating: an empty playbook, the no-op of the deploy
step (--tags deploy) and of the whole playbook (deploy and verify); each must report changed=0.
A callback (bench/callback_plugins/noop_timeline.py) notes when the playbook and each task
started and ended, which splits a run into: start-up (Ansible, the playbook and its roles
loaded), each task (its arguments templated, a worker forked, the action run, the result back),
between tasks (ansible-playbook's own work: the action plugin and the collection's code it
imports, the results handled), and the end. The CPU seconds of each run's process tree are
kept too: they move less than wall time when others load the machine.

Then, in fresh interpreters, alternating: the collection's code the stack action runs in-process,
imported as ansible-core's collection loader does (compiled from source on every run) and as the
action imports it (Python's standard loader, bytecode cached in __pycache__: written by the runs
above); what compiling it costs; the third-party packages the collection imports and whether a
no-op needs them (the Docker SDK: not on a local socket; psycopg: the database connection logs
in); and the stack's own work in-process, by phase: argument validation, the plan, the engine's
GET /version, pre-flight, the stack's lock, the database login, the checks, the engine's requests.

Like a user's shell, the runs here do not set PYTHONDONTWRITEBYTECODE (with it, Python writes
no bytecode, and every run compiles the collection's code again).

Usage: bench/noop_profile.py [--rounds N] [--probes N] [--against REF] [--keep] [--profile]
  --against  also time both no-ops with the collection as of the commit REF (git archive), in the
             same alternating rounds: before and after a change, on one machine in one run
  --keep     leave the showcase deployed at the end (default: removed, as bench/run.py does)
  --profile  also run the deploy step once under cProfile (the worker of the stack task) and
             print where its time goes: templating the task, the action plugin, the stack
"""
import argparse
import functools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, "collections")
CALLBACKS = os.path.join(ROOT, "bench", "callback_plugins")
PACKAGE = "ansible_collections.clockwork.connections"
ACTION = PACKAGE + ".plugins.action.stack"
# Third-party code the collection imports: (what, module, which part of the collection wants it).
PACKAGES = [("the Docker SDK", "docker", "other transports than a local socket, writes"),
            ("psycopg", "psycopg", "the PostgreSQL login (database/engine_postgresql.py)"),
            ("cryptography", "cryptography.x509", "TLS material (service_mesh/tls.py)"),
            ("ansible.module_utils.urls", "ansible.module_utils.urls", "the LLM client (plugin_utils/llm.py)")]
# What an empty ansible-playbook has imported already: not the collection's cost.
ANSIBLE_ALREADY = ("ansible.executor.module_common", "ansible.module_utils.basic", "ansible.module_utils.common.arg_spec",
                   "ansible.plugins.action", "ansible.executor.task_executor", "ansible.plugins.strategy.linear",
                   "ansible.template", "concurrent.futures")


def _bench():
    """bench/run.py (paths, the showcase's playbook and lock), imported by the measuring process
    only: it imports the Docker SDK, which the probes must not find imported."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import run  # pylint: disable=import-outside-toplevel
    return run


def user_env(**extra):
    """The benchmark's environment as a user's shell has it: Python may write bytecode."""
    env = dict(_bench().ENV, **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed_playbook(command, expect_no_change, collections=None):
    """(seconds, timeline) of one ansible-playbook run with the timeline callback; `collections`,
    a directory holding ansible_collections/, instead of the tree's own."""
    with tempfile.NamedTemporaryFile("w+", suffix=".jsonl") as notes:
        env = user_env(ANSIBLE_CALLBACK_PLUGINS=CALLBACKS, ANSIBLE_CALLBACKS_ENABLED="noop_timeline",
                       CLOCKWORK_TIMELINE=notes.name)
        if collections:
            env["ANSIBLE_COLLECTIONS_PATH"] = collections
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.time()
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        ended = time.time()
        now = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0 or (expect_no_change and "changed=0" not in proc.stdout):
            sys.exit("noop_profile: %s did not run as a no-op:\n%s%s" % (" ".join(command), proc.stdout, proc.stderr))
        events = [json.loads(line) for line in notes.read().splitlines() if line.strip()]
    parts = split_timeline(started, ended, events)
    parts["CPU seconds (ansible-playbook and its workers)"] = (now.ru_utime + now.ru_stime) - (used.ru_utime + used.ru_stime)
    return ended - started, parts


def split_timeline(started, ended, events):
    """Seconds of: start-up (until the playbook starts), each task, the rest between the playbook's
    start and its stats (plays, forks, results), and the end (from the stats to the exit)."""
    parts = {}
    playbook = next((e["t"] for e in events if e["event"] == "playbook"), ended)
    stats = next((e["t"] for e in events if e["event"] == "stats"), ended)
    parts["start-up"] = playbook - started
    begun = {}
    for event in events:
        if event["event"] == "task":
            begun[event["name"]] = event["t"]
        elif event["event"] == "done" and event["name"] in begun:
            parts["task: " + event["name"]] = event["t"] - begun.pop(event["name"])
    parts["between tasks"] = (stats - playbook) - sum(v for k, v in parts.items() if k.startswith("task: "))
    parts["end"] = ended - stats
    return parts


def collection_at(ref):
    """A directory holding the collection as of commit `ref` (ansible_collections/clockwork/connections).
    The playbook stays the tree's own: its directory is where the showcase's files are."""
    dest = tempfile.mkdtemp(prefix="clockwork-at-")
    tree = os.path.join(dest, "ansible_collections", "clockwork", "connections")
    os.makedirs(tree)
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    return dest


def empty_playbook_file():
    empty = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
    empty.write("- hosts: localhost\n  gather_facts: false\n  tasks: []\n")
    empty.close()
    return empty.name


def showcase_declaration():
    """The showcase role's resources and connections, its templates filled in (as bench/run.py does)."""
    bench = _bench()
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles/showcase/defaults/main.yml")))
    text = json.dumps({"r": defaults["showcase_resources"], "c": defaults["showcase_connections"]})
    for key in ("postgres", "redis", "nginx"):
        text = text.replace("{{ showcase_%s_image }}" % key, bench.IMAGES["showcase_%s_image" % key])
    text = text.replace("{{ showcase_db_password }}", defaults["showcase_db_password"])
    text = text.replace('"{{ showcase_api_replicas }}"', str(defaults["showcase_api_replicas"]))
    declared = json.loads(text)
    for connection in declared["c"]:
        if connection.get("schema_file"):
            connection["schema_file"] = os.path.join(ROOT, "roles/showcase/files", connection["schema_file"])
    return {"name": "showcase", "resources": declared["r"], "connections": declared["c"],
            "base_dir": os.path.join(ROOT, "playbooks"), "parallel": 16}


# -- in a fresh interpreter ----------------------------------------------------------------

def install_collection_finder():
    """ansible-core's collection finder, as ansible-playbook installs it."""
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
    _AnsibleCollectionFinder(paths=[COLLECTIONS])._install()   # pylint: disable=protected-access


def load_action():
    """The stack action as a playbook loads it: the plugin's file executed as ansible-core's
    plugin loader does; then what the action imports when it runs."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(ACTION, os.path.join(COLLECTIONS, *ACTION.split(".")) + ".py")
    action = importlib.util.module_from_spec(spec)
    sys.modules[ACTION] = action
    spec.loader.exec_module(action)
    action._module_utils()   # pylint: disable=protected-access
    return action


def collection_modules():
    return sorted(m for m in sys.modules if m.startswith(PACKAGE + ".plugins.") and m != ACTION and os.path.isfile(
        getattr(sys.modules[m], "__file__", None) or ""))


def probe(mode, declaration, modules):
    """Run in a fresh interpreter (`--probe MODE`): import the collection's in-process code.
    "loader": every module of `modules` through ansible-core's collection loader first (compiled
    from source), then the action; "action": the action alone, which imports its code through
    its bytecode-cached finder, then the stack's own work; "import:NAME": NAME alone."""
    import importlib
    for name in ANSIBLE_ALREADY:
        importlib.import_module(name)
    started = time.perf_counter()
    if mode.startswith("import:"):
        importlib.import_module(mode.split(":", 1)[1])
        return {"import": time.perf_counter() - started}
    install_collection_finder()
    if mode == "loader":
        for name in modules:
            importlib.import_module(name)
    load_action()
    result = {"import": time.perf_counter() - started, "modules": collection_modules(),
              "third-party": dict((module, module in sys.modules) for _what, module, _why in PACKAGES),
              "compiled from source": sum(1 for m in collection_modules()
                                          if type(sys.modules[m].__loader__).__name__ != "SourceFileLoader")}
    if mode == "loader":
        started = time.perf_counter()
        for name in result["modules"]:
            with open(sys.modules[name].__file__) as handle:
                compile(handle.read(), sys.modules[name].__file__, "exec", dont_inherit=True)
        result["compile"] = time.perf_counter() - started
        return result
    result.update(stack_work(declaration))
    return result


class Phases(object):
    """Seconds and calls of functions of the collection, wrapped where they are looked up, summed
    over the threads that call them; a function the code no longer has is left out."""

    def __init__(self):
        self.seconds, self.calls = {}, {}
        self.lock = threading.Lock()

    def wrap(self, owner, name, label):
        function = getattr(owner, name, None)
        if function is None:
            return

        @functools.wraps(function)
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with self.lock:
                    self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - began
                    self.calls[label] = self.calls.get(label, 0) + 1
        setattr(owner, name, timed)

    def wrap_path(self, module, path, label):
        import importlib
        try:   # a module the convergence imports when it needs it (the stack's lock): imported now
            owner = importlib.import_module(PACKAGE + ".plugins.module_utils." + module)
        except ImportError:
            return
        parts = path.split(".")
        for part in parts[:-1]:
            owner = getattr(owner, part, None)
        if owner is not None:
            self.wrap(owner, parts[-1], label)

    def reset(self):
        self.seconds.clear()
        self.calls.clear()


PHASES = [   # (module under module_utils, function, label): the stack's work on a no-op
    ("apply.preflight", "Preflight.run", "pre-flight"),
    ("apply.lock", "StackLock.acquire", "the stack's lock: taken"),
    ("apply.lock", "StackLock.release", "the stack's lock: released"),
    ("apply.checks", "_run_check", "checks, summed over threads"),
    ("docker.unix_http", "UnixHTTPClient.request", "engine requests, summed over threads"),
    ("docker.unix_http", "UnixHTTPClient.upgrade", "engine requests, summed over threads"),
]


def stack_work(declaration):
    """The deploy step's own work, as the action plugin does it in-process: validation, plan,
    the engine, the no-op convergence by phase (deploy alone, then deploy and verify)."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    utils = PACKAGE + ".plugins.module_utils."
    stack, plan, gateway = (sys.modules[utils + name] for name in ("stack", "plan", "docker.gateway"))
    phases = Phases()
    for module, path, label in PHASES:
        phases.wrap_path(module, path, label)
    for name, module in list(sys.modules.items()):
        if name.startswith(utils + "database.engine_"):
            for value in list(vars(module).values()):
                if isinstance(value, type) and "login" in vars(value):
                    phases.wrap(value, "login", "the database login (first: psycopg imported)")
    times = {}
    for verify in (False, True):
        kind = "deploy and verify" if verify else "deploy"
        phases.reset()
        began = time.perf_counter()
        params = ArgumentSpecValidator(stack.STACK_ARGUMENT_SPEC).validate(
            dict(declaration, verify=verify)).validated_parameters
        validated = time.perf_counter()
        planned = plan.Plan(params["name"], params["resources"], params["connections"], base_dir=params["base_dir"],
                            engine=params["engine"])
        planned_at = time.perf_counter()
        engine = gateway.DockerGateway()
        connected = time.perf_counter()
        try:
            report = stack.run_stack(engine, params, plan=planned)
        except Exception as exc:   # pylint: disable=broad-except  # a failed check: said, not timed
            times[kind] = {"failed": str(exc)[:300]}
            continue
        done = time.perf_counter()
        if report["changed"]:
            sys.exit("noop_profile: the showcase changed: %s" % [e for e in report["entries"] if e["changed"]])
        times[kind] = {"argument validation": validated - began, "the plan": planned_at - validated,
                       "the engine: GET /version": connected - planned_at, "the convergence (run_stack)": done - connected,
                       "the Docker SDK imported": "yes" if "docker" in sys.modules else "no"}
        for label in sorted(phases.seconds):
            times[kind]["  " + label] = phases.seconds[label]
            if label.startswith(("engine requests", "checks")):
                times[kind]["  " + label.split(",")[0] + ": how many"] = phases.calls[label]
    times["third-party after the no-op"] = dict((module, module in sys.modules) for _what, module, _why in PACKAGES)
    return times


def run_probe(mode, declaration, modules=()):
    bench = _bench()
    proc = subprocess.run([os.path.join(bench.BIN, "python"), os.path.abspath(__file__), "--probe", mode],
                          input=json.dumps({"declaration": declaration, "modules": list(modules)}), cwd=ROOT,
                          env=user_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("noop_profile: the %s probe failed:\n%s%s" % (mode, proc.stdout, proc.stderr))
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- cProfile of the deploy step's worker ---------------------------------------------------------

PROFILED = """
import cProfile, os, sys
from ansible.executor.process import worker
_run = worker.WorkerProcess._run
def _profiled(self):
    profile = cProfile.Profile()
    profile.enable()
    try:
        return _run(self)
    finally:
        profile.disable()
        if "stack" in self._task.action:
            profile.dump_stats(os.environ["CLOCKWORK_PROFILE"])
worker.WorkerProcess._run = _profiled
from ansible.cli.playbook import main
sys.argv = ["ansible-playbook"] + sys.argv[1:]
main()
"""

PROFILE_ROWS = [
    ("the task in its worker", "task_executor.py", "_execute_internal"),
    ("  its arguments templated", "playbook/task.py", "post_validate"),
    ("  the action plugin", "connection_action.py", "run"),
    ("    the collection's code imported there", "action/stack.py", "_module_utils"),
    ("    argument validation (the stack's spec)", "arg_spec.py", "validate"),
    ("    the plan", "module_utils/plan.py", "__init__"),
    ("    the convergence (run_stack)", "module_utils/stack.py", "run_stack"),
    ("      pre-flight (its main thread)", "apply/preflight.py", "run"),
    ("      the stack's lock", "apply/lock.py", "acquire"),
]


def profile_deploy():
    import pstats
    bench = _bench()
    with tempfile.NamedTemporaryFile(suffix=".prof") as out, tempfile.NamedTemporaryFile("w", suffix=".py") as script:
        script.write(PROFILED)
        script.flush()
        proc = subprocess.run([os.path.join(bench.BIN, "python"), script.name] + bench.playbook("--tags", "deploy")[1:],
                              cwd=ROOT, env=user_env(CLOCKWORK_PROFILE=out.name), capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit("noop_profile: the profiled run failed:\n%s%s" % (proc.stdout, proc.stderr))
        stats = pstats.Stats(out.name).stats
    print("\nthe deploy step's worker under cProfile (cumulative seconds of its main thread, inflated by the profiler):")
    for label, path, function in PROFILE_ROWS:
        total = max([s[3] for (f, _l, name), s in stats.items() if f.endswith(path) and name == function] or [0.0])
        print("  %-46s %6.3f" % (label, total))


# -- the report ----------------------------------------------------------------------------------------

def median(values):
    return statistics.median(values) if values else float("nan")


def report_runs(runs, loads, against=None):
    totals = dict((k, median([t for t, _ in runs[k]])) for k in runs)
    floor = totals["empty"]
    print("\nno-op of the showcase against an empty ansible-playbook (median of %d alternating runs; load %s)"
          % (len(runs["empty"]), " / ".join("%.1f" % load for load in loads)))
    print("  %-44s %7s %8s %9s %11s" % ("", "seconds", "ratio", "above", "CPU above"))
    cpu_key = "CPU seconds (ansible-playbook and its workers)"
    cpu = dict((k, median([parts[cpu_key] for _t, parts in runs[k]])) for k in runs)
    for kind, label in (("empty", "empty ansible-playbook"), ("deploy", "no-op of the deploy step (--tags deploy)"),
                        ("whole", "no-op of the whole playbook")):
        print("  %-44s %7.2f %7.2fx %+8.2fs %+10.2fs" % (
            label, totals[kind], totals[kind] / floor, totals[kind] - floor, cpu[kind] - cpu["empty"]))
        if against and kind != "empty":
            earlier = totals[kind + " before"]
            before_label = "  the same, the collection as of " + against
            print("  %-44s %7.2f %7.2fx %+8.2fs %+10.2fs" % (
                before_label, earlier, earlier / floor, earlier - floor, cpu[kind + " before"] - cpu["empty"]))
    for kind in [k for k in ("deploy", "whole", "deploy before", "whole before") if k in runs]:
        print("\nwhere the no-op %s%s spends its time above the empty playbook (median seconds)"
              % ("of the deploy step" if kind.startswith("deploy") else "of the whole playbook",
                 ", the collection as of " + against if kind.endswith("before") else ""))
        names = []
        for _total, parts in runs[kind]:
            names.extend(n for n in parts if n not in names)
        for name in names:
            ours = median([parts.get(name, 0.0) for _t, parts in runs[kind]])
            base = median([parts.get(name, 0.0) for _t, parts in runs["empty"]])
            print("  %-60s %6.3f%s" % (name[:60], ours - base, "  (empty: %.3f)" % base if base else ""))
    return totals


def report_probes(probes):
    first = probes["action"][0]
    loader = probes["loader"]
    print("\nthe collection's code the stack action runs in-process, %d modules (median of %d fresh interpreters each,"
          " alternating):" % (len(first["modules"]), len(probes["action"])))
    print("  imported through ansible-core's collection loader (compiled from source)  %6.3f s (compiling alone: %.3f s)"
          % (median([p["import"] for p in loader]), median([p["compile"] for p in loader])))
    print("  imported as the action imports it (bytecode cached in __pycache__)       %6.3f s"
          % median([p["import"] for p in probes["action"]]))
    print("    (%d of them through ansible-core's loader: the folders module_utils/ and plugin_utils/ themselves)"
          % first["compiled from source"])
    print("  third-party code (imported alone, fresh interpreter): imported by the action's code? by a no-op?")
    for what, module, why in PACKAGES:
        print("    %-28s %6.3f s   %-3s %-3s  %s" % (
            what, median([p["import"] for p in probes["import:" + module]]), "yes" if first["third-party"][module] else "no",
            "yes" if first["third-party after the no-op"][module] else "no", why))
    for kind in ("deploy", "deploy and verify"):
        print("  the stack's own work, %s, in-process (the second after the first: %s):"
              % (kind, "cold" if kind == "deploy" else "warm"))
        for key in first[kind]:
            values = [p[kind][key] for p in probes["action"] if isinstance(p[kind].get(key), (int, float))]
            if values:
                shown = ("%d" % median(values)) if key.endswith("how many") else "%.3f s" % median(values)
                print("    %-56s %s" % (key, shown))
            else:
                print("    %-56s %s" % (key, first[kind][key]))


def main():
    parser = argparse.ArgumentParser(description="where the time of an unchanged showcase rerun goes")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the three commands, alternating")
    parser.add_argument("--probes", type=int, default=5, help="fresh interpreters per import kind")
    parser.add_argument("--keep", action="store_true", help="leave the showcase deployed")
    parser.add_argument("--against", metavar="REF", help="also time the no-ops with the collection as of REF")
    parser.add_argument("--profile", action="store_true", help="also profile the deploy step's worker")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        given = json.loads(sys.stdin.read())
        print(json.dumps(probe(args.probe, given["declaration"], given["modules"])))
        return
    bench = _bench()
    bench.sh(os.path.join(bench.BIN, "python"), "tests/images/build.py")
    empty = empty_playbook_file()
    commands = {"empty": ([os.path.join(bench.BIN, "ansible-playbook"), empty], False),
                "deploy": (bench.playbook("--tags", "deploy"), True), "whole": (bench.playbook(), True)}
    before = None
    if args.against:
        before = collection_at(args.against)
        commands["deploy before"] = (bench.playbook("--tags", "deploy"), True, before)
        commands["whole before"] = (bench.playbook(), True, before)
    runs = dict((k, []) for k in commands)
    probes = dict((k, []) for k in ["loader", "action"] + ["import:" + module for _w, module, _y in PACKAGES])
    declaration = showcase_declaration()
    loads = [os.getloadavg()[0]]
    try:
        with bench.showcase_lock():
            # From nothing (as bench/run.py's rounds start): containers made now, every check passing.
            bench.clean()
            bench.sh(*bench.playbook(), env=user_env())
            order = list(commands)
            for number in range(args.rounds):
                for kind in order[number % len(order):] + order[:number % len(order)]:
                    runs[kind].append(timed_playbook(*commands[kind]))
            # The probes converge for real: the showcase must be as declared (a dry run says so).
            timed_playbook(bench.playbook("--check", "--tags", "deploy"), True)
            loads.append(os.getloadavg()[0])
            totals = report_runs(runs, loads, args.against)
            modules = run_probe("action", declaration)["modules"]
            kinds = list(probes)
            for number in range(args.probes):
                for mode in (kinds if number % 2 == 0 else kinds[::-1]):
                    probes[mode].append(run_probe(mode, declaration, modules))
            report_probes(probes)
            if args.profile:
                profile_deploy()
            result = {"totals": totals, "runs": runs, "probes": probes, "load": loads}
            if not args.keep:
                bench.clean()
    finally:
        os.unlink(empty)
        if before:
            shutil.rmtree(before, ignore_errors=True)
    os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
    out = os.path.join(ROOT, "bench/results", "noop-" + time.strftime("%Y%m%dT%H%M%S") + ".json")
    with open(out, "w") as handle:
        json.dump(dict(result, code=bench.code_state(), cpus=os.cpu_count()), handle, indent=2)
    print("\nraw times: %s" % os.path.relpath(out, ROOT))


if __name__ == "__main__":
    main()
