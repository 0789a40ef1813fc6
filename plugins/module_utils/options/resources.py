# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource options: memory, CPU and pids limits and CPU shares (changed in place, `docker update`: the
gateway sends NanoCpus and PidsLimit, which the SDK's update_container lacks), process and OOM settings,
ulimits, sysctls and the log driver."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.options.table import Option, SwarmField, checked, size_bytes


def _host(attrs):
    return attrs.get("HostConfig") or {}


def _positive(api_key):
    """HostConfig's number, None when the engine's "no limit" (0 or less)."""
    return lambda attrs: _host(attrs).get(api_key) if (_host(attrs).get(api_key) or 0) > 0 else None


def _bytes(option_name):
    def normal(value, ctx):
        if value is None:
            return None
        size = checked(BY_NAME[option_name], ctx, size_bytes, value)
        return size or None
    return normal


def _host_body(keyword):
    def body(value, made):
        if value is not None:
            made.host[keyword] = value
    return body


def _cpus(value, ctx):
    if value is None:
        return None
    if value < 0:
        raise BY_NAME["cpus"].problem(ctx, "must be 0 or more, got %s" % value)
    return round(value * 1e9) / 1e9 or None


def _read_cpus(attrs):
    nano = _host(attrs).get("NanoCpus") or 0
    return nano / 1e9 if nano > 0 else None


def _int_or_none(value, _ctx):
    return int(value) if value else None


def _ulimits(value, ctx):
    """Compose's form: name -> a number (soft and hard) or {soft, hard}."""
    normal = {}
    for name, limit in sorted((value or {}).items()):
        if isinstance(limit, dict):
            if set(limit) - {"soft", "hard"} or "soft" not in limit or "hard" not in limit:
                raise BY_NAME["ulimits"].problem(ctx, "%s: give a number, or soft and hard" % name)
            soft, hard = limit["soft"], limit["hard"]
        else:
            soft = hard = limit
        try:
            normal[str(name)] = {"soft": int(soft), "hard": int(hard)}
        except (TypeError, ValueError):
            raise BY_NAME["ulimits"].problem(ctx, "%s: %r is not a number" % (name, limit))
    return normal


def _ulimits_of_api(ulimits):
    return dict((u.get("Name"), {"soft": u.get("Soft"), "hard": u.get("Hard")}) for u in ulimits or [])


def _api_ulimits(value):
    return [{"Name": name, "Soft": limit["soft"], "Hard": limit["hard"]} for name, limit in sorted(value.items())]


def _read_ulimits(attrs):
    return _ulimits_of_api(_host(attrs).get("Ulimits"))


def _ulimits_body(value, made):
    if value:
        made.host["ulimits"] = [{"name": name, "soft": limit["soft"], "hard": limit["hard"]}
                                for name, limit in sorted(value.items())]


def _logging(value, ctx):
    if not value:
        return None
    if not value.get("driver"):
        raise BY_NAME["logging"].problem(ctx, "driver is required")
    return {"driver": value["driver"], "options": dict((k, str(v)) for k, v in (value.get("options") or {}).items())}


def _read_logging(attrs):
    config = _host(attrs).get("LogConfig") or {}
    if not config.get("Type"):
        return None
    return {"driver": config["Type"], "options": dict(config.get("Config") or {})}


OPTIONS = [
    Option("mem_limit", dict(type="raw"), "Memory limit, like C(512m) or C(2g) (bytes when a number).",
           normal=_bytes("mem_limit"), read=_positive("Memory"), body=_host_body("mem_limit"), update=True,
           compose=("mem_limit", "deploy.resources.limits.memory"),
           swarm=SwarmField(("TaskTemplate", "Resources", "Limits", "MemoryBytes"))),
    Option("mem_reservation", dict(type="raw"), "Memory soft limit (reservation), like C(256m).",
           normal=_bytes("mem_reservation"), read=_positive("MemoryReservation"), body=_host_body("mem_reservation"),
           update=True, compose=("mem_reservation", "deploy.resources.reservations.memory"),
           swarm=SwarmField(("TaskTemplate", "Resources", "Reservations", "MemoryBytes"))),
    Option("cpus", dict(type="float"), "CPU limit in CPUs, like C(0.5) or C(2).", normal=_cpus, read=_read_cpus,
           body=lambda value, made: made.host.update(nano_cpus=int(round(value * 1e9))) if value else None, update=True,
           compose=("cpus", "deploy.resources.limits.cpus"),
           swarm=SwarmField(("TaskTemplate", "Resources", "Limits", "NanoCPUs"), to_api=lambda cpus: int(round(cpus * 1e9)),
                            from_api=lambda nano: nano / 1e9 if nano > 0 else None)),
    Option("cpu_shares", dict(type="int"), "CPU shares, the container's relative weight (the engine's default 1024).",
           normal=_int_or_none, read=_positive("CpuShares"), body=_host_body("cpu_shares"), update=True,
           compose=("cpu_shares",)),
    Option("pids_limit", dict(type="int"), "The most processes the container may run (0 or less: no limit).",
           normal=lambda value, _ctx: value if value and value > 0 else None, read=_positive("PidsLimit"),
           body=_host_body("pids_limit"), update=True, compose=("pids_limit", "deploy.resources.limits.pids"),
           swarm=SwarmField(("TaskTemplate", "Resources", "Limits", "Pids"), from_api=lambda pids: pids if pids > 0 else None)),
    Option("oom_score_adj", dict(type="int"), "The OOM killer's preference for the container's processes, -1000 to "
           "1000.", normal=_int_or_none, read=lambda attrs: _host(attrs).get("OomScoreAdj") or None,
           body=_host_body("oom_score_adj"), compose=("oom_score_adj",)),
    Option("ulimits", dict(type="dict"), "Resource limits of the processes, each C(name: number) or C(name: {soft: n, "
           "hard: m}), like C(nofile: {soft: 20000, hard: 40000}).", normal=_ulimits, read=_read_ulimits,
           body=_ulimits_body, compose=("ulimits",),
           swarm=SwarmField(("TaskTemplate", "ContainerSpec", "Ulimits"), to_api=_api_ulimits, from_api=_ulimits_of_api)),
    Option("sysctls", dict(type="dict"), "Kernel parameters of the container's namespaces, like "
           "C(net.core.somaxconn: 1024).", normal=lambda value, _ctx: dict((str(k), str(v)) for k, v in (value or {}).items()),
           read=lambda attrs: dict(_host(attrs).get("Sysctls") or {}),
           body=lambda value, made: made.host.update(sysctls=value) if value else None, compose=("sysctls",),
           swarm=SwarmField(("TaskTemplate", "ContainerSpec", "Sysctls"), from_api=dict)),
    Option("logging", dict(type="dict", options=dict(driver=dict(type="str", required=True),
                                                     options=dict(type="dict", default={}))),
           "The log driver and its options, like C({driver: json-file, options: {max-size: 10m}}).",
           normal=_logging, read=_read_logging, accepts=lambda running: not (running or {}).get("options"),
           body=lambda value, made: made.host.update(log_config={"type": value["driver"], "config": value["options"]})
           if value else None, compose=("logging",),
           swarm=SwarmField(("TaskTemplate", "LogDriver"), to_api=lambda value: {"Name": value["driver"], "Options": value["options"]},
                            from_api=lambda driver: {"driver": driver.get("Name"), "options": dict(driver.get("Options") or {})}
                            if driver.get("Name") else None),
           subdocs=dict(driver="The log driver, like C(json-file), C(local) or C(syslog).",
                        options="The driver's options, like C(max-size: 10m)."),
           details=("Not set, the engine's default driver, which is then not compared.",)),
]
BY_NAME = dict((o.name, o) for o in OPTIONS)
