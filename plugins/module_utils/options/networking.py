# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Networking options: the networks a container joins (attached by the converger, not compared
as drift: a connection may attach more), its network mode, names and DNS."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.options.table import CONFIG, NETWORKING, Option, SwarmField

# The network modes that are no network of the stack's: the container is on no network we attach.
NETWORK_MODES = ("host", "none")


def normal_network(network):
    """A network to join in normal form: name, sorted aliases, and only when set: ipv4_address, priority."""
    normal = {"name": network["name"], "aliases": sorted(network.get("aliases") or [])}
    for key in ("ipv4_address", "priority"):
        if network.get(key) is not None:
            normal[key] = network[key]
    return normal


def _networks(value, _ctx):
    networks = [normal_network(n) for n in value or []]
    # Compose's priority: the network of the highest is joined first (at creation); a stable sort
    # keeps the declared order among equals.
    return sorted(networks, key=lambda n: -(n.get("priority") or 0))


def _config(attrs):
    return attrs.get("Config") or {}


def _host(attrs):
    return attrs.get("HostConfig") or {}


def _network_mode(value, ctx):
    if not value:
        return None
    if value not in NETWORK_MODES and not (value.startswith("container:") and len(value) > 10):
        raise ClockworkError("container %s: network_mode: %r is not one of host, none, container:<name> (the "
                             "networks it joins are its networks)" % (ctx.name, value))
    return value


def _read_network_mode(attrs):
    mode = _host(attrs).get("NetworkMode") or ""
    return mode if mode in NETWORK_MODES or mode.startswith("container:") else None


def _read_hostname(attrs):
    """The declared hostname: not the engine's (the short id), nor the host's or another container's."""
    name = _config(attrs).get("Hostname") or None
    if name == (attrs.get("Id") or "")[:12] or _read_network_mode(attrs) in ("host",) \
            or (_read_network_mode(attrs) or "").startswith("container:"):
        return None
    return name


def _extra_hosts(value, ctx):
    """Compose's forms: ["host:ip"], ["host=ip"] or {host: ip} -> sorted ["host:ip"]."""
    pairs = sorted(value.items()) if isinstance(value, dict) else []
    for entry in value if isinstance(value, (list, tuple)) else []:
        text = str(entry)
        host, sep, address = text.partition("=") if "=" in text else text.partition(":")
        if not sep:
            raise ClockworkError("container %s: extra_hosts: %r is not host:address" % (ctx.name, text))
        pairs.append((host, address))
    if value is not None and not isinstance(value, (dict, list, tuple)):
        raise ClockworkError("container %s: extra_hosts: give a list of host:address or a mapping" % ctx.name)
    for host, address in pairs:
        try:
            ipaddress.ip_address(str(address).strip("[]"))
        except ValueError:
            if address != "host-gateway":
                raise ClockworkError("container %s: extra_hosts: %s: %r is not an IP address" % (ctx.name, host, address))
    return sorted(set("%s:%s" % (h, str(a).strip("[]")) for h, a in pairs))


def _strings(value, _ctx):
    return [str(v) for v in ([value] if isinstance(value, str) else value or [])]


def _swarm_hosts(hosts):
    """A service's Hosts: `address host`, as /etc/hosts has them."""
    return ["%s %s" % (entry.partition(":")[2], entry.partition(":")[0]) for entry in hosts]


def _hosts_of_swarm(lines):
    return sorted(set("%s:%s" % (line.split()[1], line.split()[0]) for line in lines if len(line.split()) >= 2))


def _host_list(keyword, api_key, doc, compose, swarm_key):
    return Option(keyword, dict(type="list", elements="str"), doc, normal=_strings,
                  read=lambda attrs: list(_host(attrs).get(api_key) or []),
                  body=lambda value, made: made.host.update({keyword: value}) if value else None, compose=(compose,),
                  swarm=SwarmField(("TaskTemplate", "ContainerSpec", "DNSConfig", swarm_key), from_api=list))


OPTIONS = [
    Option("networks", dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True),
        aliases=dict(type="list", elements="str", default=[]),
        ipv4_address=dict(type="str"),
        priority=dict(type="int"),
    )), "Networks to join, each with DNS aliases. The first is joined at creation, the others after.",
        where=NETWORKING, optional=False, compare=None, normal=_networks, compose=("networks",),
        swarm="TaskTemplate.Networks", subdocs=dict(
            name="Network name.", aliases="DNS aliases on that network.",
            ipv4_address="The container's IPv4 address on that network.",
            priority="Networks of a higher priority are joined first (default 0)."),
        details=("A missing attachment is added without recreating the container.",
                 "O(networks[].ipv4_address) is the container's address on that network (a network with a subnet); "
                 "the network of the highest O(networks[].priority) is joined first.")),
    Option("network_mode", dict(type="str"), "C(host) (the host's network, a grant of the host), C(none) (no network) "
           "or C(container:<name>) (another container's).", normal=_network_mode, read=_read_network_mode,
           compose=("network_mode",), grant="host_namespaces",
           details=("Set, the container joins no network: O(networks) must be empty, and a stack's resource is not "
                    "on the stack's default network. Not on Swarm.",)),
    Option("hostname", dict(type="str"), "The container's host name. Not set, the engine's (its short id).",
           where=CONFIG, normal=lambda value, _ctx: value or None, read=_read_hostname,
           body=lambda value, made: made.config.update(hostname=value) if value else None, compose=("hostname",),
           swarm=SwarmField(("TaskTemplate", "ContainerSpec", "Hostname"))),
    Option("domainname", dict(type="str"), "The container's domain name.", where=CONFIG,
           normal=lambda value, _ctx: value or None, read=lambda attrs: _config(attrs).get("Domainname") or None,
           body=lambda value, made: made.config.update(domainname=value) if value else None, compose=("domainname",)),
    Option("mac_address", dict(type="str"), "The container's MAC address on the network it joins first.",
           where=CONFIG, normal=lambda value, _ctx: value.lower() if value else None,
           read=lambda attrs: (_config(attrs).get("MacAddress") or "").lower() or None,
           body=lambda value, made: made.config.update(mac_address=value) if value else None, compose=("mac_address",)),
    Option("extra_hosts", dict(type="raw"), "Lines added to the container's C(/etc/hosts), as a list of "
           "C(host:address) or a mapping of host to address.", normal=_extra_hosts,
           read=lambda attrs: sorted(set(_host(attrs).get("ExtraHosts") or [])),
           body=lambda value, made: made.host.update(extra_hosts=value) if value else None, compose=("extra_hosts",),
           swarm=SwarmField(("TaskTemplate", "ContainerSpec", "Hosts"), to_api=_swarm_hosts, from_api=_hosts_of_swarm)),
    _host_list("dns", "Dns", "DNS servers of the container, instead of the engine's.", "dns", "Nameservers"),
    _host_list("dns_search", "DnsSearch", "DNS search domains of the container.", "dns_search", "Search"),
    _host_list("dns_opt", "DnsOptions", "Options of the container's resolver (C(resolv.conf)), like C(ndots:2).",
               "dns_opt", "Options"),
]
