#!/usr/bin/env python3
"""Benchmark: the showcase stack by this collection and by docker-compose, side by side.

Both deploy the same stack on the same local images, in the same run:
  cold   from nothing until every check of the showcase passes (for compose: `up -d`, then
         the same six checks by `docker exec`, polled, as the role's assert step runs them);
  no-op  again with nothing to do (the collection: the deploy tag; compose: `up -d`).
Each is repeated; medians and the ratio to compose are printed and kept in bench/results/.
Then: where the collection's no-op time goes (an empty playbook, the stack module alone).
Usage: bench/run.py [--cold N] [--noop N]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".venv", "bin")
IMAGES = yaml.safe_load(open(os.path.join(ROOT, "tests/images/local-images.yml")))
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))


def sh(*cmd, check=True, env=None, quiet=True):
    proc = subprocess.run(cmd, cwd=ROOT, env=env or ENV, capture_output=quiet, text=True)
    if check and proc.returncode != 0:
        sys.exit("bench: %s failed:\n%s%s" % (" ".join(cmd), proc.stdout or "", proc.stderr or ""))
    return proc


def timed(*cmd, env=None):
    started = time.monotonic()
    sh(*cmd, env=env)
    return time.monotonic() - started


def playbook(*extra):
    return [os.path.join(BIN, "ansible-playbook"), "playbooks/showcase.yml", "-e",
            "@tests/images/local-images.yml"] + list(extra)


def clean():
    """Remove the showcase whoever made it: the stack's labels, then compose's names."""
    sh(*playbook("-e", "clockwork_state=absent", "-e", "clockwork_purge=true", "--tags", "deploy"))
    sh("docker", "rm", "-f", "postgres", "redis", "storage", "api", "frontend", check=False)
    for network in ("backend-network", "bench_default", "showcase_default"):
        sh("docker", "network", "rm", network, check=False)
    sh("docker", "volume", "rm", "-f", "app-shared-data", check=False)


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


def compose_env(config_json):
    return dict(ENV, POSTGRES_IMAGE=IMAGES["showcase_postgres_image"], REDIS_IMAGE=IMAGES["showcase_redis_image"],
                NGINX_IMAGE=IMAGES["showcase_nginx_image"], CONFIG_JSON=config_json)


def compose_cold(env):
    started = time.monotonic()
    sh("docker-compose", "-p", "bench", "-f", "bench/docker-compose.yml", "up", "-d", env=env)
    deadline = started + 120
    for check in COMPOSE_CHECKS:
        while sh("docker", "exec", *check, check=False).returncode != 0:
            if time.monotonic() > deadline:
                sys.exit("bench: compose check never passed: %s" % " ".join(check))
            time.sleep(0.1)
    return time.monotonic() - started


def module_alone():
    """The stack module's own no-op time, in-process, without ansible-playbook around it."""
    sys.path.insert(0, os.path.join(ROOT, "collections"))
    from ansible_collections.clockwork.connections.plugins.module_utils.docker_client import Engine
    from ansible_collections.clockwork.connections.plugins.module_utils.stack import Stack
    defaults = yaml.safe_load(open(os.path.join(ROOT, "roles/showcase/defaults/main.yml")))
    text = json.dumps({"r": defaults["showcase_resources"], "c": defaults["showcase_connections"]})
    for key in ("postgres", "redis", "nginx"):
        text = text.replace("{{ showcase_%s_image }}" % key, IMAGES["showcase_%s_image" % key])
    text = text.replace("{{ showcase_db_password }}", "secret123")
    declared = json.loads(text)
    for connection in declared["c"]:
        if connection.get("schema_file"):
            connection["schema_file"] = os.path.join(ROOT, "roles/showcase/files", connection["schema_file"])
    started = time.monotonic()
    report = Stack(Engine(), "showcase", declared["r"], declared["c"],
                   base_dir=os.path.join(ROOT, "playbooks")).present()
    assert not report["changed"], [e for e in report["entries"] if e["changed"]]
    return time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description="showcase: clockwork.connections vs docker-compose")
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument("--noop", type=int, default=5)
    args = parser.parse_args()
    sh(os.path.join(BIN, "python"), "tests/images/build.py")
    config_dir = tempfile.mkdtemp(prefix="clockwork-bench-")
    config_json = os.path.join(config_dir, "config.json")
    with open(config_json, "w") as handle:
        handle.write('{"log_level": "info"}')
    env = compose_env(config_json)
    times = {k: [] for k in ("clockwork_cold", "compose_cold", "clockwork_noop", "clockwork_noop_with_assert",
                             "compose_noop")}

    # Alternate the two tools so that drift of the machine affects both alike.
    for _ in range(args.cold):
        clean()
        times["clockwork_cold"].append(timed(*playbook()))   # deploy, then every check passes
        for _ in range(args.noop):
            times["clockwork_noop"].append(timed(*playbook("--tags", "deploy")))
            times["clockwork_noop_with_assert"].append(timed(*playbook()))
        in_process = module_alone()
        clean()
        times["compose_cold"].append(compose_cold(env))
        for _ in range(args.noop):
            times["compose_noop"].append(timed("docker-compose", "-p", "bench", "-f", "bench/docker-compose.yml",
                                               "up", "-d", env=env))
    sh("docker-compose", "-p", "bench", "-f", "bench/docker-compose.yml", "down", "-v", env=env)
    clean()
    empty = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
    empty.write("- hosts: localhost\n  gather_facts: false\n  tasks: []\n")
    empty.close()
    empty_run = statistics.median(timed(os.path.join(BIN, "ansible-playbook"), empty.name) for _ in range(3))

    medians = dict((k, statistics.median(v)) for k, v in times.items())
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
          % (empty_run, in_process, medians["clockwork_noop"] - empty_run - in_process))
    os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
    out = os.path.join(ROOT, "bench/results", time.strftime("%Y%m%dT%H%M%S") + ".json")
    with open(out, "w") as handle:
        json.dump({"runs": times, "medians": medians, "empty_playbook": empty_run, "module_in_process": in_process},
                  handle, indent=2)
    print("raw times: %s" % os.path.relpath(out, ROOT))


if __name__ == "__main__":
    main()
