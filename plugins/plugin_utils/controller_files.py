# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files that live beside the playbook, read on the controller into a connection's
arguments, so that a module on a remote Docker host needs nothing from the controller.
Which fields name such files, and how each is shipped, is the connection type's
(`controller_files` and its `ship_files` hook): the schema and migrations of a database
connection are read into its arguments; a relative `source_path` of a file connection is
bind-mounted from where it is when the target is this machine, else its content is shipped
and written on the Docker host, under the stack's base_dir.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


def ship(params, kind, find, local):
    """`params` (a copy) with the controller files of a connection of type `kind` read in.

    `find(path)` resolves a relative path like Ansible's `src`; `local` is True when the
    Docker host is this machine. A file that cannot be read stays a path: the plan then
    names it as missing."""
    return kind.ship_files(dict(params), find, local) if kind is not None else dict(params)
