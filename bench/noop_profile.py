#!/usr/bin/env python3
"""Where the time of an unchanged showcase rerun goes, against an empty `ansible-playbook`.

The showcase is deployed from nothing (under the showcase lock: its container names are fixed), then
rounds alternate three commands, their order rotating: an empty playbook, the no-op of the deploy
step (--tags deploy) and of the whole playbook (deploy and verify); each must report changed=0.
A callback (bench/callback_plugins/noop_timeline.py) notes when the playbook and each task
started and ended, which splits a run into: start-up (Ansible, the playbook and its roles
loaded, the collection's action plugin and code imported), each task (its arguments templated,
a worker forked, the action run, the result back), and the end.

Then, in fresh interpreters, alternating: the collection's in-process code imported as
ansible-core imports it (compiled from source on every run: its collection loader keeps no
bytecode) and through a normal, bytecode-cached import; what compiling it costs; the Docker
SDK's import time (which a no-op on a local socket no longer pays), and psycopg's (which it does:
the database connection logs in on every run); the packages the no-op imports; and the stack's
own work (argument validation, the plan, the engine's requests, the convergence), in-process.

Usage: bench/noop_profile.py [--rounds N] [--probes N] [--against REF] [--keep] [--profile]
  --against  also time both no-ops with the collection as of the commit REF (git archive), in the
             same alternating rounds: before and after a change, on one machine in one run
  --keep     leave the showcase deployed at the end (default: removed, as bench/run.py does)
  --profile  also run the deploy step once under cProfile (the worker of the stack task) and
             print where its time goes: templating the task, the action plugin, the stack
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, "collections")
CALLBACKS = os.path.join(ROOT, "bench", "callback_plugins")
PACKAGE = "ansible_collections.clockwork.connections"


def _bench():
    """bench/run.py (paths, the showcase's playbook and lock), imported by the measuring process
    only: it imports the Docker SDK, which the probes must not find imported."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import run  # pylint: disable=import-outside-toplevel
    return run


def timed_playbook(command, expect_no_change, collections=None):
    """(seconds, timeline) of one ansible-playbook run with the timeline callback; `collections`,
    a directory holding ansible_collections/, instead of the tree's own."""
    bench = _bench()
    with tempfile.NamedTemporaryFile("w+", suffix=".jsonl") as notes:
        env = dict(bench.ENV, ANSIBLE_CALLBACK_PLUGINS=CALLBACKS, ANSIBLE_CALLBACKS_ENABLED="noop_timeline",
                   CLOCKWORK_TIMELINE=notes.name)
        if collections:
            env["ANSIBLE_COLLECTIONS_PATH"] = collections
        started = time.time()
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        ended = time.time()
        if proc.returncode != 0 or (expect_no_change and "changed=0" not in proc.stdout):
            sys.exit("noop_profile: %s did not run as a no-op:\n%s%s" % (" ".join(command), proc.stdout, proc.stderr))
        events = [json.loads(line) for line in notes.read().splitlines() if line.strip()]
    return ended - started, split_timeline(started, ended, events)


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

def probe(mode, declaration):
    """Run in a fresh interpreter (`--probe MODE`): import the collection's in-process code
    ("source": through ansible-core's collection loader, as a playbook does; "bytecode": a normal
    import from sys.path, with __pycache__), and with "source" also time the stack's own work."""
    import importlib
    # What an empty ansible-playbook has imported already: not the collection's cost.
    for name in ("ansible.executor.module_common", "ansible.module_utils.basic", "ansible.module_utils.common.arg_spec",
                 "ansible.plugins.action"):
        importlib.import_module(name)
    if mode.startswith("import:"):
        started = time.perf_counter()
        importlib.import_module(mode.split(":", 1)[1])
        return {"import": time.perf_counter() - started}
    if mode == "source":
        from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
        _AnsibleCollectionFinder(paths=[COLLECTIONS])._install()   # pylint: disable=protected-access
    else:
        sys.path.insert(0, COLLECTIONS)
    started = time.perf_counter()
    action = importlib.import_module(PACKAGE + ".plugins.action.stack")
    action._module_utils()   # pylint: disable=protected-access  # what the action imports when it runs
    result = {"import": time.perf_counter() - started, "sdk_imported": "docker" in sys.modules,
              "modules": sorted(m for m in sys.modules if m.startswith(PACKAGE) and os.path.isfile(
                  getattr(sys.modules[m], "__file__", None) or ""))}
    if mode != "source":
        return result
    started = time.perf_counter()
    for name in result["modules"]:
        with open(sys.modules[name].__file__) as handle:
            compile(handle.read(), sys.modules[name].__file__, "exec", dont_inherit=True)
    result["compile"] = time.perf_counter() - started
    result.update(stack_work(declaration))
    for name, key in (("requests", "import requests"), ("docker", "import docker (after requests)")):
        started = time.perf_counter()
        importlib.import_module(name)
        result[key] = time.perf_counter() - started
    return result


def stack_work(declaration):
    """The deploy step's own work, as the action plugin does it in-process: validation, plan,
    the engine, the no-op convergence (deploy alone, then deploy and verify); the engine's
    requests counted and timed."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible_collections.clockwork.connections.plugins.module_utils import plan, stack
    from ansible_collections.clockwork.connections.plugins.module_utils.docker import gateway as docker_client
    from ansible_collections.clockwork.connections.plugins.module_utils.docker import unix_http
    asked = {"count": 0, "seconds": 0.0}

    def counted(method):
        def call(*args, **kwargs):
            began = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                asked["count"] += 1
                asked["seconds"] += time.perf_counter() - began
        return call

    unix_http.UnixHTTPClient.request = counted(unix_http.UnixHTTPClient.request)
    unix_http.UnixHTTPClient.upgrade = counted(unix_http.UnixHTTPClient.upgrade)
    times = {}
    before = set(name.split(".")[0] for name in sys.modules)
    for verify in (False, True):
        kind = "deploy and verify" if verify else "deploy"
        asked.update(count=0, seconds=0.0)
        began = time.perf_counter()
        params = ArgumentSpecValidator(stack.STACK_ARGUMENT_SPEC).validate(
            dict(declaration, verify=verify)).validated_parameters
        validated = time.perf_counter()
        planned = plan.Plan(params["name"], params["resources"], params["connections"], base_dir=params["base_dir"],
                            engine=params["engine"])
        planned_at = time.perf_counter()
        engine = docker_client.DockerGateway()
        connected = time.perf_counter()
        try:
            report = stack.run_stack(engine, params, plan=planned)
        except Exception as exc:   # pylint: disable=broad-except  # a failed check: said, not timed
            times[kind] = {"failed": str(exc)[:300]}
            continue
        done = time.perf_counter()
        if report["changed"]:
            sys.exit("noop_profile: the showcase changed: %s" % [e for e in report["entries"] if e["changed"]])
        times[kind] = {"argument validation": validated - began, "plan": planned_at - validated,
                       "engine (GET /version)": connected - planned_at, "convergence": done - connected,
                       "engine requests": asked["count"], "inside engine requests (summed over threads)": asked["seconds"]}
    times["sdk_imported_by_the_no_op"] = "docker" in sys.modules
    times["packages imported by the no-op"] = sorted(
        name for name in set(n.split(".")[0] for n in sys.modules) - before if not name.startswith("_"))
    return times


def run_probe(mode, declaration, cache_dir):
    bench = _bench()
    env = dict(bench.ENV, PYTHONPYCACHEPREFIX=cache_dir)
    proc = subprocess.run([os.path.join(bench.BIN, "python"), os.path.abspath(__file__), "--probe", mode],
                          input=json.dumps(declaration), cwd=ROOT, env=env, capture_output=True, text=True)
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
    ("      pre-flight", "module_utils/preflight.py", "run"),
    ("      the stack's lock", "module_utils/stack_lock.py", "acquire"),
]


def profile_deploy():
    import pstats
    bench = _bench()
    with tempfile.NamedTemporaryFile(suffix=".prof") as out, tempfile.NamedTemporaryFile("w", suffix=".py") as script:
        script.write(PROFILED)
        script.flush()
        proc = subprocess.run([os.path.join(bench.BIN, "python"), script.name] + bench.playbook("--tags", "deploy")[1:],
                              cwd=ROOT, env=dict(bench.ENV, CLOCKWORK_PROFILE=out.name), capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit("noop_profile: the profiled run failed:\n%s%s" % (proc.stdout, proc.stderr))
        stats = pstats.Stats(out.name).stats
    print("\nthe deploy step's worker under cProfile (cumulative seconds, inflated by the profiler):")
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
    print("  %-44s %7s %8s %9s" % ("", "seconds", "ratio", "above"))
    for kind, label in (("empty", "empty ansible-playbook"), ("deploy", "no-op of the deploy step (--tags deploy)"),
                        ("whole", "no-op of the whole playbook")):
        print("  %-44s %7.2f %7.2fx %+8.2fs" % (label, totals[kind], totals[kind] / floor, totals[kind] - floor))
        if against and kind != "empty":
            earlier = totals[kind + " before"]
            before_label = "  the same, the collection as of " + against
            print("  %-44s %7.2f %7.2fx %+8.2fs" % (before_label, earlier, earlier / floor, earlier - floor))
    for kind in ("deploy", "whole"):
        print("\nwhere the no-op %s spends its time above the empty playbook (median seconds)"
              % ("of the deploy step" if kind == "deploy" else "of the whole playbook"))
        names = []
        for _total, parts in runs[kind]:
            names.extend(n for n in parts if n not in names)
        for name in names:
            ours = median([parts.get(name, 0.0) for _t, parts in runs[kind]])
            base = median([parts.get(name, 0.0) for _t, parts in runs["empty"]])
            print("  %-60s %6.3f%s" % (name[:60], ours - base, "  (empty: %.3f)" % base if base else ""))
    return totals


def report_probes(probes):
    source = dict((k, median([p[k] for p in probes["source"]])) for k in ("import", "compile"))
    cached = median([p["import"] for p in probes["bytecode"]])
    first = probes["source"][0]
    print("\nthe collection's in-process code, %d modules (median of %d fresh interpreters each, alternating):"
          % (len(first["modules"]), len(probes["source"])))
    print("  imported as ansible-core does (compiled from source)      %6.3f s (compiling alone: %.3f s)"
          % (source["import"], source["compile"]))
    print("  imported normally, bytecode cached (__pycache__)           %6.3f s" % cached)
    print("  the Docker SDK imported by the no-op: %s; importing it takes %.3f s (requests %.3f s, then docker %.3f s)"
          % ("yes" if first["sdk_imported_by_the_no_op"] else "no",
             median([p["import requests"] + p["import docker (after requests)"] for p in probes["source"]]),
             median([p["import requests"] for p in probes["source"]]),
             median([p["import docker (after requests)"] for p in probes["source"]])))
    print("  packages the no-op imported (in-process): %s" % ", ".join(first["packages imported by the no-op"]))
    for name, values in sorted(probes.items()):
        if name.startswith("import:"):
            print("  importing %s (fresh interpreter)                         %6.3f s" % (name[7:], median(
                [v["import"] for v in values])))
    for kind in ("deploy", "deploy and verify"):
        print("  the stack's own work, %s, in-process:" % kind)
        for key in first[kind]:
            values = [p[kind][key] for p in probes["source"] if isinstance(p[kind].get(key), (int, float))]
            if values:
                shown = ("%d" % median(values)) if key == "engine requests" else "%.3f s" % median(values)
                print("    %-52s %s" % (key, shown))
            else:
                print("    %-52s %s" % (key, first[kind][key]))


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
        print(json.dumps(probe(args.probe, json.loads(sys.stdin.read()))))
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
    # psycopg: the database connection logs in on every run (its schema and migrations are checked).
    probes = {"source": [], "bytecode": [], "import:psycopg": []}
    declaration = showcase_declaration()
    cache_dir = tempfile.mkdtemp(prefix="clockwork-pycache-")
    loads = [os.getloadavg()[0]]
    try:
        with bench.showcase_lock():
            # From nothing (as bench/run.py's rounds start): containers made now, every check passing.
            bench.clean()
            bench.sh(*bench.playbook())
            order = list(commands)
            for number in range(args.rounds):
                for kind in order[number % len(order):] + order[:number % len(order)]:
                    runs[kind].append(timed_playbook(*commands[kind]))
            # The probes converge for real: the showcase must be as declared (a dry run says so).
            timed_playbook(bench.playbook("--check", "--tags", "deploy"), True)
            loads.append(os.getloadavg()[0])
            totals = report_runs(runs, loads, args.against)
            run_probe("bytecode", declaration, cache_dir)   # writes the bytecode cache the next ones use
            for number in range(args.probes):
                for mode in (("source", "bytecode", "import:psycopg") if number % 2 == 0
                             else ("import:psycopg", "bytecode", "source")):
                    probes[mode].append(run_probe(mode, declaration, cache_dir))
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
