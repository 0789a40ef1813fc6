# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compose service: each field of a compose service read into one form (short and long
syntax, list and mapping forms), as importer.read_project and rules.py take them;
a field that cannot be read is a problem naming the service and the key."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import posixpath
import re

from ansible_collections.clockwork.connections.plugins.module_utils.graph import find_cycle

URL_ENGINES = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql",
               "redis": "redis"}
SERVER_IMAGES = URL_ENGINES
DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$")
RESTART = re.compile(r"^(no|always|unless-stopped|on-failure(:[0-9]+)?)$")
SERVER_ENV = (("POSTGRES_", "postgresql"), ("MYSQL_", "mysql"), ("MARIADB_", "mysql"))


def as_mapping(value, separator="="):
    """A list or mapping form (environment, labels, networks) as a mapping; None for a bare name."""
    if isinstance(value, dict):
        return dict(value)
    result = {}
    for item in value or []:
        name, sep, rest = str(item).partition(separator)
        result[name] = rest if sep else None
    return result


def text_of(value):
    """A value as Compose puts it in env and labels: booleans lower case, None empty."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def dependencies(raw):
    """[(service, condition, options)] of depends_on, in its order."""
    given = raw.get("depends_on") or []
    if isinstance(given, list):
        return [(name, "service_started", {}) for name in given]
    return [(name, (options or {}).get("condition") or "service_started", options or {})
            for name, options in given.items()]


def service_networks(raw):
    """[(network key, attachment options)]; the default network when none is named."""
    given = raw.get("networks")
    if not given:
        return [("default", {})]
    if isinstance(given, list):
        return [(name, {}) for name in given]
    return [(name, options or {}) for name, options in given.items()]


def _port_range(text):
    low, sep, high = str(text).partition("-")
    if not low.isdigit() or (sep and not high.isdigit()):
        raise ValueError("not a port or a range of ports")
    numbers = list(range(int(low), int(high or low) + 1))
    if not numbers or not all(0 < n < 65536 for n in numbers):
        raise ValueError("ports are 1-65535")
    return [str(n) for n in numbers]


def _expanded(target, published, host_ip, protocol):
    """[(target, published, host_ip, protocol)], a range becoming one entry per port."""
    if protocol not in ("tcp", "udp", "sctp"):
        raise ValueError("protocol %s is not tcp, udp or sctp" % protocol)
    targets = _port_range(target)
    if published in (None, ""):
        return [(t, published, host_ip, protocol) for t in targets]
    hosts = _port_range(published)
    if len(hosts) != len(targets):
        raise ValueError("the host and container ranges differ in length")
    return [(t, h, host_ip, protocol) for t, h in zip(targets, hosts)]


def parse_port(item, published_default=""):
    """A `ports` (or, with published_default None, `expose`) entry in short or long form."""
    if isinstance(item, dict):
        published = item.get("published")
        return _expanded(item["target"], published_default if published is None else str(published),
                         item.get("host_ip") or "", item.get("protocol") or "tcp")
    text, protocol = str(item), "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
    host_ip = ""
    if text.startswith("["):
        close = text.find("]:")
        if close < 0:
            raise ValueError("an IPv6 host address is written [::1]:8080:80")
        host_ip, text = text[1:close], text[close + 2:]
    parts = text.split(":")
    if len(parts) == 3 and not host_ip:
        host_ip = parts.pop(0)
    if len(parts) > 2:
        raise ValueError("use 80, 8080:80 or 127.0.0.1:8080:80[/udp]")
    published = parts[0] if len(parts) == 2 else published_default
    return _expanded(parts[-1], published, host_ip, protocol)


# Short-syntax flags of a mount that are fields: the propagation of a bind, nocopy of a volume.
PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")


def parse_mount(item):
    """A `volumes` entry -> {type, source, target, read_only, extras (the container mount's propagation,
    nocopy, tmpfs_size, tmpfs_mode), options (what has no field)}; source None: anonymous."""
    if isinstance(item, dict):
        extras, options = {}, [k for k in ("image", "consistency") if item.get(k)]
        for key, sub, field in (("bind", "propagation", "propagation"), ("volume", "nocopy", "nocopy"),
                                ("tmpfs", "size", "tmpfs_size"), ("tmpfs", "mode", "tmpfs_mode")):
            if (item.get(key) or {}).get(sub) is not None:
                extras[field] = item[key][sub]
        for key in ("bind", "volume", "tmpfs"):
            known = {"bind": ("propagation",), "volume": ("nocopy",), "tmpfs": ("size", "mode")}[key]
            options += ["%s.%s" % (key, k) for k in sorted(item.get(key) or {}) if k not in known]
        return {"type": item["type"], "source": item.get("source") or None, "target": item["target"],
                "read_only": bool(item.get("read_only")), "extras": extras, "options": options}
    parts = str(item).split(":")
    if len(parts) > 3 or not all(parts):
        raise ValueError("use name:/path, ./dir:/path or /path, with :ro or :rw")
    if len(parts) == 1:
        return {"type": "volume", "source": None, "target": parts[0], "read_only": False, "extras": {}, "options": []}
    modes = parts[2].split(",") if len(parts) == 3 else []
    kind = "bind" if parts[0].startswith((".", "/", "~")) else "volume"
    extras = dict([("propagation", m) for m in modes if m in PROPAGATIONS and kind == "bind"]
                  + [("nocopy", True) for m in modes if m == "nocopy" and kind == "volume"])
    return {"type": kind, "source": parts[0], "target": parts[1], "read_only": "ro" in modes, "extras": extras,
            "options": [m for m in modes if m not in ("ro", "rw") and m not in PROPAGATIONS + ("nocopy",)]}


def read_ports(name, service, report):
    """[(target, published, host_ip, protocol)] of ports, then of expose (published None)."""
    entries = []
    for key, default in (("ports", ""), ("expose", None)):
        for index, item in enumerate(service.get(key) or []):
            where = ["services", name, key, index]
            try:
                found = parse_port(item, default)
            except (ValueError, KeyError) as exc:
                report.problem(where, "invalid port %r: %s" % (item, exc))
                continue
            declared = [(e[0], e[3]) for e in entries]
            entries.extend(e for e in found if e[1] is not None or (e[0], e[3]) not in declared)   # exposed once
            for option in ("mode", "name", "app_protocol"):
                if isinstance(item, dict) and item.get(option):
                    report.warn(where + [option], "no field for it; left out")
    return entries


def read_mounts(name, service, volumes, report):
    """The volumes entries parsed, each with `where` it was; named volumes must be declared."""
    mounts = []
    for index, item in enumerate(service.get("volumes") or []):
        where = ["services", name, "volumes", index]
        try:
            mount = dict(parse_mount(item), where=where)
        except ValueError as exc:
            report.problem(where, "invalid volume %r: %s" % (item, exc))
            continue
        except KeyError as exc:   # compose-spec's schema requires only the type; Compose needs the target
            report.problem(where + [exc.args[0]], "is required")
            continue
        if mount["type"] == "bind" and not mount["source"]:
            report.problem(where, "a bind mount needs a source")
        elif not posixpath.isabs(mount["target"]):
            report.problem(where, "target %s must be an absolute path" % mount["target"])
        elif mount["type"] == "volume" and mount["source"] and mount["source"] not in volumes:
            report.problem(where, "undefined volume %s" % mount["source"])
        else:
            mounts.append(mount)
    return mounts


def read_references(name, service, kind, declared, report):
    """[(source, target path, entry)] of a service's secrets or configs, each declared."""
    found, directory = [], "/run/secrets/" if kind == "secrets" else "/"
    for index, item in enumerate(service.get(kind) or []):
        source = item["source"] if isinstance(item, dict) else item
        target = (item.get("target") if isinstance(item, dict) else None) or source
        if source not in declared:
            report.problem(["services", name, kind, index], "undefined %s %s" % (kind[:-1], source))
        else:
            found.append((source, target if target.startswith("/") else directory + target, item))
    return found


def check_dependencies(services, report):
    """Every depends_on names a service of the file, and they form no cycle."""
    needs = dict((name, [d for d, _c, _o in dependencies(raw)]) for name, raw in services)
    for name, targets in needs.items():
        for target in targets:
            if target not in needs:
                report.problem(["services", name, "depends_on"], "unknown service %s" % target)
    # The stack's own cycle finder, on depends_on as dependency connections.
    cycle = find_cycle(list(needs), [{"from": name, "to": target} for name in needs for target in needs[name]])
    if cycle:
        report.problem(["services", cycle[0], "depends_on"], "cycle %s" % " -> ".join(cycle))


def read_service(name, raw, sections, env, report):
    """A selected service with its fields in one form each (env: its environment, resolved)."""
    service = dict(raw, environment=env, depends_on=dependencies(raw),
                   networks=service_networks(raw), ports=read_ports(name, raw, report),
                   volumes=read_mounts(name, raw, sections["volumes"], report))
    service.pop("expose", None)
    for kind in ("secrets", "configs"):
        service[kind] = read_references(name, raw, kind, sections[kind], report)
    for key, _options in service["networks"]:
        if key != "default" and key not in sections["networks"]:
            report.problem(["services", name, "networks"], "undefined network %s" % key)
    service["networks"] = [n for n in service["networks"] if n[0] == "default" or n[0] in sections["networks"]]
    if raw.get("restart") is not None and not RESTART.match(str(raw["restart"])):
        report.problem(["services", name, "restart"], "%r is not a restart policy: no, always, unless-stopped or "
                                                      "on-failure[:N]" % raw["restart"])
    if raw.get("labels") is not None:
        service["labels"] = dict((str(k), text_of(v)) for k, v in as_mapping(raw["labels"]).items())
    return service


def deploy_fields(name, service, report):
    """replicas (deploy.replicas or scale), update_order (deploy.update_config.order), endpoint_mode,
    max_replicas_per_node and stop_grace_period: fields of the container resource on both engines."""
    deploy, fields, where = service.get("deploy") or {}, {}, ["services", name, "deploy"]
    given = [(k, v) for k, v in (("deploy.replicas", deploy.get("replicas")), ("scale", service.get("scale")))
             if v is not None]
    for key, value in given:
        if not str(value).isdigit():
            report.problem(["services", name] + key.split("."), "%r is not a number" % value)
    if len(set(str(v) for _k, v in given)) > 1:
        report.problem(where + ["replicas"], "%s differs from scale %s, which Compose refuses" % (
            given[0][1], given[1][1]))
    elif given and str(given[0][1]).isdigit():
        fields["replicas"] = int(given[0][1])
    if deploy.get("endpoint_mode"):
        fields["endpoint_mode"] = deploy["endpoint_mode"]
    update = dict(deploy.get("update_config") or {})
    if update.get("order"):
        fields["update_order"] = update.pop("order")
    if service.get("stop_grace_period") is not None:
        if not DURATION.match(str(service["stop_grace_period"])):
            report.problem(["services", name, "stop_grace_period"], "invalid duration %r: use forms like 30s, 1m30s "
                                                                    "or 500ms" % service["stop_grace_period"])
        fields["stop_grace_period"] = str(service["stop_grace_period"])
    placement = dict(deploy.get("placement") or {})
    if str(placement.get("max_replicas_per_node", "")).isdigit():
        fields["max_replicas_per_node"] = int(placement.pop("max_replicas_per_node"))
    resources = deploy.get("resources") or {}
    unread = ["resources.%s" % k for k in sorted(resources) if k not in ("limits", "reservations")]
    read = {"limits": ("memory", "cpus", "pids"), "reservations": ("memory",)}   # options.py reads them
    unread += ["resources.%s.%s" % (part, k) for part in sorted(read)
               for k in sorted(resources.get(part) or {}) if k not in read[part]]
    mapped = ("replicas", "endpoint_mode", "placement", "update_config", "resources", "restart_policy")
    for key in sorted(k for k in deploy if k not in mapped) + unread + \
            ["placement.%s" % k for k in sorted(placement)] + ["update_config.%s" % k for k in sorted(update)]:
        report.warn(where + key.split("."), "no field for it; left out")
    return fields


# -- values as the stack takes them ---------------------------------------------------

def server_engine(service):
    """The engine of a database server, from its image (any registry or namespace) or its env."""
    image = str(service.get("image") or "").split("@", maxsplit=1)[0].rsplit("/", 1)[-1].split(":")[0]
    if image in SERVER_IMAGES:
        return SERVER_IMAGES[image]
    return next((engine for prefix, engine in SERVER_ENV if any(k.startswith(prefix) for k in service["environment"])),
                None)


def stack_port(target, published, host_ip, protocol):
    """One port as the container resource takes it (an IPv6 host address needs the dict form)."""
    suffix = "" if protocol == "tcp" else "/" + protocol
    if published is None:
        return target + suffix
    if ":" in host_ip:
        return {"container_port": int(target), "host_port": published, "host_ip": host_ip, "protocol": protocol}
    return "%s%s:%s%s" % (host_ip + ":" if host_ip else "", published, target, suffix)


def split_url(value):
    """scheme://[user[:password]@]host[:port][/path][?query] -> its raw parts, or None."""
    scheme, sep, rest = value.partition("://")
    if not sep or not re.match(r"^[a-z][a-z0-9+.-]*$", scheme):
        return None
    cut = min([i for i in (rest.find(c) for c in "/?#") if i >= 0] or [len(rest)])
    userinfo, at, hostport = rest[:cut].rpartition("@")
    host, colon, port = hostport.partition(":")
    if not host or (colon and not port.isdigit()):
        return None
    user, has_password, password = userinfo.partition(":")
    tail = rest[cut:]
    split = min([i for i in (tail.find(c) for c in "?#") if i >= 0] or [len(tail)])
    return {"scheme": scheme, "at": bool(at), "user": user, "has_password": bool(has_password),
            "password": password, "host": host, "port": port, "path": tail[:split], "query": tail[split:]}


def _literal(text):
    return text.replace("{", "{{").replace("}", "}}")


def url_template(url):
    """The URL with {user}, {password}, {host}, {port} and {database} put back where it had them."""
    template = _literal(url["scheme"]) + "://"
    if url["at"]:
        template += ("{user}" if url["user"] else "") + (":{password}" if url["has_password"] else "") + "@"
    template += "{host}" + (":{port}" if url["port"] else "")
    template += "/{database}" if url["path"].strip("/") else _literal(url["path"])
    return template + _literal(url["query"])


def unquote_url(text):
    try:
        from urllib.parse import unquote
    except ImportError:   # Python 2 only; the controller never runs it
        from urllib import unquote
    return unquote(text)


def docker_like(text):
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-._") or "file"
