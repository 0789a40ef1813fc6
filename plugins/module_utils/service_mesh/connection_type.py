# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ServiceMeshConnection: `<SERVICE>_URL` for `from`, the port discovered from `to`,
a health check over HTTP(S) from inside `from`, and TLS material when asked."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import posixpath

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    ClockworkError, chosen_env_name, docker_name_problem, env_name, env_var_name_problems, port_number)
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionType
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import ensure_mounted
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import exec_arg, exec_first, exec_path
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import stack_home
from ansible_collections.clockwork.connections.plugins.module_utils.service_mesh.completion import COMPLETION

SERVICE_MESH_ARGS = dict(
    protocol=dict(type="str", default="http", choices=["http", "https", "grpc", "tcp"]),
    port=dict(type="int"),
    service_name=dict(type="str"),
    health_check_path=dict(type="str", default="/health"),
    health_check_timeout=dict(type="int", default=30),
    load_balancing=dict(type="str", default="round_robin"),
    tls_enabled=dict(type="bool", default=False),
    cert_path=dict(type="str", default="/etc/clockwork/tls/tls.crt"),
    key_path=dict(type="str", default="/etc/clockwork/tls/tls.key", no_log=False),  # a path, not a key
    ca_path=dict(type="str", default="/etc/clockwork/tls/ca.crt"),
    tls_dir=dict(type="path"),
    env_var_name=dict(type="str"),
)

# Docker's embedded DNS answers a name shared by several containers with all their
# addresses, rotated: that is round robin, and it is the only policy Docker offers.
LOAD_BALANCING = {"round_robin": "Docker's DNS rotates the addresses of all containers sharing the service name"}


def validate(params):
    problems = []
    policy = params.get("load_balancing") or "round_robin"
    if policy not in LOAD_BALANCING:
        problems.append(("load_balancing", "%s cannot be honoured: Docker's DNS only rotates the addresses of "
                                           "containers sharing a name (round_robin)" % policy))
    if params.get("port") is not None and not 0 < params["port"] < 65536:
        problems.append(("port", "%s is not a port number (1-65535)" % params["port"]))
    if params.get("service_name") and docker_name_problem(params["service_name"]):
        problems.append(("service_name", docker_name_problem(params["service_name"])))
    path = params.get("health_check_path")
    if path and not path.startswith("/"):
        problems.append(("health_check_path", "%s must start with /" % path))
    if params.get("tls_enabled"):
        for field in ("cert_path", "key_path", "ca_path"):
            if not posixpath.isabs(params.get(field) or ""):
                problems.append((field, "%s must be an absolute path inside the container" % params.get(field)))
    return problems + env_var_name_problems(params)


def discover_port(ctx, to, params, connection):
    if params.get("port"):
        return int(params["port"]), "given"
    declared = to.declared_ports()
    if declared:
        return port_number(declared[0]), "declared by %s" % to.name
    exposed = to.exposed_ports(ctx.engine)
    if exposed:
        return port_number(exposed[0]), "exposed by %s's image" % to.name
    raise ClockworkError("%s: no port for %s: it declares none and its image exposes none; set port"
                         % (connection, to.name))


def default_tls_dir(stack):
    """On the Docker host, in the home of the user the module runs as."""
    return os.path.join(stack_home(stack), "tls")


def _tls_dir(params, stack):
    return os.path.expanduser(params.get("tls_dir") or default_tls_dir(stack))


def _tls():
    """tls.py, imported when TLS is asked for: it loads `cryptography`, a hundredth of a second
    that a stack without TLS never needs."""
    from ansible_collections.clockwork.connections.plugins.module_utils.service_mesh import tls  # pylint: disable=import-outside-toplevel
    return tls


def certificate_files(params, stack):
    """The CA and `to`'s certificate and key on the Docker host."""
    return _tls().certificate_paths(_tls_dir(params, stack), params["to_resource"])


def written_files(params, stack):
    """The TLS material the run makes before anything mounts it."""
    if not params.get("tls_enabled"):
        return {}
    return dict((path, None) for path in certificate_files(params, stack).values())


def preflight(_engine, plan, params, images, _written):
    """Without a port, one must be discoverable: declared by `to`, or exposed by its image."""
    if params.get("port"):
        return []
    spec = plan.specs.get(params["to_resource"])
    image = images.get(spec.image) if spec is not None else None
    exposed = ((image or {}).get("Config") or {}).get("ExposedPorts")
    if spec is not None and not spec.ports and image is not None and not exposed:
        return [("port", "%s declares no port and its image %s exposes none; set port" % (spec.name, spec.image))]
    return []


def claimed_mounts(params, _to_is_container):
    """With TLS: the CA in `from`, the certificate and key in `to`."""
    if not params.get("tls_enabled"):
        return []
    return [("from", params.get("ca_path"), "the stack's CA"), ("to", params.get("cert_path"), "its certificate"),
            ("to", params.get("key_path"), "its key")]


def prepare(ctx, params, result):
    """The stack's CA and `to`'s certificate, made unless current. Returns what must follow:
    a running `to` restarts to read renewed files."""
    if not params.get("tls_enabled"):
        return None
    to_name = params["to_resource"]
    service = params.get("service_name") or to_name
    directory = _tls_dir(params, ctx.stack)
    actions, _files = _tls().ensure_certificates(directory, ctx.stack, to_name, [service, to_name], ctx.engine.files)
    if ctx.first_time(("tls", directory, to_name)):
        for action in actions:
            result.act(action)
    return {"restart": [to_name]} if actions else None


def to_contribution(params, stack):
    """`to` answers to the service name on the stack's network, and serves its certificate."""
    to_name = params["to_resource"]
    service = params.get("service_name") or to_name
    networks = [{"name": "%s_default" % stack, "aliases": [service]}] if service != to_name else []
    mounts = []
    if params.get("tls_enabled"):
        files = certificate_files(params, stack)
        mounts = [{"type": "bind", "source": files["cert"], "target": params["cert_path"], "read_only": True},
                  {"type": "bind", "source": files["key"], "target": params["key_path"], "read_only": True}]
    return {"mounts": mounts, "networks": networks}


def url_env_name(params, to_name):
    """`<SERVICE>_URL`, or the connection's `env_var_name` ("" for none)."""
    return chosen_env_name(params, env_name(params.get("service_name") or to_name) + "_URL")


def ca_env_name(params, to_name):
    return env_name(params.get("service_name") or to_name) + "_CA_FILE"


def injected_env(params, to_name):
    url_name = url_env_name(params, to_name)
    return ([url_name] if url_name else []) + ([ca_env_name(params, to_name)] if params.get("tls_enabled") else [])


def converge(ctx, params, result, prepared=None):
    from_name, to_name = params["from_resource"], params["to_resource"]
    policy = params.get("load_balancing") or "round_robin"
    to = ctx.require_to(to_name, result.name)
    if not to.exists and to.spec is None and not params.get("port"):
        # A dry run before `to` exists (a real run refused it above): its ports are not known yet,
        # and that is no error.
        result.extra["service"] = {"url": None, "port": None,
                                   "port_source": "unknown until %s exists (check mode)" % to_name}
        return
    port, found = discover_port(ctx, to, params, result.name)
    service = params.get("service_name") or to_name
    protocol = "https" if params.get("tls_enabled") and params.get("protocol") == "http" else params.get("protocol")
    url = "%s://%s:%d" % (protocol, service, port)
    if url_env_name(params, to_name):
        result.contribution.env[url_env_name(params, to_name)] = url
    result.extra["service"] = {"url": url, "port": port, "port_source": found, "load_balancing": LOAD_BALANCING[policy]}

    check = {"kind": "http", "connection": result.name, "container": from_name,
             "url": url + (params.get("health_check_path") or "/"), "retry_for": params.get("health_check_timeout", 30)}
    if params.get("tls_enabled"):
        files = certificate_files(params, ctx.stack)
        remounted = False if ctx.in_stack else ensure_mounted(ctx, to, to_contribution(params, ctx.stack)["mounts"],
                                                              result)
        if prepared and to.running and not ctx.in_stack and not remounted:
            # Same files, new content: the server must read them again.
            result.act("restart %s for its new certificate" % to_name)
            ctx.engine.restart(to_name)
        result.contribution.mounts.append({"type": "bind", "source": files["ca"], "target": params["ca_path"],
                                           "read_only": True})
        result.contribution.env[ca_env_name(params, to_name)] = params["ca_path"]
        check["ca_file"] = params["ca_path"]
        result.extra["service"]["tls"] = {"ca": files["ca"], "cert": files["cert"]}
    if protocol in ("http", "https"):
        result.contribution.checks.append(check)
    else:
        result.contribution.checks.append({"kind": "dns_tcp", "connection": result.name, "container": from_name,
                                           "host": service, "port": port})


# -- the health check, from inside `from` -------------------------------------

def http_url(value):
    """A check's URL: http or https, one argv entry, nothing a shell or curl would expand."""
    value = exec_arg(value)
    if not value.startswith(("http://", "https://")) or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("%r is not an http:// or https:// URL" % (value,))
    return value


def http_probes(url, ca_file):
    """curl, else wget, each printing the response's status line before its body.
    curl's -g keeps `[]{}` in the URL literal; the URL is an argument, never a script."""
    curl = ["curl", "-sS", "-g", "--max-time", "5", "-D", "-", "-o", "-"]
    wget = ["wget", "-S", "-q", "-T", "5", "-O", "-"]
    if ca_file:
        curl += ["--cacert", ca_file]
        wget += ["--ca-certificate=" + ca_file]
    return [curl + ["--url", url], wget + [url]]


def check_http(engine, check):
    """GET the URL from inside the container; 2xx passes. curl, else wget."""
    url, container = check["url"], check["container"]
    code, out, _tool = exec_first(engine, container, http_probes(url, check.get("ca_file")))
    # The last status line counts (wget prints each response); the body follows the headers.
    statuses = [line.split()[1] for line in out.splitlines()
                if line.strip().startswith("HTTP/") and len(line.split()) > 1 and line.split()[1].isdigit()]
    status = statuses[-1] if statuses else None
    body = out.replace("\r\n", "\n").partition("\n\n")[2]
    if code == 0 and status and status.startswith("2"):
        return True, "GET %s from %s answered %s" % (url, container, status)
    detail = "status %s" % status if status else (out.splitlines()[0] if out else "no answer")
    return False, "GET %s from %s failed: %s; response began: %r" % (url, container, detail, body[:200])


check_http.fields = dict(container=dict(type=exec_arg, required=True), url=dict(type=http_url, required=True),
                         ca_file=dict(type=exec_path))


TYPE = ConnectionType(
    "service_mesh", SERVICE_MESH_ARGS, converge,
    checks={"http": check_http},
    injected_env=injected_env,
    validate=validate,
    completable=("port", "service_name"),
    prepare=prepare,
    to_contribution=to_contribution,
    mount_targets=lambda params: [params.get("ca_path")] if params.get("tls_enabled") else [],
    written_files=written_files,
    preflight=preflight,
    prepares_on_swarm=True,
    claimed_mounts=claimed_mounts,
    completion=COMPLETION,
)
