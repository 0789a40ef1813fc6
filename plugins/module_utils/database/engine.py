# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DatabaseEngine: what the database connection asks of a database engine. Each engine file
subclasses it; the connection type, rotation, completion and the checks call only this."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib
import time
import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.six.moves.urllib.parse import unquote, urlsplit

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError

# Seconds one SQL file (PostgreSQL) or one statement of it (MySQL) may run: the connection's migration_timeout.
MIGRATION_TIMEOUT = 600


def driver(name):
    """Import a database driver only when a connection needs it: most stack runs with
    nothing to do never load psycopg or redis (a few tenths of a second each)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ClockworkError(missing_required_lib(name), exception=traceback.format_exc())


def close_quietly(session):
    try:
        session.close()
    except Exception:  # pylint: disable=broad-except  # closing is best effort
        pass


def retry_login(connect, what, timeout, wait, final=(), explain=None):
    """Call `connect` until it succeeds, with backoff, for up to `timeout` seconds.

    A refused login (an error holding one of the `final` words: wrong password, unknown user)
    is final at once: waiting cannot fix it; `explain(message)` turns the driver's words for it
    into what to fix.
    """
    started = time.monotonic()
    deadline = started + (timeout if wait else 0)
    delay, attempts = 0.1, 0
    while True:
        attempts += 1
        try:
            return connect()
        except Exception as exc:  # pylint: disable=broad-except  # driver errors vary; all are reported
            last = " ".join(str(exc).split())
            is_final = any(marker in last for marker in final)
            if is_final or time.monotonic() >= deadline:
                raise ClockworkError("%s failed after %d attempt%s in %.1fs%s: %s" % (
                    what, attempts, "" if attempts == 1 else "s", time.monotonic() - started,
                    "" if is_final else " (timeout %ss)" % timeout, (is_final and explain and explain(last)) or last))
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 2.0)


def refusable_session(connect, what, timeout, refusals):
    """`connect()`'s session, or None when the server refuses the credentials (its error holds
    one of `refusals`); waits (bounded) for a server that does not answer yet, then raises."""
    def attempt():
        try:
            return connect()
        except Exception as exc:  # pylint: disable=broad-except  # driver errors vary; refusals are an answer
            if any(marker in " ".join(str(exc).split()) for marker in refusals):
                return None
            raise
    return retry_login(attempt, what, timeout, True)


class DatabaseEngine(object):
    """One database engine. Subclasses set the class attributes and implement the methods
    that raise NotImplementedError; the others have defaults that suit most engines."""

    name = None
    aliases = ()   # other names `engine:` may give it
    title = None   # as people write it: PostgreSQL
    driver_module = None   # the top-level module of its driver's exceptions: psycopg
    # Connection string defaults: port, env (the URL variable), user, database, template and,
    # for an engine whose password is optional, template_without_password.
    defaults = {}
    # URL schemes a connection string template of this engine may use (completion policy).
    schemes = ()
    # Query keys a completed template may carry: none that could move the login elsewhere.
    query_keys = ()
    # Whether schema files and migrations apply (Redis has no schema).
    has_schema = True
    # "role" or "user": what the engine calls the identity a password belongs to.
    identity = "user"
    # Words of the driver's errors that mean the credentials were refused (a rotation then
    # tries the next password), and those that make a login final at once (refusals and more).
    refusals = ()
    final_login_errors = ()
    # (pattern, what it is) of a database name, for an engine whose databases are not words.
    database_names = None
    # Env names of the exec that hold a secret in the check's probe; masked in its output.
    probe_secret_env = ()
    # Other programs to try for the probe's argv[0], for images that ship the client under another name.
    probe_alternatives = ()
    # The server container's env names that hold its own password (a described connection
    # references it, never invents one); empty when the server declares none.
    server_password_env = ()
    # Whether the server reads its password from its declaration at every start (Redis's
    # --requirepass), not only when its data is initialised (PostgreSQL's env).
    declared_password_applies_at_start = False

    # -- settings -----------------------------------------------------------------------
    def database_default(self, user):
        return self.defaults.get("database") or user

    def client_credentials(self, url):
        """(user, password) of a connection string as a client container has it."""
        parts = urlsplit(url)
        return ((unquote(parts.username) if parts.username else None),
                (unquote(parts.password) if parts.password else None))

    def default_identity(self, user):
        """The identity a connection logs in as when it names none."""
        return user

    # -- login and schema ---------------------------------------------------------------
    def refuse_file(self, kind, name, sql, settings=None):
        """Raise ClockworkError for a file the engine never applies (one that ends the transaction
        it is applied in, one that reaches another database), from its text alone and the
        connection's `settings` (resolved_settings): the plan refuses it before any change."""
        return None

    def login(self, host, port, settings, timeout, wait, read_only, server, engine):
        """Log in as the connection does, waiting (bounded by timeout) for the server; through a
        session that can only read when `read_only` (a dry run's: database/dry_run.py, which
        alone asks for one). Returns a target with applied() (None when the server has no
        database of that name), create_database(), refuse(pending files), lock(), unlock(),
        prepare(pending files, ctx, result) -> a snapshot's name or None (what comes before the
        files: MySQL's rehearsal), apply(kind, name, sql, checksum, snapshot), restore(ctx, result,
        snapshot) and close(); or None for an engine without schema."""
        raise NotImplementedError

    # -- an engine without schema: its snapshots (Redis's RDB copy) ----------------------
    def after_login(self, ctx, params, result, settings):
        """For an engine whose login returns no target: what a run does after it (Redis keeps an RDB
        copy for the release with `snapshot: true`). Nothing by default."""

    def restore_server(self, ctx, params, result, settings):
        """For an engine whose login returns no target: restore_snapshot (a SQL engine's target restores)."""
        raise ClockworkError("restore_snapshot: %s keeps no snapshot" % self.title)

    # -- password rotation --------------------------------------------------------------
    def server_credentials(self, env, command, name):
        """(identity, password, where it was read) that a server container declares for itself, or None."""
        raise NotImplementedError

    def session(self, host, port, user, password, database, timeout):
        """A session logged in with these credentials, or None when the server refuses them."""
        raise NotImplementedError

    def rotation_refused(self, identity, who):
        """Why this engine cannot rotate the password of `identity` (`who`, in words), or None."""
        return None

    def keeps_password(self, server):
        """Where the server keeps a password, for the message when none is accepted."""
        return "%s keeps it while it runs" % server

    def before_password_change(self, session, who, server, carried):
        """Raise ClockworkError when a password set now would not survive; nothing by default."""

    def admin_credentials(self, env, identity):
        """(identity, password) of an administrator the server's `env` declares, that may change the
        password of `identity` on every account of that name; None when the user changes its own."""
        return None

    def set_password(self, session, identity, password, carried, admin=None):
        """Set `identity`'s password, logged in as it with the previous one (`session`), or through
        `admin`, a session of admin_credentials' when there is one."""
        raise NotImplementedError

    def how_to_proceed(self, server, identity):
        raise NotImplementedError

    # -- the check, run inside the server's container --------------------------------
    def probe(self, check, url):
        """(argv, env, expected output) of the login that proves `url` works, from inside `to`."""
        raise NotImplementedError

    def schema_record(self):
        """Where the applied schema is recorded, for the check's message."""
        return None

    # -- completion ---------------------------------------------------------------------
    def completion_candidates(self, server_env, topic, password_given):
        """Local completion: {field: [candidates]} from the server's env and the description's topic."""
        template = self.defaults["template"]
        if not password_given and self.defaults.get("template_without_password"):
            template = self.defaults["template_without_password"]
        return {"connection_string_template": [template],
                "username": [self.defaults.get("user") or "default"],
                "database_name": [self.defaults.get("database") or "_".join(topic) or "app", "app"]}
