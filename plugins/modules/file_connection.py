#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: file_connection
short_description: Mount a host file, a directory or a shared volume into a container
version_added: 0.1.0
description:
  - With O(source_path), bind-mounts that file or directory of the Docker host into O(from_resource) at
    O(mount_path). With O(content), the file is written first (only when it differs, in place), with
    O(mode) and O(owner) as asked, like the seed's FileResource. A missing O(source_path) without
    O(content) is an error naming it.
  - With O(volume_name), mounts that named volume, created with the stack's labels when missing and
    O(create_volume) is true. When O(to_resource) is a container, the volume is shared, mounted into it
    too at the same path, read-write, unless it already mounts it; the container is recreated for that
    and keeps the mount on later runs of M(clockwork.connections.container).
  - A volume is never recreated or removed by this module, whatever changes, because it holds data.
  - The mount is contributed to O(from_resource); a changed mount makes M(clockwork.connections.container)
    recreate it, and the data in a named volume survives that.
  - Its checks read the file inside O(from_resource) (and prove a read-only mount is not writable), or
    write a probe file in O(from_resource) and read it back in O(to_resource) for a shared volume.
author:
  - Clockwork Connections developers (@clockwork-connections)
requirements:
  - docker (the Docker SDK for Python) >= 7.0
extends_documentation_fragment:
  - clockwork.connections.connection
  - clockwork.connections.connection.completion
options:
  mount_path:
    description: Absolute path inside the container. Required unless completed from O(description).
    type: str
  source_path:
    description:
      - File or directory to bind-mount. An absolute path is a path on the Docker host.
      - A relative path names a file of the controller, looked up in the role's or playbook's C(files/), then
        the playbook's directory. When the Docker host is the controller itself, that file is mounted where it
        is. On a remote Docker host its content is sent with the task and written under the stack's base
        directory there (C(~/.clockwork/<stack>) of the remote user), then mounted; a directory must already
        be on the Docker host, named by an absolute path.
      - With O(content), the file the connection writes (a relative one under the playbook's directory, or the
        stack's base directory on a remote Docker host).
    type: path
  content:
    description: Content of the file at O(source_path), written when it differs.
    type: str
  mode:
    description: File mode for O(source_path), like C(0644).
    type: raw
  owner:
    description: Owner (name or uid) of O(source_path) on the Docker host.
    type: str
  volume_name:
    description: Named volume to mount (and share with O(to_resource) when it is a container).
    type: str
  read_only:
    description: Mount read-only into O(from_resource).
    type: bool
    default: false
  create_volume:
    description: Create O(volume_name) when it does not exist; without it a missing volume is an error.
    type: bool
    default: true
  volume_driver:
    description: Driver for a volume this module creates. An existing volume with another driver is an error.
    type: str
    default: local
"""

EXAMPLES = r"""
- name: The seed's config file, read-only in api
  clockwork.connections.file_connection:
    from: api
    to: api-config
    source_path: config.json
    content: '{"log_level": "info"}'
    mount_path: /etc/app/config.json
    read_only: true
    stack: shop
  register: config

- name: The seed's shared volume, in api and in storage
  clockwork.connections.file_connection:
    from: api
    to: storage
    volume_name: app-shared-data
    mount_path: /data/shared
    stack: shop
  register: shared
"""

RETURN = r"""
file:
  description: What is mounted.
  returned: success
  type: dict
  sample: {kind: volume, source: app-shared-data, mount_path: /data/shared}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clockwork.connections.plugins.module_utils.file import connection_type as file
from ansible_collections.clockwork.connections.plugins.module_utils.module_runner import (
    connection_spec, run_connection)


def main():
    module = AnsibleModule(argument_spec=connection_spec(file.TYPE.args), supports_check_mode=True,
                           mutually_exclusive=[("source_path", "volume_name")])
    run_connection(module, file.TYPE)


if __name__ == "__main__":
    main()
