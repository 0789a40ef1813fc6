#!/usr/bin/env python3
"""Benchmark: importing a generated compose file of N services (default 50) with
clockwork.connections.from_compose, the goal being under 0.2 s for 50 on this machine.

The file is shaped like real projects, so that every rule of the importer runs: per group of
ten services, a PostgreSQL and a MariaDB server with healthchecks, a Redis, an API reaching them
through DATABASE_URL, REDIS_URL and the parts form (DB_HOST, DB_USER, DB_PASSWORD, DB_NAME),
workers depending on it with a condition and calling it over http://api:8000, a named volume they
share, a bind mount, a network of the group, an anchor with a merge key, and a `build:` that is
a warning. The import runs in this process (no Ansible, no engine); the median of --runs runs
is printed, after one warm-up run (the first imports the modules and loads compose-spec's JSON schema,
or the compact one when check-jsonschema is not installed: the line printed says which).

Usage: bench/compose_import.py [--size 50] [--runs 21] [--write FILE]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "collections"))
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import from_compose  # noqa: E402
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.spec import spec_validator  # noqa: E402

GOAL = 0.2


def group(index):
    """Ten services of one group, as compose text."""
    g = "g%d" % index
    return """\
  pg-{g}:
    <<: *server
    image: postgres:15
    environment: {{POSTGRES_USER: app, POSTGRES_PASSWORD: "${{PG_PASSWORD:-pg-s3cret}}", POSTGRES_DB: app}}
    healthcheck: {{test: ["CMD-SHELL", "pg_isready -U app"], interval: 1s, retries: 30}}
    networks: [{g}]
  maria-{g}:
    <<: *server
    image: mariadb:11
    environment: {{MARIADB_ROOT_PASSWORD: maria-s3cret, MARIADB_DATABASE: shop}}
    expose: ["3306"]
    healthcheck: {{test: [CMD, healthcheck.sh, --connect], interval: 1s}}
    networks: [{g}]
  redis-{g}:
    image: redis:7
    expose: ["6379"]
    networks: [{g}]
  api-{g}:
    image: nginx:1.22
    build: ./api
    expose: ["8000"]
    environment:
      DATABASE_URL: postgresql://app:${{PG_PASSWORD:-pg-s3cret}}@pg-{g}:5432/app
      REDIS_URL: redis://redis-{g}:6379/0
      SHOP_DB_HOST: maria-{g}
      SHOP_DB_USER: root
      SHOP_DB_PASSWORD: maria-s3cret
      SHOP_DB_NAME: shop
      LOG_LEVEL: info
    volumes: ["uploads-{g}:/srv/uploads", "./config:/etc/app:ro"]
    depends_on:
      pg-{g}: {{condition: service_healthy}}
      maria-{g}: {{condition: service_healthy}}
    networks: [{g}]
{workers}""".format(g=g, workers="".join("""\
  worker{w}-{g}:
    image: nginx:1.22
    command: ["sh", "-c", "exec nginx -g 'daemon off;'"]
    environment: [API_URL=http://api-{g}:8000/health, QUEUE=q{w}]
    volumes: ["uploads-{g}:/srv/uploads"]
    depends_on: {{api-{g}: {{condition: service_started}}}}
    networks: [{g}]
""".format(g=g, w=w) for w in range(6)))


def generate(size):
    groups = max(1, (size + 9) // 10)
    text = "x-server: &server\n  restart: unless-stopped\nservices:\n" + "".join(group(i) for i in range(groups))
    text += "networks:\n" + "".join("  g%d: {}\n" % i for i in range(groups))
    text += "volumes:\n" + "".join("  uploads-g%d: {}\n" % i for i in range(groups))
    return text, groups * 10


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=50)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--write", help="also write the generated compose file there")
    args = parser.parse_args()
    text, services = generate(args.size)
    base_dir = tempfile.mkdtemp(prefix="clockwork-bench-import-")
    os.mkdir(os.path.join(base_dir, "config"))
    if args.write:
        with open(args.write, "w") as handle:
            handle.write(text)
    result = from_compose(text, project_name="bench", base_dir=base_dir, source="generated.yaml")   # warm-up
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        from_compose(text, project_name="bench", base_dir=base_dir, source="generated.yaml")
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    kinds = {}
    for connection in result["connections"]:
        kinds[connection["type"]] = kinds.get(connection["type"], 0) + 1
    print("imported %d services (%d resources; connections: %s; %d warnings) from %d lines"
          % (services, len(result["resources"]), ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items())),
             len(result["warnings"]), text.count("\n")))
    validator, where = spec_validator()
    print("schema: %s" % ("compose-spec, " + where if validator is not None else "the compact one (%s)" % where))
    print("median of %d runs: %.3f s (min %.3f, max %.3f); goal < %.1f s: %s"
          % (args.runs, median, min(times), max(times), GOAL, "met" if median < GOAL else "NOT MET"))
    return 0 if median < GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
