# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The memory engine's containers: what the engine does on create, start, stop, rename and
remove (mounts, anonymous volumes, addresses, published ports, health), and those calls with the
SDK's `APIClient` arguments (memory.py composes them)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import ipaddress

from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import load_sdk
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_base import (
    NAME, PREDEFINED, STATE, api_method, container_config, digest, endpoint, host_config, network_settings, now, plain,
    refuse, volume_attrs)


# The limits an engine 20.10 reports in every HostConfig, none asked for.
HOST_LIMITS = {"Memory": 0, "MemoryReservation": 0, "MemorySwap": 0, "NanoCpus": 0, "CpuShares": 0, "CpuPeriod": 0,
               "CpuQuota": 0, "PidsLimit": None, "Ulimits": None, "BlkioWeight": 0, "OomKillDisable": False}


def _body(version, image, command, labels, host, others):
    """The body the SDK sends for create_container (the live path's own for the lock's plain one)."""
    if not others and isinstance(command, (list, type(None))) and isinstance(labels, (dict, type(None))):
        body = {"Cmd": command, "Image": image, "HostConfig": host, "Labels": labels}
    else:
        others = dict((k, v) for k, v in others.items() if k not in ("use_config_proxy", "platform"))
        body = load_sdk().types.ContainerConfig(version, image, command, labels=labels, host_config=host,
                                                **others)
    return dict((k, v) for k, v in plain(body).items() if v is not None)


class ContainerEngine(object):
    """Containers in memory (memory.MemoryEngine holds the state)."""

    # -- what the SDK builds on the client side ---------------------------------------------

    def create_host_config(self, *args, **kwargs):
        if not args and set(kwargs) == {"network_mode"}:
            return {"NetworkMode": kwargs["network_mode"]}
        return load_sdk().types.HostConfig(*args, version=self.api_version, **kwargs)

    def create_endpoint_config(self, *args, **kwargs):
        if not args and set(kwargs) <= {"aliases"}:
            return {"Aliases": kwargs["aliases"]} if kwargs.get("aliases") else {}
        return load_sdk().types.EndpointConfig(self.api_version, *args, **kwargs)

    @staticmethod
    def create_networking_config(endpoints_config=None):
        return {"EndpointsConfig": endpoints_config} if endpoints_config else {}

    @property
    def client(self):
        raise AttributeError("the memory engine has no SDK client")
    # -- containers: the engine's side of create, start and stop --------------------------

    def _create(self, body, name, path="/containers/create"):
        if name is not None and not NAME.match(name):
            refuse(400, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" % name, path)
        image = self._find_image(body.get("Image"))
        if image is None:
            refuse(404, "No such image: %s" % body.get("Image"), path)
        if name:
            taken = self._by_name(name)
            if taken is not None:
                words = ('Conflict. The container name "/%s" is already in use by container "%s". You have to '
                         'remove (or rename) that container to be able to reuse that name.' % (name.lstrip("/"), taken["Id"]))
                refuse(409, words, path)
        cid = digest("container", next(self._serial), name, id(self))
        config = container_config(cid, body, image)
        if body.get("MacAddress"):
            config["MacAddress"] = body["MacAddress"]   # 20.10 keeps it in Config
        host = host_config(body.get("HostConfig"))
        for key, default in HOST_LIMITS.items():
            host.setdefault(key, default)
        if (host.get("Privileged") or host.get("PidMode") == "host" or host.get("IpcMode") == "host") \
                and not any(o.startswith("label") for o in host.get("SecurityOpt") or []):
            host["SecurityOpt"] = list(host.get("SecurityOpt") or []) + ["label=disable"]   # as 20.10 does
        if host["Memory"] > 0 and not host.get("MemorySwap"):
            host["MemorySwap"] = 2 * host["Memory"]     # the engine's default swap: as much again
        mounts, anonymous = self._mount_points(cid, config, host, path)
        words = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
        attrs = {"Id": cid, "Created": now(), "Path": words[0] if words else "", "Args": words[1:],
                 "State": dict(STATE), "Image": image["Id"], "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "",
                 "LogPath": "", "Name": "/" + (name or "memory_" + cid[:8]).lstrip("/"), "RestartCount": 0,
                 "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
                 "ExecIDs": None, "HostConfig": host, "GraphDriver": {"Data": None, "Name": "overlay2"},
                 "Mounts": mounts, "Config": config, "NetworkSettings": network_settings(self._endpoints(body, host))}
        self._containers[cid] = attrs
        self._meta[cid] = {"anonymous": anonymous, "files": {}}
        self.touched.add(cid)
        return attrs

    def _mount_points(self, cid, config, host, path):
        """The container's Mounts: its binds, its mounts, and an anonymous volume at every VOLUME
        path of its image that neither takes (each volume made if it is not there)."""
        points, anonymous = [], []

        def add(kind, source, target, mode, rw, name=None):
            if any(p["Destination"] == target for p in points):
                refuse(400, "Duplicate mount point: %s" % target, path)
            if kind == "volume":
                if name is None:
                    name = digest("volume", cid, target)
                    anonymous.append(name)
                if self._find_volume(name) is None:
                    self._volumes[name] = volume_attrs(name, "local", None, None)
                    self.removed["volume"].discard(name)
                points.append({"Type": "volume", "Name": name, "Source": self._find_volume(name)["Mountpoint"],
                               "Destination": target, "Driver": "local", "Mode": mode, "RW": rw, "Propagation": ""})
            else:
                points.append({"Type": kind, "Source": source, "Destination": target, "Mode": mode, "RW": rw,
                               "Propagation": "rprivate" if kind == "bind" else ""})

        for bind in host.get("Binds") or []:
            parts = bind.split(":")
            source, target, mode = parts[0], parts[1] if len(parts) > 1 else parts[0], ":".join(parts[2:])
            rw = "ro" not in mode.split(",")
            add("bind" if source.startswith("/") else "volume", source, target, mode, rw,
                None if source.startswith("/") else source)
        for mount in host.get("Mounts") or []:
            kind = mount.get("Type") or "volume"
            add(kind, mount.get("Source") or "", mount["Target"], "z" if kind == "volume" else "",
                not mount.get("ReadOnly"), mount.get("Source") or None)
        for target in sorted(config.get("Volumes") or {}):
            if not any(p["Destination"] == target for p in points):
                add("volume", "", target, "", True)
        return points, anonymous

    @staticmethod
    def _endpoints(body, host):
        mode = host["NetworkMode"]
        if mode.startswith("container:"):
            return {}
        key = "bridge" if mode == "default" else mode
        configured = ((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).get(key) or {}
        point = endpoint(configured.get("Aliases"))
        if configured.get("IPAMConfig"):
            point["IPAMConfig"] = dict(configured["IPAMConfig"])   # an address asked for, kept as asked
        return {key: point}

    def _outcome(self, attrs):
        labels = attrs["Config"].get("Labels") or {}
        for name in (attrs["Name"][1:], labels.get("com.docker.swarm.service.name")):
            scripts = self._scripts.get(name)
            if scripts:
                return scripts.pop(0) if scripts[0]["once"] else scripts[0]
        return {}

    def _start(self, attrs, path):
        state = attrs["State"]
        if state["Running"]:
            return
        attached = []
        for key, point in attrs["NetworkSettings"]["Networks"].items():
            net = self._find_network(point.get("NetworkID") or key) or self._find_network(key)
            if net is None:
                state.update(ExitCode=128, Error="network %s not found" % key)
                refuse(404, "network %s not found" % key, path)
            point["NetworkID"] = net["Id"]       # kept when a later network fails the start, as the engine does
            attached.append((point, net))
        attrs["NetworkSettings"]["Ports"] = self._bind_ports(attrs, path)
        for point, net in attached:
            self._attach(attrs, point, net)
        state.update(Status="running", Running=True, Pid=1000 + next(self._serial), ExitCode=0, Error="",
                     StartedAt=now(), FinishedAt=state["FinishedAt"])
        outcome = self._outcome(attrs)
        if outcome.get("logs") is not None:
            self.set_logs(attrs["Name"][1:], outcome["logs"])
        test = (attrs["Config"].get("Healthcheck") or {}).get("Test")
        if test and test != ["NONE"]:
            status = outcome.get("health") or self.default_health
            state["Health"] = {"Status": status, "FailingStreak": 3 if status == "unhealthy" else 0, "Log": []}
            if outcome.get("then"):
                self._due.append((self._clock + (outcome.get("after") or 0), attrs["Id"], outcome["then"]))
        if outcome.get("exits") is not None:
            self._exit(attrs, outcome["exits"])

    def _exit(self, attrs, code):
        attrs["State"].update(Status="exited", Running=False, Pid=0, ExitCode=code, FinishedAt=now())
        if "Health" in attrs["State"]:
            attrs["State"]["Health"]["Status"] = "unhealthy"   # as 20.10 leaves a stopped container
        attrs["NetworkSettings"]["Ports"] = {}
        for point in attrs["NetworkSettings"]["Networks"].values():
            point.update(EndpointID="", Gateway="", IPAddress="", IPPrefixLen=0, MacAddress="")

    def _bind_ports(self, attrs, path):
        """NetworkSettings.Ports of a starting container: a published port on both families when
        no address is given, a random one when no port is; a port another container holds refused."""
        bindings = attrs["HostConfig"].get("PortBindings") or {}
        ports = {}
        for port in sorted(set(attrs["Config"].get("ExposedPorts") or {}) | set(bindings)):
            bound = []
            for binding in bindings.get(port) or []:
                host_port = binding.get("HostPort") or self._free_port()
                for address in [binding["HostIp"]] if binding.get("HostIp") else ["0.0.0.0", "::"]:
                    holder = self._port_holder(address, host_port, port.partition("/")[2], attrs["Id"])
                    if holder is not None:
                        words = ("driver failed programming external connectivity on endpoint %s (%s): Bind for %s:%s "
                                 "failed: port is already allocated"
                                 % (attrs["Name"][1:], digest("endpoint", attrs["Id"]), address, host_port))
                        refuse(500, words, path)
                    bound.append({"HostIp": address, "HostPort": str(host_port)})
            ports[port] = bound or None
        return ports

    def _port_holder(self, address, host_port, proto, own):
        wildcard = ("0.0.0.0", "::", "")
        for other in self._containers.values():
            if other["Id"] == own or not other["State"]["Running"]:
                continue
            for port, bound in (other["NetworkSettings"].get("Ports") or {}).items():
                for binding in bound or []:
                    if port.partition("/")[2] == proto and binding["HostPort"] == str(host_port) and (
                            address in wildcard or binding["HostIp"] in wildcard or binding["HostIp"] == address):
                        return other
        return None

    def _free_port(self):
        while any(self._port_holder("0.0.0.0", self._next_port, proto, None) for proto in ("tcp", "udp")):
            self._next_port += 1
        self._next_port += 1
        return str(self._next_port - 1)

    def _attach(self, attrs, point, net):
        """An address for a running container in `net` (the next free one of its subnet)."""
        pools = (net.get("IPAM") or {}).get("Config") or []
        address, prefix, gateway = "", 0, ""
        if pools and pools[0].get("Subnet"):
            subnet = ipaddress.ip_network(pools[0]["Subnet"], strict=False)
            gateway = pools[0].get("Gateway") or str(next(subnet.hosts()))
            used = set(p.get("IPAddress") for c in self._containers.values()
                       for p in c["NetworkSettings"]["Networks"].values() if p.get("NetworkID") == net["Id"])
            asked = (point.get("IPAMConfig") or {}).get("IPv4Address")
            address = asked or next(str(h) for h in subnet.hosts() if str(h) != gateway and str(h) not in used)
            prefix = subnet.prefixlen
        point.update(NetworkID=net["Id"], EndpointID=digest("endpoint", attrs["Id"], net["Id"], next(self._serial)),
                     Gateway=gateway, IPAddress=address, IPPrefixLen=prefix,
                     MacAddress="02:42:" + ":".join("%02x" % int(o) for o in address.split(".")) if address else "")
        point["Aliases"] = self._aliases(point.get("Aliases"), attrs, net)

    @staticmethod
    def _aliases(aliases, attrs, net):
        """A container's aliases in a network of the user's: its short id joins them (20.10)."""
        if net["Name"] in PREDEFINED:
            return aliases or None
        aliases = list(aliases or [])
        return aliases + [attrs["Id"][:12]] if attrs["Id"][:12] not in aliases else aliases

    def _attached(self, attrs, net):
        """The key of `net` in the container's networks, or None."""
        for key, point in attrs["NetworkSettings"]["Networks"].items():
            if point.get("NetworkID") == net["Id"] or (not point.get("NetworkID") and key == net["Name"]):
                return key
        return None
    # -- containers ---------------------------------------------------------------------

    @api_method
    def inspect_container(self, container):
        return self._container(container)

    @api_method
    def create_container(self, image, command=None, name=None, labels=None, host_config=None, **others):
        body = _body(self.api_version, image, command, labels, host_config, others)
        return {"Id": self._create(body, name, "/containers/create?name=%s" % (name or ""))["Id"], "Warnings": []}

    @api_method
    def create_container_from_config(self, config, name=None, platform=None):  # pylint: disable=unused-argument
        """The engine's own create body (a release's record: docker/recorded_calls.py)."""
        return {"Id": self._create(copy.deepcopy(config), name, "/containers/create?name=%s" % (name or ""))["Id"],
                "Warnings": []}

    @api_method
    def start(self, container, *args, **kwargs):
        attrs = self._container(container, "/containers/%s/start")
        self._start(attrs, "/containers/%s/start" % container)
        self.touched.add(attrs["Id"])

    @api_method
    def stop(self, container, timeout=None):
        attrs = self._container(container, "/containers/%s/stop")
        if attrs["State"]["Running"]:
            self._exit(attrs, 0)
        self.touched.add(attrs["Id"])

    @api_method
    def restart(self, container, timeout=10):
        attrs = self._container(container, "/containers/%s/restart")
        if attrs["State"]["Running"]:
            self._exit(attrs, 0)
        self._start(attrs, "/containers/%s/restart" % container)
        self.touched.add(attrs["Id"])

    @api_method
    def update_container(self, container, mem_limit=None, mem_reservation=None, memswap_limit=None, cpu_shares=None,
                         restart_policy=None, nano_cpus=None, pids_limit=None, **_others):
        """`docker update`: the limits and the restart policy of a container, as 20.10 changes them
        (POST /containers/{id}/update: NanoCpus 0 leaves the limit as it is; PidsLimit 0 or -1 takes it away)."""
        path = "/containers/%s/update" % container
        attrs = self._container(container, path)
        host = attrs["HostConfig"]
        memory = mem_limit if mem_limit is not None else host.get("Memory") or 0
        swap = memswap_limit if memswap_limit is not None else host.get("MemorySwap") or 0
        if memory and 0 < swap < memory:
            refuse(500, "Cannot update container %s: Memory limit should be smaller than already set memoryswap limit, "
                   "update the memoryswap at the same time" % attrs["Id"], path)
        if nano_cpus and (host.get("CpuPeriod") or host.get("CpuQuota")):
            refuse(409, "Cannot update container %s: Conflicting options: Nano CPUs cannot be updated as CPU %s has "
                   "already been set" % (attrs["Id"], "Period" if host.get("CpuPeriod") else "Quota"), path)
        for key, value in (("Memory", mem_limit), ("MemoryReservation", mem_reservation), ("MemorySwap", memswap_limit),
                           ("CpuShares", cpu_shares), ("NanoCpus", nano_cpus or None)):
            if value is not None:
                host[key] = value
        if pids_limit is not None:
            host["PidsLimit"] = pids_limit if pids_limit > 0 else 0
        if restart_policy is not None:
            host["RestartPolicy"] = {"Name": restart_policy.get("Name") or "",
                                     "MaximumRetryCount": restart_policy.get("MaximumRetryCount", 0)}
        self.touched.add(attrs["Id"])
        return {"Warnings": None}

    @api_method
    def rename(self, container, name):
        path = "/containers/%s/rename?name=%s" % (container, name)
        attrs = self._container(container, path)
        new = "/" + (name or "").lstrip("/")
        if not NAME.match(name or ""):
            refuse(400, "Error when allocating new name: Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                   "are allowed" % new, path)
        if attrs["Name"] == new:
            refuse(400, "Renaming a container with the same name as its current name", path)
        taken = self._by_name(name)
        if taken is not None:
            refuse(409, 'Error when allocating new name: Conflict. The container name "%s" is already in use by '
                   'container "%s". You have to remove (or rename) that container to be able to reuse that name.'
                   % (new, taken["Id"]), path)
        attrs["Name"] = new
        self.touched.add(attrs["Id"])

    @api_method
    def remove_container(self, container, v=False, link=False, force=False):
        path = "/containers/%s?v=%s&link=%s&force=%s" % (container, v, link, force)
        attrs = self._container(container, path)
        if attrs["State"]["Running"] and not force:
            refuse(409, "You cannot remove a running container %s. Stop the container before attempting removal or "
                   "force remove" % attrs["Id"], path)
        del self._containers[attrs["Id"]]
        meta = self._meta.pop(attrs["Id"], {})
        self.removed["container"].add(attrs["Id"])
        self.touched.add(attrs["Id"])
        for name in meta.get("anonymous", []) if v else []:
            if self._find_volume(name) is not None and not self._volume_users(name):
                self._volumes.pop(name, None)
                self._volume_files.pop(name, None)
                self.removed["volume"].add(name)

    @api_method
    def wait(self, container, timeout=None, condition=None):
        """A running container stops now: as its scripted exit says, else with 0 (its command ended)."""
        attrs = self._container(container, "/containers/%s/wait")
        if attrs["State"]["Running"]:
            self._exit(attrs, self._outcome(attrs).get("exits") or 0)
            self.touched.add(attrs["Id"])
        return {"Error": None, "StatusCode": attrs["State"]["ExitCode"]}

    @api_method
    def logs(self, container, stdout=True, stderr=True, stream=False, timestamps=False, tail="all", since=None,
             follow=None, until=None):
        attrs = self._container(container, "/containers/%s/logs")
        live = self._passthrough(attrs)
        if live is not None:
            return live.logs(attrs["Id"], stdout=stdout, stderr=stderr, timestamps=timestamps, tail=tail)
        lines = self._logs.get(attrs["Name"][1:], b"").splitlines(True)
        return b"".join(lines[-int(tail):] if tail not in ("all", None) and int(tail) > 0 else lines)
