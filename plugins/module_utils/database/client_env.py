# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a database connection gives its `from` container, and how it is read back.

The connection string variable (env_var_name, unless "") and the parts of `env`
(WORDPRESS_DB_HOST: "{host}:{port}"...). With `password_delivery: file` each of them that
holds the password is a file instead, of mode 0400 in the stack's own directory on the
Docker host, mounted read-only at /run/secrets/<NAME> with <NAME>_FILE in the env, as
Compose's secrets are: `docker inspect` of the client shows no password. On Swarm every
secret env value is a secret file already, so the env form is what the Swarm applier takes.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    ENV_NAME, STACK_LABEL, ClockworkError, env_dict)
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import (
    part_values, render_part, render_url, resolved_settings, template_placeholders)
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import (
    read_private_file, stack_secrets, write_secret_file)

SECRETS_DIR = "/run/secrets/"
FILE_SUFFIX = "_FILE"


def given_templates(params, settings):
    """[(env name, template, True for the connection string)] the connection gives `from`."""
    given = [(settings["env_var_name"], settings["template"], True)] if settings["env_var_name"] else []
    env = params.get("env") or {}
    return given + [(name, env[name], False) for name in sorted(env)]


def holds_password(template):
    return "password" in template_placeholders(template)


def env_problems(params, settings):
    """[(field, problem)] of `env` and of what it gives together with env_var_name."""
    problems = []
    env = params.get("env") or {}
    if params.get("env") is not None and not isinstance(params["env"], dict):
        return [("env", "must be a mapping of variable name to template, got %r" % (params["env"],))]
    for name in sorted(env):
        if not ENV_NAME.match(str(name)):
            problems.append(("env", "%s is not an environment variable name" % name))
        elif name == settings["env_var_name"]:
            problems.append(("env", "%s is the connection string's variable (env_var_name) already" % name))
        try:
            template_placeholders(env[name], "env %s" % name)
        except ClockworkError as exc:
            problems.append(("env", exc.msg[len("env "):]))
    if problems:
        return problems
    if not settings["env_var_name"] and not env:
        problems.append(("env_var_name", "is empty and env sets nothing: %s would get nothing to connect with"
                         % params.get("from_resource")))
    # With password_delivery: file, `from` may read the password from a file of its own (a compose
    # secret's path in its env): the stack needs it only to log in.
    elif not settings["env_var_name"] and params.get("password") is not None \
            and params.get("password_delivery") != "file" and not any(holds_password(env[name]) for name in env):
        problems.append(("env", "no part holds {password}, and env_var_name is empty: %s would not have the "
                                "password" % params.get("from_resource")))
    if params.get("password_delivery") == "file":
        for name, template, _url in given_templates(params, settings):
            if holds_password(template) and name + FILE_SUFFIX in env:
                problems.append(("env", "%s%s is where password_delivery: file names the file holding %s"
                                 % (name, FILE_SUFFIX, name)))
    return problems


def secret_names(params, settings):
    """The env names whose values are secret: the connection string, and each part holding the password."""
    return sorted(name for name, template, url in given_templates(params, settings)
                  if url or holds_password(template))


def in_files(params, settings, engine):
    """The names delivered as files (password_delivery: file, on an engine that does not make
    secret files of its own)."""
    if params.get("password_delivery") != "file" or getattr(engine, "secrets_as_files", False) \
            or settings["password"] is None:
        return []
    return [name for name, template, _url in given_templates(params, settings) if holds_password(template)]


def injected_names(params, settings, engine=None):
    """The env names `from` gets."""
    files = in_files(params, settings, engine)
    return [name + FILE_SUFFIX if name in files else name for name, _t, _u in given_templates(params, settings)]


def given_values(params, settings, host):
    """{env name: value} as the application reads them (the connection string URL-encoded)."""
    values = {}
    for name, template, url in given_templates(params, settings):
        values[name] = render_url(template, settings["user"], settings["password"], host, settings["port"],
                                  settings["database"]) if url else render_part(template, settings, host)
    return values


def known_values(params, settings, to_name):
    """{env name: value} of the parts known without the engine (no port, no password)."""
    return dict((name, render_part(template, settings, to_name)) for name, template, url
                in given_templates(params, settings)
                if not url and not set(template_placeholders(template)) & set(("port", "password")))


def secret_file(stack, from_name, name):
    """Where on the Docker host the file holding `name` for `from_name` lives."""
    return os.path.join(stack_secrets(stack), from_name, name)


def contribute(ctx, params, settings, result):
    """Fill result.contribution with what `from` gets; with password files, write them (a file
    whose content changed on a `from` that runs makes it restart, to read it)."""
    to_name, from_name = params["to_resource"], params["from_resource"]
    contribution = result.contribution
    values = given_values(params, settings, to_name)
    files = in_files(params, settings, ctx.engine)
    rewritten = False
    for name in sorted(values):
        if name not in files:
            contribution.env[name] = values[name]
            continue
        path = secret_file(ctx.stack, from_name, name)
        rewritten = write_secret_file(path, values[name], ctx.engine.files, result) or rewritten
        contribution.env[name + FILE_SUFFIX] = SECRETS_DIR + name
        contribution.mounts.append({"type": "bind", "source": path, "target": SECRETS_DIR + name, "read_only": True})
    contribution.secret_env = [n for n in secret_names(params, settings) if n not in files]
    if rewritten and ctx.endpoint(from_name).exists:
        contribution.restart = "to read its new password file"


def planned_files(params, stack):
    """{host path: None} of the password files the run writes (made by the run, not declared)."""
    settings = resolved_settings(params, None)
    return dict((secret_file(stack, params["from_resource"], name), None) for name in in_files(params, settings, None))


def client_env(attrs):
    """The env of a client container as its application reads it: a <NAME>_FILE that names a
    password file of its stack (mounted from the stack's directory) read back as <NAME>, never
    through a symbolic link (one on the way is refused, as the file's write refuses it)."""
    config = (attrs or {}).get("Config") or {}
    env = env_dict(config.get("Env"))
    stack = (config.get("Labels") or {}).get(STACK_LABEL)
    if not stack:
        return env
    home = stack_secrets(stack) + os.sep
    sources = dict((m.get("Destination"), m.get("Source")) for m in (attrs or {}).get("Mounts") or []
                   if m.get("Type") == "bind")
    for name, path in list(env.items()):
        source = sources.get(path)
        if name.endswith(FILE_SUFFIX) and name[:-len(FILE_SUFFIX)] not in env and source and source.startswith(home):
            try:
                content = read_private_file(source)
            except (IOError, OSError):
                content = None   # unreadable: as if not given; the check then says what is missing
            if content is not None:
                env[name[:-len(FILE_SUFFIX)]] = content.decode("utf-8")
    return env


def client_credentials(engine, parts, env, url_var):
    """(user, password, where) that a client container has now, from its connection string or
    its parts; None for what it does not say; None when it says neither."""
    if url_var and env.get(url_var):
        user, password = engine.client_credentials(env[url_var])
        return user, password, url_var
    found = {}
    for name in sorted(parts or {}):
        if name in env:
            for key, value in part_values(parts[name], env[name]).items():
                found.setdefault(key, (value, name))
    if "password" not in found and "user" not in found:
        return None
    where = found.get("password", found.get("user"))[1]
    return (found["user"][0] if "user" in found else None,
            found["password"][0] if "password" in found else None, where)
