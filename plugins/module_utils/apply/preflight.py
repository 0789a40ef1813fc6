# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pre-flight: what the plan cannot know without the Docker engine, checked before the
first change, every problem at once: images exist or can be pulled, names are not taken by
something the stack does not own, host ports are free, existing networks and volumes can be
used as they are (external ones exist), bind sources exist on the Docker host, no symbolic link stands where a
password file or its directory is expected, and each connection type's own checks (its
`preflight` hook). A resource's declared `build` (build.py) is checked with the rest, and run
only once nothing else is wrong: its image is then made, or made anew when its content changed.
Preflight is the docker engine's; the Swarm applier's (swarm_preflight.py) overrides the hooks
where services differ from containers."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import ipaddress
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.clockwork.connections.plugins.module_utils.common import STACK_LABEL, Problems, owned_by
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import engine_words
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError
from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import actual_settings, settings_drift
from ansible_collections.clockwork.connections.plugins.module_utils.apply import build as builds
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import secret_path_problem, stack_secrets
from ansible_collections.clockwork.connections.plugins.module_utils.plan import published
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES


def ensure_image(engine, image):
    """The image's attributes, pulled when absent (a dry run asks the registry whether it has it).
    Returns (attrs or None, problem or None)."""
    attrs = engine.image(image)
    if attrs is not None:
        return attrs, None
    try:
        engine.pull(image)
    except APIError as exc:
        return None, "%s is not present on the Docker host and cannot be pulled: %s" % (image, engine_words(exc))
    return engine.image(image), None


def _port_free(ip, port):
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((ip, int(port)))
        return True
    except OSError as exc:
        return exc.errno not in (errno.EADDRINUSE, errno.EACCES)
    finally:
        probe.close()


class Preflight(object):
    """The checks both engines share, and hooks (the methods below `run`) where they differ."""

    heading = "stack %s cannot be deployed"
    # How a missing external network is made, for the problem that names it.
    make_network = "create it first (docker network create %s)"

    def __init__(self, engine, plan):
        self.engine = engine
        self.plan = plan
        self.problems = Problems()
        # The images built (or, in a dry run, that would be): entries as the appliers report them.
        self.built = []

    def run(self):
        """Raises ClockworkError listing every problem; returns the images' attributes by name.
        The declared builds run last, when nothing else is wrong."""
        images, pending = {}, {}
        self._inspect_all()
        written = self.plan.written_files()
        self._engine_problems()
        self._remote_files_problem(written)
        for name in self.plan.order:
            spec = self.plan.specs.get(name)
            if spec is None or spec.state == "absent":
                continue
            where = "resource %s" % name
            for container in self.plan.containers_of(name):
                self._owner_problem(where, container)
            build = self.plan.by_name[name].get("build")
            if build:
                images[spec.image], why = self._build_check(where, name, spec, build)
                if why:
                    pending[name] = why
            else:
                images[spec.image], problem = ensure_image(self.engine, spec.image)
                if problem:
                    self.problems.add(where, "image: " + problem)
            if images[spec.image] and name not in pending:
                self._image_found(name, spec, images[spec.image])
            for mount in spec.mounts:
                # Looked for on this machine: only where the engine is this machine's.
                if mount["type"] == "bind" and mount["source"] not in written and not os.path.exists(mount["source"]) \
                        and self.engine.files_reach_engine():
                    self.problems.add(where, "mounts: bind source %s does not exist on the Docker host" % mount["source"])
            self._port_problems(where, name, spec)
        for network in self.plan.networks:
            attrs = self.engine.network(network["name"])
            if attrs is None and network["settings"] is None:
                self.problems.add(network["resource"], "external: network %s does not exist, and the stack never makes "
                                                       "an external network: %s, or drop external" % (
                                                           network["name"], self.make_network % network["name"]))
            elif attrs is not None:
                self._network_problem(network, attrs)
                if network["settings"] is None:
                    self._external_address_problems(network["name"], attrs)
        self._volumes()
        for connection in self.plan.connections:
            kind = CONNECTION_TYPES[connection["type"]]
            for field, problem in kind.preflight(self.engine, self.plan, connection, images, written):
                self.problems.add(connection["label"], "%s: %s" % (field, problem))
        self._password_file_problems()
        self._more_problems()
        self.problems.raise_if_any(self.heading % self.plan.name)
        if pending:
            self._build(pending, images)
            self.problems.raise_if_any(self.heading % self.plan.name)
        return images

    def _build_check(self, where, name, spec, build):
        """(the image's attributes, why it must be built or None), its problems added."""
        problems = [builds.unready_problem(build), builds.swarm_problem(self.engine, self.plan)]
        # Two builds of one tag from other content would each undo the other on every run.
        problems += ["build: image %s is built by resource %s too, from other content; give each its own image" % (
            spec.image, other) for other in self.plan.order if other != name and other in self.plan.specs
            and self.plan.specs[other].image == spec.image and (self.plan.by_name[other].get("build") or {}).get(
                "content_hash", build.get("content_hash")) != build.get("content_hash")]
        for problem in problems:
            if problem:
                self.problems.add(where, problem)
        if any(problems):
            return self.engine.image(spec.image), None
        return builds.why_build(self.engine, spec.image, build)

    def _build(self, pending, images):
        """The images that must be, built in the plan's order; each failure named by its resource."""
        for name in [n for n in self.plan.order if n in pending]:
            spec = self.plan.specs[name]
            attrs, problem = builds.run_build(self.engine, spec.image, self.plan.by_name[name]["build"])
            if problem:
                self.problems.add("resource %s" % name, problem)
                continue
            images[spec.image] = attrs
            self._image_found(name, spec, attrs)
            self.built.append({"kind": "build", "name": name, "changed": True, "actions": ["build"],
                               "reasons": [pending[name], "image %s" % spec.image]})

    def _volumes(self):
        for volume in self.plan.volumes:
            attrs = self.engine.volume(volume["name"])
            if attrs is None and volume["driver"] is None:
                self.problems.add(volume["by"], "external: volume %s does not exist, and the stack never makes an "
                                                "external volume: create it first (docker volume create %s), or drop "
                                                "external" % (volume["name"], volume["name"]))
            elif attrs is not None and volume["driver"] is not None and attrs.get("Driver") != volume["driver"]:
                self.problems.add(volume["by"], "volume %s exists with driver %s, not %s; it is never recreated, as "
                                                "that would lose its data" % (
                                                    volume["name"], attrs.get("Driver"), volume["driver"]))

    def _external_address_problems(self, name, attrs):
        """A container's ipv4_address on an external network: in a subnet of the engine's (the plan cannot know)."""
        subnets = [ipaddress.ip_network(p["Subnet"], strict=False) for p in (attrs.get("IPAM") or {}).get("Config") or []
                   if p.get("Subnet")]
        for resource in self.plan.order:
            spec = self.plan.specs.get(resource)
            for network in (spec.networks if spec is not None and spec.state != "absent" else []):
                address = network.get("ipv4_address")
                if network["name"] != name or not address:
                    continue
                try:
                    inside = any(ipaddress.ip_address(address) in subnet for subnet in subnets)
                except ValueError:
                    continue   # the plan named it
                if not inside:
                    self.problems.add("resource %s" % resource, "networks: %s: ipv4_address %s is outside the subnets "
                                      "of external network %s (%s)" % (name, address, name, ", ".join(
                                          str(s) for s in subnets) or "none"))

    def _remote_files_problem(self, written):
        """Files the stack writes for its containers to mount (password files, TLS material, file resources'
        content) are written on this machine: refused when the engine is another machine's, whose containers
        would mount paths that are not there."""
        if not written or self.plan.engine != "docker" or self.engine.files_reach_engine():
            return
        paths = sorted(written)
        self.problems.add("stack", "engine: %s is another machine's engine, and the stack writes files on the Docker "
                                   "host for its containers to mount (%s%s), which a run from here would write on this "
                                   "machine: run the task on the Docker host (an inventory host reached over SSH), or "
                                   "use engine swarm (passwords become Swarm secrets)" % (
                                       self.engine.address, ", ".join(paths[:3]),
                                       ", and %d more" % (len(paths) - 3) if len(paths) > 3 else ""))

    def _password_file_problems(self):
        """A link where a password file or a directory on its way is expected: the file's write
        refuses it too, but only once the servers it connects to run. One problem per link."""
        if self.plan.engine != "docker":
            return   # Swarm keeps them in its own secret store: no password file on the host
        secrets = stack_secrets(self.plan.name) + os.sep
        found = set()
        for connection in self.plan.connections:
            for path in sorted(CONNECTION_TYPES[connection["type"]].written_files(connection, self.plan.name)):
                path = self.plan.host_path(path)
                problem = secret_path_problem(path) if path.startswith(secrets) else None
                if problem and problem not in found:
                    found.add(problem)
                    self.problems.add(connection["label"], "password_delivery: " + problem)

    # -- hooks: the docker engine's answers ----------------------------------------------

    def _inspect_all(self):
        """Every container and image of the plan inspected at once, into the engine's cache,
        where the convergence finds them again."""
        specs = [s for s in self.plan.specs.values() if s.state != "absent"]
        lookups = [(self.engine.container, c) for s in specs for c in self.plan.containers_of(s.name)] + \
            [(self.engine.image, s.image) for s in specs]
        if len(lookups) > 2:
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda lookup: lookup[0](lookup[1]), lookups))
        self._publishers = self._published_by_others()

    def _engine_problems(self):
        """A stack that runs as Swarm services is not also made of containers beside them."""
        try:
            services = self.engine.services(filters={"label": "%s=%s" % (STACK_LABEL, self.plan.name)})
        except APIError:
            return   # not a swarm manager: there are no services
        if services:
            self.problems.add("stack", "engine: stack %s runs as Swarm services on this engine (%s); destroy it "
                                       "with engine swarm first, or keep engine swarm" % (
                                           self.plan.name, ", ".join(sorted(s["Spec"]["Name"] for s in services))))

    def _owner_problem(self, where, name):
        attrs = self.engine.container(name)
        if attrs and not owned_by(attrs["Config"].get("Labels"), self.plan.name):
            self.problems.add(where, "name: container %s exists and is not owned by stack %s (no label "
                                     "io.clockwork.stack=%s): it is never taken over" % (
                                         name, self.plan.name, self.plan.name))

    def _image_found(self, name, spec, image):
        """An image the resource will run, present on the engine."""

    def _published_by_others(self):
        """(protocol, host port) -> [(container name, host ip)] for every running container."""
        taken = {}
        for container in self.engine.containers():
            name = container["Names"][0].lstrip("/")
            for port in container.get("Ports") or []:
                if port.get("PublicPort"):
                    taken.setdefault((port.get("Type", "tcp"), str(port["PublicPort"])), []).append(
                        (name, port.get("IP") or "0.0.0.0"))
        return taken

    def _port_problems(self, where, name, spec):
        attrs = self.engine.container(name)
        for proto, port, ip, text in published(spec.ports):
            holders = [h for h, h_ip in self._publishers.get((proto, port), []) if h != name
                       and (ip in ("0.0.0.0", "::") or h_ip in ("0.0.0.0", "::", ip))]
            if holders:
                self.problems.add(where, "ports: host port %s/%s (%s) is published by container %s" % (
                    port, proto, text, ", ".join(sorted(set(holders)))))
            elif proto == "tcp" and self.engine.is_local and not self._holds(attrs, port) \
                    and not _port_free(ip, port):
                self.problems.add(where, "ports: host port %s/%s (%s) is in use on the Docker host" % (port, proto, text))

    @staticmethod
    def _holds(attrs, port):
        bindings = ((attrs or {}).get("HostConfig") or {}).get("PortBindings") or {}
        return any(b.get("HostPort") == port for values in bindings.values() for b in values or [])

    def _network_problem(self, network, attrs):
        if network["settings"] is None:
            return   # external: used as it is
        reasons = settings_drift(network["settings"], actual_settings(attrs))
        if reasons and not owned_by(attrs.get("Labels"), self.plan.name):
            self.problems.add(network.get("resource") or network["by"],
                              "network %s exists with other settings (%s) and is not owned by stack %s: it is never "
                              "changed" % (network["name"], ", ".join(reasons), self.plan.name))

    def _more_problems(self):
        """What else an engine must know before the first change; nothing here."""
