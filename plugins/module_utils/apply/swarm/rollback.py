# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Swarm stack back on one of its releases (issue 35 part 6): after a failed deploy, and on demand.

A release keeps each service's whole spec as the engine held it right after the apply that made
it (releases/record.py stack_services), not only Swarm's one-step PreviousSpec, which a second
update has already overwritten. Going back is an update of each service that differs from its
record with that spec, at the service's current version; Swarm then replaces the tasks as the
recorded UpdateConfig says (start-first where it says so: the old task serves until the new one
runs). A service of the release that is gone is created again from its spec; a service of the
stack that the release does not have is removed (only the stack's own: the list is by its label).

A job (replicated-job, global-job: a migration) is never run again by going back: Swarm runs it
again on any update of its spec, so one whose spec differs from the release is left as it ran, and
one of the release that is gone is not made again; both are said in the result. A job the release
does not have is removed as any other service (what its completed tasks did is not undone). After
a failed deploy, the overlay networks that run made and the release has not are removed too, once no
service uses them (the stack's own only; never an external one).

Everything a spec names by id (its image, networks, secrets and configs) is looked for first, so a
return that cannot be made is refused before any change, naming what is missing. Two are taken by
what they are: an image whose tag names another image since is named by its id, and a secret or
config made again under the same name (the digest of its content) by its new id.

With restore_data, a rollback also puts each database back as the snapshot the next deploy took
before its migrations has it (releases/rollback.py `restores` chooses them): the database's client
services are scaled to 0 first and waited for, the restore runs in the server's task through the
engine of its node (database/restore.py, given this applier's view, which locates the task), and the
clients then go back to the release's spec with the other services, their replicas included."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, owned_by
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import engine_words
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError, NotFound
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.secrets import SwarmObjects
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.services import (
    image_of, is_job, mode_kind, order_of, recorded_specs, relinked, spec_options)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.tasks import (
    convergence, retry_while_in_use, wait_converged, wait_tasks_gone)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import stack_services
from ansible_collections.clockwork.connections.plugins.module_utils.releases.rollback import (
    last_release, refuse_missing, restores)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.view import (
    scrub, secrets_of, service_drift, service_view)

# How long a service going back may take to run its recorded spec when the declaration does not
# say (a rollback on demand has none).
RETURN_TIMEOUT = 120
MISSING, NOT_IN_RELEASE = "missing", "not in the release"
NOT_UNDONE = "a job: what its completed tasks did is not undone"


def pinned(gateway, spec):
    """`spec` with its image by id when its tag names another image now (a rebuilt or pulled tag: a
    release runs what it ran, `<stack>-<resource>:clockwork` is rebuilt by every change); as recorded
    otherwise, and when that image is gone (refused by `missing_images`)."""
    image_id, reference = image_of(spec)
    if not reference or image_id == reference.split("@")[0] or gateway.image(image_id) is None:
        return spec
    found = gateway.image(reference.split("@")[0])
    if found is not None and found.get("Id") == image_id:
        return spec
    spec = copy.deepcopy(spec)
    spec["TaskTemplate"]["ContainerSpec"]["Image"] = image_id
    return spec


def renetworked(gateway, spec, names):
    """`spec` with each network it names by an id that is gone taken by its name (`names`: id -> name,
    what the release recorded beside the spec, when it did), when the stack has one of that name now."""
    networks = (spec.get("TaskTemplate") or {}).get("Networks") or []
    moved = []
    for index, network in enumerate(networks):
        name = (names or {}).get(network.get("Target"))
        if name and gateway.network(network.get("Target")) is None:
            found = gateway.network(name)
            if found is not None and found.get("Id"):
                moved.append((index, found["Id"]))
    if not moved:
        return spec
    spec = copy.deepcopy(spec)
    for index, network_id in moved:
        spec["TaskTemplate"]["Networks"][index]["Target"] = network_id
    return spec


def missing_images(gateway, specs, names):
    """{service: image} of the services `names` whose image the manager's engine no longer has."""
    missing = {}
    for name in sorted(names):
        wanted, reference = image_of(specs[name])
        if wanted and gateway.image(wanted) is None:
            missing[name] = reference or wanted
    return missing


def missing_objects(gateway, specs, names):
    """["service api: secret <name>", ...]: what the specs of `names` refer to by id that is gone."""
    secrets = set(s["ID"] for s in gateway.secrets() or [])
    configs = set(c["ID"] for c in gateway.configs() or [])
    missing = []
    for name in sorted(names):
        template = specs[name].get("TaskTemplate") or {}
        container = template.get("ContainerSpec") or {}
        for reference in container.get("Secrets") or []:
            if reference.get("SecretID") not in secrets:
                missing.append("service %s: secret %s" % (name, reference.get("SecretName") or reference.get("SecretID")))
        for reference in container.get("Configs") or []:
            if reference.get("ConfigID") not in configs:
                missing.append("service %s: config %s" % (name, reference.get("ConfigName") or reference.get("ConfigID")))
        for network in template.get("Networks") or []:
            if gateway.network(network.get("Target")) is None:
                # A release names it by id: one of the same name made since (a destroy, a deploy) is another.
                missing.append("service %s: network %s (its id in the release; removed since)" % (
                    name, network.get("Target")))
    return missing


class SwarmReturn(object):
    """One return of the swarm applier `applier`'s stack to `release` (a dict of releases/store.py)."""

    def __init__(self, applier, release, failed_run=False):
        self.applier, self.failed_run = applier, failed_run
        self.stack = applier.name
        self.release = release
        self.number = release.get("number")
        owned = dict((kind, SwarmObjects(applier.engine, self.stack).owned(kind)) for kind in ("secret", "config"))
        gateway, services = applier.engine, release.get("services") or {}
        self.specs = dict((name, renetworked(gateway, relinked(pinned(gateway, spec), owned),
                                             services[name].get("networks")))
                          for name, spec in recorded_specs(release).items())
        # The release's services with the specs going back (an image pinned by id), for drift and diffs.
        self.services = dict((name, dict(release["services"][name], spec=spec)) for name, spec in self.specs.items())
        self.secrets = secrets_of(release)

    def steps(self, touched=None):
        """[(service, action, reasons, its service now or None)]: "update" (differs from its record),
        "recreate" (its mode differs: a job, which no update makes replicated), "create" (gone),
        "remove" (not in the release), "keep" (a job of the release: making or updating it would run
        it again). With `touched` (a failed run's), only the services named there."""
        running = stack_services(self.applier.engine, self.stack)
        found = []
        for item in service_drift(dict(self.release, services=self.services), running):
            name, changes = item["service"], item["changes"]
            if touched is not None and name not in touched:
                continue
            if changes == [MISSING]:
                found.append((name, "keep" if is_job(self.specs[name]) else "create", [], None))
            elif changes == [NOT_IN_RELEASE]:
                found.append((name, "remove", ["not in release %s" % self.number] + (
                    [NOT_UNDONE] if is_job(running[name]["spec"]) else []), running[name]))
            elif is_job(self.specs[name]):
                # Swarm runs a job again on any update: it stays as it ran; a service made of it since goes.
                found.append((name, "keep", changes, running[name]) if is_job(running[name]["spec"]) else (
                    name, "remove", ["release %s has it as a job, which is not run again" % self.number],
                    running[name]))
            elif mode_kind(running[name]["spec"]) != mode_kind(self.specs[name]):
                found.append((name, "recreate", changes, running[name]))
            else:
                found.append((name, "update", changes, running[name]))
        return found

    def refuse_unreachable(self, steps):
        """Before any change: what the services going back need, there (images, secrets, configs, networks)."""
        names = [name for name, action, _reasons, _now in steps if action not in ("remove", "keep")]
        gateway = self.applier.engine
        missing = missing_images(gateway, self.specs, names)
        if missing:
            refuse_missing(self.stack, self.number, missing)   # one wording for both targets
        gone = missing_objects(gateway, self.specs, names)
        if gone:
            raise ClockworkError("stack %s cannot go back to release %s: what its services use is gone (%s); nothing "
                                 "was changed" % (self.stack, self.number, ", ".join(gone)))

    def run(self, steps, timeout_of=lambda name: RETURN_TIMEOUT):
        """Make the steps (every write first, then the waits, which overlap); the lines of what went back."""
        lines, waits, removed = [], [], []
        for name, action, reasons, now in steps:
            if action == "keep":
                lines.append(self._keep(name, reasons, now))
                continue
            self._note(name, action, reasons, now)
            try:
                waits.append(self._write(name, action, now))
            except APIError as exc:
                raise ClockworkError("service %s: the Swarm manager refused its return to release %s (%s): %s" % (
                    name, self.number, action, engine_words(exc)))
            if action == "remove":
                removed.append(now["id"])
                lines.append("service %s: removed (%s)" % (name, "; ".join(reasons)))
            else:
                lines.append("service %s: back to release %s (%s%s)" % (
                    name, self.number, {"create": "created again, ", "recreate": "made again, "}.get(action, ""),
                    order_of(self.specs[name])))
        if removed:
            wait_tasks_gone(self.applier.engine, removed, ", ".join(n for n, a, _r, _n in steps if a == "remove"))
        failed = []
        for name, service_id in [w for w in waits if w[1]]:
            try:
                wait_converged(self.applier.view, service_id, name, timeout_of(name), say=self.applier.say)
            except ClockworkError as exc:
                failed.append(exc.msg)
            self.applier.view.forget("container", name)
        if failed:
            raise ClockworkError("stack %s did not come back on release %s whole: %s" % (
                self.stack, self.number, "; ".join(failed)))
        return lines

    def _write(self, name, action, now):
        """(name, the service's id to wait for, or None)."""
        view = self.applier.view
        if action == "remove":
            try:
                view.remove_service(now["id"])
            except NotFound:
                pass
            return name, None
        options = spec_options(self.specs[name])
        if action == "recreate":
            view.remove_service(now["id"])
            wait_tasks_gone(self.applier.engine, [now["id"]], name)
        if action in ("create", "recreate"):
            return name, view.create_service(options.pop("task_template"), name, **options)["ID"]
        current = self.applier.engine.service(now["id"])   # its version now, not the list's
        view.update_service(current["ID"], current["Version"]["Index"], name, fetch_current_spec=False, **options)
        return name, current["ID"]

    def _keep(self, name, reasons, now):
        """A job of the release left as it is (see the module's doc); the words, in its entry too."""
        if now is None:
            words = "job %s of release %s is not made again: making it would run it again" % (name, self.number)
        else:
            words = "job %s is not run again: it ran with %s (%s); release %s's spec differs (%s)" % (
                name, self._ran_with(name, now), self._job_state(now), self.number, ", ".join(reasons))
        self.applier._record("service", name, False, [words])  # pylint: disable=protected-access
        self.applier.say("%s: %s" % (name, words))
        return words

    def _ran_with(self, name, now):
        """Whose spec a job left as it is ran with, in words."""
        if self.failed_run:
            return "this run's spec"
        current = last_release(self.applier.engine, self.stack) or {}
        record = (current.get("services") or {}).get(name) or {}
        return "release %s's spec" % current["number"] if record.get("spec") == now["spec"] else "the spec it has"

    def _job_state(self, now):
        """`1 of 1 completed`, `2 of its tasks failed` ... (apply/swarm/tasks.py convergence)."""
        gateway = self.applier.engine
        try:
            service = gateway.service(now["id"])
            return convergence(service, gateway.tasks(filters={"service": now["id"]}))[1] if service else "gone"
        except APIError as exc:
            return "its tasks unread: %s" % engine_words(exc)

    def _note(self, name, action, reasons, now):
        """The entry and the diff of one step, masked (releases/view.py: no secret value of either spec)."""
        secrets = self.secrets | (secrets_of({"services": {name: now}}) if now else set())
        before = scrub(service_view(now), secrets) if now else {}
        after = scrub(service_view(self.services[name]), secrets) if action != "remove" else {}
        # The verbs of a present's entries (the summary words them alike); the release in the reasons.
        reasons = ["in release %s, gone since" % self.number] if action == "create" else reasons
        self.applier._record("service", name, True, [action], reasons, before, after)  # pylint: disable=protected-access
        self.applier.say("%s: %s, back to release %s (%s)" % (name, action, self.number, ", ".join(reasons)))


def touched_services(entries):
    """The services a run created, updated or recreated (its report's entries), written or not."""
    return set(e["name"] for e in entries if e.get("kind") == "service" and e.get("changed"))


def return_after_failure(applier, release):
    """A failed deploy's end: the services it created, updated or recreated back on `release` (the
    stack's current one before the run), those it made removed; a service it did not touch is left
    as it is (a failure before any write changes nothing). The lines of what went back ([] when
    nothing needed to)."""
    if (release or {}).get("target") != "swarm":
        return []
    going = SwarmReturn(applier, release, failed_run=True)
    steps = going.steps(touched=touched_services(applier.entries))
    going.refuse_unreachable(steps)
    lines = going.run(steps, timeout_of=lambda name: applier.specs[name].timeout if name in applier.specs
                      else RETURN_TIMEOUT) if steps else []
    lines += new_networks_removed(applier, release)
    if lines:
        applier._collect_garbage()   # pylint: disable=protected-access  # the secrets and configs only the run used
    return lines


def new_networks_removed(applier, release):
    """The overlay networks this failed run created (its entries) that `release` has not, removed:
    the stack's own (by its label), never an external one, nor one a service still uses (another
    stack's, joined meanwhile: left, and said). The lines of what went or was left."""
    gateway, number = applier.engine, release.get("number")
    kept = set(release.get("networks") or {}) | set(n["name"] for n in applier.plan.networks if n["settings"] is None)
    kept |= set(n for s in (release.get("services") or {}).values() for n in (s.get("networks") or {}).values())
    lines = []
    for name in [e["name"] for e in applier.entries if e["kind"] == "network" and e["changed"]]:
        attrs = gateway.network(name)
        if name in kept or attrs is None or attrs.get("Scope") != "swarm" or \
                not owned_by(attrs.get("Labels"), applier.name):
            continue
        users = sorted(s["Spec"]["Name"] for s in gateway.services() or []
                       if any(n.get("Target") in (attrs["Id"], name)
                              for n in (s["Spec"].get("TaskTemplate") or {}).get("Networks") or []))
        if users:
            lines.append("network %s: left (used by service %s)" % (name, ", ".join(users)))
            continue
        applier._record("network", name, True, ["remove"], ["made by this run, not in release %s" % number])  # pylint: disable=protected-access
        retry_while_in_use(gateway, lambda n=attrs: gateway.remove_network(n["Id"]), "network", name)
        lines.append("network %s: removed (made by this run, not in release %s)" % (name, number))
    return lines


def roll_back(applier, release, restore_data=False):
    """`state: rolled_back`: every service of the stack on `release`'s spec, those it does not have
    removed; refused before any change when something it needs is gone. With `restore_data`, the
    databases' client services are scaled to 0 first, each database restored from the snapshot the
    next deploy took before its migrations, then the release's specs put back (the clients' too).
    The applier's report."""
    if release.get("target") != "swarm":
        raise ClockworkError("release %s of stack %s was made with engine %s, not swarm: a Swarm stack goes back "
                             "only to a release of its services" % (
                                 release.get("number"), applier.name, release.get("target")))
    restoring = restores(applier.engine, applier.name, release, applier.connections) if restore_data else []
    going = SwarmReturn(applier, release)
    steps = going.steps()
    going.refuse_unreachable(steps)
    clients = clients_to_stop(applier, restoring)
    refuse_missing_snapshots(applier, restoring)
    restored = restore_databases(applier, going, steps, restoring, clients) if restoring else []
    going.run(steps)
    names = sorted(set(going.specs) | set(name for name, _a, _r, _n in steps))
    for name in sorted(going.specs):   # unchanged: in the report as a present names them
        if not any(step[0] == name for step in steps):
            applier._record("service", name, False, [])  # pylint: disable=protected-access
    report = dict(applier.report(), order=names)
    if restore_data:
        report["restored"] = restored
    return report


# -- restore_data: the databases back as the next deploy found them ---------------------------

# A task in one of these states may still write to its database.
LIVE_STATES = ("new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running")


def clients_to_stop(applier, restoring):
    """[(service, the database label, its service now)] of the restored databases' clients in the
    stack; refused before any change when one cannot be scaled to 0 (a global service), or a
    database's restore cannot be made on Swarm (Redis's)."""
    for label, _connection, snapshot, _later in restoring:
        if snapshot.get("kind") == "rdb":
            # Its restore stops the server's container, and Swarm would start another task meanwhile.
            raise ClockworkError("stack %s: restore_data: %s keeps Redis copies, whose restore stops and starts the "
                                 "server, which Swarm would replace by a new task: not on Swarm; roll back without "
                                 "restore_data; nothing was changed" % (applier.name, label))
    clients = dict((c["from_resource"], label) for label, c, _snapshot, _later in restoring)
    running = stack_services(applier.engine, applier.name)
    found = []
    for name in sorted(clients):
        now = running.get(name)
        if now is None or mode_kind(now["spec"]) in ("ReplicatedJob", "GlobalJob"):
            continue   # gone, or a job: nothing of it keeps running to write
        if mode_kind(now["spec"]) != "Replicated":
            raise ClockworkError("stack %s: restore_data stops the clients of %s first, and service %s is global: its "
                                 "tasks cannot be scaled to 0; roll back without restore_data, or make it replicated; "
                                 "nothing was changed" % (applier.name, clients[name], name))
        found.append((name, clients[name], now))
    return found


def refuse_missing_snapshots(applier, restoring):
    """Before any change, on a real run: each snapshot in the stack's volume on the node its server's
    task runs on (database/snapshots.py: the index beside the dumps). A dry run reads no volume: the
    restore's own words say what it would do."""
    if applier.engine.dry_run:
        return
    from ansible_collections.clockwork.connections.plugins.module_utils.database.snapshots import (  # pylint: disable=import-outside-toplevel
        ServerContainer, SnapshotStore)
    for label, connection, snapshot, later in restoring:
        server = connection["to_resource"]
        try:
            store = SnapshotStore(ServerContainer(applier.view, server), applier.name)
            kept = [e["snapshot"] for e in store.index()]
        except ClockworkError as exc:
            raise ClockworkError("stack %s: restore_data: %s cannot be restored: %s; nothing was changed" % (
                applier.name, label, exc.msg))
        if snapshot["name"] not in kept:
            raise ClockworkError(
                "stack %s: restore_data: snapshot %s of %s (taken %s by release %d, before its migrations) is not in "
                "volume %s on the node of service %s (kept: %s); nothing was changed" % (
                    applier.name, snapshot["name"], label, snapshot.get("created") or "at a time not recorded", later,
                    store.volume, server, ", ".join(kept) or "none"))


def stop_clients(applier, clients):
    """Each client service scaled to 0 (its spec otherwise as it is), then, on a real run, waited for
    until none of its tasks runs: nothing writes to a database while it is restored."""
    view, gateway = applier.view, applier.engine
    for name, label, now in clients:
        current = gateway.service(now["id"])
        options = spec_options(current["Spec"])
        options["mode"] = {"Replicated": {"Replicas": 0}}
        applier._record("service", name, True, ["stop"], [  # pylint: disable=protected-access
            "client of %s, whose data is restored: scaled to 0" % label])
        applier.say("%s: stop (scaled to 0: client of %s, whose data is restored)" % (name, label))
        try:
            view.update_service(current["ID"], current["Version"]["Index"], name, fetch_current_spec=False, **options)
        except APIError as exc:
            raise ClockworkError("service %s: the Swarm manager refused to scale it to 0 before the restore of %s: "
                                 "%s" % (name, label, engine_words(exc)))
    if gateway.dry_run:
        return
    for name, label, now in clients:
        wait_stopped(gateway, now["id"], name, label)


def wait_stopped(gateway, service_id, name, label):
    """Until no task of the service may still write (see LIVE_STATES), bounded."""
    deadline = gateway.monotonic() + RETURN_TIMEOUT
    while True:
        try:
            live = [t for t in gateway.tasks(filters={"service": service_id})
                    if (t.get("Status") or {}).get("State") in LIVE_STATES]
        except APIError as exc:
            raise ClockworkError("service %s: cannot follow its tasks: %s" % (name, engine_words(exc)))
        if not live:
            return
        if gateway.monotonic() >= deadline:
            raise ClockworkError("service %s: %d of its tasks still ran %ss after it was scaled to 0 for the restore "
                                 "of %s; nothing was restored: run the rollback again" % (
                                     name, len(live), RETURN_TIMEOUT, label))
        gateway.sleep(0.3)


def restore_databases(applier, going, steps, restoring, clients):
    """The clients stopped, then each database restored through the engine of the node its server's
    task runs on (the view locates the task: database/snapshots.py ServerContainer); `steps` gets
    the clients' way back to the release's spec. [{snapshot, created, size, lost, database, release}]."""
    from ansible_collections.clockwork.connections.plugins.module_utils.database.restore import (  # pylint: disable=import-outside-toplevel
        restore_connection)
    stop_clients(applier, clients)
    restored = []
    for label, connection, snapshot, later in restoring:
        try:
            result = restore_connection(applier.view, applier.name, connection, snapshot)
        except ClockworkError as exc:
            stopped = ", ".join(name for name, _label, _now in clients)
            raise ClockworkError("%s%s" % (exc.msg, "\nservice%s %s stay%s scaled to 0: the same rollback run again "
                                                    "completes it" % ("" if len(clients) == 1 else "s", stopped,
                                                                      "s" if len(clients) == 1 else "")
                                           if clients else ""))
        applier._record("database", label, result.changed, result.actions)  # pylint: disable=protected-access
        applier.say("%s: %s" % (label, "; ".join(result.actions)))
        restored.append(dict(result.extra.get("restore") or {}, database=label, release=later))
    stepped = set(step[0] for step in steps)
    for name, _label, now in clients:
        if name not in stepped and name in going.specs:
            # Back to the release's spec, its replicas included: the same update a drift would make.
            steps.append((name, "update", ["its database is restored"], now))
    return restored
