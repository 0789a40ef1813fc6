# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The memory engine's networks, volumes and images: their calls and lists, with the SDK's
`APIClient` arguments and the answers and errors of Docker Engine 20.10."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import itertools

from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_base import (
    NOT_MANAGER, PREDEFINED, api_method, digest, endpoint, full_reference, image_summary, network_attrs, network_matches, plain, refuse,
    volume_attrs, volume_matches)
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError


class NetworkEngine(object):
    """Networks, volumes and images in memory (memory.MemoryEngine holds the state)."""

    def _network_view(self, net, listing=False):
        """A network as inspect shows it: with its running containers' endpoints (a list: none)."""
        view = dict(net, Containers={})
        for attrs in [] if listing else self._containers.values():
            point = attrs["NetworkSettings"]["Networks"].get(self._attached(attrs, net) or "", {})
            if attrs["State"]["Running"] and point.get("EndpointID"):
                view["Containers"][attrs["Id"]] = {
                    "Name": attrs["Name"][1:], "EndpointID": point["EndpointID"], "MacAddress": point["MacAddress"],
                    "IPv4Address": "%s/%s" % (point["IPAddress"], point["IPPrefixLen"]) if point["IPAddress"] else "",
                    "IPv6Address": ""}
        return view

    def _new_network(self, name, driver, subnet, options):
        nid = digest("network", name, next(self._serial), id(self))
        gateway = None
        if subnet:
            pool = ((options.get("ipam") or {}).get("Config") or [{}])[0]
            gateway = pool.get("Gateway") or str(next(ipaddress.ip_network(subnet, strict=False).hosts()))
        self._networks[nid] = network_attrs(nid, name, driver, subnet, gateway, options)
        return self._networks[nid]

    def _free_subnet(self):
        taken = [ipaddress.ip_network(p["Subnet"], strict=False) for n in self._networks.values()
                 for p in (n.get("IPAM") or {}).get("Config") or [] if p.get("Subnet")]
        for second in itertools.chain(range(18, 32), range(33, 255)):
            candidate = ipaddress.ip_network("172.%d.0.0/16" % second)
            if not any(candidate.overlaps(t) for t in taken):
                return str(candidate)
        raise ClockworkError("the memory engine ran out of subnets")

    def _volume_users(self, name):
        return [a["Id"] for a in self._containers.values() if any(m.get("Name") == name for m in a["Mounts"])]

    @api_method
    def networks(self, names=None, ids=None, filters=None):
        filters = dict(filters or {})
        if names:
            filters["name"] = names
        if ids:
            filters["id"] = ids
        return [self._network_view(n, listing=True) for n in self._networks.values()
                if network_matches(n, filters)] + self._more("network", filters=filters)

    @api_method
    def volumes(self, filters=None):
        dangling = "dangling" in (filters or {})
        listed = [v for n, v in sorted(self._volumes.items())
                  if volume_matches(v, filters, dangling and self._volume_users(n))]
        return {"Volumes": listed + self._more("volume", filters=filters), "Warnings": None}

    @api_method
    def images(self, name=None, quiet=False, all=False, filters=None):  # pylint: disable=redefined-builtin
        listed = [image_summary(a) for a in self._images.values()
                  if not name or any(t.startswith(full_reference(name).rsplit(":", 1)[0]) for t in a["RepoTags"])]
        listed += self._more("image", name=name, filters=filters)
        return [i["Id"] for i in listed] if quiet else listed

    # -- images -------------------------------------------------------------------------

    @api_method
    def inspect_image(self, image):
        found = self._find_image(image)
        if found is None:
            refuse(404, "no such image: %s: No such image: %s" % (image, image), "/images/%s/json" % image)
        return found

    @api_method
    def pull(self, repository, tag=None, stream=False, auth_config=None, decode=False, platform=None,
             all_tags=False):
        ref = repository if "@" in repository or not tag else "%s:%s" % (repository, tag)
        if full_reference(ref) not in self.pullable:
            self._cannot_pull(ref)
        self.add_image(ref, self.pullable[full_reference(ref)])
        return '{"status":"Status: Downloaded newer image for %s"}' % full_reference(ref)

    # -- networks -----------------------------------------------------------------------

    @api_method
    def inspect_network(self, net_id, verbose=None, scope=None):
        return self._network_view(self._network(net_id, "/networks/%s" % net_id, inspecting=True))

    @api_method
    def create_network(self, name, driver=None, options=None, ipam=None, check_duplicate=None, internal=False,
                       labels=None, enable_ipv6=False, attachable=None, scope=None, ingress=None):
        path = "/networks/create"
        if check_duplicate and any(n["Name"] == name for n in self._networks.values()):
            refuse(409, "network with name %s already exists" % name, path)
        if driver == "overlay" and not self._is_manager():
            refuse(503, NOT_MANAGER, path)
        ipam = plain(ipam) or {}
        subnet = (((ipam.get("Config") or [{}])[0]) or {}).get("Subnet")
        if subnet and any(p.get("Subnet") == subnet for n in self._networks.values()
                          for p in (n.get("IPAM") or {}).get("Config") or []):
            refuse(403, "Pool overlaps with other one on this address space", path)
        made = self._new_network(name, driver or "bridge", subnet or self._free_subnet(), {
            "ipam": ipam, "options": options, "internal": internal, "labels": labels, "enable_ipv6": enable_ipv6,
            "attachable": attachable, "ingress": ingress})
        return {"Id": made["Id"], "Warning": ""}

    @api_method
    def remove_network(self, net_id):
        path = "/networks/%s" % net_id
        net = self._network(net_id, path)
        if net["Name"] in PREDEFINED:
            refuse(403, "%s is a pre-defined network and cannot be removed" % net["Name"], path)
        if self._network_view(net)["Containers"]:
            refuse(403, "error while removing network: network %s id %s has active endpoints" % (net["Name"], net["Id"]),
                   path)
        del self._networks[net["Id"]]
        self.removed["network"].add(net["Id"])

    @api_method
    def connect_container_to_network(self, container, net_id, ipv4_address=None, ipv6_address=None, aliases=None,
                                     links=None, link_local_ips=None, driver_opt=None, mac_address=None):
        path = "/networks/%s/connect" % net_id
        attrs = self._container(container, path)
        net = self._find_network(net_id)
        if net is None and not attrs["State"]["Running"]:
            # The engine keeps a stopped container's endpoint by the name given (its start fails then).
            attrs["NetworkSettings"]["Networks"][net_id] = endpoint(aliases)
            self.touched.add(attrs["Id"])
            return
        net = net or self._network(net_id, path)
        if self._attached(attrs, net) is not None:
            refuse(403, "endpoint with name %s already exists in network %s" % (attrs["Name"][1:], net["Name"]), path)
        point = attrs["NetworkSettings"]["Networks"][net["Name"]] = dict(
            endpoint(aliases), Aliases=self._aliases(aliases, attrs, net))
        if attrs["State"]["Running"]:
            self._attach(attrs, point, net)
        self.touched.add(attrs["Id"])

    @api_method
    def disconnect_container_from_network(self, container, net_id, force=False):
        path = "/networks/%s/disconnect" % net_id
        net = self._network(net_id, path)
        attrs = self._container(container, path)
        key = self._attached(attrs, net)
        if key is None:
            refuse(500, "container %s is not connected to the network %s" % (attrs["Id"], net["Name"]), path)
        del attrs["NetworkSettings"]["Networks"][key]
        self.touched.add(attrs["Id"])

    # -- volumes ------------------------------------------------------------------------

    @api_method
    def inspect_volume(self, name):
        found = self._find_volume(name)
        if found is None:
            refuse(404, "get %s: no such volume" % name, "/volumes/%s" % name)
        return found

    @api_method
    def create_volume(self, name=None, driver=None, driver_opts=None, labels=None):
        name = name or digest("volume", next(self._serial), id(self))
        found = self._find_volume(name)
        if found is None:
            found = self._volumes[name] = volume_attrs(name, driver, labels, driver_opts)
            self.removed["volume"].discard(name)
        return found

    @api_method
    def remove_volume(self, name, force=False):
        path = "/volumes/%s" % name
        if self._find_volume(name) is None:
            if force:
                return
            refuse(404, "get %s: no such volume" % name, path)
        users = self._volume_users(name)
        if users:
            refuse(409, "remove %s: volume is in use - [%s]" % (name, ", ".join(users)), path)
        del self._volumes[name]
        self._volume_files.pop(name, None)
        self.removed["volume"].add(name)
