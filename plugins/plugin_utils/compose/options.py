# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Compose side of the container option table (module_utils/options/): for each option with
Compose keys, how from_compose reads them into the field (`load`) and how to_compose writes the
field back (`dump`). Adding a field of the container resource is its table entry, its converter
here and their tests (tests/unit/test_compose_options.py holds every option with a Compose key
to having one).

Most options are one Compose key to one field. The options whose keys carry connections (env,
mounts, networks, ports, the grants of the host...) are read and written by rules.py, guard.py and
exporter.py: their converter names where (`by`), so that the table stays the one list.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.options.registry import TABLE

# The options rules.py, guard.py and exporter.py convert themselves, with the reason.
ELSEWHERE = {
    "image": "rules.Declaration._container; a build-only service has none",
    "command": "rules.Declaration._container",
    "ports": "service.read_ports and stack_port; exporter.Export.ports",
    "mounts": "rules.Declaration._mounts (a bind or a shared volume is a file connection); exporter.Export.mounts",
    "healthcheck": "rules.Declaration._healthcheck; exporter.Export.healthcheck",
    "restart_policy": "rules.Declaration._container (restart, deploy.restart_policy); exporter.Export.restart_and_deploy",
    "networks": "rules.Declaration._attach (a named network of the file); exporter.Export.service_networks",
    "env": "importer.service_env and the env rules (connections); exporter.Export.service",
    "labels": "service.read_service; exporter.Export.service",
    "stop_grace_period": "service.deploy_fields; exporter.Export.restart_and_deploy",
    "privileged": "guard.Grants.service (an opt-in); exporter.Export.grants",
    "cap_add": "guard.Grants.service (an opt-in); exporter.Export.grants",
    "devices": "guard.Grants.service (an opt-in); exporter.Export.grants",
    "pid_mode": "guard.Grants.service for host, the converter below for the others; exporter.Export.grants",
    "ipc_mode": "guard.Grants.service for host, the converter below for the others; exporter.Export.grants",
    "userns_mode": "guard.Grants.service (an opt-in); exporter.Export.grants",
}

# deploy.resources keys that are fields (their place in deploy.resources -> the option).
RESOURCE_KEYS = {("limits", "memory"): "mem_limit", ("limits", "cpus"): "cpus", ("limits", "pids"): "pids_limit",
                 ("reservations", "memory"): "mem_reservation"}
# Compose's pull policies the container resource has, as it names them.
PULL_POLICIES = {"missing": "missing", "if_not_present": "missing", "always": "always", "never": "never"}


class Reader(object):
    """What a load needs: the service's name, and the report its problems and warnings go to."""

    def __init__(self, name, report):
        self.name, self.report = name, report

    def warn(self, key, message):
        self.report.warn(["services", self.name] + key.split("."), message)

    def problem(self, key, message):
        self.report.problem(["services", self.name] + key.split("."), message)


class Converter(object):
    """load(service, reader) -> the field's value or None; dump(value, service) writes the Compose
    key(s); `by`: where the conversion is made instead (ELSEWHERE)."""

    def __init__(self, load=None, dump=None, by=None):
        self.load, self.dump, self.by = load, dump, by


def _text(value):
    return value if isinstance(value, str) else str(value)


def _strings(value):
    return [_text(v) for v in ([value] if isinstance(value, (str, int)) else value or [])]


def same_key(key, convert=None, back=None):
    """One Compose key to one field, through `convert` (and `back` on export)."""
    def load(service, reader):
        value = service.get(key)
        if value is None:
            return None
        try:
            return convert(value) if convert else value
        except (TypeError, ValueError) as exc:
            reader.problem(key, "%r: %s" % (value, exc))
            return None

    def dump(value, service):
        service[key] = back(value) if back else value
    return Converter(load, dump)


def _integer(value):
    if isinstance(value, bool) or not str(value).lstrip("-").isdigit():
        raise ValueError("not a whole number")
    return int(value)


def _boolean(value):
    if not isinstance(value, bool):
        raise ValueError("not true or false")
    return value


def _mapping(value):
    """A list (key=value) or mapping form as a mapping of strings."""
    if isinstance(value, dict):
        return dict((str(k), _text(v)) for k, v in value.items())
    return dict(str(item).partition("=")[::2] for item in value)


def _resource(option):
    """mem_limit, cpus, pids_limit, mem_reservation: the service key, else deploy.resources."""
    own = dict((o.name, o.compose) for o in TABLE)[option][0]
    place = next(k for k, v in RESOURCE_KEYS.items() if v == option)
    convert = {"cpus": float, "pids_limit": _integer}.get(option)

    def load(service, reader):
        deployed = ((service.get("deploy") or {}).get("resources") or {}).get(place[0]) or {}
        given = [(k, v) for k, v in ((own, service.get(own)), ("deploy.resources.%s.%s" % place, deployed.get(place[1])))
                 if v is not None]
        if not given:
            return None
        key, value = given[0]
        try:
            value = convert(value) if convert else value
            other = convert(given[1][1]) if convert and len(given) > 1 else (given[1][1] if len(given) > 1 else value)
        except (TypeError, ValueError) as exc:
            reader.problem(key, "%r: %s" % (value, exc))
            return None
        if str(other) != str(value):
            reader.problem(given[1][0], "%s differs from %s %s, which Compose refuses" % (other, key, value))
        return value

    def dump(value, service):
        service[own] = value
    return Converter(load, dump)


def _network_mode(service, reader):
    mode = service.get("network_mode")
    if mode is None or mode == "host":   # host: a grant, said by guard.Grants.service
        return None
    mode = str(mode)
    if mode.startswith("service:"):   # the stack names a container after its service
        return "container:" + mode[len("service:"):]
    if mode != "none" and not mode.startswith("container:"):
        reader.problem("network_mode", "%s: the stack takes none, service:<name> or container:<name> (the "
                                       "service's networks say the rest)" % mode)
        return None
    return mode


def _not_host(key):
    """pid and ipc other than host (host is a grant: guard.Grants.service keeps or refuses it)."""
    def load(service, reader):
        value = service.get(key)
        if value is None or str(value) == "host":
            return None
        value = str(value)
        return "container:" + value[len("service:"):] if value.startswith("service:") else value
    return Converter(load, lambda value, service: service.__setitem__(key, value))


def _pull_policy(service, reader):
    policy = service.get("pull_policy")
    if policy is None:
        return None
    if policy not in PULL_POLICIES:
        reader.warn("pull_policy", "%s: the stack pulls when the image is missing, always or never; left out" % policy)
        return None
    return PULL_POLICIES[policy]


def _logging(service, reader):
    logging = service.get("logging")
    if not logging:
        return None
    if not logging.get("driver"):
        reader.warn("logging", "options without a driver: the engine's default driver takes them; left out")
        return None
    options = dict((str(k), _text(v)) for k, v in (logging.get("options") or {}).items())
    return dict({"driver": logging["driver"]}, **({"options": options} if options else {}))


def _dump_logging(value, service):
    service["logging"] = dict({"driver": value["driver"]}, **({"options": value["options"]} if value.get("options") else {}))


def _security_opt(service, reader):
    """security_opt (one that takes a confinement away is asked for by guard.Grants.service)."""
    return _strings(service.get("security_opt")) if service.get("security_opt") is not None else None


def _ulimits(value):
    return dict((str(k), v if isinstance(v, dict) else _integer(v)) for k, v in value.items())


CONVERTERS = dict(
    (name, Converter(by=where)) for name, where in ELSEWHERE.items())
CONVERTERS.update(
    tmpfs=same_key("tmpfs", _strings),
    shm_size=same_key("shm_size"),
    network_mode=Converter(_network_mode, lambda value, service: service.__setitem__("network_mode", value)),
    hostname=same_key("hostname", _text),
    domainname=same_key("domainname", _text),
    mac_address=same_key("mac_address", _text),
    extra_hosts=same_key("extra_hosts", lambda v: _mapping(v) if isinstance(v, dict) else _strings(v)),
    dns=same_key("dns", _strings),
    dns_search=same_key("dns_search", _strings),
    dns_opt=same_key("dns_opt", _strings),
    cap_drop=same_key("cap_drop", _strings),
    read_only=same_key("read_only", _boolean),
    security_opt=Converter(_security_opt, lambda value, service: service.__setitem__("security_opt", list(value))),
    user=same_key("user", _text),
    working_dir=same_key("working_dir", _text),
    entrypoint=same_key("entrypoint"),
    init=same_key("init", _boolean),
    stop_signal=same_key("stop_signal", _text),
    group_add=same_key("group_add", _strings),
    pull_policy=Converter(_pull_policy, lambda value, service: service.__setitem__("pull_policy", value)),
    platform=same_key("platform", _text),
    mem_limit=_resource("mem_limit"),
    mem_reservation=_resource("mem_reservation"),
    cpus=_resource("cpus"),
    cpu_shares=same_key("cpu_shares", _integer),
    pids_limit=_resource("pids_limit"),
    oom_score_adj=same_key("oom_score_adj", _integer),
    ulimits=same_key("ulimits", _ulimits),
    sysctls=same_key("sysctls", _mapping),
    logging=Converter(_logging, _dump_logging),
)
CONVERTERS["pid_mode"] = Converter(_not_host("pid").load, _not_host("pid").dump, by=ELSEWHERE["pid_mode"])
CONVERTERS["ipc_mode"] = Converter(_not_host("ipc").load, _not_host("ipc").dump, by=ELSEWHERE["ipc_mode"])


def compose_keys():
    """Every Compose service key the table maps, as its top-level key (deploy.resources... -> deploy)."""
    return sorted(set(key.split(".")[0] for option in TABLE for key in option.compose))


def loaded_fields(service, reader):
    """{field: value} of the converters that read the service themselves, in the table's order."""
    fields = {}
    for option in TABLE:
        converter = CONVERTERS.get(option.name)
        if converter is not None and converter.load is not None:
            value = converter.load(service, reader)
            if value not in (None, [], {}, ""):   # an empty list or mapping says what not giving it says
                fields[option.name] = value
    return fields


def dumped_keys(resource, service, engine="docker"):
    """The converters' Compose keys of a declared container resource, written into `service`; on
    Swarm the options a service cannot have are the plan's refusal, not written."""
    for option in TABLE:
        converter = CONVERTERS.get(option.name)
        if converter is None or converter.dump is None or converter.by or resource.get(option.name) is None:
            continue
        if engine == "swarm" and option.swarm is None:
            continue
        converter.dump(resource[option.name], service)
    return service


# -- the README's table of what each Compose key becomes ------------------------------------------

README_BEGIN = "<!-- compose keys: written from the option table by scripts/compose_readme_table.py; do not edit -->"
README_END = "<!-- end of the generated compose keys -->"
# What a key becomes beyond its field, for the options converted elsewhere.
README_NOTES = {
    "ports": "short and long syntax, ranges, protocols, host IP; `expose` without publishing",
    "mounts": "named volumes, anonymous volumes (`- /code/node_modules`), tmpfs, `bind.propagation`, `volume.nocopy`; "
              "a bind, or a volume two services share, is a `file` connection; a bind of the Docker socket or a system "
              "path is the `docker_socket` or `host_paths` opt-in",
    "networks": "`aliases`, `ipv4_address`, `priority`; a named network of the file is a network resource of the "
                "stack",
    "env": "`env_file` read, then `environment` over it; what a connection rule takes moves into the connection",
    "restart_policy": "`deploy.restart_policy.condition` when `restart` is not given",
    "image": "a build-only service has none: its `build` makes it",
    "network_mode": "`none`, `service:<name>` (as `container:<name>`) or `container:<name>`; `host` is refused",
    "privileged": "the `privileged` opt-in",
    "cap_add": "`ALL`, `SYS_ADMIN`, `NET_ADMIN`, `SYS_PTRACE`, `SYS_MODULE`, `SYS_RAWIO`, `DAC_READ_SEARCH`: the "
               "`capabilities` opt-in",
    "devices": "the `devices` opt-in",
    "userns_mode": "`host` is the `host_namespaces` opt-in",
    "pid_mode": "`host` is the `host_namespaces` opt-in",
    "ipc_mode": "`host` is the `host_namespaces` opt-in",
    "security_opt": "`seccomp=unconfined`, `apparmor=unconfined` or `label=disable` is the `privileged` opt-in",
    "mem_limit": "the two keys must agree, as Compose requires",
    "cpus": "the two keys must agree, as Compose requires",
    "pids_limit": "the two keys must agree, as Compose requires",
    "mem_reservation": "the two keys must agree, as Compose requires",
}


def readme_table():
    """The README's table of the service keys the container resource has as fields, one row per option of
    the table with a Compose key, between README_BEGIN and README_END (tests/unit/test_compose_options.py
    holds the README to it)."""
    lines = [README_BEGIN, "| Compose service key | Container field | On Swarm | What it becomes |", "|---|---|---|---|"]
    for option in TABLE:
        if not option.compose:
            continue
        lines.append("| %s | `%s` | %s | %s |" % (", ".join("`%s`" % k for k in option.compose), option.name,
                                                  "yes" if option.swarm else "no: refused",
                                                  README_NOTES.get(option.name, "the field")))
    lines.append("| `build` (context, dockerfile, target, args, labels) | `build` | yes | the image built from it |")
    lines.append(README_END)
    return "\n".join(lines) + "\n"
