# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A changed password is rotated in place, whatever the engine.

A server keeps its passwords in its data: POSTGRES_PASSWORD is read only when an empty
server is initialised, so a new value in the declaration changes nothing on a server that
holds data, and recreating it empty would lose the data. A changed password is therefore
set on the running server, logged in with the previous one that the running containers
still carry (the client's URL, the server's own env or command); then the server is
recreated with its data and the clients get their new URL, as for any other change.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, env_dict
from ansible_collections.clockwork.connections.plugins.module_utils.database.client_env import client_credentials, client_env
from ansible_collections.clockwork.connections.plugins.module_utils.database.dry_run import FORECAST, reach
from ansible_collections.clockwork.connections.plugins.module_utils.database.engine import close_quietly
from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import DEFAULT_ENGINE


def url_credentials(url):
    """(user, password) of a connection string as a client container has it; None for a part
    it does not say. A string without a scheme is libpq's conninfo form."""
    if not url:
        return None, None
    scheme = url.partition("://")[0] if "://" in url else None
    engine = next((e for e in ENGINES.values() if scheme in e.schemes), None) if scheme else ENGINES[DEFAULT_ENGINE]
    return (engine or ENGINES["redis"]).client_credentials(url)


def server_credentials(engine, env, command, name):
    """(role, password, where it was read) that a server container declares for itself
    (POSTGRES_USER/POSTGRES_PASSWORD, Redis's --requirepass); None when it declares none."""
    return ENGINES[engine].server_credentials(env, command, name)


def password_rotations(role, new, client, running, wanted):
    """The passwords a declaration changes on a server that exists: [{role, new, previous}],
    `previous` the [(password, where it was read)] to log in with, most trusted first.

    role, new    the connection's role and password
    client       (role, password, where) that the `from` container uses now, or None
    running      (role, password, where) that the running server declares (server_credentials)
    wanted       the same from the server's declared spec (in a stack), or None

    Only a change of what was declared is a rotation: the password the client container was
    given, or the server's own password (POSTGRES_PASSWORD) changed in its declaration, for its
    role (the connection's password and it must then agree when they are one role's). Without
    either, nothing tells that a password changed, and a different one is simply wrong."""
    targets = {}
    if role and new is not None:
        targets[role] = new
    server_changes = bool(running and wanted and wanted[1] is not None and wanted[0] == running[0]
                          and wanted[1] != running[1])
    if server_changes:
        if targets.get(running[0], wanted[1]) != wanted[1]:
            raise ClockworkError(
                "the password of the connection and %s differ, and both are the password of role %s: set them "
                "to the same value" % (wanted[2], running[0]))
        targets[running[0]] = wanted[1]
    rotations = []
    for name in sorted(targets):
        previous = []
        if client and client[0] == name and client[1] is not None:
            previous.append((client[1], client[2]))
        # The server's own declaration is a previous password only when the declaration changes
        # it: a connection alone that says another password than the server is a wrong one (a
        # typo must not become the server's password).
        if running and running[0] == name and running[1] is not None and server_changes:
            previous.append((running[1], running[2]))
        # One login per distinct password, naming every place it was read.
        kept = []
        for password, where in previous:
            same = [i for i, (p, _w) in enumerate(kept) if p == password]
            if same:
                kept[same[0]] = (password, kept[same[0]][1] + ", " + where)
            elif password != targets[name]:
                kept.append((password, where))
        if kept:
            rotations.append({"role": name, "new": targets[name], "previous": kept})
    return rotations


def rotate_passwords(ctx, params, result, to, settings, wanted):
    """Rotate in place, on the running server `to`, the passwords the declaration changes.
    `wanted`: what the server's declared spec says of its own password (stack), or None.

    Returns what converge needs: {"read_with": the password the connection's role has until
    the rotation is done (a dry run, which only records it, reads with it), "skip_read": True
    when nothing can log in before the server is recreated, "deferred": True when the server
    does not run yet}."""
    state = {"read_with": None, "skip_read": False}
    if not to.exists:
        return state   # a new server takes its password from its declaration
    attrs = to.attrs
    from_env = client_env(ctx.engine.container(params["from_resource"]))
    engine = reach(ENGINES[settings["engine"]], ctx.engine)
    client = None
    held = client_credentials(engine, params.get("env"), from_env, settings["env_var_name"])
    if held:
        client = (engine.default_identity(held[0]), held[1], "%s of %s" % (held[2], params["from_resource"]))
    running = engine.server_credentials(env_dict((attrs.get("Config") or {}).get("Env")),
                                        (attrs.get("Config") or {}).get("Cmd"), to.name)
    role = engine.default_identity(settings["user"])
    try:
        rotations = password_rotations(role, settings["password"], client, running, wanted)
    except ClockworkError as exc:
        raise ClockworkError("connection %s: %s" % (result.name, exc.msg))
    if not rotations:
        return state
    host, port = engine.address(to, settings, params)
    if host is FORECAST:
        # A dry run, which starts nothing: the rotation would be made once the server runs, and
        # nothing can be read before.
        for rotation in rotations:
            if ctx.first_time(("rotate", to.name, rotation["role"])):
                result.act("rotate the password of %s %s" % (engine.identity, rotation["role"]))
        state["skip_read"] = True
        return state
    if host is None:
        # Stopped: nothing can log in now; the rotation waits until the server runs (converge).
        state["deferred"] = True
        return state
    for rotation in rotations:
        try:
            _rotate(ctx, params, result, to, settings, wanted, rotation, (host, port), state, role, engine)
        except ClockworkError as exc:
            raise ClockworkError(exc.msg if exc.msg.startswith("connection ") else
                                 "connection %s: %s" % (result.name, exc.msg))
    return state


def _rotate(ctx, params, result, to, settings, wanted, rotation, address, state, role, engine):
    """One rotation of `rotate_passwords`: log in with a previous password, then set the new one
    (`engine`: the database engine as the run reaches it, dry_run.reach)."""
    name, new = rotation["role"], rotation["new"]
    who = "%s %s" % (engine.identity, name)
    refused = engine.rotation_refused(name, who)
    if refused:
        raise ClockworkError(refused)

    def login_as(user, password):
        return engine.session(address[0], address[1], user, password, settings["database"], params["timeout"])

    def login(password):
        return login_as(name, password)

    session, used = None, None
    for password, _where in rotation["previous"]:
        session = login(password)
        if session is not None:
            used = password
            break
    # A server that reads its password from its declaration at each start (Redis's command):
    # the recreate with the new one sets it.
    carried = engine.declared_password_applies_at_start and bool(wanted) and wanted[1] == new
    if session is None:
        # No previous password is accepted: the server may have the new one already (a run
        # stopped after setting it), else nobody here knows its password, and it stays.
        session = login(new)
        if session is not None:
            close_quietly(session)
            return
        if carried:
            # The recreate sets it; the server that runs now takes no password known here.
            state["skip_read"] = not engine.recreate_sets_password(to.name, name)
            return
        raise ClockworkError(
            "the password of %s changes, and %s, so it is changed on the running server, logged in with the "
            "previous one; but no previous password that could be read is accepted (tried: %s), nor the new one. "
            "Nothing was changed: %s was neither recreated nor reinitialised. To proceed, %s." % (
                who, engine.keeps_password(to.name), ", ".join(w for _p, w in rotation["previous"]), to.name,
                engine.how_to_proceed(to.name, name)))
    try:
        engine.before_password_change(session, who, to.name, carried)
        if name == role:
            state["read_with"] = used
        if ctx.first_time(("rotate", to.name, name)):
            result.act("rotate the password of %s" % who)
        admin = _admin_session(engine, to, name, login_as)
        try:
            if engine.change_password(session, name, new, carried, admin=admin):
                state["read_with"] = None   # else (a dry run) the server still takes the previous one
        finally:
            if admin is not None:
                close_quietly(admin)
    finally:
        close_quietly(session)


def _admin_session(engine, to, identity, login_as):
    """A session of the administrator the server's env names (MARIADB_ROOT_PASSWORD), which changes
    the password on every account of the user's name; None without one, or when it is refused
    (the user then changes its own)."""
    found = engine.admin_credentials(env_dict(((to.attrs or {}).get("Config") or {}).get("Env")), identity)
    return login_as(found[0], found[1]) if found else None
