# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""to_compose: a declared stack as a Compose file that `docker-compose up` runs as the same
containers the stack module makes.

The containers' final specs come from the collection's own plan (plan.py) and from each
connection type's own contribution code, run offline: no engine is asked, nothing is written.
What Compose cannot say (schema and migrations, TLS material, checks) is said in comments; the
schema of a PostgreSQL or MariaDB/MySQL server image is mounted into /docker-entrypoint-initdb.d.
No secret is written in the file: each one is a `${VAR:?...}` that Compose reads from the `.env`
returned beside it (with the password files and the file resources' content, in `files`).
The top-level `x-clockwork` holds what the importer needs to give the declaration back
(extension.py reads it).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import posixpath

import yaml

from ansible_collections.clockwork.connections.plugins.module_utils.apply.applier import merged_contributions
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, port_number
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionContext
from ansible_collections.clockwork.connections.plugins.module_utils.database.client_env import (
    SECRETS_DIR, given_values)
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import resolved_settings
from ansible_collections.clockwork.connections.plugins.module_utils.database.sql_files import sql_files
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import MemoryEngine
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import stack_home
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.services import NOT_ON_SWARM
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.secrets import (
    IDENTITY_KEYS, ExportError, collect_secrets, split_secrets)
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.extension import (
    EXTENSION, VERSION, declared_rest, own_fields)
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.options import dumped_keys

ENGINES = ("docker", "swarm")
INITDB = "/docker-entrypoint-initdb.d"
# The container fields that grant part of the host, and the Compose keys that say them.
GRANT_KEYS = (("privileged", "privileged"), ("cap_add", "cap_add"), ("devices", "devices"),
              ("pid_mode", "pid"), ("ipc_mode", "ipc"), ("userns_mode", "userns_mode"))
# Server images whose entrypoint runs the files of INITDB on a fresh data directory.
INITDB_IMAGES = {"postgresql": ("postgres", "postgresql"), "mysql": ("mariadb", "mysql"), "mariadb": ("mariadb", "mysql")}


def _plain(node):
    """Plain Python data: Ansible's tagged strings and lazy containers cannot be dumped as YAML."""
    if isinstance(node, dict):
        return dict((_plain(k), _plain(v)) for k, v in node.items())
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    for kind in (bool, int, float, str):
        if isinstance(node, kind):
            return kind(node) if kind is not str else str.__str__(node)   # a plain str, never a subclass
    return node


def _stack_parts(stack):
    """(name, resources, connections) of a declaration given as the stack module or the role takes it."""
    if not isinstance(stack, dict):
        raise ExportError("the stack must be a mapping with name, resources and connections, got %s"
                          % type(stack).__name__)
    stack = _plain(stack)
    name = stack.get("name", stack.get("clockwork_stack_name"))
    resources = stack.get("resources", stack.get("clockwork_resources"))
    connections = stack.get("connections", stack.get("clockwork_connections")) or []
    problems = []
    if not isinstance(name, str) or not name:
        problems.append("stack: name: is required (name or clockwork_stack_name)")
    if not isinstance(resources, list):
        problems.append("stack: resources: must be a list (resources or clockwork_resources)")
    if not isinstance(connections, list):
        problems.append("stack: connections: must be a list (connections or clockwork_connections)")
    for kind, entries in (("resource", resources), ("connection", connections)):
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                problems.append("%s #%d: must be a mapping, got %s" % (kind, index + 1, type(entry).__name__))
    if problems:
        raise ExportError("; ".join(problems))
    return name, resources, connections


class Export(object):
    """One export: the plan, each container's merged spec, then the compose document."""

    def __init__(self, stack, engine="docker", base_dir=None):
        if engine not in ENGINES:
            raise ExportError("engine: must be docker or swarm, got %r" % (engine,))
        self.engine = engine
        self.name, self.resources, self.connections = _stack_parts(stack)
        self.base_dir = os.path.abspath(base_dir or os.getcwd())
        try:
            self.plan = Plan(self.name, self.resources, self.connections, base_dir=self.base_dir, engine=engine)
        except ClockworkError as exc:
            raise ExportError(exc.msg)
        self.secrets = collect_secrets(self.resources, self.connections)
        self.declared = dict((r["name"], r) for r in self.resources)
        self.files = {}        # path relative to the compose file -> {content, mode}
        self.comments = []
        self.top_secrets = {}
        # Offline: a dry run over an engine with nothing on it (no container, no image), so every
        # write a type would make (a file, a network) is only recorded, and nothing is asked of Docker.
        self.ctx = ConnectionContext(dry_run_gateway(live=MemoryEngine()), self.name, declared=self.plan.specs,
                                     base_dir=self.base_dir)

    # -- paths ------------------------------------------------------------------------

    def relative(self, path):
        """A host path as the compose file says it: under base_dir, relative to the file."""
        if path == self.base_dir or path.startswith(self.base_dir + os.sep):
            return "./" + os.path.relpath(path, self.base_dir).replace(os.sep, "/")
        return path

    # -- what each connection gives its `from` -------------------------------------------

    def outgoing(self, name):
        results = []
        for connection in self.plan.connections:
            if connection["from_resource"] != name:
                continue
            kind = CONNECTION_TYPES[connection["type"]]
            result = kind.new_result(connection)
            if connection.get("source_path") and connection.get("content") is None:
                # A bind source is the Docker host's business: it need not exist where the export runs.
                connection = dict(connection, content="")
            try:
                # On a dry run with nothing on the engine, every type's own converge says what `from`
                # gets and stops before it would log in or change anything.
                kind.converge(self.ctx, connection, result)
            except ClockworkError as exc:   # named by the connection's label, as the plan names it
                raise ExportError("connection " + exc.msg if exc.msg.startswith(result.name) else exc.msg)
            results.append(result)
        return results

    # -- the services ----------------------------------------------------------------------

    def service(self, name, resource, spec):
        outgoing = self.outgoing(name)
        try:
            env, mounts, networks, _secret_env = merged_contributions(name, spec, outgoing)
        except ClockworkError as exc:
            raise ExportError(exc.msg)
        declared = self.declared[name]
        service = {"image": spec.image} if declared.get("image") or not declared.get("build") else {}
        if declared.get("build"):
            service["build"] = self.build(declared["build"])
        if self.engine == "docker" and (resource.get("replicas") or 1) == 1:
            service["container_name"] = name   # replicas: Compose names them <project>-<name>-<k>, no container_name
        if resource.get("command") is not None:
            service["command"] = resource["command"]
        contributed = {"env": sorted(set(env) - set(resource.get("env") or {}))}
        untold = self.untold(name, env, mounts)
        if env:
            service["environment"] = dict((k, v) for k, v in sorted(env.items()) if k not in untold["env"])
        self.ports(service, spec)
        service_mounts, secrets = self.mounts(name, mounts, untold)
        contributed["mounts"] = sorted(set(m["target"] for m in mounts) - set(
            m["target"] for m in resource.get("mounts") or []) - set(untold["mounts"]))
        contributed["mounts"] += self.initdb(name, service_mounts)
        if service_mounts:
            service["volumes"] = service_mounts
        if secrets:
            service["secrets"] = secrets
            contributed["secrets"] = [s["source"] for s in secrets]
        service["networks"], contributed["networks"] = self.service_networks(resource, networks)
        defaulted = self.healthcheck(service, resource, spec)
        if resource.get("labels"):
            service["labels"] = dict((k, str(v)) for k, v in resource["labels"].items())
        self.grants(service, resource)
        dumped_keys(declared, service, self.engine)
        for key in ("network_mode", "pid", "ipc"):   # another container of the stack is its service in Compose
            value = str(service.get(key) or "")
            if value.startswith("container:") and value[len("container:"):] in self.plan.specs:
                service[key] = "service:" + value[len("container:"):]
        self.restart_and_deploy(service, resource)
        if self.engine == "docker":
            depends = self.depends_on(name)
            if depends:
                service["depends_on"] = depends
        contributed = dict((k, v) for k, v in contributed.items() if v)
        service[EXTENSION] = {"contributed": contributed} if contributed else {}
        if untold["env"] or untold["mounts"]:
            service[EXTENSION]["untold"] = untold
        fields = own_fields(self.declared[name], self.engine)
        if fields:
            service[EXTENSION]["fields"] = fields
        defaulted += self.defaulted_fields(name)
        if defaulted:
            service[EXTENSION]["defaulted"] = defaulted
        if not service[EXTENSION]:
            service.pop(EXTENSION)
        return service

    def healthcheck(self, service, resource, spec):
        """The healthcheck with every timing (Compose would leave the engine's 0 where the stack sets
        its defaults); returns the keys that only have the stack's default, for the importer."""
        if not spec.healthcheck:
            return []
        if spec.healthcheck["test"] == ["NONE"]:
            service["healthcheck"] = {"disable": True}
            return []
        check = resource["healthcheck"]
        test = check["test"] if isinstance(check["test"], str) else spec.healthcheck["test"]
        service["healthcheck"] = dict([("test", test)] + [(k, check[k]) for k in (
            "interval", "timeout", "retries", "start_period")])
        declared = self.declared[resource["name"]].get("healthcheck") or {}
        return ["healthcheck.%s" % k for k in ("interval", "timeout", "retries", "start_period") if k not in declared]

    def grants(self, service, resource):
        """The grants of the host as declared, under their Compose keys; on Swarm, those a service cannot have
        are refused, as the swarm engine refuses them."""
        refused = [field for field in NOT_ON_SWARM if resource.get(field)] if self.engine == "swarm" else []
        if refused:
            raise ExportError("resource %s: %s: not on Swarm (a service's tasks cannot be given %s); export it "
                              "with engine docker" % (resource["name"], ", ".join(refused), "it" if len(refused) == 1 else "them"))
        for field, key in GRANT_KEYS:
            if resource.get(field):
                service[key] = list(resource[field]) if isinstance(resource[field], list) else resource[field]

    def build(self, build):
        """A declared build as Compose's, its context relative to the file where it is under base_dir."""
        result = {"context": self.relative(os.path.join(self.base_dir, build["context"]))}
        for key in ("dockerfile", "target", "args", "labels"):
            if build.get(key):
                result[key] = dict(build[key]) if isinstance(build[key], dict) else build[key]
        return result

    def defaulted_fields(self, name):
        """The fields a swarm file states that the declaration left to the default."""
        return ["replicas"] if self.engine == "swarm" and self.declared[name].get("replicas") is None else []

    def untold(self, name, env, mounts):
        """Files the stack's run makes on the Docker host (TLS material), which Compose cannot make: their
        mounts are left out, and the env naming them, with a comment. Password files are secrets."""
        made = self.plan.written_files()
        secrets_home = os.path.join(stack_home(self.name), "secrets") + os.sep
        targets = sorted(m["target"] for m in mounts if m["type"] == "bind" and m["source"] in made
                         and made[m["source"]] is None and not m["source"].startswith(secrets_home))
        if targets:
            self.comments.append("resource %s: %s, made by the stack's run (TLS material), not exported"
                                 % (name, ", ".join(targets)))
        return {"env": sorted(k for k, v in env.items() if v in targets), "mounts": targets}

    def ports(self, service, spec):
        ports, expose = [], []
        for container_port, host_ip, host_port in spec.ports:
            number, _sep, protocol = container_port.partition("/")
            suffix = "" if protocol == "tcp" else "/" + protocol
            if host_port is None:
                expose.append(number + suffix)
            elif host_port == "":
                ports.append(("[%s]::%s" if ":" in host_ip else "%s::%s") % (host_ip, number + suffix)
                             if host_ip else number + suffix)
            else:
                address = ("[%s]:" if ":" in host_ip else "%s:") % host_ip if host_ip else ""
                ports.append("%s%s:%s" % (address, host_port, number + suffix))
        if ports:
            service["ports"] = ports
        if expose:
            service["expose"] = expose

    def mounts(self, name, mounts, untold):
        result, secrets = [], []
        secrets_home = os.path.join(stack_home(self.name), "secrets") + os.sep
        for mount in sorted(mounts, key=lambda m: m["target"]):
            if mount["target"] in untold["mounts"]:
                continue
            if mount["type"] == "bind" and mount["source"].startswith(secrets_home):
                secrets.append(self.password_file(name, mount))
                continue
            entry = {"type": mount["type"], "target": mount["target"]}
            if mount["type"] == "volume" and mount.get("source"):
                entry["source"] = mount["source"]
            elif mount["type"] == "bind":
                entry["source"] = self.relative(mount["source"])
            if mount.get("read_only"):
                entry["read_only"] = True
            for field, key, sub in (("propagation", "bind", "propagation"), ("nocopy", "volume", "nocopy"),
                                    ("tmpfs_size", "tmpfs", "size"), ("tmpfs_mode", "tmpfs", "mode")):
                if mount.get(field) is not None:
                    entry.setdefault(key, {})[sub] = mount[field]
            result.append(entry)
        return result, secrets

    def password_file(self, name, mount):
        """A password file of `password_delivery: file` as a Compose secret (mounted at the same path)."""
        variable = posixpath.basename(mount["target"])
        key = "%s_%s" % (name, variable)
        path = "secrets/%s" % key
        for connection in self.plan.connections:
            if connection["from_resource"] == name and mount["source"] in CONNECTION_TYPES[
                    connection["type"]].written_files(connection, self.name):
                settings = resolved_settings(connection, None)
                to = self.plan.specs.get(connection["to_resource"])
                if to is not None and to.ports:
                    settings["port"] = port_number(to.ports[0][0])
                values = given_values(connection, settings, connection["to_resource"])
                if variable in values:
                    self.files[path] = {"content": values[variable], "mode": "0600", "secret": True}
        self.top_secrets[key] = {"file": "./" + path}
        if mount["target"] != SECRETS_DIR + variable:
            raise ExportError("resource %s: password file %s is not under %s" % (name, mount["target"], SECRETS_DIR))
        return {"source": key, "target": variable}

    def initdb(self, name, service_mounts):
        """The schema files of the database connections to this server, mounted where its image's
        entrypoint runs them on a fresh data directory. Returns their targets."""
        spec, targets = self.plan.specs[name], []
        image = spec.image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
        for index, connection in enumerate(c for c in self.plan.connections if c["to_resource"] == name
                                           and CONNECTION_TYPES[c["type"]].planned_steps(c)):
            try:
                files = sql_files(connection)
            except ClockworkError as exc:
                raise ExportError("%s: %s" % (connection["label"], exc.msg))
            engine = connection.get("engine") or "postgresql"
            for kind, file_name, _path, sql, _checksum in files:
                if kind != "schema" or image not in INITDB_IMAGES.get(engine, ()):
                    self.comments.append("%s: %s %s is applied by the stack's run only (%s)" % (
                        connection["label"], kind, file_name, "Compose has no migrations" if kind != "schema"
                        else "image %s has no %s contract" % (spec.image, INITDB)))
                    continue
                path = "initdb/%s/%02d-%s-%s" % (name, index + 1, connection["from_resource"], file_name)
                self.files[path] = {"content": sql, "mode": "0644"}
                target = "%s/%02d-%s-%s" % (INITDB, index + 1, connection["from_resource"], file_name)
                service_mounts.append({"type": "bind", "source": "./" + path, "target": target, "read_only": True})
                targets.append(target)
                self.comments.append("%s: schema %s is mounted into %s of %s, which runs it once on an empty data "
                                     "directory, as its POSTGRES_USER/MYSQL_USER, in its POSTGRES_DB/MYSQL_DATABASE "
                                     "(no checksum is recorded)" % (connection["label"], file_name, INITDB, name))
        return targets

    def service_networks(self, resource, networks):
        declared = set(n["name"] for n in resource.get("networks") or [])
        named = set(n["name"] for n in self.declared[resource["name"]].get("networks") or []
                    if resource["name"] in (n.get("aliases") or []))   # its own name declared an alias there
        result, contributed = {}, []
        for network in networks:
            key = "default" if network["name"] == self.plan.default_network else network["name"]
            aliases = [a for a in network.get("aliases") or [] if a != resource["name"] or network["name"] in named]
            entry = dict([("aliases", aliases)] if aliases else [])
            entry.update((k, network[k]) for k in ("ipv4_address", "priority") if network.get(k) is not None)
            result[key] = entry or None
            if key != "default" and network["name"] not in declared:
                contributed.append(network["name"])
        return result, sorted(contributed)

    def restart_and_deploy(self, service, resource):
        """restart, deploy (replicas, update order, swarm placement) and stop_grace_period."""
        policy, deploy = resource.get("restart_policy") or "no", {}
        if self.engine == "swarm":
            deploy["replicas"] = resource.get("replicas") or 1   # restarted on any exit, as the swarm applier does
            if resource.get("endpoint_mode"):
                deploy["endpoint_mode"] = resource["endpoint_mode"]
            if resource.get("max_replicas_per_node"):
                deploy["placement"] = {"max_replicas_per_node": resource["max_replicas_per_node"]}
        declared = self.declared[resource["name"]]   # the plan's resource has the defaults filled in
        if self.engine == "docker" and declared.get("replicas") is not None:
            deploy["replicas"] = declared["replicas"]
        if declared.get("update_order"):
            deploy["update_config"] = {"order": declared["update_order"]}
        if deploy:
            service["deploy"] = deploy
        if declared.get("stop_grace_period"):
            service["stop_grace_period"] = declared["stop_grace_period"]
        if self.engine == "docker" and (policy != "no" or declared.get("restart_policy")):
            service["restart"] = policy   # "no" written when declared, so that it reads back declared

    def depends_on(self, name):
        """What the stack waits for before `name`: every container a connection of it goes to."""
        depends = {}
        for connection in self.plan.connections:
            target = connection["to_resource"]
            if connection["from_resource"] != name or target not in self.plan.specs:
                continue
            check = self.plan.specs[target].healthcheck
            condition = "service_healthy" if check and check["test"] != ["NONE"] else "service_started"
            if connection.get("condition"):   # a dependency's own
                condition = "service_%s" % connection["condition"]
            if depends.get(target, {}).get("condition") not in ("service_healthy", "service_completed_successfully"):
                depends[target] = {"condition": condition}
        return depends

    # -- the document --------------------------------------------------------------------------

    def document(self):
        services = {}
        by_name = dict((r["name"], r) for r in self.plan.resources)
        for name in self.plan.order:
            if name in self.plan.specs and by_name[name].get("state") != "absent":
                services[name] = self.service(name, by_name[name], self.plan.specs[name])
        for resource in self.plan.resources:
            if resource["type"] == "file" and resource.get("content") is not None:
                path = self.relative(self.plan.host_path(resource["path"]))
                if path.startswith("./"):
                    self.files[path[2:]] = {"content": resource["content"], "mode": str(resource.get("mode") or "0644")}
                else:
                    self.comments.append("resource %s: %s is written by the stack's run only (an absolute path)"
                                         % (resource["name"], path))
        document = {} if self.engine == "docker" else {"version": "3.8"}
        document["services"] = services
        networks = self.networks()
        if networks:
            document["networks"] = networks
        volumes = dict((v["name"], {"name": v["name"], "driver": v["driver"]} if v["driver"] is not None
                        else {"name": v["name"], "external": True}) for v in self.plan.volumes)
        for resource in self.plan.resources:   # a container's own named volumes: made by the engine, as Compose does
            for mount in resource.get("mounts") or []:
                if mount.get("type", "volume") == "volume" and mount.get("source") and mount["source"] not in volumes:
                    volumes[mount["source"]] = {"name": mount["source"]}
        if volumes:
            document["volumes"] = volumes
        if self.top_secrets:
            document["secrets"] = self.top_secrets
        document[EXTENSION] = dict(version=VERSION, stack=self.name, engine=self.engine,
                                   **declared_rest(self.resources, self.connections))
        for connection in self.plan.connections:
            self.comments.append("%s: its checks are run by the stack (state: verified), not by Compose"
                                 % connection["label"])
        return self.escaped(document)

    def networks(self):
        result = {}
        for network in self.plan.networks:
            settings = network["settings"]
            if network["name"] == self.plan.default_network:
                continue
            if settings is None:   # an external network resource: used as it is, by Compose too
                result[network["name"]] = {"name": network["name"], "external": True}
                continue
            entry = {"name": network["name"], "driver": "overlay" if self.engine == "swarm" else settings["driver"]}
            if self.engine == "swarm":
                entry["attachable"] = True
            for flag in ("internal", "enable_ipv6"):
                if settings.get(flag):
                    entry[flag] = True
            pool = dict((k, settings[k]) for k in ("subnet", "gateway") if settings.get(k))
            if pool:
                entry["ipam"] = {"config": [pool]}
            result[network["name"]] = entry
        declared = set(n for spec in self.plan.specs.values() for n in (x["name"] for x in spec.networks))
        for name in sorted(declared - set(n["name"] for n in self.plan.networks)):
            result[name] = {"name": name, "external": True}
        return result

    def escaped(self, node, key=None):
        if isinstance(node, dict):
            return dict((k, self.escaped(value, k)) for k, value in node.items())
        if isinstance(node, list):
            return [self.escaped(value, key) for value in node]
        if isinstance(node, str):
            return node.replace("$", "$$") if key in IDENTITY_KEYS else self.secrets.text(node)
        return node

    def header(self):
        lines = ["Compose file of stack %s, exported by clockwork.connections.to_compose (engine %s)."
                 % (self.name, self.engine),
                 "Secrets are ${VAR} read from the .env beside this file (mode 0600); password files are secrets:."]
        if self.engine == "swarm":
            lines.append("docker stack deploy reads no .env: export its variables first (set -a; . ./.env; set +a).")
        lines.append("What Compose cannot do, the stack's run does:")
        lines += ["  - " + line for line in dict.fromkeys(self.comments)]
        return "".join("# %s\n" % self.secrets.text(line).replace("$$", "$") for line in lines)


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings as literal blocks."""


def _text(dumper, value):
    style = "|" if "\n" in value else None   # the emitter falls back to quotes where a block cannot be
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _written_secret(node, secrets):
    """Whether a value of the written document still holds a secret where it stands as one."""
    if isinstance(node, dict):
        return any(_written_secret(v, secrets) for k, v in node.items() if k not in IDENTITY_KEYS)
    if isinstance(node, list):
        return any(_written_secret(v, secrets) for v in node)
    return isinstance(node, str) and any(secret for secret, _text in split_secrets(node.replace("$$", "$"), secrets))


def export(stack, engine="docker", base_dir=None):
    """{text, files}: the compose file, and what goes beside it ({relative path: {content, mode}},
    the `.env` of the secrets among them). Raises ExportError naming the entry and field."""
    job = Export(stack, engine, base_dir)
    document = job.document()
    text = job.header() + yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
    if _written_secret(document, job.secrets.variables):
        raise ExportError("a secret would be written in the file")   # never: escaped() replaced them
    files = dict(job.files)
    if job.secrets.values:
        files[".env"] = {"content": job.secrets.dotenv(), "mode": "0600", "secret": True}
    return {"text": text, "files": files}
