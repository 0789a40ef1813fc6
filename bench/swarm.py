#!/usr/bin/env python3
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: the N-service stack of bench/scale.py on a single-node swarm, this collection
(`engine: swarm`) against `docker stack deploy` of an equivalent generated stack file.

  cold   from nothing until every task runs, healthy where it has a healthcheck (the collection:
         the playbook returns; docker stack deploy: it returns; then, for both, the engine is
         polled until that holds, so `docker stack deploy` gains nothing by not waiting);
  no-op  the same command again (the playbook must report changed=0).
The tools alternate in one process; medians and ratios clockwork/stack-deploy are printed with
the goals (cold <= 1.0x, no-op <= 1.2x) and the raw times written to bench/results/.

The engine is put in swarm mode under the locks of tests/integration/test_swarm.py's `swarm`
fixture (/tmp/clockwork-swarm*.lock, .initialised) and left as found. Services use dnsrr
endpoints: a virtual IP does not answer on a kernel without IPVS.
Usage: bench/swarm.py [--size N] [--cold N] [--noop N]
"""
import argparse
import contextlib
import datetime
import fcntl
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import docker
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".venv", "bin")
IMAGES = yaml.safe_load(open(os.path.join(ROOT, "tests/images/local-images.yml")))
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
GENERATED = os.path.join(ROOT, "bench", "results", "generated")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402  (bench/scale.py, beside this file)

SWARM_USERS = "/tmp/clockwork-swarm.lock"
SWARM_SETUP = "/tmp/clockwork-swarm-setup.lock"
SWARM_MARK = "/tmp/clockwork-swarm.initialised"
READY_TIMEOUT = 300
GOALS = {"cold": 1.0, "noop": 1.2}


def sh(*cmd, check=True):
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    if check and proc.returncode != 0:
        sys.exit("bench: %s failed:\n%s%s" % (" ".join(cmd), proc.stdout, proc.stderr))
    return proc


def _locked(path, mode):
    handle = open(path, "a")
    fcntl.flock(handle, mode)
    return handle


@contextlib.contextmanager
def swarm_mode():
    """As the `swarm` fixture: join under the setup lock, hold the users lock shared, and leave
    only when this run made the swarm and no other session still uses it."""
    with _locked(SWARM_SETUP, fcntl.LOCK_EX):
        users = _locked(SWARM_USERS, fcntl.LOCK_SH)
        if sh("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() == "inactive":
            bridge = "existed" if sh("docker", "network", "inspect", "docker_gwbridge", check=False).returncode == 0 \
                else "made"
            sh("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")
            with open(SWARM_MARK, "w") as mark:
                mark.write(bridge)
    try:
        yield
    finally:
        with _locked(SWARM_SETUP, fcntl.LOCK_EX):
            fcntl.flock(users, fcntl.LOCK_UN)
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except OSError:
                alone = False
            users.close()
            if alone and os.path.exists(SWARM_MARK):
                with open(SWARM_MARK) as mark:
                    bridge = mark.read()
                sh("docker", "swarm", "leave", "--force")
                os.unlink(SWARM_MARK)
                if bridge == "made":
                    sh("docker", "network", "rm", "docker_gwbridge", check=False)


def names(size):
    return "benchs%d" % size, "benchd%d" % size   # our stack, docker stack deploy's namespace


def write_files(description, stack, namespace):
    """The playbook (engine swarm) and the stack file, from one description."""
    play = scale.playbook(description)
    task = play[0]["tasks"][0]["clockwork.connections.stack"]
    task.update(name=stack, engine="swarm")
    for resource in task["resources"]:
        resource["endpoint_mode"] = "dnsrr"
    for connection in task["connections"]:
        if connection.get("network_name"):
            connection["network_name"] = "%s-%s" % (stack, connection["network_name"].split("-", 1)[1])
    absent = json.loads(json.dumps(play))
    absent[0]["tasks"][0]["clockwork.connections.stack"].update(state="absent", purge=True)
    compose = scale.compose(description)
    services = {}
    for name, entry in compose["services"].items():
        entry.pop("depends_on", None)   # docker stack deploy ignores it: Swarm has no ordering
        entry["deploy"] = {"endpoint_mode": "dnsrr"}
        if entry.get("networks"):
            entry["networks"] = list(entry["networks"])
        services[name] = entry
    stack_file = {"version": "3.8", "services": services,
                  "networks": dict((n, {"driver": "overlay", "attachable": True})
                                   for n in list(compose.get("networks") or {}) + ["default"])}
    os.makedirs(GENERATED, exist_ok=True)
    paths = {}
    for key, document in (("up", play), ("down", absent), ("stack", stack_file)):
        paths[key] = os.path.join(GENERATED, "%s.%s.yml" % (stack if key != "stack" else namespace, key))
        with open(paths[key], "w") as handle:
            handle.write("# Generated by bench/swarm.py; do not edit.\n")
            yaml.safe_dump(document, handle, sort_keys=False, default_flow_style=False, width=120)
    return paths


def ready(listed, expected):
    return len(listed) == expected and all(
        c["State"] == "running" and "(health: starting)" not in c["Status"] and "(unhealthy)" not in c["Status"]
        for c in listed)


def wait_ready(api, labels, expected):
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        listed = api.containers(filters=labels)
        if ready(listed, expected):
            return
        if time.monotonic() > deadline:
            sys.exit("bench: %s: %d tasks never all ran (healthy)" % (labels["label"], expected))
        time.sleep(0.05)


def wait_gone(api, labels):
    deadline = time.monotonic() + READY_TIMEOUT
    while api.containers(all=True, filters=labels) or api.networks(filters=labels):
        for net in api.networks(filters=labels):
            try:
                api.remove_network(net["Id"])
            except docker.errors.APIError:
                pass
        if time.monotonic() > deadline:
            sys.exit("bench: %s: not gone after %ss" % (labels["label"], READY_TIMEOUT))
        time.sleep(0.2)


def playbook(path):
    return [os.path.join(BIN, "ansible-playbook"), path]


def clean(api, stack, namespace, paths):
    sh(*playbook(paths["down"]))
    sh("docker", "stack", "rm", namespace, check=False)
    wait_gone(api, {"label": "io.clockwork.swarm-stack=%s" % stack})
    wait_gone(api, {"label": "com.docker.stack.namespace=%s" % namespace})


def run_tool(tool, api, paths, stack, namespace, size):
    """One command's seconds until every task is ready."""
    if tool == "clockwork":
        command, labels = playbook(paths["up"]), {"label": "io.clockwork.swarm-stack=%s" % stack}
    else:
        command = ["docker", "stack", "deploy", "--resolve-image", "never", "-c", paths["stack"], namespace]
        labels = {"label": "com.docker.stack.namespace=%s" % namespace}
    started = time.monotonic()
    out = sh(*command).stdout
    wait_ready(api, labels, size)
    took = time.monotonic() - started
    return took, out


def changed_count(out):
    counts = [int(part.split("=")[1]) for part in out.split() if part.startswith("changed=")]
    return counts[-1] if counts else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument("--noop", type=int, default=3)
    args = parser.parse_args()
    stack, namespace = names(args.size)
    description = scale.describe(args.size, IMAGES["showcase_redis_image"], IMAGES["showcase_nginx_image"])
    paths = write_files(description, stack, namespace)
    api = docker.from_env(timeout=120).api
    times = {"clockwork_cold": [], "stack_deploy_cold": [], "clockwork_noop": [], "stack_deploy_noop": []}
    load = [os.getloadavg()[0]]
    with swarm_mode():
        clean(api, stack, namespace, paths)
        try:
            for round_number in range(args.cold):
                order = ["clockwork", "stack_deploy"] if round_number % 2 == 0 else ["stack_deploy", "clockwork"]
                for tool in order:
                    took, _out = run_tool(tool, api, paths, stack, namespace, args.size)
                    times[tool + "_cold"].append(took)
                    print("cold %d %-13s %6.2fs" % (round_number + 1, tool, took), flush=True)
                for index in range(args.noop if round_number == args.cold - 1 else 0):
                    for tool in order if index % 2 == 0 else order[::-1]:
                        took, out = run_tool(tool, api, paths, stack, namespace, args.size)
                        if tool == "clockwork" and changed_count(out) != 0:
                            sys.exit("bench: the no-op run reported changes:\n%s" % out)
                        times[tool + "_noop"].append(took)
                        print("no-op %d %-12s %6.2fs" % (index + 1, tool, took), flush=True)
                load.append(os.getloadavg()[0])
                clean(api, stack, namespace, paths)
        finally:
            clean(api, stack, namespace, paths)
    medians = dict((k, statistics.median(v)) for k, v in times.items() if v)
    ratios = dict((kind, medians["clockwork_" + kind] / medians["stack_deploy_" + kind])
                  for kind in ("cold", "noop") if "clockwork_" + kind in medians)
    print("\n%-28s %10s %13s %7s %6s" % ("%d services on swarm (median s)" % args.size, "clockwork", "stack deploy",
                                        "ratio", "goal"))
    for kind, title in (("cold", "cold, until every task ready"), ("noop", "no-op rerun")):
        if kind in ratios:
            print("%-28s %10.2f %13.2f %6.2fx %5.1fx" % (title, medians["clockwork_" + kind],
                                                       medians["stack_deploy_" + kind], ratios[kind], GOALS[kind]))
    print("load average (1 min) during the run: %s" % ", ".join("%.1f" % value for value in load))
    result = {"scenario": "swarm", "size": args.size, "runs": times, "medians": medians, "ratios": ratios,
              "goals": GOALS, "load": load, "cpus": os.cpu_count(), "python": platform.python_version()}
    out = os.path.join(ROOT, "bench", "results", "swarm-%s.json" % datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%S"))
    with open(out, "w") as handle:
        json.dump(result, handle, indent=1)
    print("results: %s" % os.path.relpath(out, ROOT))
    return result


if __name__ == "__main__":
    main()
