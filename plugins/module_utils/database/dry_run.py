# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a run reaches a database server: the one place on the database side that knows whether
the run is a dry run (check mode: the Docker gateway's `dry_run`).

The connection type and the password rotation make the same calls in a real run and a dry
run, on what `reach(engine, gateway)` gives them:
- for real (`LiveDatabase`): the engine's own login, its target's writes done;
- on a dry run (`DryRunDatabase`): a login through a read-only session, whose target
  (`DryRunTarget`) reads what is applied and what exists, and records, instead of doing, every
  write it would make (create the database, apply a file, rehearse on a copy and keep a
  snapshot, restore one), answering later reads as if done; a password rotation recorded, the
  server then read with the password it still has. A server the dry run cannot log in to (its
  container only a forecast: the dry run would create it, or start it) is a `ForecastTarget`:
  nothing applied yet, every file would be applied, as check mode has always reported.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database.settings import login_address


class _Forecast(object):
    """The host of a server that only a dry run's forecast has: nothing answers there."""

    def __repr__(self):
        return "FORECAST"


FORECAST = _Forecast()


def no_address(connection, server):
    return ClockworkError("%s: container %s has no address the module can reach; set login_host and login_port"
                          % (connection, server))


def reach(engine, gateway):
    """`engine` (a DatabaseEngine) as this run reaches its servers, through `gateway`."""
    return DryRunDatabase(engine, gateway) if gateway.dry_run else LiveDatabase(engine, gateway)


class LiveDatabase(object):
    """A database engine reached for real; everything else is the engine's own."""

    def __init__(self, engine, gateway):
        self.engine = engine
        self.gateway = gateway

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def address(self, to, settings, params, before=None):
        """(host, port) where the server `to` (an Endpoint) answers; (None, None) when nowhere now.
        `before`: the server as it ran before this run changed it (a dry run reads its data there)."""
        return login_address(to, settings, params, self.gateway)

    def login(self, host, port, settings, timeout, wait, server):
        """The engine's target for the server at host:port (DatabaseEngine.login), or None."""
        return self.engine.login(host, port, settings, timeout, wait, False, server, self.gateway)

    def change_password(self, session, identity, password, carried, admin=None):
        """Set the password (DatabaseEngine.set_password). True: the server has it now."""
        if admin is None:
            self.engine.set_password(session, identity, password, carried)
        else:
            self.engine.set_password(session, identity, password, carried, admin=admin)
        return True

    def recreate_sets_password(self, server, identity):
        """The server's recreate with its declaration sets the new password of `identity` (Redis's
        --requirepass). True: the run reads the recreated server, which has it."""
        return True


class DryRunDatabase(LiveDatabase):
    """A database engine on a dry run: servers read, never changed; `recorded` says what the
    writes would have been."""

    def __init__(self, engine, gateway):
        LiveDatabase.__init__(self, engine, gateway)
        self.recorded = []

    def address(self, to, settings, params, before=None):
        if self.gateway.forecast(to.name):
            # Made or changed by the dry run: its data is the running predecessor's, when it had one.
            # Swarm reaches a service by its name (`reach`), which now stands for the dry run's task.
            if before is None or getattr(self.gateway, "reach", None) is not None:
                return FORECAST, None
            to = before
        host, port = login_address(to, settings, params, self.gateway)
        # Not running now: a run would start it before logging in; nothing answers this one.
        return (FORECAST, None) if host is None else (host, port)

    def login(self, host, port, settings, timeout, wait, server):
        if host is FORECAST:
            return ForecastTarget(server, self.recorded)
        target = self.engine.login(host, port, settings, timeout, wait, True, server, self.gateway)
        return None if target is None else DryRunTarget(target, self.recorded)

    def change_password(self, session, identity, password, carried, admin=None):
        self.recorded.append("rotate the password of %s %s" % (self.engine.identity, identity))
        return False

    set_password = change_password   # nothing reaches the engine's own

    def recreate_sets_password(self, server, identity):
        """The dry run recreates nothing: it reads the running server, whose password nobody here knows."""
        self.recorded.append("recreate %s with the new password of %s %s" % (server, self.engine.identity, identity))
        return False


class DryRunTarget(object):
    """A target logged in through a read-only session: reads are its own, writes recorded."""

    def __init__(self, target, recorded):
        self.target = target
        self.recorded = recorded
        self.created = False

    def __getattr__(self, name):
        return getattr(self.target, name)   # reads, settings, sessions: the real target's

    def applied(self):
        applied = self.target.applied()
        return {} if applied is None and self.created else applied   # a new database records nothing

    def create_database(self):
        self.created = True
        self.recorded.append("create database %s" % self.target.settings["database"])

    def lock(self):
        """Nothing is written here that another run could find half-done: no lock is taken."""

    def unlock(self):
        pass

    # The engine's own steps, run with this target as theirs, so that their writes are the ones below.
    def prepare(self, pending, ctx, result):
        return type(self.target).prepare(self, pending, ctx, result)

    def restore(self, ctx, result, snapshot):
        return type(self.target).restore(self, ctx, result, snapshot)

    def rehearse_on_copy(self, rehearsal, pending, keep):
        if rehearsal.login[2] is not self.target.conn:
            rehearsal.login[2].close()
        self.recorded.append("rehearse %s on a copy and keep a snapshot" % ", ".join(p[1] for p in pending))
        return None

    def snapshots(self, store):
        return None   # the volume is read through a container, which a dry run would only make

    def keep_snapshot(self, ctx, before):
        self.recorded.append("snapshot %s before %s" % (self.target.settings["database"], ", ".join(before)))
        return None

    def apply(self, kind, name, sql, checksum, snapshot=None):
        self.recorded.append("apply %s %s" % (kind, name))

    def close(self):
        self.target.close()


class ForecastTarget(object):
    """The server of a container the dry run would create or start: nothing to log in to, nothing
    applied yet, every file would be."""

    said = "does not exist yet"

    def __init__(self, server, recorded):
        self.server = server
        self.recorded = recorded

    def applied(self):
        return {}

    def lock(self):
        pass

    def unlock(self):
        pass

    def refuse(self, pending):
        """What the files' text refuses was refused with the plan (the type's validate)."""

    def prepare(self, pending, ctx, result):
        return None

    def apply(self, kind, name, sql, checksum, snapshot=None):
        self.recorded.append("apply %s %s" % (kind, name))

    def restore(self, ctx, result, snapshot):
        raise no_address(result.name, self.server)

    def close(self):
        pass
