# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What counts as a secret, and how every output is kept free of it.

Declared `password` options are no_log already. Beyond them, the value of an env variable
whose name says it is secret (`*PASSWORD*`, `*PASSWD*`, `*SECRET*`, `*TOKEN*`, `*_KEY`,
`*CREDENTIAL*`), and the password in the userinfo of any URL, are masked like no_log values
wherever they appear: results, invocations, diffs (previous values included, by name),
errors. Their URL-encoded forms too, since connection strings carry them encoded.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import shlex

from ansible.module_utils.six.moves.urllib.parse import quote, quote_plus, unquote, urlsplit

MASK = "********"
SECRET_ENV_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|(^|_)KEY$|^API_?KEY", re.IGNORECASE)


def url_password(value):
    """The password in a URL's userinfo (decoded), or None."""
    if not isinstance(value, str) or "://" not in value or "@" not in value:
        return None
    try:
        password = urlsplit(value).password
    except ValueError:
        return None
    return unquote(password) if password else None


def secret_env(name, value):
    """True when an env variable's value must never be shown."""
    return bool(SECRET_ENV_NAME.search(name or "")) or url_password(value) is not None


def forms(value):
    """A secret and the encoded forms it takes in URLs."""
    value = str(value)
    return set((value, quote(value, safe=""), quote_plus(value), quote(value))) - set([""])


def env_secrets(env):
    """The secret values of one env mapping, in every form they may take."""
    found = set()
    for name, value in (env or {}).items():
        if value is None:
            continue
        password = url_password(value)
        if password:
            found |= forms(password)
        if secret_env(name, value):
            found |= forms(value)
    return found


def declared_secrets(resources, connections):
    """Every secret a stack declaration holds: resources' secret env values and build args,
    connections' passwords, and passwords inside any URL-valued field."""
    found = set()
    for resource in resources or []:
        found |= env_secrets(resource.get("env"))
        found |= command_secrets(resource.get("command"))
        build = resource.get("build")
        if isinstance(build, dict):   # build args pass tokens too (Compose users do)
            found |= env_secrets(build.get("args"))
    for connection in connections or []:
        if connection.get("password"):
            found |= forms(connection["password"])
        for value in connection.values():
            password = url_password(value)
            if password:
                found |= forms(password)
    return found


SECRET_FLAG = re.compile(r"^--?[A-Za-z0-9_-]*(pass|secret|token|auth|key)[A-Za-z0-9_-]*$", re.IGNORECASE)


def masked_command(command):
    """A command line as it may be shown: the value after a flag that names a secret
    (`--requirepass x`, `--masterauth x`) or within one (`--password=x`) masked."""
    if not isinstance(command, (list, tuple)):
        return command
    shown, hide_next = [], False
    for arg in command:
        arg = str(arg)
        flag, equals, _value = arg.partition("=")
        if hide_next:
            shown.append(MASK)
        elif equals and SECRET_FLAG.match(flag):
            shown.append(flag + "=" + MASK)
        else:
            shown.append(arg)
        hide_next = not equals and bool(SECRET_FLAG.match(arg))
    return shown


def command_secrets(command):
    """The values a command line gives secret flags (see masked_command)."""
    if isinstance(command, str):
        command = shlex.split(command)
    found = set()
    for given, shown in zip(command or [], masked_command(command) or []):
        given = str(given)
        if shown == MASK:
            found |= forms(given)
        elif shown.endswith("=" + MASK):
            found |= forms(given.partition("=")[2])
    return found


def masked_env(env, secret_names=()):
    """An env mapping as it may be shown: secret values replaced by the mask."""
    return dict((k, MASK if k in secret_names or secret_env(k, v) else v) for k, v in (env or {}).items())
