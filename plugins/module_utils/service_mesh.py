# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ServiceMeshConnection: `<SERVICE>_URL` for `from`, the port discovered from `to`,
a health check over HTTP(S) from inside `from`, and TLS material when asked."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import posixpath
import shlex

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, env_name
from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionResult
from ansible_collections.clockwork.connections.plugins.module_utils.container import ensure_mounted
from ansible_collections.clockwork.connections.plugins.module_utils.docker_client import exec_in
from ansible_collections.clockwork.connections.plugins.module_utils.tls import ensure_certificates

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
)

# Docker's embedded DNS answers a name shared by several containers with all their
# addresses, rotated: that is round robin, and it is the only policy Docker offers.
LOAD_BALANCING = {"round_robin": "Docker's DNS rotates the addresses of all containers sharing the service name"}


def discover_port(ctx, to, params, connection):
    if params.get("port"):
        return int(params["port"]), "given"
    declared = to.declared_ports()
    if declared:
        return int(declared[0].split("/")[0]), "declared by %s" % to.name
    exposed = to.exposed_ports(ctx.engine)
    if exposed:
        return int(exposed[0].split("/")[0]), "exposed by %s's image" % to.name
    raise ClockworkError("%s: no port for %s: it declares none and its image exposes none; set port"
                         % (connection, to.name))


def default_tls_dir(stack):
    return os.path.join(os.path.expanduser("~"), ".clockwork", stack, "tls")


def tls_mounts(ctx, params, result):
    """Make the CA and `to`'s certificate (unless current) and return the mounts for `to`."""
    for path in ("cert_path", "key_path", "ca_path"):
        if not posixpath.isabs(params[path]):
            raise ClockworkError("%s: %s %s must be an absolute path" % (result.name, path, params[path]))
    to_name = params["to_resource"]
    service = params.get("service_name") or to_name
    directory = params.get("tls_dir") or default_tls_dir(ctx.stack)
    actions, files = ensure_certificates(directory, ctx.stack, to_name, [service, to_name], ctx.check_mode)
    if ctx.first_time(("tls", directory, to_name)):
        for action in actions:
            result.act(action)
    result.extra["tls_files"] = files
    return [{"type": "bind", "source": source, "target": target, "read_only": True}
            for source, target in ((files["cert"], params["cert_path"]), (files["key"], params["key_path"]))]


def converge(ctx, params):
    from_name, to_name = params["from_resource"], params["to_resource"]
    result = ConnectionResult("service_mesh", from_name, to_name)
    policy = params.get("load_balancing") or "round_robin"
    if policy not in LOAD_BALANCING:
        raise ClockworkError("%s: load_balancing %s cannot be honoured: Docker's DNS only rotates the addresses "
                             "of containers sharing a name (round_robin)" % (result.name, policy))
    to = ctx.require_to(to_name, result.name)
    if ctx.check_mode and not to.exists and to.spec is None and not params.get("port"):
        # A dry run before `to` exists: its ports are not known yet, and that is no error.
        result.extra["service"] = {"url": None, "port": None,
                                   "port_source": "unknown until %s exists (check mode)" % to_name}
        return result
    port, found = discover_port(ctx, to, params, result.name)
    service = params.get("service_name") or to_name
    protocol = "https" if params.get("tls_enabled") and params.get("protocol") == "http" else params.get("protocol")
    url = "%s://%s:%d" % (protocol, service, port)
    prefix = env_name(service)
    result.contribution.env[prefix + "_URL"] = url
    result.extra["service"] = {"url": url, "port": port, "port_source": found, "load_balancing": LOAD_BALANCING[policy]}

    check = {"kind": "http", "connection": result.name, "container": from_name,
             "url": url + (params.get("health_check_path") or "/"), "retry_for": params.get("health_check_timeout", 30)}
    if params.get("tls_enabled"):
        ensure_mounted(ctx, to, tls_mounts(ctx, params, result), result)
        files = result.extra["tls_files"]
        if any(a.startswith("generate") for a in result.actions) and to.running and not ctx.check_mode \
                and not any(a.startswith("mount") for a in result.actions):
            # Same files, new content: the server must read them again.
            result.act("restart %s for its new certificate" % to_name)
            ctx.engine.api.restart(to_name)
            ctx.engine.forget("container", to_name)
        result.contribution.mounts.append({"type": "bind", "source": files["ca"], "target": params["ca_path"],
                                           "read_only": True})
        result.contribution.env[prefix + "_CA_FILE"] = params["ca_path"]
        check["ca_file"] = params["ca_path"]
        result.extra["service"]["tls"] = {"ca": files["ca"], "cert": files["cert"]}
        del result.extra["tls_files"]
    if protocol in ("http", "https"):
        result.contribution.checks.append(check)
    else:
        result.contribution.checks.append({"kind": "dns_tcp", "connection": result.name, "container": from_name,
                                           "host": service, "port": port})
    return result


# -- the health check, from inside `from` -------------------------------------

def check_http(engine, check):
    """GET the URL from inside the container; 2xx passes. curl, else wget."""
    url, container = check["url"], check["container"]
    ca = " --cacert %s" % shlex.quote(check["ca_file"]) if check.get("ca_file") else ""
    wget_ca = " --ca-certificate=%s" % shlex.quote(check["ca_file"]) if check.get("ca_file") else ""
    script = (
        'if command -v curl >/dev/null 2>&1; then '
        'curl -sS --max-time 5{ca} -o /tmp/.clockwork-body -w "%{{http_code}}" {url} 2>&1; '
        'echo; head -c 200 /tmp/.clockwork-body 2>/dev/null; rm -f /tmp/.clockwork-body; '
        'elif command -v wget >/dev/null 2>&1; then '
        'wget -q -T 5{wca} -O /tmp/.clockwork-body {url} 2>&1 && echo 200 || echo 000; '
        'head -c 200 /tmp/.clockwork-body 2>/dev/null; rm -f /tmp/.clockwork-body; '
        'else echo "neither curl nor wget in the container"; exit 127; fi'
    ).format(ca=ca, wca=wget_ca, url=shlex.quote(url))
    code, out = exec_in(engine, container, script)
    first, _sep, body = out.partition("\n")
    status = first[-3:] if first[-3:].isdigit() else None
    if code == 0 and status and status.startswith("2"):
        return True, "GET %s from %s answered %s" % (url, container, status)
    detail = "status %s" % status if status and status != "000" else (first or "no answer")
    return False, "GET %s from %s failed: %s; response began: %r" % (url, container, detail, body[:200])
