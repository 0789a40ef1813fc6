"""What two tools made of one declaration, compared container by container: the stack module
and Compose v2 (tests/integration/test_compose_*_deploy.py; bench/run.py compares the same way).
Plain functions of `docker inspect` output, no engine access of their own, and the way tests run
Compose v2: `docker compose` with the CLI plugin `make compose` places in the project's .docker/."""
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The project's own DOCKER_CONFIG directory, with cli-plugins/docker-compose (Makefile, target compose).
COMPOSE_CONFIG = os.path.join(ROOT, ".docker")


def compose_v2_missing():
    """Why Compose v2 cannot be run here (a skip reason), or None."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    if not os.access(os.path.join(COMPOSE_CONFIG, "cli-plugins", "docker-compose"), os.X_OK):
        return "Compose v2 is not installed: run `make compose`"
    return None


def compose_v2(args, cwd=None, env=None, timeout=300):
    """`docker compose ARGS` (v2), run with the project's DOCKER_CONFIG: a CompletedProcess with text."""
    return subprocess.run(["docker", "compose"] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **dict(env or {}, DOCKER_CONFIG=COMPOSE_CONFIG)))


def service_of(attrs):
    """The resource or compose service a container is."""
    labels = attrs["Config"].get("Labels") or {}
    return labels.get("io.clockwork.resource") or labels.get("com.docker.compose.service")


def _own(name, prefix):
    """An engine name (network, volume) as the declaration says it: without the stack's or project's name."""
    for separator in ("_", "-"):
        if name.startswith(prefix + separator):
            return name[len(prefix) + 1:]
    return name


def _empty(value):
    """The engine says nothing as null, [], {} or "" depending on who created the container."""
    return None if value in (None, [], {}, "", 0) else value


def _sorted(value):
    return sorted(value) if value else None


def _labels(attrs, _prefix):
    """The container's labels less those each tool adds of its own."""
    labels = attrs["Config"].get("Labels") or {}
    own = ("com.docker.compose.", "io.clockwork.")
    return dict((k, v) for k, v in labels.items() if not k.startswith(own)) or None


def _hostname(attrs, _prefix):
    """A declared hostname; the engine's default (the container's id) is no field of either tool."""
    hostname = attrs["Config"].get("Hostname")
    return None if not hostname or attrs["Id"].startswith(hostname) else hostname


def _published(attrs, _prefix):
    bindings = attrs["HostConfig"].get("PortBindings") or {}
    return _sorted(["%s:%s->%s" % (b.get("HostIp") or "", b.get("HostPort") or "", port)
                    for port, listed in bindings.items() for b in listed or []])


def _mounts(attrs, prefix):
    """Each mount's kind, where its source is (a named volume by its own name; an anonymous one
    as anonymous: its name is random), where it is, and whether it is read-only."""
    found = []
    for m in attrs.get("Mounts") or []:
        if m["Type"] == "volume":
            anonymous = len(m.get("Name") or "") == 64 and all(c in "0123456789abcdef" for c in m["Name"])
            source = "(anonymous)" if anonymous else _own(m.get("Name") or "", prefix)
        else:
            source = m.get("Source") or ""
        found.append("%s %s:%s%s" % (m["Type"], source, m["Destination"], "" if m.get("RW", True) else ":ro"))
    return sorted(found)


def _networks_full(attrs, prefix):
    """Each network by its own name, with the aliases and addresses declared (the service's and the
    container's own names, which both tools give, left out)."""
    name, result = service_of(attrs), {}
    own_names = set([name, attrs["Name"].lstrip("/"), attrs["Id"][:12], attrs["Config"].get("Hostname")])
    for net, endpoint in (attrs["NetworkSettings"].get("Networks") or {}).items():
        config = endpoint.get("IPAMConfig") or {}
        result[_own(net, prefix)] = {"aliases": sorted(set(endpoint.get("Aliases") or []) - own_names),
                                     "ipv4_address": config.get("IPv4Address") or None}
    return result


def _network_mode(attrs, prefix):
    """host, none, container:... as they are; a network of the stack (the default) by its own name."""
    mode = attrs["HostConfig"].get("NetworkMode") or "default"
    if mode in ("host", "none", "bridge", "default") or mode.startswith(("container:", "service:")):
        return mode if mode not in ("bridge", "default") else None
    return None   # a network of the stack's or project's: `networks` compares them


def _capabilities(key):
    """Capabilities by their names: the engine keeps them as asked, CAP_CHOWN or CHOWN."""
    return lambda attrs, _prefix: _sorted(set(str(c).upper().replace("CAP_", "", 1)
                                              for c in attrs["HostConfig"].get(key) or []))


def _host(key):
    return lambda attrs, _prefix: _empty(attrs["HostConfig"].get(key))


def _host_list(key):
    return lambda attrs, _prefix: _sorted(attrs["HostConfig"].get(key))


def _config(key):
    return lambda attrs, _prefix: _empty(attrs["Config"].get(key))


def _log(attrs, _prefix):
    log = attrs["HostConfig"].get("LogConfig") or {}
    return {"type": log.get("Type"), "config": log.get("Config") or {}}


def _ulimits(attrs, _prefix):
    return _sorted(["%s=%s:%s" % (u["Name"], u["Soft"], u["Hard"]) for u in attrs["HostConfig"].get("Ulimits") or []])


def _devices(attrs, _prefix):
    return _sorted(["%s:%s:%s" % (d["PathOnHost"], d["PathInContainer"], d["CgroupPermissions"])
                    for d in attrs["HostConfig"].get("Devices") or []])


def _tmpfs(attrs, _prefix):
    """tmpfs mounts whichever way they were asked for (HostConfig.Tmpfs or a mount of type tmpfs)."""
    found = dict(attrs["HostConfig"].get("Tmpfs") or {})
    for m in attrs["HostConfig"].get("Mounts") or []:
        if m.get("Type") == "tmpfs":
            options = m.get("TmpfsOptions") or {}
            found[m["Target"]] = ",".join("%s=%s" % (k, options[k]) for k in sorted(options))
    return found or None


# The fields of the option table (plugins/module_utils/options/) as the engine shows them, each
# normalised so that the same declaration reads the same from either tool.
FULL_FIELDS = {
    "user": _config("User"), "working_dir": _config("WorkingDir"), "hostname": _hostname,
    "domainname": _config("Domainname"), "stop_signal": _config("StopSignal"), "stop_timeout": _config("StopTimeout"),
    "mac_address": lambda attrs, _p: _empty(attrs["Config"].get("MacAddress")),
    "labels": _labels, "published": _published, "mounts_full": _mounts, "networks_full": _networks_full,
    "network_mode": _network_mode, "cap_add": _capabilities("CapAdd"), "cap_drop": _capabilities("CapDrop"),
    "read_only": _host("ReadonlyRootfs"), "privileged": _host("Privileged"), "security_opt": _host_list("SecurityOpt"),
    "tmpfs": _tmpfs, "shm_size": _host("ShmSize"), "ulimits": _ulimits, "sysctls": _host("Sysctls"),
    "init": _host("Init"), "dns": _host_list("Dns"), "dns_search": _host_list("DnsSearch"),
    "dns_opt": _host_list("DnsOptions"), "extra_hosts": _host_list("ExtraHosts"), "logging": _log,
    "mem_limit": _host("Memory"), "mem_reservation": _host("MemoryReservation"), "cpus": _host("NanoCpus"),
    "cpu_shares": _host("CpuShares"), "pids_limit": _host("PidsLimit"), "oom_score_adj": _host("OomScoreAdj"),
    "group_add": _host_list("GroupAdd"), "devices": _devices, "pid": _host("PidMode"), "ipc": _host("IpcMode"),
    "userns_mode": _host("UsernsMode"),
    "restart_retries": lambda attrs, _p: _empty((attrs["HostConfig"].get("RestartPolicy") or {}).get(
        "MaximumRetryCount")),
}


def exposed(config):
    """The exposed ports, each with its protocol: Compose v2 asks the engine for "8000" where it means
    8000/tcp (an engine of 20.10 keeps it so), the stack "8000/tcp"."""
    return sorted(set(p if "/" in p else p + "/tcp" for p in config.get("ExposedPorts") or {}))


def snapshot(attrs, prefix, full=False):
    """What matters of each container for the comparison of the two tools: the same image,
    command, env, healthcheck, ports, mounts and networks (named by what follows the stack's or
    project's name), the service's name as DNS alias on each. full: every field of FULL_FIELDS
    too (user, capabilities, read-only root, tmpfs, ulimits, networks with aliases, anonymous
    volumes ...)."""
    shape = {}
    for a in attrs:
        name = service_of(a)
        networks = {}
        for net, endpoint in (a["NetworkSettings"].get("Networks") or {}).items():
            networks[net[len(prefix) + 1:] if net.startswith(prefix) else net] = name in (endpoint.get("Aliases") or [])
        config = a["Config"]
        shape[name] = {"image": config["Image"], "cmd": config.get("Cmd"), "entrypoint": config.get("Entrypoint"),
                       "env": sorted(config.get("Env") or []), "healthcheck": config.get("Healthcheck"),
                       "ports": exposed(config), "networks": networks,
                       "mounts": sorted(m["Destination"] for m in a.get("Mounts") or []),
                       "restart": (a["HostConfig"].get("RestartPolicy") or {}).get("Name") or "no"}
        if full:
            shape[name].update((field, read(a, prefix)) for field, read in FULL_FIELDS.items())
    return shape


def differences(ours, theirs, sides=("clockwork", "compose")):
    """One line per container or field that differs."""
    found = []
    for name in sorted(set(ours) | set(theirs)):
        if name not in ours or name not in theirs:
            found.append("%s: only %s" % (name, sides[0] if name in ours else sides[1]))
            continue
        for key in sorted(ours[name]):
            if ours[name][key] != theirs[name][key]:
                found.append("%s %s: %s %r, %s %r" % (name, key, sides[0], ours[name][key], sides[1],
                                                      theirs[name][key]))
    return found
