#!/usr/bin/env python3
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An N-service stack for the benchmark, described once and written for both tools.

The description (describe()) is plain data: one cache (redis, with a healthcheck), N/5 APIs
(nginx, each connected to the cache by one named network) and the rest workers (nginx, each
depending on one API, round-robin). From it:
  playbook()  a playbook with one clockwork.connections.stack task (network and dependency
              connections);
  compose()   a docker-compose file (format 2.4) that asks for the same thing: the same images,
              healthchecks and env, the named network joined by the cache and the APIs, and
              `depends_on` with the condition our connection waits for (healthy when the target has
              a healthcheck, else started).
The env a network connection injects (`<TO>_HOST=<to>`) is written out for compose.
Usage: bench/scale.py N [--out DIR] [--redis-image IMG] [--nginx-image IMG]
"""
from __future__ import absolute_import, division, print_function

import argparse
import os
import re

import yaml

PREFIX = "bench-"


def stack_name(size):
    return "bench%d" % size


def project_name(size):
    return "benchc%d" % size


def env_name(resource_name):
    """As the collection names injected env (module_utils/common.py env_name)."""
    return re.sub(r"[^A-Z0-9]", "_", resource_name.upper())


def describe(size, redis_image, nginx_image):
    """The N-service stack as data: services in declaration order, each with what it needs."""
    if size < 3:
        raise ValueError("a stack needs at least 3 services (cache, API, worker), got %d" % size)
    apis = max(1, size // 5)
    workers = size - 1 - apis
    width = len(str(max(apis, workers)))
    cache = {"name": PREFIX + "cache", "role": "cache", "image": redis_image, "ports": ["6379"],
             "healthcheck": {"test": "redis-cli ping", "interval": "1s", "timeout": "5s", "retries": 30},
             "env": {}, "network": None, "depends_on": None}
    services = [cache]
    api_names = []
    for index in range(1, apis + 1):
        name = "%sapi-%0*d" % (PREFIX, width, index)
        api_names.append(name)
        services.append({"name": name, "role": "api", "image": nginx_image, "ports": ["80"],
                         "healthcheck": None, "env": {}, "network": {"to": cache["name"], "name": "backend"},
                         "depends_on": None})
    for index in range(workers):
        services.append({"name": "%sworker-%0*d" % (PREFIX, width, index + 1), "role": "worker",
                         "image": nginx_image, "ports": [], "healthcheck": None, "env": {},
                         "network": None, "depends_on": api_names[index % apis]})
    return {"size": size, "stack": stack_name(size), "project": project_name(size), "services": services}


def counts(description):
    roles = [s["role"] for s in description["services"]]
    return dict((role, roles.count(role)) for role in ("cache", "api", "worker"))


def _by_name(description):
    return dict((s["name"], s) for s in description["services"])


def playbook(description, parallel=None):
    """One play, one clockwork.connections.stack task (`parallel` set only when given)."""
    resources, connections = [], []
    for service in description["services"]:
        resource = {"name": service["name"], "image": service["image"]}
        if service["ports"]:
            resource["ports"] = list(service["ports"])
        if service["env"]:
            resource["env"] = dict(service["env"])
        if service["healthcheck"]:
            resource["healthcheck"] = dict(service["healthcheck"])
        resources.append(resource)
    for service in description["services"]:
        if service["network"]:
            connections.append({"type": "network", "from": service["name"], "to": service["network"]["to"],
                                "network_name": "%s-%s" % (description["stack"], service["network"]["name"])})
        if service["depends_on"]:
            connections.append({"type": "dependency", "from": service["name"], "to": service["depends_on"]})
    task = {"name": description["stack"], "resources": resources, "connections": connections}
    if parallel:
        task["parallel"] = parallel
    return [{
        "name": "%d-service benchmark stack" % description["size"],
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{
            "name": "Converge stack %s" % description["stack"],
            "clockwork.connections.stack": task,
        }],
    }]


def _compose_healthcheck(healthcheck):
    return {"test": healthcheck["test"], "interval": healthcheck["interval"], "timeout": healthcheck["timeout"],
            "retries": healthcheck["retries"]}


def compose(description):
    """The same stack for docker-compose 1.29 (file format 2.4: depends_on conditions)."""
    by_name = _by_name(description)
    services, networks = {}, {}
    joined = {}   # `to` of a network connection -> the named networks it joins
    for service in description["services"]:
        entry = {"image": service["image"]}
        env = dict(service["env"])
        if service["ports"]:
            entry["expose"] = list(service["ports"])
        if service["healthcheck"]:
            entry["healthcheck"] = _compose_healthcheck(service["healthcheck"])
        joins = []
        if service["network"]:
            to = by_name[service["network"]["to"]]
            net = service["network"]["name"]
            networks[net] = {}
            joins.append(net)
            # What our network connection injects into `from`, and `to` joining the same network.
            env[env_name(to["name"]) + "_HOST"] = to["name"]
            joined.setdefault(to["name"], [])
            if net not in joined[to["name"]]:
                joined[to["name"]].append(net)
            entry["depends_on"] = {to["name"]: {"condition": _condition(to)}}
        if service["depends_on"]:
            to = by_name[service["depends_on"]]
            entry.setdefault("depends_on", {})[to["name"]] = {"condition": _condition(to)}
        if joins:
            entry["networks"] = ["default"] + joins
        if env:
            entry["environment"] = env
        services[service["name"]] = entry
    for name, nets in joined.items():
        services[name]["networks"] = ["default"] + nets
    document = {"version": "2.4", "services": services}
    if networks:
        document["networks"] = networks
    return document


def _condition(target):
    """What our connections wait for: healthy when the target has a healthcheck, else started."""
    return "service_healthy" if target["healthcheck"] else "service_started"


def write(description, out_dir, parallel=None):
    """Write both files; returns (playbook path, compose file path)."""
    os.makedirs(out_dir, exist_ok=True)
    paths = (os.path.join(out_dir, "%s.yml" % description["stack"]),
             os.path.join(out_dir, "%s.compose.yml" % description["project"]))
    header = "# Generated by bench/scale.py from the %d-service description; do not edit.\n" % description["size"]
    for path, document in zip(paths, (playbook(description, parallel), compose(description))):
        with open(path, "w") as handle:
            handle.write(header)
            yaml.safe_dump(document, handle, sort_keys=False, default_flow_style=False, width=120)
    return paths


def main():
    parser = argparse.ArgumentParser(description="write the N-service benchmark stack for both tools")
    parser.add_argument("size", type=int)
    parser.add_argument("--out", default=".")
    parser.add_argument("--redis-image", default="clockwork-test/redis:7")
    parser.add_argument("--nginx-image", default="clockwork-test/nginx:1.22")
    args = parser.parse_args()
    description = describe(args.size, args.redis_image, args.nginx_image)
    for path in write(description, args.out):
        print(path)


if __name__ == "__main__":
    main()
