# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The resource types of a stack: container, file, volume, network. Each is one entry here with
its fields (an argument spec), what is wrong with one beyond them, and what the plan makes of it
(containers, a network, a volume, a file on the Docker host). The plan, the graph's checks and
diagram, and the stack module's options read this table; this is the one file that tells the
types apart by name (a resource type `network` is not the network connection type)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    RESERVED_LABEL_PREFIX, ClockworkError, docker_name_problem)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.build import build_problems, built_image
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import (
    CONTAINER_ARGS, duration_ns, parse_port)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import wanted_settings
from ansible_collections.clockwork.connections.plugins.module_utils.apply.replicas import UPDATE_ARGS, replica_problems
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.services import SERVICE_ARGS


class ResourceType(object):
    """One resource type. Hooks take the validated parameters of one resource; `problems` also takes
    the plan (its stack name, base_dir and engine) and returns [(field, problem)]."""

    def __init__(self, name, args, problems=None, networks=None, volumes=None, files=None, runs_containers=False,
                 shape='["%s"]'):
        self.name = name
        self.args = args
        self.problems = problems or (lambda params, plan: [])
        # [(network name, settings)] and [(volume name, driver)] the stack makes; None settings or driver:
        # an external one, used as it is (never made, compared or removed).
        self.networks = networks or (lambda params: [])
        self.volumes = volumes or (lambda params: [])
        self.files = files or (lambda params: [])             # [(host path, content or None: only bound)]
        self.runs_containers = runs_containers
        self.shape = shape                                    # its node in the Mermaid diagram


# -- container ---------------------------------------------------------------------------------

# A container of a stack joins the stack's network `<stack>_default` unless told not to (a
# Compose service on named networks only), beside the networks its connections give it.
STACK_CONTAINER_ARGS = dict(default_network=dict(type="bool", default=True))

# Docker's reference grammar (distribution/reference): known without asking the engine, which
# would answer with its own words alone ("invalid reference format"), naming no resource.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])" \
          r"(?::[0-9]+)?"
IMAGE_REFERENCE = re.compile(r"^(?:%s/)?%s(?:/%s)*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z]"
                             r"[A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$" % (_DOMAIN, _COMPONENT, _COMPONENT))


def container_problems(params, plan):
    """What is wrong with one container's own declaration: [(field, problem)]. Its image is set
    first: the one its `build` makes when it has no other."""
    params["image"] = built_image(plan.name, params)
    problems = replica_problems(params, plan.engine)
    if docker_name_problem(params["name"]):
        problems.append(("name", docker_name_problem(params["name"])))
    problems.extend(build_problems(params))
    if not params.get("image") and not params.get("build") and params.get("state") != "absent":
        problems.append(("image", "is required"))
    elif params.get("image") and not IMAGE_REFERENCE.match(params["image"]):
        problems.append(("image", "%r is not an image reference ([registry/]name[:tag][@digest], the name in lower "
                                  "case)" % params["image"]))
    for port in params.get("ports") or []:
        try:
            parse_port(port)
        except ClockworkError as exc:
            problems.append(("ports", exc.msg))
    healthcheck = params.get("healthcheck") or {}
    for key in ("interval", "timeout", "start_period"):
        try:
            duration_ns(healthcheck.get(key) or "0s")
        except ClockworkError as exc:
            problems.append(("healthcheck.%s" % key, exc.msg))
    targets = []
    for mount in params.get("mounts") or []:
        if not mount["target"].startswith("/"):
            problems.append(("mounts", "target %s must be an absolute path inside the container" % mount["target"]))
        if mount["target"] in targets:
            problems.append(("mounts", "target %s is mounted twice" % mount["target"]))
        targets.append(mount["target"])
        if mount.get("type") == "volume" and mount.get("source") and docker_name_problem(mount["source"]):
            problems.append(("mounts", "volume " + docker_name_problem(mount["source"])))
    for network in params.get("networks") or []:
        if docker_name_problem(network["name"]):
            problems.append(("networks", docker_name_problem(network["name"])))
    if params.get("network_mode") and params.get("networks"):
        problems.append(("networks", "a container with network_mode %s joins no network: drop networks or "
                                     "network_mode" % params["network_mode"]))
    for label in sorted(str(k) for k in params.get("labels") or {}):
        if label.startswith(RESERVED_LABEL_PREFIX):
            problems.append(("labels", "%s: the %s prefix is reserved for the labels the collection sets itself"
                                       % (label, RESERVED_LABEL_PREFIX)))
    return problems


# -- file, volume ------------------------------------------------------------------------------

FILE_RESOURCE_ARGS = dict(name=dict(type="str", required=True), path=dict(type="path", required=True),
                          content=dict(type="str"), mode=dict(type="raw"), owner=dict(type="str"))
# driver's default (local) is set by volume_problems: given beside `external` it is refused.
VOLUME_RESOURCE_ARGS = dict(name=dict(type="str", required=True), volume_name=dict(type="str"),
                            driver=dict(type="str"), external=dict(type="bool", default=False))


def volume_name(params):
    return params.get("volume_name") or params["name"]


def external_problems(params, settings):
    """A field of `settings` given beside `external: true`: the stack uses the object as it is, as
    Compose does (which refuses them too)."""
    return [(field, "an external %s is used as it is, never made or changed by the stack: drop %s or external"
             % (params["type"], field)) for field in settings if params.get(field) not in (None, False)]


def volume_problems(params, _plan):
    problem = docker_name_problem(volume_name(params))
    problems = [("volume_name", problem)] if problem else []
    if params["external"]:
        return problems + external_problems(params, ("driver",))
    params["driver"] = params["driver"] or "local"
    return problems


def volumes_made(params):
    """[(volume name, driver)]: an external volume's driver is None (the stack never makes it)."""
    return [(volume_name(params), params["driver"])]


# -- network -----------------------------------------------------------------------------------

# A network the stack makes whether or not a connection needs it (a named network of a Compose
# file), with the settings of a network connection's network.
# `external`: a network that must exist, used as it is (Compose's `external: true`). The settings'
# defaults (bridge, false) are set by network_problems: given beside `external` they are refused.
NETWORK_SETTINGS = ("driver", "internal", "enable_ipv6", "subnet", "gateway")
NETWORK_RESOURCE_ARGS = dict(name=dict(type="str", required=True), network_name=dict(type="str"),
                             driver=dict(type="str"), internal=dict(type="bool"), enable_ipv6=dict(type="bool"),
                             subnet=dict(type="str"), gateway=dict(type="str"),
                             external=dict(type="bool", default=False))
# A driver's name: a built-in one or a plugin's (`vieux/sshfs:latest`).
_DRIVER = re.compile(r"^[a-z0-9][a-z0-9_.-]*(?:/[a-z0-9][a-z0-9_.-]*)*(?::[\w][\w.-]*)?$")


def network_name(params):
    return params.get("network_name") or params["name"]


def network_settings_problems(params):
    """A network's subnet and gateway as Docker takes them: [(field, problem)]."""
    problems, subnet = [], None
    if params.get("subnet"):
        try:
            subnet = ipaddress.ip_network(params["subnet"], strict=False)
        except ValueError as exc:
            problems.append(("subnet", "%s is not a network like 172.28.0.0/16: %s" % (params["subnet"], exc)))
        else:
            if ipaddress.ip_interface(params["subnet"]).ip != subnet.network_address:
                # an address where a network is meant: said here, naming the network (engines differ on it)
                problems.append(("subnet", "%s has host bits set: the network is %s" % (params["subnet"], subnet)))
    if params.get("gateway"):
        try:
            gateway = ipaddress.ip_address(params["gateway"])
        except ValueError:
            problems.append(("gateway", "%s is not an IP address" % params["gateway"]))
        else:
            if not params.get("subnet"):
                problems.append(("gateway", "%s is an address of a subnet: give subnet too" % gateway))
            elif subnet is not None and gateway not in subnet:
                problems.append(("gateway", "%s is outside subnet %s" % (gateway, subnet)))
    return problems


def address_problem(address, subnet, resource):
    """Why a container cannot have `address` on the network of a network resource with `subnet`, or None."""
    try:
        parsed = ipaddress.IPv4Address(address)
    except ValueError:
        return "ipv4_address %s is not an IPv4 address" % address
    if not subnet:
        return "ipv4_address %s on a network without a subnet: give network resource %s a subnet" % (address, resource)
    try:
        network = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        return None   # the subnet's own problem is the network resource's
    if parsed not in network:
        return "ipv4_address %s is outside subnet %s of network resource %s" % (address, subnet, resource)
    return None


def network_problems(params, plan):
    name = network_name(params)
    problems = []
    if docker_name_problem(name, shortest=1):
        problems.append(("network_name", docker_name_problem(name, shortest=1)))
    elif name == plan.default_network:
        problems.append(("network_name", "%s is the stack's default network, which the stack makes itself" % name))
    if params["external"]:
        return problems + external_problems(params, NETWORK_SETTINGS)
    params.update(driver=params["driver"] or "bridge", internal=bool(params["internal"]),
                  enable_ipv6=bool(params["enable_ipv6"]))
    problems.extend(network_settings_problems(params))
    driver = params["driver"]
    if driver in ("host", "none"):
        problems.append(("driver", "%s is the engine's own network, one of a kind: a container takes it with "
                                   "network_mode: %s" % (driver, driver)))
    elif not _DRIVER.match(driver):
        problems.append(("driver", "%r is not a network driver's name (bridge, overlay, macvlan, ipvlan or a "
                                   "plugin's)" % driver))
    elif plan.engine == "swarm" and driver not in ("bridge", "overlay"):
        problems.append(("driver", "%s: on Swarm the stack's networks are attachable overlay networks (bridge, the "
                                   "default, and overlay are taken as overlay)" % driver))
    return problems


RESOURCE_KINDS = dict((t.name, t) for t in (
    ResourceType("container", dict(CONTAINER_ARGS, **SERVICE_ARGS, **UPDATE_ARGS, **STACK_CONTAINER_ARGS),
                 problems=container_problems, runs_containers=True),
    ResourceType("file", FILE_RESOURCE_ARGS, shape='[/"%s"/]',
                 files=lambda params: [(params["path"], params.get("content"))]),
    ResourceType("volume", VOLUME_RESOURCE_ARGS, problems=volume_problems, shape='[("%s")]', volumes=volumes_made),
    ResourceType("network", NETWORK_RESOURCE_ARGS, problems=network_problems, shape='{{"%s"}}',
                 networks=lambda params: [(network_name(params), None if params["external"] else
                                           wanted_settings(params))]),
))
DEFAULT_KIND = "container"


def kind_of(resource):
    """The resource type of a declared resource (container when not given), or None when unknown."""
    return RESOURCE_KINDS.get(resource.get("type") or DEFAULT_KIND)


def runs_containers(resource):
    """Whether a (validated or declared) resource is one whose containers the stack runs."""
    kind = kind_of(resource)
    return kind is not None and kind.runs_containers
