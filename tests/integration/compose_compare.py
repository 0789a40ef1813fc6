"""What two tools made of one declaration, compared container by container: the stack module
and docker-compose (tests/integration/test_compose_export_deploy.py; bench/run.py compares the same way).
Plain functions of `docker inspect` output, no engine access of their own."""


def service_of(attrs):
    """The resource or compose service a container is."""
    labels = attrs["Config"].get("Labels") or {}
    return labels.get("io.clockwork.resource") or labels.get("com.docker.compose.service")


def snapshot(attrs, prefix):
    """What matters of each container for the comparison of the two tools: the same image,
    command, env, healthcheck, ports, mounts and networks (named by what follows the stack's or
    project's name), the service's name as DNS alias on each."""
    shape = {}
    for a in attrs:
        name = service_of(a)
        networks = {}
        for net, endpoint in (a["NetworkSettings"].get("Networks") or {}).items():
            networks[net[len(prefix) + 1:] if net.startswith(prefix) else net] = name in (endpoint.get("Aliases") or [])
        config = a["Config"]
        shape[name] = {"image": config["Image"], "cmd": config.get("Cmd"), "entrypoint": config.get("Entrypoint"),
                       "env": sorted(config.get("Env") or []), "healthcheck": config.get("Healthcheck"),
                       "ports": sorted(config.get("ExposedPorts") or {}), "networks": networks,
                       "mounts": sorted(m["Destination"] for m in a.get("Mounts") or []),
                       "restart": (a["HostConfig"].get("RestartPolicy") or {}).get("Name") or "no"}
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
