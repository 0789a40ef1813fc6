# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NetworkConnection: a named Docker network, `to` attached under its name, and
`<TO>_HOST=<to>` for `from`, which joins the network when it is (re)created."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import shlex

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    ClockworkError, env_name, owned_by, owner_labels)
from ansible_collections.clockwork.connections.plugins.module_utils.connection import (
    ConnectionResult, required_field)
from ansible_collections.clockwork.connections.plugins.module_utils.docker_client import APIError, exec_in

NETWORK_ARGS = dict(
    network_name=dict(type="str"),
    driver=dict(type="str", default="bridge"),
    internal=dict(type="bool", default=False),
    enable_ipv6=dict(type="bool", default=False),
    subnet=dict(type="str"),
    gateway=dict(type="str"),
    aliases=dict(type="list", elements="str", default=[]),
)


def wanted_settings(params):
    return {"driver": params.get("driver") or "bridge", "internal": bool(params.get("internal")),
            "enable_ipv6": bool(params.get("enable_ipv6")), "subnet": params.get("subnet"),
            "gateway": params.get("gateway")}


def actual_settings(attrs):
    pools = (attrs.get("IPAM") or {}).get("Config") or []
    return {"driver": attrs.get("Driver"), "internal": bool(attrs.get("Internal")),
            "enable_ipv6": bool(attrs.get("EnableIPv6")),
            "subnets": sorted(p.get("Subnet") for p in pools if p.get("Subnet")),
            "gateways": sorted(p.get("Gateway") for p in pools if p.get("Gateway"))}


def settings_drift(wanted, actual):
    """Differences that matter: a subnet or gateway left to the engine is not compared."""
    reasons = [key for key in ("driver", "internal", "enable_ipv6") if wanted[key] != actual[key]]
    if wanted["subnet"] and wanted["subnet"] not in actual["subnets"]:
        reasons.append("subnet")
    if wanted["gateway"] and wanted["gateway"] not in actual["gateways"]:
        reasons.append("gateway")
    return reasons


class NetworkConverger(object):
    """Converges one network and the attachment of containers to it."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.engine = ctx.engine

    def ensure(self, name, settings, result):
        """Create the network, or recreate an owned one whose settings drifted."""
        attrs = self.engine.network(name)
        result.before = {"network": name, "settings": actual_settings(attrs) if attrs else None}
        result.after = {"network": name, "settings": settings}
        if attrs is None:
            result.act("create network %s" % name)
            if not self.ctx.check_mode:
                self._create(name, settings)
            return
        reasons = settings_drift(settings, actual_settings(attrs))
        if not reasons:
            return
        if not owned_by(attrs.get("Labels"), self.ctx.stack):
            raise ClockworkError(
                "network %s exists with other settings (%s) and is not owned by stack %s: "
                "refusing to change it" % (name, ", ".join(reasons), self.ctx.stack))
        foreign = self._foreign_containers(attrs)
        if foreign:
            raise ClockworkError(
                "network %s must be recreated (%s differ) but containers outside stack %s are attached: %s"
                % (name, ", ".join(reasons), self.ctx.stack, ", ".join(sorted(foreign))))
        result.act("recreate network %s (%s)" % (name, ", ".join(reasons)))
        if self.ctx.check_mode:
            return
        attached = self._attachments(attrs)
        for container in attached:
            self.engine.api.disconnect_container_from_network(container, name, force=True)
        self.engine.api.remove_network(attrs["Id"])
        self._create(name, settings)
        for container, aliases in attached.items():
            self.engine.api.connect_container_to_network(container, name, aliases=aliases or None)
            self.engine.forget("container", container)

    def _create(self, name, settings):
        from docker.types import IPAMConfig, IPAMPool  # pylint: disable=import-outside-toplevel
        ipam = None
        if settings["subnet"] or settings["gateway"]:
            ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=settings["subnet"], gateway=settings["gateway"])])
        try:
            self.engine.api.create_network(
                name, driver=settings["driver"], internal=settings["internal"],
                enable_ipv6=settings["enable_ipv6"], ipam=ipam, check_duplicate=True,
                labels=owner_labels(self.ctx.stack, name))
        except APIError as exc:
            raise ClockworkError("cannot create network %s: %s" % (name, exc.explanation or exc))
        self.engine.forget("network", name)

    def _attachments(self, attrs):
        """Container name -> aliases on this network (aliases read from each container)."""
        attached = {}
        for info in (attrs.get("Containers") or {}).values():
            container = self.engine.container(info["Name"]) or {}
            net = ((container.get("NetworkSettings") or {}).get("Networks") or {}).get(attrs["Name"]) or {}
            short_id = (container.get("Id") or "")[:12]
            attached[info["Name"]] = [a for a in net.get("Aliases") or [] if a != short_id]
        return attached

    def _foreign_containers(self, attrs):
        names = []
        for info in (attrs.get("Containers") or {}).values():
            container = self.engine.container(info["Name"]) or {}
            if not owned_by((container.get("Config") or {}).get("Labels"), self.ctx.stack):
                names.append(info["Name"])
        return names

    def attach(self, endpoint, network, aliases, result):
        """Attach an existing container with these aliases, unless it already is."""
        if not endpoint.exists:
            return
        attached = (endpoint.attrs["NetworkSettings"].get("Networks") or {}).get(network)
        if attached is not None and set(aliases) <= set(attached.get("Aliases") or []):
            return
        result.act("attach %s to %s" % (endpoint.name, network))
        if self.ctx.check_mode:
            return
        try:
            if attached is not None:  # aliases can only be set when connecting
                self.engine.api.disconnect_container_from_network(endpoint.name, network)
            self.engine.api.connect_container_to_network(endpoint.name, network, aliases=list(aliases))
        except APIError as exc:
            raise ClockworkError("cannot attach %s to network %s: %s"
                                 % (endpoint.name, network, exc.explanation or exc))
        self.engine.forget("container", endpoint.name)


def converge(ctx, params):
    """Run one network connection; returns its ConnectionResult."""
    from_name, to_name = params["from_resource"], params["to_resource"]
    result = ConnectionResult("network", from_name, to_name)
    network = required_field(params, "network_name", result.name)
    to = ctx.require_to(to_name, result.name)
    converger = NetworkConverger(ctx)
    converger.ensure(network, wanted_settings(params), result)
    converger.attach(to, network, sorted(set([to_name] + list(params.get("aliases") or []))), result)
    converger.attach(ctx.endpoint(from_name), network, [from_name], result)

    contribution = result.contribution
    contribution.networks.append({"name": network, "aliases": [from_name]})
    contribution.env[env_name(to_name) + "_HOST"] = to_name
    ports = to.declared_ports() or to.exposed_ports(ctx.engine)
    contribution.checks.append({"kind": "dns_tcp", "connection": result.name, "container": from_name,
                                "host": to_name, "port": int(ports[0].split("/")[0]) if ports else None})
    if params.get("internal"):
        contribution.checks.append({"kind": "no_route_out", "connection": result.name,
                                    "container": from_name, "network": network})
    result.extra["network"] = {"name": network, "to_port": ports[0] if ports else None}
    return result


# -- checks, run from inside `from` --------------------------------------------

def _tcp_script(host, port):
    # nc when the image has it, else bash's /dev/tcp: images differ in what they ship.
    return ('if command -v nc >/dev/null 2>&1; then nc -z -w 3 {h} {p}; '
            'elif command -v bash >/dev/null 2>&1; then bash -c "</dev/tcp/{h}/{p}"; '
            'else echo "neither nc nor bash in the container"; exit 127; fi').format(
                h=shlex.quote(host), p=int(port))


def check_dns_tcp(engine, check):
    host, port, container = check["host"], check.get("port"), check["container"]
    code, out = exec_in(engine, container, "getent hosts %s" % shlex.quote(host))
    if code != 0:
        return False, "%s does not resolve inside %s: %s" % (host, container, out or "no answer")
    if not port:
        return True, "%s resolves to %s" % (host, out.split()[0])
    code, out = exec_in(engine, container, _tcp_script(host, port))
    if code != 0:
        return False, "%s:%s does not accept TCP from %s: %s" % (host, port, container, out or "refused")
    return True, "%s resolves and %s:%s accepts TCP from %s" % (host, host, port, container)


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
