# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""compose_merged, compose_masked, compose_vars_file: what the stack role and
playbooks/compose_import.yml do with an imported compose file (plugin_utils/compose/declaration.py).

The compose code is imported when one of these filters runs, not when the file loads: Ansible
loads every filter file of the collection to find any one of its filters."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _compose():
    """(declaration, guard, importer) of plugin_utils/compose."""
    from ansible_collections.clockwork.connections.plugins.plugin_utils.compose import (  # pylint: disable=import-outside-toplevel
        declaration, guard, importer)
    return declaration, guard, importer


# Each result holds a compose file's text, someone else's: wrapped so that Ansible never templates it.

def compose_merged(imported, resources=None, connections=None):
    declaration, guard, _importer = _compose()
    return guard.never_templated(declaration.merged(imported, resources, connections))


def compose_masked(lines, declaration):
    compose_declaration, guard, _importer = _compose()
    return guard.never_templated(compose_declaration.masked(lines, declaration))


def compose_vars_file(text, stack=None, env=None, profiles=None, base_dir=None, source="compose file",
                      secrets_file=None, allowed_paths=None, allow=None):
    declaration, guard, importer = _compose()
    try:
        return guard.never_templated(declaration.vars_file(
            text, stack=stack or None, env=env, profiles=profiles, base_dir=base_dir, source=source,
            secrets_file=secrets_file, allowed_paths=allowed_paths, allow=allow))
    except importer.ComposeError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"compose_merged": compose_merged, "compose_masked": compose_masked,
                "compose_vars_file": compose_vars_file}
