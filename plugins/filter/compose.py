# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""from_compose: a Docker Compose file as the stack's resources and connections (plugin_utils/compose/importer.py);
to_compose and to_compose_files: a declared stack as a Compose file and what goes beside it
(plugin_utils/compose/exporter.py).

The compose code is imported when one of these filters runs, not when the file loads: Ansible
loads every filter file of the collection to find any one of its filters (stack_summary too)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleFilterError


def from_compose(text, project_name=None, env=None, profiles=None, base_dir=None, source="compose file",
                 allowed_paths=None, allow=None):
    from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.guard import never_templated  # pylint: disable=import-outside-toplevel
    from ansible_collections.clockwork.connections.plugins.plugin_utils.compose import importer  # pylint: disable=import-outside-toplevel
    try:
        # The file's text is someone else's: what comes of it is never templated (unsafe).
        return never_templated(importer.from_compose(text, project_name=project_name, env=env, profiles=profiles,
                                                     base_dir=base_dir, source=source, allowed_paths=allowed_paths,
                                                     allow=allow))
    except importer.ComposeError as exc:
        raise AnsibleFilterError(str(exc))


def _exported(stack, engine, base_dir):
    from ansible_collections.clockwork.connections.plugins.plugin_utils.compose import exporter  # pylint: disable=import-outside-toplevel
    try:
        return exporter.export(stack, engine=engine, base_dir=base_dir)
    except exporter.ExportError as exc:
        raise AnsibleFilterError("to_compose: %s" % exc)


def to_compose(stack, engine="docker", base_dir=None):
    return _exported(stack, engine, base_dir)["text"]


def to_compose_files(stack, engine="docker", base_dir=None):
    return _exported(stack, engine, base_dir)["files"]


class FilterModule(object):
    def filters(self):
        return {"from_compose": from_compose, "to_compose": to_compose, "to_compose_files": to_compose_files}
