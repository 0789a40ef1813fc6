# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NetworkConnection: a named Docker network, `to` attached under its name, and
`<TO>_HOST=<to>` (or `env_var_name`) for `from`, which joins the network when it is (re)created."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    chosen_env_name, docker_name_problem, env_name, env_var_name_problems, port_number)
from ansible_collections.clockwork.connections.plugins.module_utils.connection import (
    ConnectionType, required_field)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import exec_arg, exec_first, exec_in
from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import NetworkConverger, wanted_settings
from ansible_collections.clockwork.connections.plugins.module_utils.network.completion import COMPLETION

NETWORK_ARGS = dict(
    network_name=dict(type="str"),
    driver=dict(type="str", default="bridge"),
    internal=dict(type="bool", default=False),
    enable_ipv6=dict(type="bool", default=False),
    subnet=dict(type="str"),
    gateway=dict(type="str"),
    aliases=dict(type="list", elements="str", default=[]),
    env_var_name=dict(type="str"),
)


def validate(params):
    problems = []
    name = params.get("network_name")
    if not name:
        problems.append(("network_name", "is required (or a description to complete it from)"))
    elif docker_name_problem(name, shortest=1):
        problems.append(("network_name", docker_name_problem(name, shortest=1)))
    subnet = None
    if params.get("subnet"):
        try:
            subnet = ipaddress.ip_network(params["subnet"], strict=False)
        except ValueError as exc:
            problems.append(("subnet", "%s is not a network like 172.28.0.0/16: %s" % (params["subnet"], exc)))
    if params.get("gateway"):
        try:
            gateway = ipaddress.ip_address(params["gateway"])
            if subnet is not None and gateway not in subnet:
                problems.append(("gateway", "%s is outside subnet %s" % (gateway, subnet)))
        except ValueError:
            problems.append(("gateway", "%s is not an IP address" % params["gateway"]))
    for alias in params.get("aliases") or []:
        if docker_name_problem(alias):
            problems.append(("aliases", docker_name_problem(alias)))
    return problems + env_var_name_problems(params)


def prepare(ctx, params, result):
    """The network exists with its settings before any container joins it."""
    name = required_field(params, "network_name", result.name)
    if ctx.first_time(("network", name)):
        NetworkConverger(ctx).ensure(name, wanted_settings(params), result)


def to_contribution(params, _stack):
    """`to` joins the network under its own name and the connection's aliases."""
    aliases = sorted(set([params["to_resource"]] + list(params.get("aliases") or [])))
    return {"mounts": [], "networks": [{"name": params["network_name"], "aliases": aliases}]}


def injected_env(params, to_name):
    name = chosen_env_name(params, env_name(to_name) + "_HOST")
    return [name] if name else []


def known_env(params, to_name):
    """`<TO>_HOST` is `to`'s name: two network connections to one `to` agree on it."""
    return dict((name, to_name) for name in injected_env(params, to_name))


# What a network connection may ask for on Swarm; both become overlay networks there.
SWARM_DRIVERS = ("bridge", "overlay")


def swarm_problems(params):
    if (params.get("driver") or "bridge") not in SWARM_DRIVERS:
        return [("driver", "%s networks are local to one engine; Swarm services join overlay networks (bridge and "
                           "overlay both become one)" % params["driver"])]
    return []


def converge(ctx, params, result):
    """`to` and `from` on the network (a la carte; in a stack their specs carry it), and
    `<TO>_HOST` for `from`."""
    from_name, to_name = params["from_resource"], params["to_resource"]
    network = required_field(params, "network_name", result.name)
    to = ctx.require_to(to_name, result.name)
    if not ctx.in_stack:
        converger = NetworkConverger(ctx)
        converger.attach(to, network, to_contribution(params, ctx.stack)["networks"][0]["aliases"], result)
        converger.attach(ctx.endpoint(from_name), network, [from_name], result)

    contribution = result.contribution
    contribution.networks.append({"name": network, "aliases": [from_name]})
    for name in injected_env(params, to_name):
        contribution.env[name] = to_name
    ports = to.declared_ports() or to.exposed_ports(ctx.engine)
    contribution.checks.append({"kind": "dns_tcp", "connection": result.name, "container": from_name,
                                "host": to_name, "port": port_number(ports[0]) if ports else None,
                                "network": network})
    if params.get("internal"):
        contribution.checks.append({"kind": "no_route_out", "connection": result.name,
                                    "container": from_name, "network": network})
    result.extra["network"] = {"name": network, "to_port": ports[0] if ports else None}


# -- checks, run from inside `from` --------------------------------------------

# What a DNS name or an IP address is made of: what `getent hosts` and `nc` take as a host.
HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:")


def host_name(value):
    """A check's host field: a name or an address, never an option or a list."""
    if not isinstance(value, str) or not 0 < len(value) < 254 or not set(value) <= HOST_CHARACTERS \
            or value[0] in "-." or value[-1] == "-":
        raise ValueError("%r is not a host name or an IP address" % (value,))
    return value


def tcp_port(value):
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ValueError("%r is not a TCP port" % (value,))
    if not 0 < port < 65536 or str(port) != str(value).strip():
        raise ValueError("%r is not a TCP port (1-65535)" % (value,))
    return port


def tcp_probes(host, port):
    """nc when the image has it, else bash's /dev/tcp: images differ in what they ship.
    bash runs a fixed script; the host and the port reach it as its arguments."""
    return [["nc", "-z", "-w", "3", host, str(port)],
            ["bash", "-c", 'exec 3<>"/dev/tcp/$1/$2"', "clockwork-tcp-probe", host, str(port)]]


def check_dns_tcp(engine, check):
    host, port, container = check["host"], check.get("port"), check["container"]
    if check.get("network"):
        # On the stack's default network the name would resolve anyway: the named network
        # the connection is about must hold both ends.
        for end in (container, host):
            attached = (((engine.container(end) or {}).get("NetworkSettings") or {}).get("Networks") or {})
            if check["network"] not in attached:
                return False, "%s is not attached to network %s" % (end, check["network"])
    if port:
        # A connection to the name proves it resolves: one exec when all is well; a failure
        # is told apart (name or port) by the lookup below.
        code, out, _tool = exec_first(engine, container, tcp_probes(host, port))
        if code == 0:
            return True, "%s resolves and %s:%s accepts TCP from %s" % (host, host, port, container)
        refused = out
    code, out = exec_in(engine, container, ["getent", "hosts", host])
    if code != 0:
        return False, "%s does not resolve inside %s: %s" % (host, container, out or "no answer")
    if not port:
        return True, "%s resolves to %s" % (host, out.split()[0])
    return False, "%s:%s does not accept TCP from %s: %s" % (host, port, container, refused or "refused")


check_dns_tcp.fields = dict(container=dict(type=exec_arg, required=True), host=dict(type=host_name, required=True),
                            port=dict(type=tcp_port), network=dict(type=exec_arg))


def check_no_route_out(engine, check):
    """The engine drops every packet of an internal network that leaves its subnet
    (Docker does this with firewall rules, not with routes: a default route is still
    listed inside the container). The check asks the engine that the network is internal."""
    network = engine.network(check["network"])
    if network is None:
        return False, "network %s does not exist" % check["network"]
    if not network.get("Internal"):
        return False, "network %s is not internal: traffic can leave it" % check["network"]
    return True, "network %s is internal: the engine drops traffic leaving it" % check["network"]


check_no_route_out.fields = dict(container=dict(type=exec_arg), network=dict(type=exec_arg, required=True))


TYPE = ConnectionType(
    "network", NETWORK_ARGS, converge,
    checks={"dns_tcp": check_dns_tcp, "no_route_out": check_no_route_out},
    injected_env=injected_env,
    validate=validate,
    completable=("network_name", "driver"),
    prepare=prepare,
    to_contribution=to_contribution,
    diagram_details=lambda params: [params["network_name"]] if params.get("network_name") else [],
    known_env=known_env,
    networks=lambda params: [(params["network_name"], wanted_settings(params))],
    swarm_problems=swarm_problems,
    completion=COMPLETION,
)
