# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secrets of an exported stack (exporter.py): each one, in every form it takes (raw,
URL-encoded), is a variable of the `.env` beside the compose file, and the file says
`${VAR:?...}` wherever the value would be, so that no secret is written in it. The secrets are
those masking.py knows: secret-named env values, URL passwords, passwords, secret flags."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from ansible_collections.clockwork.connections.plugins.module_utils.common import env_name
from ansible_collections.clockwork.connections.plugins.module_utils.masking import (
    SECRET_ENV_NAME, command_secrets, declared_secrets, forms, url_password)


# Fields that say what a thing is, never a secret: written as declared even when a password has the
# same text (a `${VAR}` there would tell a reader the password: the image `nextcloud`, stack `nextcloud`).
IDENTITY_KEYS = ("image", "stack", "name", "from", "to", "type", "engine", "container_name", "description",
                 "order", "volume_name", "network_name")


class ExportError(Exception):
    """A stack that cannot be exported: every problem, each naming its entry and field."""


class Secrets(object):
    """Every secret of the declaration, in every form, as a variable of the `.env`."""

    def __init__(self):
        self.variables = {}   # a secret's text -> its variable
        self.values = {}      # variable -> text

    def add(self, value, variable):
        value = str(value)
        for suffix, form in [("", value)] + [("_URLENCODED%s" % ("" if i == 0 else i + 1), f)
                                             for i, f in enumerate(sorted(forms(value) - set([value])))]:
            if form and form not in self.variables:
                name = variable + suffix
                while name in self.values:
                    name += "_"
                self.variables[form], self.values[name] = name, form

    def text(self, value):
        """A string of the compose file: `$` doubled, each secret replaced by its variable."""
        return "".join("${%s:?set it in .env}" % self.variables[text] if secret else text.replace("$", "$$")
                       for secret, text in split_secrets(str(value), self.variables))

    def dotenv(self):
        """Single-quoted lines as Compose v2 reads them: literal, but a quote escaped (\\'). What such a
        line cannot keep is refused: a line break, a backslash before a quote or at the end, and `${`
        (docker-compose 1.29 interpolates it; it also reads \\\\ as one backslash, v2 as two)."""
        lines = ["# Secrets of the compose file beside this one (mode 0600): keep it out of version control."]
        for name in sorted(self.values):
            value = self.values[name]
            if "${" in value or "\n" in value or "\r" in value or re.search(r"\\('|$)", value):
                raise ExportError("secret %s holds ${ or a line break (or a backslash before a quote or at its end), "
                                  "which a .env line cannot keep; deliver it as a file (password_delivery: file)" % name)
            lines.append("%s='%s'" % (name, value.replace("'", "\\'")))
        return "\n".join(lines) + "\n"


def split_secrets(value, secrets):
    """`value` as (is a secret, text) pieces, a secret only where it stands as one: the whole
    value, the password of a URL, or a word of a command line (`--requirepass x`, `--password=x`).
    A secret's text inside any other value (`nginx` holding the password `x`) is that value's own."""
    if value in secrets:
        return [(True, value)]
    if url_password(value) is not None:
        start = value.index("://") + 3
        userinfo = value[start:].split("/", 1)[0].rpartition("@")[0]
        password = userinfo.partition(":")[2]   # as written, encoded or not
        if password in secrets:
            start += userinfo.index(":") + 1
            return [(False, value[:start]), (True, password), (False, value[start + len(password):])]
    pieces = []
    for word in re.split(r"(\s+)", value):
        flag, equals, rest = word.partition("=")
        if word in secrets:
            pieces.append((True, word))
        elif equals and rest in secrets:
            pieces += [(False, flag + equals), (True, rest)]
        else:
            pieces.append((False, word))
    return [p for p in pieces if p[1]]


def url_secret(value):
    """The password of a URL, not a template's {password} placeholder."""
    password = url_password(value)
    return None if password is None or re.match(r"^\{[a-z_]+\}$", password) else password


def collect_secrets(resources, connections):
    secrets = Secrets()
    known = declared_secrets(resources, connections)
    for resource in resources:
        prefix = env_name(str(resource.get("name")))
        for key, value in sorted((resource.get("env") or {}).items()):
            if value is None:
                continue
            if url_secret(str(value)):
                secrets.add(url_secret(str(value)), "%s_%s_PASSWORD" % (prefix, env_name(key)))
            if str(value) in known:
                secrets.add(value, "%s_%s" % (prefix, env_name(key)))
        build = resource.get("build") if isinstance(resource.get("build"), dict) else {}
        for key, value in sorted((build.get("args") or {}).items()):   # a token passed to the build
            if value is not None and SECRET_ENV_NAME.search(str(key)):
                secrets.add(value, "%s_BUILD_%s" % (prefix, env_name(str(key))))
        for index, value in enumerate(sorted(command_secrets(resource.get("command")))):
            secrets.add(value, "%s_COMMAND_SECRET_%d" % (prefix, index + 1))
    for connection in connections:
        prefix = "%s_%s" % (env_name(str(connection.get("from"))), env_name(str(connection.get("to"))))
        if connection.get("password"):
            secrets.add(connection["password"], prefix + "_PASSWORD")
        for key, value in sorted(connection.items()):
            if url_secret(value):
                secrets.add(url_secret(value), "%s_%s_PASSWORD" % (prefix, env_name(key)))
    return secrets
