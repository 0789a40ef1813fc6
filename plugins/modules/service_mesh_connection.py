#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: service_mesh_connection
short_description: Service discovery between containers, with a health check and optional TLS
version_added: 0.1.0
description:
  - Discovers the port of O(to_resource) (O(port), else its first declared container port, else the
    first port its image exposes) and contributes C(<SERVICE>_URL=<protocol>://<service>:<port>) to
    O(from_resource), where the service is O(service_name) or the O(to_resource) name; for the seed,
    C(API_URL=http://api:8000).
  - Its check, for M(clockwork.connections.verify), is an HTTP(S) GET of O(health_check_path) from inside
    O(from_resource) that must answer 2xx within O(health_check_timeout), retried; a failure shows the URL,
    the status or error, and the first bytes of the response.
  - With O(tls_enabled), a certificate authority for the stack and a key and certificate for O(to_resource)
    (subject alternative names the service name and the resource name) are generated with the
    C(cryptography) package in O(tls_dir); keys are written 0600 and made again only when missing, expiring
    within 30 days, or when the names change. Certificate and key are mounted read-only into O(to_resource)
    at O(cert_path) and O(key_path) (it is recreated for that, or restarted when only their content
    changed), the CA into O(from_resource) at O(ca_path), contributed as C(<SERVICE>_CA_FILE), and the URL
    becomes C(https). The health check then verifies the certificate against that CA.
author:
  - Clockwork Connections developers (@clockwork-connections)
requirements:
  - docker (the Docker SDK for Python) >= 7.0
  - cryptography (with O(tls_enabled))
extends_documentation_fragment:
  - clockwork.connections.connection
  - clockwork.connections.connection.completion
options:
  protocol:
    description: URL scheme. C(http) becomes C(https) with O(tls_enabled). C(grpc) and C(tcp) get a TCP check instead of HTTP.
    type: str
    choices: [http, https, grpc, tcp]
    default: http
  port:
    description: The port of O(to_resource). Discovered when not given; none found is an error that says so.
    type: int
  service_name:
    description: Host name in the URL and in the env name. Defaults to the O(to_resource) name; it must resolve in O(from_resource).
    type: str
  health_check_path:
    description: Path requested by the health check.
    type: str
    default: /health
  health_check_timeout:
    description: Seconds during which a failing health check is retried.
    type: int
    default: 30
  load_balancing:
    description:
      - C(round_robin) is the only value Docker can honour; any other is rejected. Docker's embedded DNS
        answers a name shared by several containers with all of their addresses, rotated, so clients
        spread over them. No proxy is involved.
    type: str
    default: round_robin
  tls_enabled:
    description: Generate TLS material and use C(https).
    type: bool
    default: false
  cert_path:
    description: Where O(to_resource) finds its certificate.
    type: str
    default: /etc/clockwork/tls/tls.crt
  key_path:
    description: Where O(to_resource) finds its key.
    type: str
    default: /etc/clockwork/tls/tls.key
  ca_path:
    description: Where O(from_resource) finds the CA certificate.
    type: str
    default: /etc/clockwork/tls/ca.crt
  tls_dir:
    description: Directory on the Docker host for the stack's CA, keys and certificates. Defaults to C(~/.clockwork/<stack>/tls).
    type: path
  env_var_name:
    description:
      - Env variable contributed to O(from_resource), holding the service URL. Defaults to C(<SERVICE>_URL), from
        O(service_name) or else the O(to_resource) name.
      - Name the variable the application reads, for example C(UPSTREAM_URL); an empty string contributes none.
        The CA file's variable stays C(<SERVICE>_CA_FILE).
    type: str
"""

EXAMPLES = r"""
- name: The seed's connection; frontend gets API_URL=http://api:8000
  clockwork.connections.service_mesh_connection:
    from: frontend
    to: api
    protocol: http
    health_check_path: /health
    load_balancing: round_robin
    stack: shop
  register: mesh

- name: The same over TLS; api must serve its certificate from /etc/clockwork/tls
  clockwork.connections.service_mesh_connection:
    from: frontend
    to: api
    tls_enabled: true
    stack: shop
"""

RETURN = r"""
service:
  description: The URL, the port and where it was found, what load balancing means here, and TLS files.
  returned: success
  type: dict
  sample: {url: "http://api:8000", port: 8000, port_source: declared by api, load_balancing: "..."}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clockwork.connections.plugins.module_utils.module_runner import (
    connection_spec, run_connection)
from ansible_collections.clockwork.connections.plugins.module_utils.service_mesh import connection_type as service_mesh


def main():
    module = AnsibleModule(argument_spec=connection_spec(service_mesh.TYPE.args), supports_check_mode=True)
    run_connection(module, service_mesh.TYPE)


if __name__ == "__main__":
    main()
