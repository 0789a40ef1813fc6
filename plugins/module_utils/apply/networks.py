# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker networks: the settings a network is made with, the drift that matters, and
NetworkConverger, which makes a network and attaches containers to it, for the stack's
default network and for network connections alike."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, owned_by, owner_labels
from ansible_collections.clockwork.connections.plugins.module_utils.differences import differences, member_of, value
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    BAD_REQUEST, CONFLICT, NOT_FOUND, engine_words, status_of)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError


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


# Differences that matter: a subnet or gateway left to the engine is not compared.
SETTINGS_RULES = [value("driver"), value("internal"), value("enable_ipv6"), member_of("subnet", "subnets"),
                  member_of("gateway", "gateways")]


def settings_drift(wanted, actual):
    return differences(wanted, actual, SETTINGS_RULES)


def ipam_config(settings):
    """The IPAM config of a network create (as the SDK's IPAMConfig and IPAMPool make it) for a
    subnet or gateway that is asked for, else None."""
    if not (settings["subnet"] or settings["gateway"]):
        return None
    return {"Driver": "default", "Config": [{"Subnet": settings["subnet"], "IPRange": None,
                                             "Gateway": settings["gateway"], "AuxiliaryAddresses": None}]}


class NetworkConverger(object):
    """Converges one network and the attachment of containers to it."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.engine = ctx.engine

    def ensure(self, name, settings, result):
        """Create the network, or recreate an owned one whose settings drifted. settings None: an
        external network, used as it is: it must exist (the pre-flight said so before any change)."""
        if settings is None:
            if self.engine.network(name) is None:
                raise ClockworkError("network %s is external and does not exist: the stack never makes it" % name)
            return
        attrs = self._inspect(name, result)
        result.before = {"network": name, "settings": actual_settings(attrs) if attrs else None}
        result.after = {"network": name, "settings": settings}
        if attrs is None:
            result.act("create network %s" % name)
            self._create(name, settings, result)
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
        attached = self._attachments(attrs)
        try:
            for container in attached:
                self.engine.disconnect(container, name, force=True)
            self.engine.remove_network(attrs["Id"])
            self._create(name, settings, result)
            for container, aliases in attached.items():
                self.engine.connect(container, name, aliases=aliases)
        except APIError as exc:
            raise ClockworkError("cannot recreate network %s (containers %s): %s" % (
                name, ", ".join(sorted(attached)) or "none", engine_words(exc)))

    def _create(self, name, settings, result):
        ipam = ipam_config(settings)
        try:
            self.engine.create_network(
                name, driver=settings["driver"], internal=settings["internal"],
                enable_ipv6=settings["enable_ipv6"], ipam=ipam, check_duplicate=True,
                labels=owner_labels(self.ctx.stack, name))
        except APIError as exc:
            if status_of(exc) != CONFLICT:
                raise ClockworkError("cannot create network %s: %s" % (name, engine_words(exc)))
            # Someone created it meanwhile (our read said none): use it when it is ours, with these settings.
            self.engine.forget("network", name)
            attrs = self._inspect(name, result)
            if attrs is None or not owned_by(attrs.get("Labels"), self.ctx.stack) \
                    or settings_drift(settings, actual_settings(attrs)):
                raise ClockworkError("cannot create network %s: another one of this name was created meanwhile, "
                                     "not by stack %s or with other settings; it is left alone"
                                     % (name, self.ctx.stack))
            return
        # The engine checks for duplicates without a lock (20.10): a run creating the same
        # name at the same moment gets a second network. Merge them now, not on the next run.
        if len(self._named(name)) > 1:
            self._merge_duplicates(name, result.act)

    def _named(self, name):
        """Every network called exactly `name` (the engine's filter matches substrings)."""
        try:
            listed = self.engine.networks(names=[name])
        except APIError as exc:
            raise ClockworkError("cannot list networks named %s: %s" % (name, engine_words(exc)))
        return [n for n in listed if n.get("Name") == name]

    def _inspect(self, name, result):
        """The network called `name`. Several networks of that name that this stack made
        (concurrent runs on an engine that does not check duplicates atomically) are
        merged first: otherwise every later run fails with `network ... is ambiguous`."""
        try:
            return self.engine.network(name)
        except APIError as exc:
            # An ambiguous name is the one 400 of an inspect without options ("2 matches found
            # based on name: network x is ambiguous"; Docker 20.10).
            if status_of(exc) != BAD_REQUEST:
                raise ClockworkError("cannot inspect network %s: %s" % (name, engine_words(exc)))
        return self._merge_duplicates(name, result.act)

    def _merge_duplicates(self, name, act):
        """Keep one of the networks called `name` (the one with containers, else the oldest),
        move the containers of the others onto it with their aliases, remove the others.
        Returns the one kept."""
        found = []
        for listed in self._named(name):
            try:
                attrs = self.engine.network_now(listed["Id"])
            except APIError as exc:
                raise ClockworkError("cannot inspect network %s (%s): %s"
                                     % (name, listed["Id"][:12], engine_words(exc)))
            if attrs is not None:   # else merged meanwhile by a concurrent run
                found.append(attrs)
        if len(found) < 2:
            self.engine.forget("network", name)
            return found[0] if found else None
        foreign = [n["Id"][:12] for n in found if not owned_by(n.get("Labels"), self.ctx.stack)]
        if foreign:
            raise ClockworkError(
                "network %s is ambiguous: %d networks have this name and %s not made by stack %s, so they "
                "are not merged; remove the extra ones by id (docker network rm ID): %s" % (
                    name, len(found), "some are" if len(foreign) > 1 else "one is", self.ctx.stack,
                    ", ".join(n["Id"][:12] for n in found)))
        # Deterministic, so that two runs repairing at once keep the same one.
        found.sort(key=lambda n: (-len(n.get("Containers") or {}), self._created_key(n.get("Created")), n["Id"]))
        keep, extras = found[0], found[1:]
        act("merge %d duplicate networks %s into one (%s)" % (len(found), name, keep["Id"][:12]))
        for extra in extras:
            for container_id, info in (extra.get("Containers") or {}).items():
                self._move(container_id, info.get("Name"), extra["Id"], keep)
            try:
                self.engine.remove_network(extra["Id"])
            except APIError as exc:
                if not self._gone(exc):
                    raise ClockworkError("cannot remove duplicate network %s (%s): %s" % (
                        name, extra["Id"][:12], engine_words(exc)))
        # Read by name afresh: the writes above named the networks by id.
        return self.engine.network_now(name)

    def _move(self, container_id, container_name, from_id, keep):
        """Reconnect one container from a duplicate network to the kept one, same aliases.

        A container keeps one endpoint per network *name*: attached to two duplicates,
        disconnecting it from one can drop the other, so what it is left with is read again."""
        name = keep["Name"]
        try:
            before = self.engine.container_now(container_id)
            if before is None:   # gone meanwhile
                return
            aliases = sorted(set(a for n, info in self._endpoints(before) if n == name
                                 for a in info.get("Aliases") or [] if a != container_id[:12]))
            self.engine.disconnect(container_id, from_id, force=True)
            after = self.engine.container_now(container_id)
            if after is None:
                return
            if not any(info.get("NetworkID") == keep["Id"] for _n, info in self._endpoints(after)):
                if container_id in (keep.get("Containers") or {}):   # a stale endpoint is left
                    self.engine.disconnect(container_id, keep["Id"], force=True)
                self.engine.connect(container_id, keep["Id"], aliases=aliases)
        except APIError as exc:
            if self._gone(exc):   # gone meanwhile, or moved by a concurrent run
                return
            raise ClockworkError("cannot move container %s onto network %s: %s"
                                 % (container_name, name, engine_words(exc)))

    @staticmethod
    def _endpoints(container):
        return list(((container.get("NetworkSettings") or {}).get("Networks") or {}).items())

    def repair_stack(self):
        """Merge every set of same-named networks that the stack owns; run before anything
        else reads networks by name. Returns what was (or, on a dry run, would be) done."""
        try:
            listed = self.engine.networks()
        except APIError as exc:
            raise ClockworkError("cannot list networks: %s" % engine_words(exc))
        names = [n["Name"] for n in listed if owned_by(n.get("Labels"), self.ctx.stack)]
        actions = []
        for name in sorted(set(n for n in names if names.count(n) > 1)):
            self._merge_duplicates(name, actions.append)
        return actions

    @staticmethod
    def _gone(exc):
        return status_of(exc) == NOT_FOUND

    @staticmethod
    def _created_key(created):
        """Docker's `Created` (RFC 3339, nanoseconds, trailing zeros trimmed) as a sortable key."""
        created = created or ""
        fraction = created[20:].split("Z")[0].split("+")[0] if created[19:20] == "." else ""
        return created[:19], fraction.ljust(9, "0")

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
        try:
            if attached is not None:  # aliases can only be set when connecting
                self.engine.disconnect(endpoint.name, network)
            self.engine.connect(endpoint.name, network, aliases=list(aliases))
        except APIError as exc:
            raise ClockworkError("cannot attach %s to network %s: %s"
                                 % (endpoint.name, network, engine_words(exc)))
