# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files that live beside the playbook, read on the controller into a connection's
arguments, so that a module on a remote Docker host needs nothing from the controller.

- `schema_file` and `migrations_dir` are always controller files: their content goes
  into `schema_content` and `migrations`.
- A relative `source_path` found on the controller (the role's or playbook's `files/`,
  then the playbook's directory) is bind-mounted from where it is when the target is
  this machine; for a remote target its content is shipped and written on the Docker
  host, under the stack's base_dir. An absolute `source_path` is a path on the Docker host.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

SQL_SUFFIX = ".sql"


def _read_text(path):
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8")


def ship(params, fields, find, local):
    """Read the controller files that `fields` of a connection name into `params` (a copy).

    `find(path)` resolves a relative path like Ansible's `src`; `local` is True when the
    Docker host is this machine. A file that cannot be read stays a path: the plan then
    names it as missing."""
    params = dict(params)
    for field in fields:
        path = params.get(field)
        if not path:
            continue
        resolved = find(path)
        if field == "schema_file":
            params[field] = resolved
            if os.path.isfile(resolved) and params.get("schema_content") is None:
                params["schema_content"] = _read_text(resolved)
        elif field == "migrations_dir":
            params[field] = resolved
            if os.path.isdir(resolved) and params.get("migrations") is None:
                params["migrations"] = [{"name": name, "content": _read_text(os.path.join(resolved, name))}
                                        for name in sorted(os.listdir(resolved)) if name.endswith(SQL_SUFFIX)]
        elif field == "source_path" and not os.path.isabs(os.path.expanduser(path)):
            if local:
                params[field] = resolved
            elif os.path.isfile(resolved) and params.get("content") is None:
                params["content"] = _read_text(resolved)   # written on the Docker host, under base_dir
    return params
