# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Going back to a release, the part both targets share (issue 35 parts 2 and 3): which release a
return or a rollback goes to, what refuses it before any change, the failure message of a deploy
that went back, and the release a rollback records. The appliers do the going back itself
(Applier.return_to and Applier.rolled_back: containers on the `docker` target, services on Swarm).

`previous` is the release before the current one; when the current release is itself a rollback,
it is the release that rollback returned to: a rerun of the same rollback changes nothing, and a
rollback killed half-way (its release not recorded yet) is completed by the next run of it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import build_release
from ansible_collections.clockwork.connections.plugins.module_utils.releases.recreate import missing_images
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore


def last_release(gateway, stack):
    """The stack's current release (what a failed present goes back to), None when it has none.
    A release file that cannot be read is no reason to fail a deploy that may succeed: None too."""
    store = ReleaseStore(gateway, stack)
    try:
        current = store.index()["current"]
        return store.release(current) if current is not None else None
    except ClockworkError:
        return None


def rollback_target(store, which):
    """The release `which` ("previous" or a number, as a string or not) names; refused, naming it."""
    if isinstance(which, str) and which.strip().isdigit():
        which = int(which.strip())
    if which == "previous":
        index = store.index()
        current = store.release(index["current"]) if index["current"] is not None else None
        if current is not None and current.get("rolled_back_to") in index["releases"]:
            # A rerun of the rollback that made the current release: the same target, nothing to change.
            return store.resolve(current["rolled_back_to"])
    return store.resolve(which)


def refuse_missing(stack, number, missing, what="image"):
    """Refuse a return to release `number` whose `missing` ({container or service: what}) is gone."""
    if missing:
        raise ClockworkError("stack %s cannot go back to release %d: its %s%s gone from the Docker host (%s); "
                             "nothing was changed" % (
                                 stack, number, what, " is" if len(missing) == 1 else "s are",
                                 ", ".join("%s of %s" % (v, k) for k, v in sorted(missing.items()))))


def chosen_release(gateway, stack, which, target="docker"):
    """The release a rollback goes to, after every refusal that needs no change: gone (pruned or
    never recorded), of the other target, its images or networks no longer on the Docker host."""
    release = rollback_target(ReleaseStore(gateway, stack), which)
    if release["target"] != target:
        raise ClockworkError("release %d of stack %s was deployed with engine %s, not %s: roll it back with "
                             "engine: %s" % (release["number"], stack, release["target"], target, release["target"]))
    refuse_missing(stack, release["number"], dict(
        (name, image[:19]) for name, image in missing_images(gateway, release).items()))
    gone = {}
    for name, record in sorted(release["containers"].items()):
        for network in sorted(record["endpoints"]):
            if network not in ("bridge", "host", "none") and gateway.network(network) is None \
                    and network not in (release.get("networks") or {}):   # one it recorded is made again
                gone.setdefault(name, network)
    refuse_missing(stack, release["number"], gone, what="network")
    return release


def next_release(store, release):
    """The release recorded after `release` by a deploy (not a rollback), None when none is kept:
    its snapshots were taken before its migrations, so they hold the data as `release` left it."""
    index = store.index()
    for number in index["releases"]:
        if number > release["number"]:
            later = store.release(number)
            if later is not None and not later.get("rolled_back_to"):
                return later
    return None


def back_message(message, number, went_back):
    """A failed deploy's message once its containers went back to release `number`."""
    return "%s\nthe stack is back on release %d (%s)" % (message, number, "; ".join(went_back))


def failed_return_message(message, number, problem):
    return ("%s\ngoing back to release %d failed too: %s\nthe stack may be half new: a rollback to release %d "
            "(state: rolled_back, release: %d) completes it" % (message, number, problem, number, number))


def record_rollback(gateway, stack, params, report, release, restore_data=False):
    """A rollback that changed something is the stack's next release: its containers (or services)
    as they run now, the checks and order of the release it returned to, and the databases as
    they are (their data kept, or restored with `restore_data`). Returns {number, pruned, path},
    or None when nothing changed."""
    if not report.get("changed"):
        return None
    store = ReleaseStore(gateway, stack)
    made = build_release(gateway, stack, dict(params, engine=release["target"], resources=[], connections=[]),
                         {"plan": None}, controller=params.get("controller"))
    current = store.index()["current"]
    now = store.release(current) if current is not None else None
    made["databases"] = dict(release["databases"] if restore_data or now is None else now["databases"])
    made["checks"] = list(release.get("checks") or [])
    made["plan_digest"] = release["plan_digest"]
    made["rolled_back_to"] = release["number"]
    made["networks"] = dict(release.get("networks") or {})
    made["restored_data"] = bool(report.get("restored"))
    if release.get("order"):
        made["order"] = list(release["order"])
    number, pruned = store.add(made, params.get("releases_kept"))
    return {"number": number, "pruned": pruned, "path": store.release_path(number),
            "rolled_back_to": release["number"]}


def database_key(label):
    """A connection's plan label (`connection database api -> db`) as releases name it (`database api -> db`)."""
    return label[len("connection "):] if label.startswith("connection ") else label


def restores(gateway, stack, release, connections):
    """What restore_data restores on a return to `release`, refused before any change when it cannot:
    [(database label, its connection as the plan has it (the login), the snapshot, the release that
    took it)]. The snapshots are those of the next deploy after `release`, taken before its
    migrations: the data as `release` left it. A database that deploy took none of was not
    migrated by it, and keeps its data."""
    store = ReleaseStore(gateway, stack)
    current = store.index()["current"]
    now = store.release(current) if current is not None else None
    if now is not None and now.get("rolled_back_to") == release["number"] and now.get("restored_data"):
        return []   # a rerun of the rollback that restored them: rows written since are kept
    later = next_release(store, release)
    if later is None:
        raise ClockworkError("stack %s: restore_data: no deploy after release %d is kept, so no snapshot holds the "
                             "data as release %d left it; roll back without restore_data (the databases keep their "
                             "data and schema); nothing was changed" % (stack, release["number"], release["number"]))
    by_label = dict((database_key(c["label"]), c) for c in connections)   # the release names its databases
    found, missing = [], []
    for label, database in sorted(later["databases"].items()):
        snapshots = database.get("snapshots") or []
        if not snapshots:
            continue
        if label not in by_label:
            missing.append(label)
            continue
        # The first one the deploy took: before any of its migrations.
        found.append((label, by_label[label], snapshots[0], later["number"]))
    if missing:
        plural = "" if len(missing) == 1 else "s"
        raise ClockworkError("stack %s: restore_data needs the login of database connection%s %s, which the rollback "
                             "takes from the stack's declaration: give its resources and connections with the "
                             "rollback; nothing was changed" % (stack, plural, ", ".join(missing)))
    return found


def refuse_pruned_snapshots(gateway, stack, restoring):
    """Refuse, before any change, a restore whose snapshot the database's volume no longer keeps
    (it keeps the last snapshot_keep of each database, while a release may be older). Read through
    the server's container (on Swarm its task's node: ServerContainer locates it); a dry run cannot
    read the volume, so check mode leaves it to the restore's own refusal."""
    if gateway.dry_run or not restoring:
        return
    from ansible_collections.clockwork.connections.plugins.module_utils.database.snapshots import (  # pylint: disable=import-outside-toplevel
        ServerContainer, SnapshotStore)
    gone = []
    for label, connection, snapshot, later in restoring:
        kept = SnapshotStore(ServerContainer(gateway, connection["to_resource"]), stack).index()
        if snapshot["name"] not in [entry.get("snapshot") for entry in kept]:
            gone.append("%s of %s (taken by release %d)" % (snapshot["name"], label, later))
    if gone:
        raise ClockworkError("stack %s: restore_data: the snapshot%s %s %s no longer kept in the stack's snapshot "
                             "volume (it keeps the last snapshot_keep of each database); nothing was changed" % (
                                 stack, "" if len(gone) == 1 else "s", ", ".join(gone),
                                 "is" if len(gone) == 1 else "are"))
