# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis's snapshots, with `snapshot: true` on its connection: an RDB copy of the server's data.

In a stack, a run that converges the connection for real changes something (an unchanged stack is
answered by its dry run, database/dry_run.py), so that run is a release: `redis-cli --rdb` inside the
server's container takes a copy (the server forks, as for BGSAVE; clients are not held) and it is
kept in the stack's volume like the SQL engines' dumps (database/snapshots.py), recorded for the
release. No schema changes with it, so it is no action of the run: an unchanged rerun stays unchanged.

The restore stops the server (its own save on shutdown comes first), puts the copy in place of its
RDB file (CONFIG GET dir and dbfilename), and starts it again; the state before is kept as a copy
first. A server that writes an append-only file loads that instead of the RDB at start: refused.
Every program is an argv list; the password goes in REDISCLI_AUTH, never in the command line."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import exec_in
from ansible_collections.clockwork.connections.plugins.module_utils.releases.shelf import single_file_tar
from ansible_collections.clockwork.connections.plugins.module_utils.database.snapshots import (
    MB, ServerContainer, SnapshotStore, entry_of, file_of, known_entry, record, restore_words, restoring,
    snapshot_name, utc_now)

KIND = "rdb"
# The whole server's data is in one RDB: the index knows it under this name, whatever `database` says.
DATABASE = "redis"


def cli(settings, *args):
    """(argv, env) of redis-cli against the server from inside its own container."""
    argv = ["redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", str(settings["port"])]
    if settings.get("password") and settings.get("user") and settings["user"] != "default":
        argv += ["--user", str(settings["user"])]
    env = {"REDISCLI_AUTH": settings["password"]} if settings.get("password") else {}
    return argv + list(args), env


def run(server, settings, args, seconds, doing, after):
    argv, env = cli(settings, *args)
    return server.exec(argv, env, seconds, doing, after, secrets=[settings.get("password")])


def config(server, settings, key, after):
    """A setting of the running server (CONFIG GET)."""
    lines = run(server, settings, ["CONFIG", "GET", key], 10, "reading %s of %s" % (key, server.name),
                after).splitlines()
    if len(lines) < 2 or lines[0].strip() != key:
        raise ClockworkError("reading %s of %s failed: %s; %s" % (key, server.name, " ".join(lines)[-300:], after))
    return lines[1].strip()


def keep_copy(ctx, settings, server_name, before, spare=()):
    """The RDB copy, taken inside the server's container and kept in the stack's volume: its record."""
    server = ServerContainer(ctx.engine, server_name)
    store = SnapshotStore(server, ctx.stack)
    name = snapshot_name(DATABASE)
    path = "/tmp/%s" % file_of({"snapshot": name, "kind": KIND})
    try:
        run(server, settings, ["--rdb", path], int(settings.get("migration_timeout") or 600),
            "the RDB copy of %s (redis-cli --rdb)" % server_name, "nothing was changed")
        entry = {"snapshot": name, "database": DATABASE, "created": utc_now(), "kind": KIND, "before": before}
        return record(store.keep(path, entry, int(settings["snapshot_keep"]), spare), store.volume)
    finally:
        server.remove(path)


def after_login(ctx, params, result, settings):
    """After the login, on a real run in a stack with `snapshot: true`: keep an RDB copy for the release."""
    if not params.get("snapshot") or not ctx.in_stack or ctx.engine.dry_run:
        return
    result.extra["snapshot"] = keep_copy(ctx, settings, params["to_resource"], ["release"])


def restore(ctx, result, settings, server_name, snapshot_name_, timeout):
    """The server's data put back as the RDB copy `snapshot_name_` has it (see the module's docstring)."""
    server = ServerContainer(ctx.engine, server_name)
    store = SnapshotStore(server, ctx.stack)
    where = "redis %s" % server_name
    if ctx.engine.dry_run:   # the volume is read through a container, which a dry run would only make
        result.act(restore_words(snapshot_name_, server_name, known_entry(result), store.volume))
        return
    entry = entry_of(store.index(), snapshot_name_, DATABASE, KIND, where, store.volume)
    unchanged = "nothing was changed"
    if config(server, settings, "appendonly", unchanged) == "yes":
        raise ClockworkError("%s writes an append-only file (appendonly yes), which it loads at start instead of an "
                             "RDB file: an RDB copy cannot be restored into it; %s" % (where, unchanged))
    directory, filename = (config(server, settings, key, unchanged) for key in ("dir", "dbfilename"))
    data = store.read(entry, int(settings.get("snapshot_max_mb") or 1024) * MB)
    result.act(restore_words(snapshot_name_, server_name, entry, store.volume))
    restoring(result, server_name, entry)
    before = keep_copy(ctx, settings, server_name, ["restore of %s" % snapshot_name_], spare=[snapshot_name_])["name"]
    result.act("keep the state before the restore as snapshot %s" % before)
    result.extra["snapshot_before_restore"] = before
    # Stopped first: a server saves its data on shutdown, which would overwrite the copy put in place before.
    ctx.engine.stop(server.ident)
    try:
        # Read by the server's own user (the official image's runs as redis): world-readable.
        ctx.engine.put_archive(server.ident, directory, single_file_tar(filename, data, mode=0o644))
    finally:
        ctx.engine.start(server.ident)
    result.act("restart %s with the copy as its %s/%s" % (server_name, directory, filename))
    answering(ctx.engine, server, settings, timeout)


def answering(engine, server, settings, timeout):
    """Wait (bounded by the connection's timeout) until the restarted server has loaded its data and answers."""
    argv, env = cli(settings, "ping")
    deadline = engine.monotonic() + int(timeout or 30)
    out = ""
    while engine.monotonic() < deadline:
        code, out = exec_in(engine, server.ident, argv, timeout=5, env=env)
        if code == 0 and out.strip() == "PONG":
            return
        engine.sleep(0.2)
    raise ClockworkError("%s was restarted with the copy but does not answer PING: %s" % (
        server.name, " ".join(out.replace(settings.get("password") or "\0", "********").split())[-300:]))
