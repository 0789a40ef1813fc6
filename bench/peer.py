#!/usr/bin/env python3
"""The two other anchors of bench/run.py: what an Ansible user writes today, and the SDK floor.

peer       the showcase written with community.docker and community.postgresql
           (bench/community_docker/showcase.yml), run by the pinned `ansible` package in a venv
           of its own (bench/.venv-peer, made here when missing, from
           bench/community_docker/requirements.txt), on the same local images and with the same
           container names as this collection's showcase (so under the same showcase lock).
           Cold: from nothing until the six checks pass; no-op of the deploy step (--tags deploy)
           and of the whole playbook. The containers are compared field by field with the
           collection's (bench/harness.py's snapshot/differences).
sdk floor  the N-service stack of bench/scale.py converged through the Docker SDK for Python
           alone, parallel by graph level: the networks at once, then each level of containers
           with a thread pool (create, join the networks, start, wait until healthy where it has a
           healthcheck), the next level once the previous one is done. Cold only; the end state
           is compared with the collection's.

bench/run.py alternates both with its own runs. Alone, to try them with few repetitions:
  bench/peer.py showcase [--cold N] [--noop N]     (the collection and the peer, alternating)
  bench/peer.py sdk [--size N] [--runs N]          (the collection and the SDK floor, alternating)
"""
import argparse
import concurrent.futures
import copy
import os
import sys
import time

import docker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as bench  # noqa: E402  (bench/harness.py: what this file shares with bench/run.py)
import scale  # noqa: E402

ROOT = bench.ROOT
PEER_DIR = os.path.join(ROOT, "bench/community_docker")
PEER_VENV = os.path.join(ROOT, "bench/.venv-peer")
PEER_ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(PEER_DIR, "ansible.cfg"))
SHOWCASE_NAMES = ("postgres", "redis", "storage", "api", "frontend")
SHOWCASE_PREFIX = "showcase"   # both name the app network showcase_default
SDK_LABEL = "io.clockwork.bench.sdk"
SDK_SERVICE_LABEL = "io.clockwork.bench.service"
# The goals of issue 23: clockwork / community.docker.
PEER_GOALS = {"cold": 0.25, "noop_with_assert": 0.10}


# -- the community.docker peer --------------------------------------------------------------------

def ensure_venv():
    """Make bench/.venv-peer with the pinned packages when it is missing; returns its ansible version."""
    python = os.path.join(PEER_VENV, "bin", "python")
    if not os.path.exists(os.path.join(PEER_VENV, "bin", "ansible-playbook")):
        print("bench: making %s (the pinned ansible package, docker, psycopg)" % os.path.relpath(PEER_VENV, ROOT),
              flush=True)
        bench.sh(sys.executable, "-m", "venv", PEER_VENV)
        # Untracked and unseen by git and ansible-lint, as Python 3.13 makes every venv.
        with open(os.path.join(PEER_VENV, ".gitignore"), "w") as handle:
            handle.write("*\n")
        bench.sh(python, "-m", "pip", "install", "-q", "-r", os.path.join(PEER_DIR, "requirements.txt"))
    return bench.sh(python, "-c", "import importlib.metadata as m; print(m.version('ansible'))").stdout.strip()


def peer_playbook(*extra):
    return [os.path.join(PEER_VENV, "bin", "ansible-playbook"), os.path.join(PEER_DIR, "showcase.yml"),
            "-e", "@tests/images/local-images.yml"] + list(extra)


def peer_run(*extra, noop=False):
    """One run of the peer playbook; returns its seconds. A no-op must report changed=0."""
    started = time.monotonic()
    proc = bench.sh(*peer_playbook(*extra), env=PEER_ENV)
    elapsed = time.monotonic() - started
    if noop and "changed=0" not in proc.stdout:
        bench.problem("the community.docker rerun%s changed something:\n%s"
                      % (" (%s)" % " ".join(extra) if extra else "", proc.stdout[-3000:]))
    return elapsed


def named(attrs, name):
    """A copy of a container's attributes that bench/harness.py's snapshot() names `name`."""
    attrs = copy.deepcopy(attrs)
    attrs["Config"]["Labels"] = dict(attrs["Config"].get("Labels") or {}, **{"io.clockwork.resource": name})
    return attrs


def peer_shape():
    api = bench.engine()
    return bench.snapshot([named(api.inspect_container(name), name) for name in SHOWCASE_NAMES], SHOWCASE_PREFIX)


def collection_shape():
    return bench.snapshot(bench.inspect_all({"label": "io.clockwork.stack=showcase"}), SHOWCASE_PREFIX)


def showcase_round(times, noop_runs):
    """From nothing: a cold run of the peer, then `noop_runs` reruns of its deploy step and of the
    whole playbook, alternating; returns the shape of its containers. bench.clean() first: it
    removes the showcase whoever made it (the peer's objects have the same names)."""
    bench.clean()
    times["peer_cold"].append(peer_run())
    for _ in range(noop_runs):
        times["peer_noop"].append(peer_run("--tags", "deploy", noop=True))
        times["peer_noop_with_assert"].append(peer_run(noop=True))
    return peer_shape()


def peer_times():
    return {"peer_cold": [], "peer_noop": [], "peer_noop_with_assert": []}


def compare_showcase(ours, theirs):
    found = bench.differences(ours, theirs, ("clockwork", "community.docker"))
    if found:
        bench.problem("the collection and community.docker did not deploy the same showcase:\n    %s"
                      % "\n    ".join(found))
    else:
        print("\nthe collection and community.docker deployed the same showcase (image, command, env, healthcheck, "
              "ports, mounts, networks and aliases, restart policy of every container)", flush=True)
    return found


def print_showcase(medians, version):
    """The ratios clockwork / community.docker, with the goals of issue 23."""
    rows = [("cold deploy until every check passes", "cold"), ("no-op rerun (deploy)", "noop"),
            ("no-op rerun with the assert step", "noop_with_assert")]
    print("\n%-40s %12s %12s %8s %8s" % ("against community.docker (median s)", "clockwork",
                                         "c.docker", "ratio", "goal"))
    for label, kind in rows:
        ours, theirs = medians["clockwork_" + kind], medians["peer_" + kind]
        goal = PEER_GOALS.get(kind)
        print("%-40s %12.2f %12.2f %7.2fx %8s" % (label, ours, theirs, ours / theirs,
                                                  "<= %.2fx" % goal if goal else ""))
    print("(community.docker: the `ansible` package %s in bench/.venv-peer)" % version, flush=True)


def peer_alone(args):
    """The collection and the peer alternating, without compose: to try the peer with few runs."""
    version = ensure_venv()
    times = dict(peer_times(), clockwork_cold=[], clockwork_noop=[], clockwork_noop_with_assert=[])
    shapes = {}
    with bench.showcase_lock():
        try:
            for _ in range(args.cold):
                bench.clean()
                times["clockwork_cold"].append(bench.timed(*bench.playbook()))
                for _ in range(args.noop):
                    times["clockwork_noop"].append(bench.timed(*bench.playbook("--tags", "deploy")))
                    times["clockwork_noop_with_assert"].append(bench.timed(*bench.playbook()))
                shapes.setdefault("clockwork", collection_shape())
                shapes.setdefault("peer", showcase_round(times, args.noop))
        finally:
            bench.clean()
    compare_showcase(shapes["clockwork"], shapes["peer"])
    print_showcase(dict((k, bench.median(v)) for k, v in times.items()), version)
    return times


# -- the SDK floor --------------------------------------------------------------------------------

def sdk_name(description):
    return "benchs%d" % description["size"]


def sdk_filters(description):
    return {"label": "%s=%s" % (SDK_LABEL, sdk_name(description))}


def levels(description):
    """The services by graph level: a service comes one level after everything it connects to."""
    by_name = dict((s["name"], s) for s in description["services"])
    depth = {}

    def level(service):
        if service["name"] not in depth:
            targets = [t for t in ((service["network"] or {}).get("to"), service["depends_on"]) if t]
            depth[service["name"]] = 1 + max([level(by_name[t]) for t in targets], default=-1)
        return depth[service["name"]]
    grouped = {}
    for service in description["services"]:
        grouped.setdefault(level(service), []).append(service)
    return [grouped[key] for key in sorted(grouped)]


def _healthcheck(api, check):
    seconds = dict((key, int(check[key].rstrip("s")) * 10 ** 9) for key in ("interval", "timeout"))
    return {"test": ["CMD-SHELL", check["test"]], "interval": seconds["interval"], "timeout": seconds["timeout"],
            "retries": check["retries"]}


def _wait_healthy(api, container_id):
    deadline = time.monotonic() + bench.READY_TIMEOUT
    while True:
        state = api.inspect_container(container_id)["State"]
        if (state.get("Health") or {}).get("Status") == "healthy":
            return
        if state["Status"] in ("exited", "dead") or time.monotonic() > deadline:
            raise RuntimeError("container %s never turned healthy: %s" % (container_id[:12], state["Status"]))
        time.sleep(0.05)


def _converge_one(api, description, service, networks):
    """Create, join the named network, start; wait until healthy when it has a healthcheck (what
    the stack waits for before starting what connects to it)."""
    name = sdk_name(description)
    env = dict(service["env"])
    joins = []
    if service["network"]:
        env[scale.env_name(service["network"]["to"]) + "_HOST"] = service["network"]["to"]
        joins.append(networks[service["network"]["name"]])
    if any(other["network"] and other["network"]["to"] == service["name"] for other in description["services"]):
        joins.extend(sorted(set(networks[o["network"]["name"]] for o in description["services"]
                                if o["network"] and o["network"]["to"] == service["name"])))
    aliases = [service["name"]]
    created = api.create_container(
        service["image"], name="%s-%s" % (name, service["name"]), environment=env or None,
        ports=[int(port) for port in service["ports"]] or None,
        healthcheck=_healthcheck(api, service["healthcheck"]) if service["healthcheck"] else None,
        labels={SDK_LABEL: name, SDK_SERVICE_LABEL: service["name"]},
        host_config=api.create_host_config(),
        networking_config=api.create_networking_config(
            {networks["default"]: api.create_endpoint_config(aliases=aliases)}))
    for network in sorted(set(joins)):   # the engine's API takes one network at creation
        api.connect_container_to_network(created["Id"], network, aliases=aliases)
    api.start(created["Id"])
    if service["healthcheck"]:
        _wait_healthy(api, created["Id"])


def sdk_deploy(description, workers=16):
    """The stack through the SDK alone: networks, then each level in a pool of `workers` threads
    (the collection's default `parallel`)."""
    api = docker.from_env(timeout=120, max_pool_size=workers).api
    name = sdk_name(description)
    wanted = {"default": "%s_default" % name}
    for service in description["services"]:
        if service["network"]:
            wanted[service["network"]["name"]] = "%s-%s" % (name, service["network"]["name"])
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda net: api.create_network(net, driver="bridge", labels={SDK_LABEL: name}),
                      wanted.values()))
        for level in levels(description):
            for future in [pool.submit(_converge_one, api, description, s, wanted) for s in level]:
                future.result()
    api.close()


def sdk_clean(description):
    api = bench.engine()
    for listed in api.containers(all=True, filters=sdk_filters(description)):
        try:
            api.remove_container(listed["Id"], force=True, v=True)
        except docker.errors.NotFound:
            pass
    for net in api.networks(filters=sdk_filters(description)):
        bench.remove_network(api, net["Id"])


def sdk_cold(description):
    """From nothing until every container runs (healthy where it has a healthcheck), as
    bench/run.py measures the two tools; returns (seconds, shape). What the tools left is removed
    first: their containers would share the engine with this run."""
    bench.scale_clean(description)
    sdk_clean(description)
    try:
        started = time.monotonic()
        sdk_deploy(description)
        bench.wait_ready(sdk_filters(description), description["size"])
        elapsed = time.monotonic() - started
        attrs = [named(a, a["Config"]["Labels"][SDK_SERVICE_LABEL]) for a in bench.inspect_all(sdk_filters(description))]
        return elapsed, bench.snapshot(attrs, sdk_name(description))
    finally:
        sdk_clean(description)


def compare_sdk(ours, floor, size):
    found = bench.differences(ours, floor, ("clockwork", "sdk"))
    if found:
        bench.problem("the collection and the SDK floor did not deploy the same %d-service stack:\n    %s"
                      % (size, "\n    ".join(found)))
    return found


def sdk_alone(args):
    """The collection and the SDK floor alternating (no compose), at one size."""
    description = scale.describe(args.size, bench.IMAGES["showcase_redis_image"], bench.IMAGES["showcase_nginx_image"])
    paths = scale.write(description, bench.GENERATED)
    command = bench.scale_commands(description, paths)["clockwork"]
    roles = dict((s["name"], s["role"]) for s in description["services"])
    times = {"clockwork_cold": [], "sdk_cold": []}
    shapes = {}
    try:
        for run in range(args.runs):
            for tool in (("clockwork", "sdk") if run % 2 == 0 else ("sdk", "clockwork")):
                if tool == "sdk":
                    elapsed, shape = sdk_cold(description)
                else:
                    bench.scale_clean(description)
                    elapsed, _, attrs = bench.scale_cold("clockwork", description, command, roles)
                    shape = bench.snapshot(attrs, description["stack"])
                times[tool + "_cold"].append(elapsed)
                shapes.setdefault(tool, shape)
                print("  %-9s cold %6.2fs" % (tool, elapsed), flush=True)
    finally:
        bench.scale_clean(description)
        sdk_clean(description)
    if not compare_sdk(shapes["clockwork"], shapes["sdk"], args.size):
        print("the collection and the SDK floor deployed the same %d-service stack" % args.size)
    ours, floor = bench.median(times["clockwork_cold"]), bench.median(times["sdk_cold"])
    print("\n%d services, cold (median s): clockwork %.2f, SDK floor %.2f, ratio %.2fx (goal <= 1.10x)"
          % (args.size, ours, floor, ours / floor))
    return times


def main():
    parser = argparse.ArgumentParser(description="the community.docker peer and the SDK floor, tried alone")
    parser.add_argument("part", choices=["showcase", "sdk"])
    parser.add_argument("--cold", type=int, default=1, help="showcase: cold runs per tool")
    parser.add_argument("--noop", type=int, default=1, help="showcase: no-op runs of each kind after each cold run")
    parser.add_argument("--size", type=int, default=50, help="sdk: services")
    parser.add_argument("--runs", type=int, default=1, help="sdk: cold runs per tool")
    args = parser.parse_args()
    bench.sh(os.path.join(bench.BIN, "python"), "tests/images/build.py")
    if args.part == "showcase":
        peer_alone(args)
    else:
        sdk_alone(args)
    print("\nload average after the run: %.1f on %d cores (these figures are provisional on a shared machine)"
          % (os.getloadavg()[0], os.cpu_count()))
    if bench.PROBLEMS:
        sys.exit("bench: %d problem(s), see above" % len(bench.PROBLEMS))


if __name__ == "__main__":
    main()
