# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A database's snapshots, whatever its engine: the dump made inside the server's own container
(MySQL's mysqldump, PostgreSQL's pg_dump -Fc), kept in the stack's volume
`<stack>-clockwork-snapshots` with an index per server (the last `snapshot_keep` per database),
and what a release records of one (`record`). A snapshot a kept release of the stack records
(releases/store.py, read only) is never pruned by `snapshot_keep`: a rollback with restore_data
puts it back; once its release is pruned it goes at the next prune. database/restore.py `restore_connection` is the one
call that puts a database back as a snapshot has it.

The volume is read and written through a helper container of the server's own image that is never
started but to remove old snapshots; the files move between the server and the volume as tar
streams (the gateway's get/put archive), never through a shell."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import json
import os
import re
import tarfile
import time

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, env_dict, owner_labels
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    CONFLICT, engine_words, status_of)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import (
    APIError, NotFound, exec_in)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.shelf import single_file_tar
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore

VOLUME = "%s-clockwork-snapshots"
HELPER_RESOURCE = "clockwork-snapshots"
DIRECTORY = "/snapshots"
MB = 1024 * 1024
NAME_PART = re.compile(r"[^A-Za-z0-9_]+")
# The file of a snapshot in the volume, by its kind; an entry of an earlier version has no kind: MySQL's.
SUFFIXES = {"mysqldump": ".sql", "pg_dump": ".dump", "rdb": ".rdb"}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def snapshot_name(database, now=None, token=None):
    """A snapshot's name: the database (its safe characters), the UTC time and a random part."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return "%s-%s-%s" % (NAME_PART.sub("_", str(database))[:40] or "db", stamp, token or os.urandom(3).hex())


def utc_now():
    return time.strftime(TIME_FORMAT, time.gmtime())


def file_of(entry):
    """The file name of an index entry in the volume."""
    return entry["snapshot"] + SUFFIXES.get(entry.get("kind") or "mysqldump", ".sql")


def kept_and_pruned(index, server, database, keep, recorded=frozenset()):
    """(entries kept, snapshot names to remove) of a server's index, the newest `keep` per database
    and, older, those named in `recorded` (a kept release's); `recorded` None: nothing is removed."""
    mine = [e for e in index if e["database"] == database]
    others = [e for e in index if e["database"] != database]
    mine.sort(key=lambda e: e["created"])
    cut = max(0, len(mine) - max(1, keep))
    pruned = [] if recorded is None else [e["snapshot"] for e in mine[:cut] if e["snapshot"] not in recorded]
    return others + [e for e in mine if e["snapshot"] not in pruned], pruned


def recorded_by_releases(gateway, stack, volume):
    """The names of the snapshots in `volume` that a kept release of `stack` records (read only);
    None when they cannot be known (check mode, a release record that cannot be read): then nothing
    is pruned, as keeping one too many costs a file and pruning a needed one costs a rollback."""
    if getattr(gateway, "dry_run", False) or getattr(gateway, "files", None) is None:
        return None
    try:
        releases, _missing = ReleaseStore(gateway, stack).releases()
    except ClockworkError:
        return None
    return frozenset(snapshot["name"] for release in releases
                     for database in (release.get("databases") or {}).values()
                     for snapshot in (database.get("snapshots") or [])
                     if snapshot.get("volume") in (None, volume))


def megabytes(size):
    """A size in bytes, in words: 3.2 MB, 512 kB."""
    if size is None:
        return "size unknown"
    return "%.1f MB" % (size / float(MB)) if size >= MB // 10 else "%d kB" % max(1, size // 1024)


def record(entry, volume):
    """What a release records of a snapshot (releases/record.py snapshots_of reads it from the
    connection result's extra["snapshot"])."""
    kept = {"name": entry["snapshot"], "created": entry["created"], "volume": volume,
            "kind": entry.get("kind") or "mysqldump"}
    if entry.get("size") is not None:
        kept["size"] = int(entry["size"])
    return kept


def lost_words(database, created):
    return "rows written to %s after %s are lost" % (database, created)


def restore_words(snapshot, database, entry, volume):
    """The action of a restore, in both modes: the snapshot, when and before what it was taken,
    its size, and what is lost. `entry`: the index's (a real run) or the release's record (a dry
    run, which reads no volume), or None."""
    if not entry:
        return ("restore snapshot %s of %s from volume %s (the state of %s now is kept as a snapshot first; "
                "what clients wrote since the snapshot is then gone from %s)" % (
                    snapshot, database, volume, database, database))
    before = entry.get("before")
    return "restore snapshot %s of %s, taken %s%s (%s): %s" % (
        snapshot, database, entry.get("created") or "at a time not recorded",
        " before %s" % ", ".join(before) if before else "", megabytes(entry.get("size")),
        lost_words(database, entry.get("created") or "the snapshot"))


def known_entry(result):
    """What the caller of a restore knows of its snapshot (restore_connection: the release's record),
    for a dry run's words; None when it knows no time."""
    known = result.extra.get("restore") or {}
    return known if known.get("created") else None


def restoring(result, database, entry):
    """The restore's extra["restore"], from the index's entry (a real run reads it)."""
    result.extra["restore"] = {"snapshot": entry["snapshot"], "created": entry["created"], "size": entry.get("size"),
                               "lost": lost_words(database, entry["created"])}


class ServerContainer(object):
    """The server's container where it runs (on Swarm, the node of the task a service stands for)."""

    def __init__(self, engine, name):
        locate = getattr(engine, "locate", None)
        self.engine, self.ident = locate(name) if locate else (engine, name)
        if self.ident is None:
            raise ClockworkError("no container of %s can be reached to take a snapshot" % name)
        self.name = name
        self.gateway = engine   # the module's own (on Swarm the manager's): the releases are on its host
        self.attrs = self.engine.container_now(self.ident)
        if self.attrs is None:   # gone since it was located
            raise ClockworkError("no container of %s can be reached to take a snapshot" % name)
        # As the server sees its env (on Swarm, a secret file's content under the variable's own name).
        self.seen = engine.container(name) or self.attrs

    def env(self):
        return env_dict((self.seen.get("Config") or {}).get("Env"))

    def exec(self, argv, env, seconds, doing, after, secrets=()):
        """A program of the server's image, `argv` (a list), its secrets in `env`; raises on failure
        with its output, the secrets masked."""
        code, out = exec_in(self.engine, self.ident, argv, timeout=seconds, env=env)
        if code != 0:
            for secret in secrets:
                if secret:
                    out = out.replace(secret, "********")
            raise ClockworkError("%s failed inside %s: %s; %s" % (doing, self.name, " ".join(out.split())[-2000:],
                                                                  after))
        return out

    def remove(self, path):
        exec_in(self.engine, self.ident, ["rm", "-f", "--", path])


class SnapshotStore(object):
    """The stack's snapshot volume on the server's node, read and written through a helper
    container of the server's own image that is never started but to remove old snapshots."""

    def __init__(self, server, stack):
        self.server, self.engine = server, server.engine
        self.stack, self.volume = stack, VOLUME % stack
        self.index_file = "index-%s.json" % server.name

    def _helper(self, command):
        if self.engine.volume(self.volume) is None:
            try:
                self.engine.create_volume(self.volume, labels=owner_labels(self.stack, HELPER_RESOURCE))
            except APIError as exc:
                if status_of(exc) != CONFLICT:
                    raise ClockworkError("cannot create volume %s: %s" % (self.volume, engine_words(exc)))
        mount = {"Target": DIRECTORY, "Source": self.volume, "Type": "volume", "ReadOnly": False}
        return self.engine.create_container(
            "%s-%s-%s" % (self.stack, HELPER_RESOURCE, os.urandom(4).hex()), self.server.attrs["Image"],
            host_config={"mounts": [mount]}, entrypoint=command, user="0",
            labels=owner_labels(self.stack, HELPER_RESOURCE))["Id"]

    def _drop(self, helper):
        try:
            self.engine.remove_container(helper, force=True)
        except APIError:
            pass

    def index(self):
        """The server's snapshots: [{snapshot, database, created, before, size, kind, ...}]."""
        if self.engine.volume(self.volume) is None:
            return []
        helper = self._helper(["true"])
        try:
            return self._read_index(helper)
        finally:
            self._drop(helper)

    def _read_index(self, helper):
        try:
            stream, _stat = self.engine.get_archive(helper, "%s/%s" % (DIRECTORY, self.index_file))
        except NotFound:
            return []
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            return json.loads(archive.extractfile(archive.getmembers()[0]).read().decode("utf-8"))

    def keep(self, path, entry, keep, spare=()):
        """Move the dump at `path` in the server's container (named as file_of(entry)) into the
        volume, record it with its size, and remove the snapshots of its database beyond the newest
        `keep`, but those a kept release of the stack records and `spare` (a restore's: the message
        of a failed one says to run it again). Returns the entry as recorded."""
        recorded = recorded_by_releases(self.server.gateway, self.stack, self.volume)
        recorded = None if recorded is None else recorded | frozenset(spare)
        helper = self._helper(["true"])
        try:
            stream, stat = self.engine.get_archive(self.server.ident, path)
            entry = dict(entry, size=int((stat or {}).get("size") or 0))
            before = self._read_index(helper)
            index, pruned = kept_and_pruned(before + [entry], self.server.name, entry["database"], keep, recorded)
            self.engine.put_archive(helper, DIRECTORY, stream)
            self.engine.put_archive(helper, DIRECTORY,
                                    single_file_tar(self.index_file, json.dumps(index, indent=1).encode()))
        finally:
            self._drop(helper)
        files = ["%s/%s" % (DIRECTORY, file_of(e)) for e in before if e["snapshot"] in pruned]
        if files:
            remover = self._helper(["rm", "-f", "--"] + files)
            try:
                self.engine.start(remover)
                self.engine.wait(remover, timeout=60)
            finally:
                self._drop(remover)
        return entry

    def fetch(self, entry, into):
        """Copy a kept snapshot into the server's container, into the directory `into` there."""
        helper = self._helper(["true"])
        try:
            stream, _stat = self.engine.get_archive(helper, "%s/%s" % (DIRECTORY, file_of(entry)))
            self.engine.put_archive(self.server.ident, into, stream)
        except NotFound:
            raise ClockworkError("snapshot %s is not in volume %s" % (entry["snapshot"], self.volume))
        finally:
            self._drop(helper)

    def read(self, entry, limit):
        """The content of a kept snapshot, at most `limit` bytes (a restore that writes it under another name)."""
        helper = self._helper(["true"])
        try:
            stream, stat = self.engine.get_archive(helper, "%s/%s" % (DIRECTORY, file_of(entry)))
            if int((stat or {}).get("size") or 0) > limit:
                raise ClockworkError("snapshot %s is larger than snapshot_max_mb; nothing was changed"
                                     % entry["snapshot"])
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                return archive.extractfile(archive.getmembers()[0]).read()
        except NotFound:
            raise ClockworkError("snapshot %s is not in volume %s" % (entry["snapshot"], self.volume))
        finally:
            self._drop(helper)


def restore_entry(target, result, store, snapshot, kind):
    """The index entry of `snapshot` that a restore of the target's database puts back; None in a dry
    run, whose target reads no volume (that takes a container): its words, from what the caller knows of
    the snapshot, are then the restore's one action."""
    database = str(target.settings["database"])
    index = target.snapshots(store)
    if index is None:
        result.act(restore_words(snapshot, database, known_entry(result), store.volume))
        return None
    return entry_of(index, snapshot, database, kind, target.where, store.volume)


def entry_of(index, snapshot, database, kind, where, volume):
    """The index entry of `snapshot` for `database` of this kind; raises naming the ones kept."""
    entry = next((e for e in index if e["snapshot"] == snapshot), None)
    if entry is None or entry["database"] != database or (entry.get("kind") or "mysqldump") != kind:
        raise ClockworkError("%s: no snapshot %s of database %s in volume %s (kept: %s); nothing was changed" % (
            where, snapshot, database, volume,
            ", ".join(e["snapshot"] for e in index if e["database"] == database) or "none"))
    return entry
