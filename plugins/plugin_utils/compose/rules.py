# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The compose rules: the services of a read compose file (normalised by importer.py) as
the stack's resources, and the connections their declarations imply, each with a
`description` naming the rule that found it. Whatever has no place in the declaration is a
warning naming the service and the key; an env var that matches no rule stays plain env.

The rules tried on each env var of a service, in this order:
  - a database URL (postgres://, postgresql://, mysql://, mariadb://, redis://) whose host is
    a service: a database connection with the URL as connection_string_template;
  - `X_HOST=db[:port]` beside X_USER, a password part (X_PASSWORD, X_PASSWD, X_PASS, X_PWD or
    X_SECRET, or X_PASSWORD_FILE... naming a secret), X_NAME/X_DATABASE/X_DB or X_PORT, where `db` is
    a database server (by its image or its POSTGRES_/MYSQL_/MARIADB_ env): a database connection
    giving the parts as `env`. A password part whose value is a secret's path (under /run/secrets/,
    or a secret's target) is no password: the secret's file is (password_delivery: file), and the
    variable keeps its path;
  - `http(s)://svc[:port]/...`: a service_mesh connection;
  - `X_HOST=svc[:port]`, or a value `svc:port`: a network connection on a network both share.
A connection that would close a cycle, or set an env var of the service to another value,
is not made: the env var stays, with a warning.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import docker_name_problem, env_name
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.options import Reader, compose_keys, loaded_fields
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.service import (
    DURATION, URL_ENGINES, as_mapping, deploy_fields, docker_like, server_engine, split_url, stack_port, text_of,
    unquote_url, url_template)

CONDITIONS = {"service_started": "started", "service_healthy": "healthy",
              "service_completed_successfully": "completed_successfully"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "redis": 6379}
# The parts beside X_HOST and their placeholders; the first of NAME/DATABASE/DB names the database.
# The password's: X_PASSWORD, X_PASSWD (Gitea), X_PASS, X_PWD, X_SECRET, each also as X_..._FILE naming a secret.
PASSWORD_SUFFIXES = ("PASSWORD", "PASSWD", "PASS", "PWD", "SECRET")
PART_SUFFIXES = (("USER", "{user}"),) + tuple((suffix, "{password}") for suffix in PASSWORD_SUFFIXES) + (
    ("NAME", "{database}"), ("DATABASE", "{database}"), ("DB", "{database}"), ("PORT", "{port}"))
HTTP_URL = re.compile(r"^(https?)://([A-Za-z0-9_.-]+)(?::([0-9]+))?(/.*)?$")
SECRETS_DIR = "/run/secrets/"
# The container field that keeps a container off the stack's default network.
DEFAULT_NETWORK_FIELD = "default_network"
# Types of which one connection between two services says all: a second env var stays plain.
ONE_PER_PAIR = ("network", "service_mesh")
# The service keys mapped: every Compose key of the option table (options.py converts them), and those
# that are no container field (connections, the file's own structure, the build); every other one (but x-)
# is a warning, with the reason for the usual ones.
MAPPED = tuple(compose_keys()) + ("depends_on", "profiles", "extends", "secrets", "configs", "deploy", "scale",
                                  "build")
# Grants of the host (guard.Grants): kept as container fields when allowed, else refused.
GRANT_KEYS = ("privileged", "cap_add", "pid", "ipc", "userns_mode", "devices")
WHY_NOT = {
    "container_name": "the resource is named after the service, the name the other services reach it by",
    "links": "every container reaches the others by name on the stack's network",
}
# Compose's deploy.restart_policy.condition as the container's restart policy (as Compose v2 runs it).
RESTART_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}
# The keys of a build the container resource's `build` has (build.py); the others are warned about.
BUILD_KEYS = ("context", "dockerfile", "target", "args", "labels")


class Declaration(object):
    """The resources and connections of one project, built in file order."""

    def __init__(self, project, report):
        self.project, self.report = project, report
        self.name = project["name"]
        self.services = project["services"]           # [(name, service)] selected, in file order
        self.by_name = dict(self.services)
        self.env = dict((n, dict(s["environment"])) for n, s in self.services)   # what stays plain env
        self.mounts = dict((n, []) for n, _s in self.services)
        self.attached = dict((n, []) for n, _s in self.services)
        self.declared = dict((n, [int(p[0]) for p in s["ports"]]) for n, s in self.services)
        self.connections = []
        self.pairs = set()                            # (type, from, to) of the connections the env rules made
        self.needs = dict((n, set()) for n, _s in self.services)     # what each connects to: no cycle
        self.names = set(self.by_name)                # resource names taken
        self.volume_resources, self.file_resources = {}, {}
        self.delivered = set()                        # (service, secret) a database connection delivers
        self.off_default = set()                      # services on named networks only
        self.network_resources = {}                   # top-level network key -> its network resource
        self.networks = dict((key, self._network_settings(key, spec or {}))
                             for key, spec in dict({"default": None}, **project["networks"]).items())

    def warn(self, path, message):
        self.report.warn(path, message)

    def build(self):
        for name, service in self.services:
            self.needs[name].update(t for t, _c, _o in service["depends_on"] if t in self.by_name)
        usage = self._volume_usage()
        for name, service in self.services:
            self._unmapped(name, service)
            self._depends_on(name, service)
            self._env_rules(name)
            self._mounts(name, service, usage)
            for kind, directory in (("secrets", SECRETS_DIR), ("configs", "/")):
                self._files(name, service, kind, directory)
        for name, service in self.services:
            self._attach(name, service)
        resources = [self._container(name, service) for name, service in self.services]
        return resources + list(self.volume_resources.values()) + list(self.file_resources.values()) + list(
            self.network_resources.values()), self.connections

    # -- containers ------------------------------------------------------------------

    def _unmapped(self, name, service):
        for key in service:
            if key in GRANT_KEYS and (not service.get(key) or _said_by_the_guard(key, service)):
                continue
            if key not in MAPPED and key != "grants" and not str(key).startswith("x-"):
                why = WHY_NOT.get(key, "the container resource has no field for it")
                self.warn(["services", name, key], "%s; left out" % why)
        if not service.get("image") and not service.get("build"):
            self.warn(["services", name, "image"], "none given, nor a build: the stack needs an image for every container")
        if docker_name_problem(name):
            self.warn(["services", name], "the stack refuses it as a resource name: %s" % docker_name_problem(name))

    def _container(self, name, service):
        resource = {"name": name}
        for key, field, value in (("image", "image", service.get("image")), ("command", "command", service.get("command")),
                                  ("environment", "env", self.env[name]),
                                  ("ports", "ports", [stack_port(*p) for p in service["ports"]]),
                                  ("volumes", "mounts", self.mounts[name]), ("networks", "networks", self.attached[name]),
                                  ("healthcheck", "healthcheck", self._healthcheck(name, service.get("healthcheck"))),
                                  ("labels", "labels", service.get("labels"))):
            if value or (key == "command" and value is not None):
                resource[field] = value
        if service.get("restart"):
            resource["restart_policy"] = service["restart"].split(":")[0]
            if ":" in service["restart"]:
                self.warn(["services", name, "restart"], "the retry count of %s has no field; restart_policy is "
                                                         "on-failure" % service["restart"])
        else:
            self._restart_policy(name, service, resource)
        resource.update(loaded_fields(service, Reader(name, self.report)))
        if service.get("build"):
            resource["build"] = self._build(name, service["build"])
        resource.update(service.get("grants") or {})
        resource.update(deploy_fields(name, service, self.report))
        if name in self.off_default:
            resource[DEFAULT_NETWORK_FIELD] = False
        return resource

    def _restart_policy(self, name, service, resource):
        """deploy.restart_policy's condition, which Compose v2 gives the container when `restart` is not set."""
        policy = (service.get("deploy") or {}).get("restart_policy") or {}
        if policy.get("condition") in RESTART_CONDITIONS:
            resource["restart_policy"] = RESTART_CONDITIONS[policy["condition"]]
        for key in sorted(k for k in policy if k != "condition"):
            self.warn(["services", name, "deploy", "restart_policy", key], "no field for it; left out")

    def _build(self, name, build):
        """The build as the container resource's `build` (build.py's BUILD_OPTION_SPEC), its context a
        directory of the file's (a context read elsewhere on the controller is refused, as a file is)."""
        where = ["services", name, "build"]
        build = {"context": build} if isinstance(build, str) else dict(build)
        for key in sorted(k for k in build if k not in BUILD_KEYS and not str(k).startswith("x-")):
            self.warn(where + [key], "no field for it; left out")
        context = str(build.get("context") or ".")
        if re.match(r"^[a-z][a-z0-9+.-]*://|^git@", context):
            self.report.problem(where + ["context"], "%s: the stack builds from a directory beside the file, not a "
                                                     "remote context" % context)
        elif self.project["base_dir"]:
            why = self.project["files"].outside(context)
            if why:
                self.report.problem(where + ["context"], why)
        elif os.path.isabs(context) or context.startswith("~") or ".." in context.split("/"):
            self.report.problem(where + ["context"], "%s leaves the compose file's directory: refused (no base_dir "
                                                     "to read it against)" % context)
        result = {"context": self._host_path(context)}
        for key in ("dockerfile", "target"):
            if build.get(key):
                result[key] = str(build[key])
        for key in ("args", "labels"):
            values = as_mapping(build.get(key))
            for variable in sorted(k for k, v in values.items() if v is None):
                self.warn(where + [key, variable], "no value (Compose would read the environment's); left out")
            if any(v is not None for v in values.values()):
                result[key] = dict((str(k), text_of(v)) for k, v in values.items() if v is not None)
        return result

    def _healthcheck(self, name, check):
        where = ["services", name, "healthcheck"]
        if not check:
            return None
        if check.get("disable"):
            return {"test": ["NONE"]}
        if check.get("test") is None:
            self.warn(where, "no test: timings without the image's test cannot be declared; left out")
            return None
        result = {"test": check["test"]}
        for key in ("interval", "timeout", "start_period"):
            if check.get(key) is not None:
                if not DURATION.match(check[key]):
                    self.report.problem(where + [key], "invalid duration %r: use forms like 30s, 1m30s or 500ms" % check[key])
                result[key] = check[key]
        if check.get("retries") is not None:
            if not str(check["retries"]).isdigit():
                self.report.problem(where + ["retries"], "%r is not a number" % check["retries"])
            result["retries"] = int(check["retries"]) if str(check["retries"]).isdigit() else check["retries"]
        if check.get("start_interval"):
            self.warn(where + ["start_interval"], "no field for it; left out")
        return result

    # -- connections -------------------------------------------------------------------

    def _reaches(self, start, goal):
        seen, todo = set(), [start]
        while todo:
            current = todo.pop()
            if current == goal:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(self.needs.get(current, ()))
        return False

    def _add(self, name, key, connection, consumed=(), injected=None):
        """Adds a connection unless it closes a cycle or sets an env var of the service to another
        value; the env it sets replaces the service's own. Returns whether it was added."""
        target, kind, env = connection["to"], connection["type"], self.env[name]
        where = ["services", name, "environment", key]
        if self._reaches(target, name):
            self.warn(where, "a %s connection to %s would close a cycle, which the stack refuses; kept as plain env"
                      % (kind, target))
            return False
        for variable, value in sorted((injected or {}).items()):
            if variable in env and variable not in consumed and env[variable] != value:
                self.warn(where, "the %s connection to %s would set %s to %s; kept as plain env, no connection"
                          % (kind, target, variable, value))
                return False
        if kind in ONE_PER_PAIR and (kind, name, target) in self.pairs:
            return False   # one is enough; this env var stays plain
        self.pairs.add((kind, name, target))
        for variable in list(consumed) + [v for v, value in (injected or {}).items() if env.get(v) == value]:
            env.pop(variable, None)
        self.needs[name].add(target)
        self.connections.append(connection)
        return True

    def _depends_on(self, name, service):
        for target, condition, options in service["depends_on"]:
            if target not in self.by_name:
                self.warn(["services", name, "depends_on"], "%s is not selected (profiles); no dependency" % target)
                continue
            if options.get("restart"):
                self.warn(["services", name, "depends_on", target, "restart"], "no field for it; left out")
            self.connections.append({"type": "dependency", "from": name, "to": target, "condition": CONDITIONS[condition],
                                     "description": "from compose: depends_on %s -> %s (%s)" % (name, target, condition)})

    def _env_rules(self, name):
        groups = self._part_groups(name)
        grouped = set(v for _c, consumed, _s in groups.values() for v in consumed) - set(groups)
        for key, value in list(self.env[name].items()):
            if key not in self.env[name] or key in grouped:
                continue   # taken by a rule already, or a part of a group
            if key in groups:
                connection, consumed, secret = groups[key]
                if self._add(name, key, connection, consumed) and secret:
                    self.delivered.add((name, secret))
                continue
            for rule in (self._database_url, self._service_mesh, self._network):
                found = rule(name, key, value)
                if found is not None:
                    self._add(name, key, *found)
                    break

    def _target(self, name, host):
        return host if host in self.by_name and host != name else None

    def _check_port(self, name, key, target, port, engine):
        declared = self.declared[target]
        used, why = (declared[0], "the first port %s declares" % target) if declared else \
            (DEFAULT_PORTS[engine], "the %s default" % engine)
        if port and int(port) != used:
            self.warn(["services", name, "environment", key], "says port %s; the stack fills {port} with %s (%s)"
                      % (port, used, why))

    def _database_url(self, name, key, value):
        url = split_url(value)
        if not url or url["scheme"] not in URL_ENGINES or not self._target(name, url["host"]):
            return None
        engine, target = URL_ENGINES[url["scheme"]], url["host"]
        self._check_port(name, key, target, url["port"], engine)
        connection = {"type": "database", "from": name, "to": target, "engine": engine,
                      "description": "from compose: environment %s of %s is a %s URL naming service %s" % (
                          key, name, url["scheme"], target),
                      "connection_string_template": url_template(url), "env_var_name": key}
        if url["user"]:
            connection["username"] = unquote_url(url["user"])
        if url["has_password"]:
            connection["password"] = unquote_url(url["password"])
        if url["path"].strip("/"):
            connection["database_name"] = unquote_url(url["path"].lstrip("/"))
        return connection, [key]

    def _part_groups(self, name):
        """X_HOST -> (connection, env it takes, secret it delivers or None) for each X_HOST naming a
        database server beside at least one sibling part."""
        env, groups = self.env[name], {}
        for key, value in env.items():
            host, _sep, port = value.partition(":")
            target = self._target(name, host)
            if not key.endswith("_HOST") or len(key) <= 5 or not target or (port and not port.isdigit()):
                continue
            engine = server_engine(self.by_name[target])
            prefix = key[:-len("HOST")]
            parts, source = self._siblings(name, prefix)
            if engine is None or not parts:
                continue
            parts[key] = "{host}:{port}" if port else "{host}"
            consumed = [v for v in parts if v in env] + ([source["variable"]] if source and source["delivered"] else [])
            connection = self._parts_connection(name, key, target, engine, parts, source)
            groups[key] = (connection, consumed, source["secret"] if source and source["delivered"] else None)
        return groups

    def _secret_path(self, name, value):
        """Whether an env value is a path where a secret is (under /run/secrets/, or a secret's target
        of the service): never a password itself."""
        return value.startswith(SECRETS_DIR) or value in [t for _s, t, _i in self.by_name[name]["secrets"]]

    def _siblings(self, name, prefix):
        """({variable: placeholder}, where the password is when a secret holds it, or None) of X_'s siblings.
        A password part whose value is a secret's path is not the password: that secret's file is."""
        env, parts, source = self.env[name], {}, None
        for suffix, template in PART_SUFFIXES:
            variable = prefix + suffix
            if variable not in env or template in parts.values() or (suffix == "PORT" and not env[variable].isdigit()):
                continue
            if template == "{password}" and self._secret_path(name, env[variable]):
                source = source or self._password_secret(name, variable, env[variable], delivered=False)
                continue
            parts[variable] = template
        if "{password}" not in parts.values() and source is None:
            for suffix in PASSWORD_SUFFIXES:   # X_PASSWORD_FILE: the connection delivers X_PASSWORD as that file
                path = env.get(prefix + suffix + "_FILE")
                if path and prefix + suffix not in env:
                    source = self._password_secret(name, prefix + suffix + "_FILE", path, delivered=True)
                    if source["secret"]:
                        parts[prefix + suffix] = "{password}"
                    break
        return parts, source

    def _password_secret(self, name, variable, path, delivered):
        """{variable, path, secret: the service's file secret at `path` or None, delivered: whether the
        connection takes the variable over (X_PASSWORD_FILE) or it keeps its path (X_PASSWORD=/run/secrets/x)}."""
        secret = next((s for s, target, _i in self.by_name[name]["secrets"] if target == path
                       and (self.project["secrets"].get(s) or {}).get("file")), None)
        return {"variable": variable, "path": path, "secret": secret, "delivered": delivered and secret is not None}

    def _parts_connection(self, name, key, target, engine, parts, source):
        values = dict((template, self.env[name].get(variable)) for variable, template in parts.items())
        connection = {"type": "database", "from": name, "to": target, "engine": engine,
                      "description": "from compose: environment %s of %s names the %s server %s, with %s" % (
                          key, name, engine, target, ", ".join(sorted(v for v in parts if v != key))),
                      "env": dict((v, parts[v]) for v in sorted(parts)), "env_var_name": ""}
        if values.get("{user}"):
            connection["username"] = values["{user}"]
        if source and source["secret"]:
            connection.update(password=self._secret_value(name, source["secret"]), password_delivery="file")
            if not source["delivered"]:
                connection["description"] += "; the password is secret %s, which %s reads at %s" % (
                    source["secret"], source["variable"], source["path"])
        elif values.get("{password}") is not None:
            connection["password"] = values["{password}"]
        if source and not source["secret"]:
            self.warn(["services", name, "environment", source["variable"]], "%s is no secret of %s with a file: "
                      "the connection has no password (it is no password itself)" % (source["path"], name))
        if values.get("{database}"):
            connection["database_name"] = values["{database}"]
        for variable, template in parts.items():
            if template in ("{port}", "{host}:{port}"):
                self._check_port(name, variable, target, self.env[name][variable].rpartition(":")[2], engine)
        return connection

    def _secret_value(self, name, secret):
        value, why = self.project["read_secret"](secret)
        if value is None:
            self.warn(["services", name, "secrets"], "the password of secret %s is not read (%s): the connection's "
                                                     "password is a placeholder to replace" % (secret, why))
            return "<secret %s>" % secret
        return value

    def _service_mesh(self, name, key, value):
        url = HTTP_URL.match(value)
        target = self._target(name, url.group(2)) if url else None
        if not target:
            return None
        protocol = url.group(1)
        port = int(url.group(3) or (443 if protocol == "https" else 80))
        if port not in self.declared[target]:
            self.warn(["services", name, "environment", key], "port %d is neither exposed nor published by %s"
                      % (port, target))
        connection = {"type": "service_mesh", "from": name, "to": target, "protocol": protocol, "port": port,
                      "service_name": target, "health_check_path": url.group(4) or "/",
                      "description": "from compose: environment %s of %s is an %s URL of service %s" % (
                          key, name, protocol, target)}
        return self._named_env(connection, key, value, "%s://%s:%d" % (protocol, target, port), "_URL")

    def _network(self, name, key, value):
        host, sep, port = value.partition(":")
        target = self._target(name, host)
        if not target or (sep and not port.isdigit()) or not (key.endswith("_HOST") or sep):
            return None
        theirs = [n for n, _options in self.by_name[target]["networks"]]
        shared = [n for n, _options in self.by_name[name]["networks"] if n in theirs]
        if not shared:
            self.warn(["services", name, "environment", key], "names service %s, but they share no network; no "
                                                              "connection" % target)
            return None
        connection = dict({"type": "network", "from": name, "to": target,
                           "description": "from compose: environment %s of %s names service %s" % (key, name, target)},
                          **dict((k, v) for k, v in self.networks[shared[0]].items() if k != "external"))
        return self._named_env(connection, key, value, target, "_HOST")

    @staticmethod
    def _named_env(connection, key, value, contributed, suffix):
        """The connection sets the service's own variable when it would give the same value (under
        `env_var_name` unless that is the type's default name); otherwise it sets none, and the
        variable stays plain env as compose has it: nothing is added that compose does not set."""
        if value != contributed:
            connection["env_var_name"] = ""
            return connection, (), {}
        if key != env_name(connection["to"]) + suffix:
            connection["env_var_name"] = key
        return connection, (), {key: value}

    # -- networks ------------------------------------------------------------------------

    def _network_settings(self, key, spec):
        """The fields of a network connection on the top-level network `key` (<project>_<key>)."""
        where = ["networks", key]
        name = external_name(key, spec) or spec.get("name") or "%s_%s" % (self.name, key)
        if spec.get("external") and key != "default":
            # Used as it is, as Compose does: it must exist, its settings are the engine's.
            for option in [o for o in EXTERNAL_REFUSED if o in spec]:
                self.report.problem(where + [option], "given beside external: true, which Compose refuses too")
            return {"network_name": name, "external": True}
        if spec.get("external"):
            self.warn(where + ["external"], "the stack's default network is its own %s_default; left out" % self.name)
        settings = {"network_name": name, "driver": spec.get("driver") or "bridge"}
        settings.update((flag, True) for flag in ("internal", "enable_ipv6") if spec.get(flag))
        ipam = spec.get("ipam") or {}
        pools = ipam.get("config") or [{}]
        settings.update((field, pools[0][field]) for field in ("subnet", "gateway") if pools[0].get(field))
        if len(pools) > 1:
            self.warn(where + ["ipam", "config"], "only the first pool is declared")
        unmapped = [k for k in ("driver_opts", "attachable", "labels", "enable_ipv4") if k in spec]
        unmapped += ["ipam.%s" % k for k in ("driver", "options") if k in ipam]
        unmapped += ["ipam.config.%s" % k for k in ("ip_range", "aux_addresses") if k in pools[0]]
        for key_path in unmapped:
            self.warn(where + key_path.split("."), "no field for it; left out")
        return settings

    def _attach(self, name, service):
        """The service's named networks, each a network resource of the stack (whether or not a connection
        needs it); a service on named networks only is on those only, as in Compose."""
        for key, options in service["networks"]:
            where = ["services", name, "networks", key]
            fields = ("aliases",) if key == "default" else ("aliases", "ipv4_address", "priority")
            for option in sorted(k for k in options if k not in fields):
                self.warn(where + [option], "no field for it%s; left out" % (
                    " on the stack's default network" if key == "default" else ""))
            aliases = list(options.get("aliases") or [])
            if key == "default":
                if aliases:
                    self.warn(where + ["aliases"], "on the stack's default network a container has its name only; left out")
            else:
                self._network_resource(key)
                attached = {"name": self.networks[key]["network_name"], "aliases": own_name_first(name, aliases)}
                attached.update((k, options[k]) for k in ("ipv4_address", "priority") if options.get(k) is not None)
                self.attached[name].append(attached)
        if "default" not in [k for k, _o in service["networks"]]:
            self.off_default.add(name)   # on its named networks only, as in Compose

    def _network_resource(self, key):
        """The network resource of the top-level network `key`: created by the stack, whether or not a
        connection needs it."""
        if key not in self.network_resources:
            settings = self.networks[key]
            self.network_resources[key] = dict({"name": self._unique(settings["network_name"]), "type": "network"},
                                               **settings)
        return self.network_resources[key]

    # -- volumes, bind mounts, secrets, configs ---------------------------------------------

    def _volume_usage(self):
        usage = {}
        for name, service in self.services:
            for mount in service["volumes"]:
                if mount["type"] == "volume" and mount["source"] and name not in usage.setdefault(mount["source"], []):
                    usage[mount["source"]].append(name)
        for key in self.project["volumes"]:
            if key not in usage:
                self.warn(["volumes", key], "used by no selected service; left out")
        return usage

    def _unique(self, name):
        candidate, number = name, 1
        while candidate in self.names:
            number += 1
            candidate = "%s-%d" % (name, number)
        self.names.add(candidate)
        return candidate

    def _volume(self, key):
        """The volume resource of the top-level volume `key` (Compose's name: <project>_<key>)."""
        if key not in self.volume_resources:
            spec = self.project["volumes"][key] or {}
            name = external_name(key, spec) or spec.get("name") or "%s_%s" % (self.name, key)
            if spec.get("external"):   # used as it is, as Compose does: it must exist
                for option in [o for o in EXTERNAL_REFUSED if o in spec]:
                    self.report.problem(["volumes", key, option], "given beside external: true, which Compose "
                                                                  "refuses too")
                self.volume_resources[key] = {"name": self._unique(name), "type": "volume", "volume_name": name,
                                              "external": True}
                return self.volume_resources[key]
            for option in [o for o in ("driver_opts", "labels") if o in spec]:
                self.warn(["volumes", key, option], "no field for it; left out")
            self.volume_resources[key] = {"name": self._unique(name), "type": "volume", "volume_name": name,
                                          "driver": spec.get("driver") or "local"}
        return self.volume_resources[key]

    def _host_path(self, path):
        """A host path of the file (relative: to base_dir, or left to the playbook's directory)."""
        base_dir = self.project["base_dir"]
        if not os.path.isabs(path) and not path.startswith("~"):
            path = os.path.normpath(os.path.join(base_dir, path) if base_dir else path)
        return path

    def _file(self, path, name):
        """The file resource of a host path."""
        path = self._host_path(path)
        if path not in self.file_resources:
            self.file_resources[path] = {"name": self._unique(docker_like(name)), "type": "file", "path": path}
        return self.file_resources[path]

    def _mounts(self, name, service, usage):
        """Named volumes and binds (a file connection when shared or bound, as the checks need), anonymous
        volumes and tmpfs mounts as the container's own mounts, with their propagation, nocopy, size and mode."""
        for mount in service["volumes"]:
            where, target = mount["where"], mount["target"]
            for option in mount["options"]:
                self.warn(where + option.split("."), "no field for it; left out")
            own = dict({"read_only": True} if mount["read_only"] else {}, **mount["extras"])
            if mount["type"] not in ("volume", "bind", "tmpfs"):
                self.warn(where, "a %s mount at %s has no place in the declaration; left out" % (mount["type"], target))
            elif mount["type"] == "tmpfs" or not mount["source"]:   # tmpfs, or an anonymous volume (- /path)
                self.mounts[name].append(dict({"type": mount["type"], "target": target}, **own))
            elif mount["type"] == "bind" and mount["extras"]:       # a propagation: the container's own bind
                self.mounts[name].append(dict({"type": "bind", "source": self._host_path(mount["source"]),
                                               "target": target}, **own))
            elif mount["type"] == "bind":
                self._bind(name, mount, own)
            elif len(usage[mount["source"]]) < 2 or mount["extras"]:
                self.mounts[name].append(dict({"type": "volume", "source": self._volume(mount["source"])["volume_name"],
                                               "target": target}, **own))
            else:
                self._shared_volume(name, mount, usage[mount["source"]], own)

    def _bind(self, name, mount, read_only):
        resource = self._file(mount["source"], mount["source"].lstrip("./~") or "bind")
        self.connections.append(dict({"type": "file", "from": name, "to": resource["name"], "mount_path": mount["target"],
                                      "description": "from compose: bind mount %s at %s of %s" % (
                                          mount["source"], mount["target"], name)}, **read_only))

    def _shared_volume(self, name, mount, users, read_only):
        volume = self._volume(mount["source"])
        self.connections.append(dict({"type": "file", "from": name, "to": volume["name"], "mount_path": mount["target"],
                                      "volume_name": volume["volume_name"],
                                      "description": "from compose: volume %s is shared by %s" % (
                                          mount["source"], ", ".join(users))}, **read_only))
        if volume.get("driver"):   # an external volume's is the engine's
            self.connections[-1]["volume_driver"] = volume["driver"]

    def _files(self, name, service, kind, directory):
        for index, (source, target, item) in enumerate(service[kind]):
            where = ["services", name, kind, index]
            spec = self.project[kind].get(source) or {}
            if (name, source) in self.delivered:
                continue
            if not spec.get("file"):
                origin = next((k for k in ("environment", "content", "external") if spec.get(k)), "nowhere")
                self.warn(where, "%s %s comes from %s, not a file: nothing to mount; left out" % (kind[:-1], source, origin))
                continue
            for option in [o for o in ("uid", "gid", "mode") if isinstance(item, dict) and item.get(o) is not None]:
                self.warn(where + [option], "no field for it; left out")
            resource = self._file(spec["file"], "%s-%s" % (kind[:-1], source))
            self.connections.append({"type": "file", "from": name, "to": resource["name"], "mount_path": target,
                                     "read_only": True, "description": "from compose: %s %s of %s at %s" % (
                                         kind[:-1], source, name, target)})


# What Compose refuses beside `external: true` on a top-level network or volume.
EXTERNAL_REFUSED = ("driver", "driver_opts", "ipam", "internal", "attachable", "enable_ipv6", "enable_ipv4", "labels")


def external_name(key, spec):
    """The engine's name of an external network or volume (`external: {name: x}`, Compose's old form,
    or `name`, else its key), or None when it is not external."""
    external = spec.get("external")
    if not external:
        return None
    return (external.get("name") if isinstance(external, dict) else None) or spec.get("name") or key


def own_name_first(name, aliases):
    """A service's aliases on one of its named networks: its own name first, as Compose gives it on each
    (replicas all answer to it); to_compose leaves it out again."""
    return [name] + [a for a in aliases or [] if a != name]


def _said_by_the_guard(key, service):
    """A grant key the guard kept or refused, saying so (guard.Grants.service): a given
    privileged, devices or cap_add, and a namespace of the host."""
    return key in ("privileged", "devices", "cap_add") or str(service.get(key)) == "host"


def declaration(project, report):
    """(resources, connections) of a read project; problems and warnings go to `report`."""
    return Declaration(project, report).build()
