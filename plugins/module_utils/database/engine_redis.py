# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis, through redis-py: PING as the login, no schema, the default user's password
(requirepass) changed with CONFIG SET, and the redis-cli probe."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.six.moves.urllib.parse import unquote, urlsplit

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database import redis_snapshots
from ansible_collections.clockwork.connections.plugins.module_utils.database.engine import (
    DatabaseEngine, driver, refusable_session, retry_login)

DEFAULT_USER = "default"
REFUSALS = ("WRONGPASS", "NOAUTH", "invalid password", "invalid username-password",
            "called without any password configured")


def requirepass(command):
    """The password a Redis server's command line sets (`--requirepass <password>`), or None."""
    found = None
    args = list(command or []) if not isinstance(command, str) else command.split()
    for index, arg in enumerate(args[:-1]):
        if arg == "--requirepass":
            found = args[index + 1]
    return found


def login_problem(message, server):
    """What a refused Redis login means, in words that say what to fix; None when it is not one."""
    if "WRONGPASS" in message or "invalid username-password" in message or "invalid password" in message:
        return ("wrong password for Redis %s: it takes its password from --requirepass in its command (or its "
                "config file); check password (the server said: %s)" % (server, message))
    if "NOAUTH" in message:
        return "Redis %s requires a password (--requirepass in its command): set password (the server said: %s)" % (
            server, message)
    if "called without any password configured" in message:
        return ("Redis %s has no password: remove password, or give %s one with --requirepass in its command "
                "(the server said: %s)" % (server, server, message))
    return None


def _error(message, exc):
    return ClockworkError("%s: %s" % (message, " ".join(str(exc).split())))


class RedisEngine(DatabaseEngine):
    name = "redis"
    title = "Redis"
    driver_module = "redis"
    defaults = {"port": 6379, "env": "REDIS_URL", "user": None, "database": "0",
                "template": "redis://:{password}@{host}:{port}/{database}",
                "template_without_password": "redis://{host}:{port}/{database}"}
    schemes = ("redis", "rediss")
    has_schema = False
    refusals = REFUSALS
    final_login_errors = REFUSALS
    probe_secret_env = ("REDISCLI_AUTH",)
    declared_password_applies_at_start = True
    database_names = (r"^(?:[0-9]|1[0-5])$", "a Redis database number (0 to 15)")

    def default_identity(self, user):
        return user or DEFAULT_USER

    def login(self, host, port, settings, timeout, wait, read_only, server, engine):
        redis = driver("redis")
        where = "redis at %s:%s (database %s)" % (host, port, settings["database"])
        server = server or "%s:%s" % (host, port)

        def ping():
            client = redis.Redis(host=host, port=port, db=int(settings["database"]), password=settings["password"],
                                 username=settings["user"] if settings["password"] else None,
                                 socket_timeout=5, socket_connect_timeout=5)
            try:
                client.ping()
            finally:
                client.close()
        retry_login(ping, "PING to " + where, timeout, wait, final=self.final_login_errors,
                    explain=lambda message: login_problem(message, server))
        return None

    def after_login(self, ctx, params, result, settings):
        redis_snapshots.after_login(ctx, params, result, settings)

    def restore_server(self, ctx, params, result, settings):
        redis_snapshots.restore(ctx, result, settings, params["to_resource"], params["restore_snapshot"],
                                params.get("timeout"))

    def server_credentials(self, env, command, name):
        password = requirepass(command)
        return None if password is None else (DEFAULT_USER, password, "--requirepass in the command of %s" % name)

    def session(self, host, port, user, password, database, timeout):
        redis = driver("redis")

        def connect():
            client = redis.Redis(host=host, port=port, password=password, socket_timeout=5, socket_connect_timeout=5)
            try:
                client.ping()
            except Exception:
                client.close()
                raise
            return client
        return refusable_session(connect, "login to redis at %s:%s" % (host, port), timeout, self.refusals)

    def rotation_refused(self, identity, who):
        if identity != DEFAULT_USER:
            return ("the password of Redis %s changes; clockwork rotates only the default user's (requirepass): "
                    "change it with ACL SETUSER, then run again" % who)
        return None

    def before_password_change(self, session, who, server, carried):
        # Redis reads requirepass from its command at each start: a password set on the running
        # server survives only when the command carries it, or a config file takes it.
        if not carried and not self._config_file(session):
            raise ClockworkError(
                "the password of %s changes, but one set on the running server would be lost at its next start: "
                "put --requirepass with the new password in the command of %s (a recreate keeps /data), then "
                "run again" % (who, server))

    def _config_file(self, client):
        """The config file a Redis server was started with ('' for none): CONFIG REWRITE's target."""
        redis = driver("redis")
        try:
            return (client.info("server") or {}).get("config_file") or ""
        except redis.RedisError as exc:
            raise _error("reading the server's INFO failed", exc)

    def set_password(self, session, identity, password, carried):
        """CONFIG SET requirepass on the running server. `carried`: the server's command carries
        the new password for its next start; otherwise its config file takes it (CONFIG REWRITE)."""
        redis = driver("redis")
        try:
            session.config_set("requirepass", password)
            if not carried:
                session.config_rewrite()
        except redis.RedisError as exc:
            raise _error("changing requirepass failed", exc)

    def how_to_proceed(self, server, identity):
        return ("deploy with the password the server has, or set the new one on it yourself (docker exec -it %s "
                "redis-cli, then AUTH with the previous password and CONFIG SET requirepass), then run again"
                % server)

    def probe(self, check, url):
        parts = urlsplit(url)
        database = parts.path.strip("/") or "0"
        argv = ["redis-cli", "-h", parts.hostname or "localhost", "-p", str(parts.port or 6379), "-n", database]
        if parts.username:
            argv += ["--user", unquote(parts.username)]
        # redis-cli -u sends an empty user name for redis://:password@host: the parts go separately.
        env = {"REDISCLI_AUTH": unquote(parts.password)} if parts.password else {}
        return argv + ["ping"], env, "PONG"

    def completion_candidates(self, server_env, topic, password_given):
        found = DatabaseEngine.completion_candidates(self, server_env, topic, password_given)
        found["database_name"] = ["0"]
        return found


ENGINE = RedisEngine()
