# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A database connection's settings: the engine's defaults filled in, the connection string
template checked and rendered, and the address the module logs in at."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import string

from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.clockwork.connections.plugins.module_utils.common import ENV_NAME, ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database.engine import MIGRATION_TIMEOUT
from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES

DEFAULT_ENGINE = "postgresql"
PLACEHOLDERS = ("user", "password", "host", "port", "database")


def engine_of(params):
    """The DatabaseEngine a connection (or a check) names."""
    return ENGINES[params.get("engine") or DEFAULT_ENGINE]


def resolved_settings(params, to_port):
    """The connection's settings with the engine's defaults filled in."""
    engine = engine_of(params)
    defaults = engine.defaults
    user = params.get("username") or defaults["user"]
    password = params.get("password")
    template = params.get("connection_string_template")
    if not template:
        template = defaults["template"] if password or "template_without_password" not in defaults \
            else defaults["template_without_password"]
    return {
        "engine": engine.name,
        "user": user, "password": password,
        "database": params.get("database_name") or engine.database_default(user),
        "port": to_port or defaults["port"],
        "template": template,
        # "" means: no connection string variable (the parts of `env` only).
        "env_var_name": defaults["env"] if params.get("env_var_name") is None else params["env_var_name"],
        # How the schema and migrations are applied (the engines that have them).
        "migration_timeout": params.get("migration_timeout") or MIGRATION_TIMEOUT,
        "cross_database": bool(params.get("cross_database")),
        "rehearse": params.get("rehearse") or "auto",
        "snapshot_keep": params.get("snapshot_keep") or 3,
        "snapshot_max_mb": params.get("snapshot_max_mb") or 1024,
    }


def template_placeholders(template, field_name="connection_string_template"):
    """The placeholders of a template; an unknown one, or a format spec (which would
    otherwise reach the password), raises ClockworkError naming it and `field_name`."""
    fields = []
    if not isinstance(template, str):
        raise ClockworkError("%s must be a string, got %r" % (field_name, template))
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ClockworkError("%s is not a valid template: %s" % (field_name, exc))
    for _text, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS or spec or conversion:
            raise ClockworkError(
                "%s has an unknown placeholder {%s}; the known ones are %s"
                % (field_name, field, ", ".join("{%s}" % p for p in PLACEHOLDERS)))
        fields.append(field)
    return fields


def render_part(template, settings, host):
    """One part of `env` (a host, a user, a password...) as the application reads it: the
    values as they are, not URL-encoded."""
    values = {"user": settings["user"] or "", "password": settings["password"] or "", "host": host,
              "port": settings["port"], "database": settings["database"]}
    return template.format(**values)


def part_values(template, value):
    """What a part's value says of the placeholders in its template, {placeholder: text}, or
    {} when it does not match (read back from a client container, for rotation and checks)."""
    pattern, seen = [], set()
    for text, field, _spec, _conversion in string.Formatter().parse(template):
        pattern.append(re.escape(text))
        if field is None:
            continue
        pattern.append("(?P=%s)" % field if field in seen else "(?P<%s>.*?)" % field)
        seen.add(field)
    found = re.match("^%s$" % "".join(pattern), value or "", re.DOTALL)
    return found.groupdict() if found else {}


def render_url(template, user, password, host, port, database):
    """Fill the template; user, password and database are URL-encoded."""
    fields = template_placeholders(template)
    if "password" in fields and password is None:
        raise ClockworkError("connection_string_template uses {password} but no password is set")
    values = {"user": quote(user or "", safe=""), "password": quote(password or "", safe=""),
              "host": host, "port": port, "database": quote(str(database), safe="")}
    return template.format(**values)


def login_address(to, settings, params, engine=None):
    """Where the module reaches the server: login_host/login_port, else the container's address,
    or, on an engine that says how (Swarm's `reach`: a tunnel into the task), there."""
    if params.get("login_host"):
        return params["login_host"], params.get("login_port") or settings["port"]
    networks = ((to.attrs or {}).get("NetworkSettings") or {}).get("Networks") or {}
    address = next((info["IPAddress"] for info in networks.values() if info.get("IPAddress")), None)
    reach = getattr(engine, "reach", None)
    if reach is not None and to.attrs:
        return reach(to.name, address, settings["port"])
    if address:
        return address, params.get("login_port") or settings["port"]
    return None, None


def env_var_name(value):
    """A check's field: an environment variable name, else ValueError."""
    if not isinstance(value, str) or not ENV_NAME.match(value):
        raise ValueError("%r is not an environment variable name" % (value,))
    return value
