#!/usr/bin/env python3
"""Benchmark: this collection and Compose v2, side by side, on the same local images.

Three scenarios, each run in one process with the tools alternating, so that drift of the
machine affects both alike; medians and the ratio to compose are printed, raw times kept in
bench/results/.

Compose is Compose v2 (`docker compose`, the CLI plugin `make compose` puts in the project's .docker/, run
with DOCKER_CONFIG=.docker as tests/integration/compose_compare.py runs it), the reference; with --compose-v1,
docker-compose 1.29 is a second column of the scale scenario (its own cold and no-op runs among the others).

showcase   the seed's stack (bench/docker-compose.yml, written by hand):
  cold     from nothing until every check of the showcase passes (for compose: `up -d`, then
           the same six checks by `docker exec`, polled, as the role's assert step runs them);
  no-op    again with nothing to do (the collection: the deploy tag; compose: `up -d`).
  Then: where the collection's no-op time goes (an empty playbook, the stack module alone).
  peer     after each round, the showcase as an Ansible user writes it with community.docker
           (bench/community_docker/, in bench/.venv-peer with a pinned `ansible`; bench/peer.py):
           cold, no-op of the deploy step and of the whole playbook; ratios clockwork/peer with the
           goals, and its containers compared with the collection's.

scale      an N-service stack generated for both tools from one description (bench/scale.py):
           one cache with a healthcheck, N/5 APIs on a network with it, the rest workers each
           depending on an API. Graph depth 3 whatever N.
  cold     from nothing until every container runs and is healthy where it has a healthcheck
           (the collection: the playbook returns; compose: `up -d` returns; then, for both, the
           engine is polled until that holds, so compose does not gain by not waiting);
  no-op    the same command again (the playbook must report changed=0, compose create nothing).
  sdk      at --size, the SDK floor takes its turn: the same stack through the Docker SDK alone,
           parallel by graph level (bench/peer.py), cold; its end state compared with ours.
  At --size services (default 50) with more runs, then at each --growth size with fewer, for a
  table of how cold and no-op times grow with N. Each run starts from nothing: the stack's and
  the compose project's containers, networks and volumes are removed, by label, before and after.

The showcase uses fixed container names; it runs under /tmp/clockwork-showcase.lock (flock),
like every other deployment of the showcase on a shared machine.
A 50-service run alone: bench/run.py --only scale --growth ""; bench/scale.py writes the two files.
swarm      the --size stack on a single-node swarm against `docker stack deploy` (bench/swarm.py),
           cold and no-op, --size-runs and --noop-runs runs.

Usage: bench/run.py [--only showcase|scale|swarm] [--cold N] [--noop N] [--size N] [--size-runs N]
                    [--growth 10,30,100] [--growth-runs N] [--noop-runs N] [--parallel N]
                    [--peer-noop N] [--no-peer] [--no-sdk] [--compose-v1]
The smallest run (a check that it works, ~1 min): bench/run.py --only scale --size 5 --size-runs 1 --growth ""
                    --noop-runs 1 --no-sdk
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402  (bench/scale.py, beside this file)
# What this file and bench/peer.py share (noop_profile.py and the compose import test read it from here too).
from harness import (  # noqa: E402,F401
    BIN, COMPOSE_ENV, ENV, GENERATED, IMAGES, PROBLEMS, ROOT, clean, compose, compose_changed, compose_v2_missing,
    compose_version, differences, inspect_all, median, owner_filters, playbook, problem, scale_clean, scale_cold,
    scale_commands, sh, sh_peak, showcase_lock, snapshot, timed, wait_ready)
import peer  # noqa: E402  (bench/peer.py: the community.docker peer and the SDK floor)
import swarm as swarm_bench  # noqa: E402  (bench/swarm.py: the --size stack on a single-node swarm)


COMPOSE_CHECKS = [
    ["postgres", "sh", "-c", 'psql "postgresql://postgres:secret123@postgres:5432/appdb" -tAc '
                             '"SELECT to_regclass(\'users\') IS NOT NULL" | grep -q t'],
    ["api", "sh", "-c", "getent hosts redis && nc -z -w 3 redis 6379"],
    ["api", "sh", "-c", "test -r /etc/app/config.json && ! test -w /etc/app/config.json"],
    ["api", "sh", "-c", "echo x > /data/shared/.bench"],
    ["storage", "sh", "-c", "cat /data/shared/.bench && rm /data/shared/.bench"],
    ["frontend", "curl", "-fsS", "http://api:8000/health"],
    ["redis", "redis-cli", "ping"],
]


SHOWCASE_COMPOSE = ("bench", "bench/docker-compose.yml")


def compose_env(config_json):
    """Compose v2's environment (the project's DOCKER_CONFIG) with the showcase file's variables."""
    return dict(COMPOSE_ENV, POSTGRES_IMAGE=IMAGES["showcase_postgres_image"], REDIS_IMAGE=IMAGES["showcase_redis_image"],
                NGINX_IMAGE=IMAGES["showcase_nginx_image"], CONFIG_JSON=config_json)


def compose_cold(env):
    started = time.monotonic()
    sh(*compose(*SHOWCASE_COMPOSE, "up", "-d"), env=env)
    deadline = started + 120
    for check in COMPOSE_CHECKS:
        while sh("docker", "exec", *check, check=False).returncode != 0:
            if time.monotonic() > deadline:
                sys.exit("bench: compose check never passed: %s" % " ".join(check))
            time.sleep(0.1)
    return time.monotonic() - started


def converge_in_process(name, resources, connections, base_dir, parallel=None):
    """A no-op convergence of the stack in this process, without ansible-playbook around it
    (the first call includes importing the driver); returns its seconds."""
    sys.path.insert(0, os.path.join(ROOT, "collections"))
    from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.docker_applier import DockerApplier
    options = {"parallel": parallel} if parallel else {}
    started = time.monotonic()
    report = DockerApplier(DockerGateway(), name, resources, connections, base_dir=base_dir, **options).present()
    assert not report["changed"], [e for e in report["entries"] if e["changed"]]
    return time.monotonic() - started


def module_alone():
    """The stack module's own no-op time for the showcase."""
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles/showcase/defaults/main.yml")))
    text = json.dumps({"r": defaults["showcase_resources"], "c": defaults["showcase_connections"]})
    for key in ("postgres", "redis", "nginx"):
        text = text.replace("{{ showcase_%s_image }}" % key, IMAGES["showcase_%s_image" % key])
    text = text.replace("{{ showcase_db_password }}", "secret123")
    text = text.replace('"{{ showcase_api_replicas }}"', str(defaults["showcase_api_replicas"]))
    declared = json.loads(text)
    for connection in declared["c"]:
        if connection.get("schema_file"):
            connection["schema_file"] = os.path.join(ROOT, "roles/showcase/files", connection["schema_file"])
    return converge_in_process("showcase", declared["r"], declared["c"], os.path.join(ROOT, "playbooks"))


def run_showcase(args):
    """The hand-written showcase, under the showcase lock (its container names are fixed)."""
    with showcase_lock():
        return _run_showcase(args)


def _run_showcase(args):
    config_dir = tempfile.mkdtemp(prefix="clockwork-bench-")
    config_json = os.path.join(config_dir, "config.json")
    with open(config_json, "w") as handle:
        handle.write('{"log_level": "info"}')
    env = compose_env(config_json)
    times = {k: [] for k in ("clockwork_cold", "compose_cold", "clockwork_noop", "clockwork_noop_with_assert",
                             "compose_noop")}
    with_peer = not args.no_peer
    if with_peer:
        peer_version = peer.ensure_venv()
        times.update(peer.peer_times())
    shapes = {}

    # Alternate the two tools so that drift of the machine affects both alike.
    for _ in range(args.cold):
        clean()
        times["clockwork_cold"].append(timed(*playbook()))   # deploy, then every check passes
        for _ in range(args.noop):
            times["clockwork_noop"].append(timed(*playbook("--tags", "deploy")))
            times["clockwork_noop_with_assert"].append(timed(*playbook()))
        in_process = module_alone()
        shapes.setdefault("clockwork", peer.collection_shape())
        clean()
        times["compose_cold"].append(compose_cold(env))
        for _ in range(args.noop):
            times["compose_noop"].append(timed(*compose(*SHOWCASE_COMPOSE, "up", "-d"), env=env))
        if with_peer:   # the community.docker peer: its own cold run (clean() first), then its no-ops
            shapes.setdefault("peer", peer.showcase_round(times, args.peer_noop))
            clean()     # its networks are compose's names: `down` below would find them in use
    sh(*compose(*SHOWCASE_COMPOSE, "down", "-v"), env=env)
    clean()
    empty_run = empty_playbook()

    medians = dict((k, median(v)) for k, v in times.items())
    rows = [
        ("cold deploy until every check passes", medians["clockwork_cold"], medians["compose_cold"]),
        ("no-op rerun (deploy)", medians["clockwork_noop"], medians["compose_noop"]),
        ("no-op rerun with the assert step", medians["clockwork_noop_with_assert"], medians["compose_noop"]),
    ]
    print("\n%-40s %12s %12s %8s" % ("showcase (median seconds)", "clockwork", "compose", "ratio"))
    for label, ours, theirs in rows:
        print("%-40s %12.2f %12.2f %7.2fx" % (label, ours, theirs, ours / theirs))
    print("\nwhere the clockwork no-op goes: empty ansible-playbook %.2fs; the stack convergence itself "
          "(in-process, driver imports included) %.2fs; the rest (role tasks, argument validation, templating "
          "the declaration, library imports) %.2fs"
          % (empty_run, in_process, medians["clockwork_noop"] - empty_run - in_process), flush=True)
    result = {"runs": times, "medians": medians, "empty_playbook": empty_run, "module_in_process": in_process}
    if with_peer:
        peer.print_showcase(medians, peer_version)
        result["peer"] = {"ansible": peer_version, "differences": peer.compare_showcase(shapes["clockwork"],
                                                                                       shapes["peer"])}
    return result

# -- the N-service stack ----------------------------------------------------------------------

def engine_time(stamp):
    """Docker's RFC 3339 timestamp with nanoseconds -> seconds since the epoch."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    moment = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp() + float("0." + (frac or "0"))


def scale_noop(tool, description, command, peaks=None):
    started = time.monotonic()
    if peaks is not None and tool == "clockwork":
        proc, peak = sh_peak(*command)
        peaks.append(peak)
    else:
        proc = sh(*command)
    elapsed = time.monotonic() - started
    output = (proc.stdout or "") + (proc.stderr or "")
    if tool == "clockwork" and "changed=0" not in output:
        sys.exit("bench: the rerun of %s changed something:\n%s" % (description["stack"], output))
    if tool.startswith("compose") and compose_changed(output):
        sys.exit("bench: the rerun of compose project %s changed something:\n%s" % (description["project"], output))
    return elapsed


def measure_size(size, cold_runs, noop_runs, in_process=False, parallel=None, sdk=False, v1=False):
    """`cold_runs` cold deploys per tool, each followed by `noop_runs` reruns; tools alternate,
    and which goes first alternates too. With `sdk`, the SDK floor's cold deploy (bench/peer.py)
    takes its turn among them; with `v1`, docker-compose 1.29's (a second Compose column)."""
    description = scale.describe(size, IMAGES["showcase_redis_image"], IMAGES["showcase_nginx_image"])
    paths = scale.write(description, GENERATED, parallel=parallel)
    commands = scale_commands(description, paths, v1=v1)
    roles = dict((s["name"], s["role"]) for s in description["services"])
    composes = ["compose"] + (["compose_v1"] if v1 else [])
    prefixes = dict([("clockwork", description["stack"])] + [(tool, description["project"]) for tool in composes])
    times = dict(("%s_%s" % (tool, kind), []) for tool in ["clockwork"] + composes for kind in ("cold", "noop"))
    if in_process:
        times["clockwork_noop_in_process"] = []
    tools = ["clockwork"] + composes + (["sdk"] if sdk else [])
    if sdk:
        times["sdk_cold"] = []
    phases = dict((tool, []) for tool in ["clockwork"] + composes)
    times["clockwork_noop_peak_mb"] = []
    shapes = {}
    print("bench: %d services (%s), %d cold and %d no-op runs per tool"
          % (size, ", ".join("%d %s" % (n, r) for r, n in scale.counts(description).items()), cold_runs,
             cold_runs * noop_runs), flush=True)
    try:
        for run in range(cold_runs):
            for tool in tools[run % len(tools):] + tools[:run % len(tools)]:
                if tool == "sdk":
                    elapsed, shapes_sdk = peer.sdk_cold(description)
                    times["sdk_cold"].append(elapsed)
                    shapes.setdefault("sdk", shapes_sdk)
                    print("  %-9s cold %6.2fs" % ("sdk floor", elapsed), flush=True)
                    continue
                scale_clean(description)
                elapsed, detail, attrs = scale_cold(tool, description, commands[tool], roles)
                times[tool + "_cold"].append(elapsed)
                phases[tool].append(detail)
                at_ready = snapshot(attrs, prefixes[tool])
                for _ in range(noop_runs):
                    times[tool + "_noop"].append(scale_noop(tool, description, commands[tool],
                                                            times["clockwork_noop_peak_mb"]))
                if tool == "clockwork" and in_process:
                    task = scale.playbook(description, parallel)[0]["tasks"][0]["clockwork.connections.stack"]
                    times["clockwork_noop_in_process"].append(converge_in_process(
                        description["stack"], task["resources"], task["connections"], GENERATED, parallel))
                settled = snapshot(inspect_all(owner_filters(description)[tool]), prefixes[tool])
                shapes.setdefault(tool, settled)
                late = differences(at_ready, settled, ("when all ran", "after the reruns"))
                if late:   # "ready" was declared before the container had its final shape
                    problem("%s, %d services: containers changed after every one ran:\n    %s"
                            % (tool, size, "\n    ".join(late)))
                print("  %-9s cold %6.2fs  no-op %s" % (tool, elapsed, " ".join(
                    "%.2fs" % t for t in times[tool + "_noop"][-noop_runs:])), flush=True)
    finally:
        scale_clean(description)
    found = differences(shapes["clockwork"], shapes["compose"])
    if found:
        problem("the two tools did not deploy the same %d-service stack:\n    %s" % (size, "\n    ".join(found)))
    if v1:
        # What Compose 1.29 makes differently from v2 is no problem of ours: said, not counted.
        print("  compose 1.29 against v2: %s" % ("; ".join(differences(shapes["compose_v1"], shapes["compose"],
                                                                       ("compose 1.29", "compose v2"))) or "the same"))
    if sdk:
        peer.compare_sdk(shapes["clockwork"], shapes["sdk"], size)
    medians = dict((k, median(v)) for k, v in times.items())
    phase_medians = {}
    for tool, details in phases.items():
        phase_medians[tool] = dict((key, median([d[key] for d in details if d[key] is not None]))
                                   for key in details[0] if any(d[key] is not None for d in details))
    times["clockwork_cold_peak_mb"] = [d["peak_mb"] for d in phases["clockwork"]]
    return {"size": size, "counts": scale.counts(description), "runs": times, "medians": medians,
            "phases": phases, "phase_medians": phase_medians,
            "files": [os.path.relpath(path, ROOT) for path in paths]}


def slope(points):
    """Least-squares seconds per added service."""
    if len(points) < 2:
        return float("nan")
    xs, ys = zip(*points)
    mx, my = statistics.mean(xs), statistics.mean(ys)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)


def spread(values):
    return "%.2f-%.2f" % (min(values), max(values))


def print_size(result):
    m, p = result["medians"], result["phase_medians"]
    counts = result["counts"]
    print("\n%-44s %10s %10s %8s" % ("%d services: %d cache, %d APIs, %d workers (median s)"
                                      % (result["size"], counts["cache"], counts["api"], counts["worker"]),
                                      "clockwork", "compose", "ratio"))
    runs = result["runs"]
    for label, kind in (("cold deploy until all run (healthy)", "cold"), ("no-op rerun", "noop")):
        ours, theirs = m["clockwork_" + kind], m["compose_" + kind]
        # The spread shows when the shared engine stalled one tool's run.
        print("%-44s %10.2f %10.2f %7.2fx   (range: %s / %s)" % (
            label, ours, theirs, ours / theirs, spread(runs["clockwork_" + kind]), spread(runs["compose_" + kind])))
    if "compose_v1_cold" in m:
        for label, kind in (("  docker-compose 1.29: cold", "cold"), ("  docker-compose 1.29: no-op", "noop")):
            print("%-44s %10s %10.2f   (clockwork %.2fx of it; range: %s)" % (
                label, "", m["compose_v1_" + kind], m["clockwork_" + kind] / m["compose_v1_" + kind],
                spread(runs["compose_v1_" + kind])))
    if "sdk_cold" in m:
        print("%-44s %10.2f   (range: %s): clockwork %.2fx of it (goal <= 1.10x), compose %.2fx" % (
            "SDK floor, cold (parallel by graph level)", m["sdk_cold"], spread(runs["sdk_cold"]),
            m["clockwork_cold"] / m["sdk_cold"], m["compose_cold"] / m["sdk_cold"]))
    print("\nwhere the cold time goes (median seconds from the command's start)")
    for label, key in (("first container created", "first_created"), ("cache healthy", "cache_healthy"),
                       ("last API started", "apis_started"), ("last worker started", "workers_started"),
                       ("command returned", "returned"), ("all running (healthy)", "total")):
        print("  %-42s %10.2f %10.2f" % (label, p["clockwork"].get(key, float("nan")),
                                         p["compose"].get(key, float("nan"))))


def print_growth(results):
    # Peak: the largest sum of PSS over ansible-playbook's whole process tree (/proc polled every 20 ms),
    # max over the cold runs and over the no-op runs.
    print("\n%-9s %11s %11s %7s   %11s %11s %7s   %9s %9s" % (
        "services", "cold ours", "compose", "ratio", "no-op ours", "compose", "ratio", "peak cold", "no-op"))
    for result in results:
        m, runs = result["medians"], result["runs"]
        print("%-9d %10.2fs %10.2fs %6.2fx   %10.2fs %10.2fs %6.2fx   %7.0fMB %7.0fMB" % (
            result["size"], m["clockwork_cold"], m["compose_cold"], m["clockwork_cold"] / m["compose_cold"],
            m["clockwork_noop"], m["compose_noop"], m["clockwork_noop"] / m["compose_noop"],
            max(runs["clockwork_cold_peak_mb"]), max(runs["clockwork_noop_peak_mb"] or [float("nan")])))
    biggest = results[-1]
    if biggest["size"] >= 100:
        peak = max(biggest["runs"]["clockwork_cold_peak_mb"] + biggest["runs"]["clockwork_noop_peak_mb"])
        print("peak memory at %d services: %.0f MB (goal < 200 MB)%s"
              % (biggest["size"], peak, "" if peak < 200 else "  MISSED"))
    if len(results) > 1:
        per = dict((key, slope([(r["size"], r["medians"][key]) for r in results]))
                   for key in ("clockwork_cold", "compose_cold", "clockwork_noop", "compose_noop"))
        print("%-9s %10.3fs %10.3fs %7s   %10.3fs %10.3fs   (least squares, seconds per added service)"
              % ("per svc", per["clockwork_cold"], per["compose_cold"], "", per["clockwork_noop"],
                 per["compose_noop"]))
        return per
    return {}


def empty_playbook():
    """Median time of an ansible-playbook run with nothing to do: the floor under every run of ours."""
    empty = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
    empty.write("- hosts: localhost\n  gather_facts: false\n  tasks: []\n")
    empty.close()
    try:
        return statistics.median(timed(os.path.join(BIN, "ansible-playbook"), empty.name) for _ in range(3))
    finally:
        os.unlink(empty.name)


def run_scale(args):
    sizes = sorted(set(args.growth) | {args.size})
    results = {}
    floor = empty_playbook()
    # The main size first, with more runs; then the growth sizes, with fewer.
    results[args.size] = measure_size(args.size, args.size_runs, args.noop_runs, in_process=True,
                                     parallel=args.parallel, sdk=not args.no_sdk, v1=args.compose_v1)
    print_size(results[args.size])
    print("\nwhere the clockwork no-op goes: empty ansible-playbook %.2fs; the stack convergence itself "
          "(in-process) %.2fs; the rest (the task's arguments, the action plugin's plan, module imports, "
          "output) %.2fs" % (floor, results[args.size]["medians"]["clockwork_noop_in_process"],
                             results[args.size]["medians"]["clockwork_noop"] - floor
                             - results[args.size]["medians"]["clockwork_noop_in_process"]), flush=True)
    for size in sizes:
        if size not in results:
            results[size] = measure_size(size, args.growth_runs, args.noop_runs, parallel=args.parallel)
    print("\nhow it grows (graph depth 3 at every size; median seconds; load average %.1f %.1f %.1f)"
          % os.getloadavg())
    per_service = print_growth([results[s] for s in sizes])
    return {"sizes": dict((str(s), r) for s, r in results.items()), "per_added_service": per_service,
            "empty_playbook": floor}


def code_state():
    """Which code was measured: the commit, and what differs from it in the collection's code."""
    commit = sh("git", "rev-parse", "--short", "HEAD", check=False).stdout.strip()
    dirty = sh("git", "status", "--short", "--", "plugins", "roles", check=False).stdout.split("\n")
    return {"commit": commit, "uncommitted": [line for line in dirty if line.strip()]}


def sizes_list(text):
    return [int(part) for part in text.split(",") if part.strip()]


def main():
    parser = argparse.ArgumentParser(description="clockwork.connections vs Compose v2, same images, same run")
    parser.add_argument("--only", choices=["showcase", "scale", "swarm"], help="run one scenario (default: all three)")
    parser.add_argument("--cold", type=int, default=3, help="showcase: cold runs per tool")
    parser.add_argument("--noop", type=int, default=5, help="showcase: no-op runs after each cold run")
    parser.add_argument("--size", type=int, default=50, help="scale: services of the main measurement")
    parser.add_argument("--size-runs", type=int, default=3, help="scale: cold runs per tool at --size")
    parser.add_argument("--growth", type=sizes_list, default=[10, 30, 100],
                        help="scale: further sizes, comma-separated, for the growth table")
    parser.add_argument("--growth-runs", type=int, default=2, help="scale: cold runs per tool at each growth size")
    parser.add_argument("--noop-runs", type=int, default=3, help="scale: no-op runs after each cold run")
    parser.add_argument("--parallel", type=int,
                        help="scale: the stack task's `parallel` (default: the module's own default)")
    parser.add_argument("--peer-noop", type=int, default=2,
                        help="showcase: no-op runs of each kind of the community.docker peer after its cold run")
    parser.add_argument("--no-peer", action="store_true", help="showcase: leave out the community.docker peer")
    parser.add_argument("--no-sdk", action="store_true", help="scale: leave out the SDK floor")
    parser.add_argument("--compose-v1", action="store_true",
                        help="scale: docker-compose 1.29 as a second Compose column at --size")
    args = parser.parse_args()
    if compose_v2_missing():
        sys.exit("bench: %s" % compose_v2_missing())
    sh(os.path.join(BIN, "python"), "tests/images/build.py")
    report = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg(), "python": platform.python_version(),
                          "compose": compose_version(), "compose_v1": compose_version(v1=True) if args.compose_v1
                          else None},
              "code": code_state(), "options": vars(args)}
    if args.only in (None, "showcase"):
        report["showcase"] = run_showcase(args)
    if args.only in (None, "scale"):
        report["scale"] = run_scale(args)
    if args.only in (None, "swarm"):
        # The --size stack on a single-node swarm against `docker stack deploy`, as many runs as scale's.
        report["swarm"] = swarm_bench.main(["--size", str(args.size), "--cold", str(args.size_runs),
                                            "--noop", str(args.noop_runs)])
    report["machine"]["load_after"] = os.getloadavg()
    report["problems"] = PROBLEMS
    busy = max(report["machine"]["load_before"][0], report["machine"]["load_after"][0])
    if busy > os.cpu_count():
        # Others share this engine and these cores; alternating the tools spreads it over both.
        print("\nbench: the machine was busy (load %.1f on %d cores): absolute times are inflated, ratios noisier"
              % (busy, os.cpu_count()))
    os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
    out = os.path.join(ROOT, "bench/results", time.strftime("%Y%m%dT%H%M%S") + ".json")
    with open(out, "w") as handle:
        json.dump(report, handle, indent=2)
    print("\nraw times: %s (generated stacks: %s)" % (os.path.relpath(out, ROOT), os.path.relpath(GENERATED, ROOT)))
    if PROBLEMS:
        sys.exit("bench: %d problem(s), see above" % len(PROBLEMS))


if __name__ == "__main__":
    main()
