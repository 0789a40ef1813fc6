# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the stack role and playbooks/compose_import.yml do with an imported compose file
(importer.from_compose): merge the declared resources and connections over it, mask its
secrets in the warnings, and write it as a vars file the user then owns, with no secret in it.

In the vars file each secret (a connection's password, a secret-named env value, a URL with a
password, a secret flag's value or a command line holding one, as masking.py knows them) is a
reference to a variable, `{{ <stack>_<where>_password }}`, where it is the whole value: nowhere
else is a value rewritten. The values go to a second file (mode 0600) meant to be encrypted with
ansible-vault, so the declaration can be committed as it is.

The compose file is someone else's text: every imported string that could read as a template
is written with Ansible's `!unsafe` tag (the secrets file's values all are), so that loading
the files templates nothing of it; the only templates are the references this module writes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

import yaml

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.clockwork.connections.plugins.module_utils.masking import (
    MASK, SECRET_ENV_NAME, command_secrets, declared_secrets, forms)
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.importer import (
    Report, choose_project_name, from_compose, load)
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.secrets import IDENTITY_KEYS, url_secret


def _replaced(items, declared, key):
    """`items` with each one that has the key of a declared one replaced by it, in place; the
    declared ones that replace nothing follow."""
    by_key = dict((key(d), d) for d in declared)
    used = set()
    out = []
    for item in items:
        found = by_key.get(key(item))
        out.append(found if found is not None else item)
        if found is not None:
            used.add(key(item))
    return out + [d for d in declared if key(d) not in used]


def merged(imported, resources=None, connections=None):
    """The imported declaration with the declared resources (by name) and connections (by from,
    to and type) over it: a declared one replaces the imported one it matches."""
    return {
        "resources": _replaced(imported.get("resources") or [], resources or [], lambda r: r.get("name")),
        "connections": _replaced(imported.get("connections") or [], connections or [],
                                 lambda c: (c.get("from"), c.get("to"), c.get("type"))),
        "warnings": list(imported.get("warnings") or []),
    }


def masked(lines, declaration):
    """Lines (the importer's warnings) with every secret of the declaration masked."""
    secrets = sorted(declared_secrets(declaration.get("resources"), declaration.get("connections")),
                     key=len, reverse=True)
    out = []
    for line in lines or []:
        line = str(line)
        for secret in secrets:
            line = line.replace(secret, MASK)
        out.append(line)
    return out


# -- the vars file ---------------------------------------------------------------------

def _slug(*parts):
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", "_".join(str(p) for p in parts if p).lower())).strip("_")


class Secrets(object):
    """Each secret value -> the variable that holds it; its URL-encoded form -> `| urlencode`
    of it, or a variable of its own when Jinja's urlencode gives another form."""

    def __init__(self, stack):
        self.stack, self.values, self.references = stack, {}, {}

    def add(self, value, *where):
        value = str(value)
        if not value or value in self.references:
            return
        name = self._free(_slug(self.stack, *where))
        self.values[name], self.references[value] = value, name
        for form in sorted(forms(value) - set([value])):
            if form in self.references:
                continue
            if form == quote(value):   # what Jinja's urlencode filter gives
                self.references[form] = "%s | urlencode" % name
            else:
                other = self._free(name + "_urlencoded")
                self.values[other], self.references[form] = form, other

    def _free(self, name):
        while name in self.values:
            name += "_"
        return name

    def text(self, value):
        """A string of the declaration: a secret's `{{ variable }}` when it is the whole value,
        else the value itself, never templated."""
        if value in self.references:
            return "{{ %s }}" % self.references[value]
        return literal(value)


class Unsafe(str):
    """Text Ansible must never template: written with the `!unsafe` tag."""


# What could make Ansible read a string as a template: Jinja's delimiters, or a `#jinja2:`
# header, which needs a `#` (and a template a `{`); `%` for good measure.
_TEMPLATE_LIKE = re.compile(r"[{}%#]")


def literal(text):
    return Unsafe(text) if _TEMPLATE_LIKE.search(text) else text


def collect(stack, declaration):
    """The declaration's secrets, named after where they are first found."""
    secrets = Secrets(stack)
    for connection in declaration["connections"]:
        if connection.get("password"):
            secrets.add(connection["password"], connection.get("from"), connection.get("to"), "password")
    for resource in declaration["resources"]:
        for key, value in sorted((resource.get("env") or {}).items()):
            if value is not None and SECRET_ENV_NAME.search(key):
                secrets.add(value, resource["name"], key)
        build = resource.get("build") if isinstance(resource.get("build"), dict) else {}
        for key, value in sorted((build.get("args") or {}).items()):   # a token passed to the build
            if value is not None and SECRET_ENV_NAME.search(key):
                secrets.add(value, resource["name"], "build", key)
    for item in declaration["resources"] + declaration["connections"]:
        for key, value in sorted(_strings(item)):
            if url_secret(value):   # a URL with a password is a secret as a whole
                secrets.add(value, item.get("name") or item.get("from"), key.split(".")[-1], "url")
    for resource in declaration["resources"]:
        command = resource.get("command")
        if isinstance(command, str) and command_secrets(command):
            secrets.add(command, resource["name"], "command")   # a command line holding a secret flag's value
            continue
        for index, value in enumerate(sorted(command_secrets(command), key=len)):
            secrets.add(value, resource["name"], "command", "secret" if not index else "secret%d" % index)
    return secrets


def _strings(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, "%s.%s" % (path, key) if path else str(key))
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, path)
    elif isinstance(node, str):
        yield path, node


def _plain(node, secrets, key=None):
    """Plain Python types (YAML-dumpable), each string through secrets.text (but the fields that
    say what a thing is), each key kept from templating too."""
    if isinstance(node, dict):
        return dict((literal(str(k)), _plain(v, secrets, k)) for k, v in node.items())
    if isinstance(node, (list, tuple)):
        return [_plain(v, secrets, key) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return literal(str(node)) if key in IDENTITY_KEYS else secrets.text(str(node))


class _Dumper(yaml.SafeDumper):
    """Unsafe text with Ansible's `!unsafe` tag, always quoted."""


_Dumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value), style="'"))


def _dump(data):
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=120)


def comment(text):
    """Text for a `# ` comment line: every line break YAML knows (and other control characters)
    turned into a space, so that nothing of it becomes a key of the file."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]", " ", str(text))


def stack_name(text, stack, env, base_dir, source):
    """The stack's name: the one given, else the project's name as Compose chooses it."""
    if stack:
        return stack
    document = load(text, source)
    return choose_project_name(None, document, dict(env or {}), base_dir, Report(source))


def vars_file(text, stack=None, env=None, profiles=None, base_dir=None, source="compose file", secrets_file=None,
              allowed_paths=None, allow=None):
    """A compose file's text -> {stack, text (the vars file), secrets (the secrets file's text,
    or None), warnings (masked)}."""
    stack = str(stack_name(text, stack, env, base_dir, source))
    imported = from_compose(text, project_name=stack, env=env, profiles=profiles, base_dir=base_dir, source=source,
                            allowed_paths=allowed_paths, allow=allow)
    secrets = collect(stack, imported)
    warnings = masked(imported["warnings"], imported)
    head = ["# The stack %s, imported from %s by playbooks/compose_import.yml; yours to edit." % (
            comment(stack), comment(source)),
            "# Deploy it with the clockwork.connections.stack role (vars_files: this file%s)."
            % (" and %s" % comment(secrets_file) if secrets.values else "")]
    if secrets.values:
        where = comment(secrets_file or "the secrets file")
        head += ["# Its secrets are variables here; their values are in %s (mode 0600):" % where,
                 "# encrypt it with `ansible-vault encrypt` before committing it."]
    if warnings:
        head.append("# What the compose file holds that has no place in the declaration:")
        head += ["#   - %s" % comment(line) for line in warnings]
    else:
        head.append("# Everything of the compose file has a place in the declaration.")
    body = {"clockwork_stack_name": stack,
            "clockwork_resources": _plain(imported["resources"], secrets),
            "clockwork_connections": _plain(imported["connections"], secrets)}
    secrets_text = None
    if secrets.values:
        secrets_text = ("# Secrets of %s, imported from %s: encrypt this file with `ansible-vault encrypt`.\n"
                        % (comment(stack), comment(source))) + _dump(
                            dict((name, Unsafe(value)) for name, value in sorted(secrets.values.items())))
    return {"stack": stack, "text": "\n".join(head) + "\n---\n" + _dump(body), "secrets": secrets_text,
            "warnings": warnings}
