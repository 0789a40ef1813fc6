# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `docker` target: a whole stack as containers on one engine. Plan it (plan.py), check the
plan against the engine (preflight.py), then apply it: the networks, volumes, files and TLS
material first, then per resource in order, its outgoing connections and its container with
their contributions. The same functions as the single modules do the work; only the
sequencing is here."""


from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import queue
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.clockwork.connections.plugins.module_utils.apply.applier import (
    DEFAULT_PARALLEL, VERIFY_GRACE_SECONDS, Applier, connection_steps, dry_run_of, merged_contributions)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.checks import run_checks
from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    RESOURCE_LABEL, STACK_LABEL, ClockworkError)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import CONFLICT, status_of
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import (
    ConnectionContext, ConnectionResult)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import ANONYMOUS_VOLUME, restart_to_read
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_wait import has_healthcheck, wait_for
from ansible_collections.clockwork.connections.plugins.module_utils.apply.docker_rollback import (
    ContainersBack, grace_of, networks_back)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import (
    container_record, stack_containers)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.rollback import (
    refuse_pruned_snapshots, restores)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import NetworkConverger
from ansible_collections.clockwork.connections.plugins.module_utils.apply.volumes import ensure_volume
from ansible_collections.clockwork.connections.plugins.module_utils.graph import diagram_document
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import (
    secrets_to_remove, stack_home, write_file)
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.module_utils.apply.preflight import Preflight
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES
from ansible_collections.clockwork.connections.plugins.module_utils.apply.replicas import ReplicaConverger, expand_checks
from ansible_collections.clockwork.connections.plugins.module_utils.apply.rolling import DEFAULT_GRACE_SECONDS, remove_gracefully
from ansible_collections.clockwork.connections.plugins.module_utils.apply.scheduler import failure_report, run_ordered, step_error


class DockerApplier(Applier):
    """Applies a plan. Containers converge in parallel, each as soon as what it connects to is
    ready; what is recorded (entries, diffs, checks) is kept per resource and reported in the
    plan's order, so the result does not depend on which worker finished first.

    Check mode is the gateway's: on a dry run's (docker/dry_run.py) the same calls are made, and
    none reaches the engine or the host's files."""

    def __init__(self, engine, name, resources, connections, base_dir=None,
                 parallel=DEFAULT_PARALLEL, progress=None, plan=None):
        self.plan = plan or Plan(name, resources, connections, base_dir=base_dir)
        self.declaration = (resources, connections)
        self.name = name
        self.parallel = max(1, parallel or 1)
        self.progress = progress          # a function taking one line, or None
        self._lines = queue.Queue()       # progress lines from the workers, printed by the caller's thread
        self.base_dir = self.plan.base_dir
        self.order = self.plan.order
        self.by_name = self.plan.by_name
        self.connections = self.plan.connections
        self.specs = self.plan.specs
        self._on(engine)
        # What was done: the shared steps, then per resource (filled by its worker).
        self._entries = {None: []}
        self._diffs = {None: []}
        self._checks = {}
        for resource in self.order:
            self._entries[resource], self._diffs[resource], self._checks[resource] = [], [], []
        self.check_reports = None
        self.warnings = []             # what a connection's step says the user should know (no rehearsal...)
        # Containers whose files (TLS) got new content: a running one restarts to read them.
        self.restart_if_running = set()
        # Each connection's result, begun by its prepare step and completed by its converge step.
        self.results = {}
        self._awaited = set()          # containers another one connects to: ready before it starts
        self._awaited_at_end = []     # (resource, container, timeout, just started, when): waited for after the workers
        self.waits = True              # False while verified converges: it learns the checks, readiness is theirs

    def _on(self, engine):
        """Converge through `engine`, the connections' context over it."""
        self.engine = engine
        self.ctx = ConnectionContext(engine, self.name, declared=self.specs, base_dir=self.base_dir)
        self.ctx.replicated = self.plan.replicated

    @property
    def entries(self):
        return self._entries[None] + [e for name in self.order for e in self._entries[name]]

    @property
    def diffs(self):
        return self._diffs[None] + [d for name in self.order for d in self._diffs[name]]

    @property
    def checks(self):
        return [c for name in self.order for c in self._checks[name]]

    def _record(self, kind, name, changed, actions, reasons=None, before=None, after=None, resource=None):
        """What was done to one object; `resource` files it under the resource whose worker did it."""
        self._entries[resource].append({"kind": kind, "name": name, "changed": changed, "actions": list(actions),
                                        "reasons": list(reasons or [])})
        if changed and (before or after):
            self._diffs[resource].append({"before_header": "%s %s" % (kind, name),
                                          "after_header": "%s %s" % (kind, name),
                                          "before": before or {}, "after": after or {}})

    # -- present ----------------------------------------------------------------

    def present(self, verify=False):
        """Converge the stack; with `verify`, run every check right after, in the same pass."""
        preflight = Preflight(self.engine, self.plan)
        preflight.run()
        self._entries[None].extend(preflight.built)   # the images it built
        self._shared()
        self._converge_containers()
        if verify:
            # The checks overlap the last waits (containers nothing waits for, settling): one that
            # does not become ready is the error reported, before any check that failed because of it.
            with ThreadPoolExecutor(max_workers=1) as side:
                rest = side.submit(self._await_the_rest)
                self.check_reports = run_checks(self.engine, self.checks, retries_for=VERIFY_GRACE_SECONDS,
                                                parallel=self.parallel)
                errors = rest.result()
        else:
            errors = self._await_the_rest()
        self.flush_progress()
        if errors:
            self._raise_failed(errors, [])
        return self.report()

    def _await_the_rest(self):
        """Wait until every container is ready and those just started have kept running for
        SETTLE_SECONDS, one after the other (they all got there meanwhile, so this takes as
        long as the slowest); their errors by name."""
        names = [n for n in self.order if n in self.specs]
        errors = {}
        for name, container, timeout, just_started, since in sorted(
                self._awaited_at_end, key=lambda entry: (names.index(entry[0]), entry[1])):
            error = step_error(name, self._wait_ready, container, timeout, just_started, since)
            if error and name not in errors:
                errors[name] = error
        return errors

    def _raise_failed(self, errors, left):
        raise ClockworkError(failure_report(self.name, self.order, errors, left))

    def _converge_containers(self):
        """Each container as soon as every container it connects to is converged and ready,
        at most `parallel` at once (scheduler.run_ordered, as on Swarm). After a failure nothing
        new starts; what runs finishes, and every failure is reported. What is left to wait for
        goes to `_await_the_rest`."""
        names = [n for n in self.order if n in self.specs]
        needs = dict((n, set(c["to_resource"] for c in self.connections
                             if c["from_resource"] == n and c["to_resource"] in self.specs)) for n in names)
        self._awaited = set().union(*needs.values()) if needs else set()
        errors, left = run_ordered(names, needs, lambda name: step_error(name, self._converge_container, name),
                                   self.parallel, tick=lambda _done: self.flush_progress())
        self.flush_progress()
        if errors:
            self._raise_failed(errors, left)

    def say(self, line, verbosity=0):
        """A progress line; verbosity 1 lines (nothing to do) show with -v."""
        self._lines.put((line, verbosity))

    def flush_progress(self):
        while True:
            try:
                line, verbosity = self._lines.get_nowait()
            except queue.Empty:
                return
            if self.progress:
                self.progress(line, verbosity)

    def _shared(self):
        """What containers need before any of them is created: networks, volumes, files, TLS."""
        for planned in self.plan.networks:
            if planned["by"] != "stack":
                continue   # made by its connection's prepare, below
            result = ConnectionResult("network", self.name, planned["name"])
            if self.ctx.first_time(("network", planned["name"])):
                NetworkConverger(self.ctx).ensure(planned["name"], planned["settings"], result)
            self._record("network", planned["name"], result.changed, result.actions)
        for resource in self.plan.resources:
            if resource["type"] == "file":
                self._converge_file(resource)
            elif resource["type"] == "volume":
                result = ConnectionResult("volume", resource["name"], resource["name"])
                volume = resource.get("volume_name") or resource["name"]
                ensure_volume(self.ctx, volume, resource["driver"], True, result)
                self._record("volume", volume, result.changed, result.actions)
        for connection in self.connections:
            kind = CONNECTION_TYPES[connection["type"]]
            result = self.results[connection["label"]] = kind.new_result(connection)
            follow_up = kind.prepare(self.ctx, connection, result) or {}
            self.restart_if_running.update(follow_up.get("restart") or [])

    def write_diagram(self, path):
        result = ConnectionResult("diagram", self.name, self.name)
        write_file(self.plan.host_path(path), diagram_document(self.name, *self.declaration), "0644", None,
                   self.engine.files, result)
        self._record("diagram", self.plan.host_path(path), result.changed, result.actions)

    def _converge_file(self, resource):
        result = ConnectionResult("file", resource["name"], resource["name"])
        path = self.plan.host_path(resource["path"])
        if resource.get("content") is not None:
            if self.ctx.first_time(("file", path)):
                write_file(path, resource["content"], resource.get("mode"), resource.get("owner"),
                           self.engine.files, result)
        elif not os.path.exists(path):
            raise ClockworkError("resource %s: path: %s does not exist on the Docker host" % (resource["name"], path))
        self._record("file", resource["name"], result.changed, result.actions, before=result.before,
                     after=result.after)

    def _converge_container(self, name):
        spec = self.specs[name]
        outgoing = connection_steps(self.ctx, self.connections, self.results, name, spec)
        for result in outgoing:
            self._checks[name].extend(expand_checks(result.contribution.checks, self.plan.replicated))
            self.warnings.extend(w for w in result.extra.get("warnings") or [] if w not in self.warnings)
            self._record("connection", result.name, result.changed, result.actions,
                         before=result.before, after=result.after, resource=name)
        env, mounts, networks, secret_env = merged_contributions(name, spec, outgoing)
        spec.env, spec.mounts, spec.networks = env, mounts, networks
        spec.secret_env = set(secret_env)
        wait_ready, spec.wait = spec.wait, False
        # Its containers (one, or its replicas one after the other: an update rolls).
        outcomes = ReplicaConverger(self.engine).converge(
            spec, name, len(self.plan.containers_of(name)))
        reasons = ["for its new certificate"] if name in self.restart_if_running else []
        reasons += sorted(set(r.contribution.restart for r in outgoing if r.contribution.restart))
        for number, (container, outcome) in enumerate(outcomes, 1):
            restart_to_read(self.engine, container, outcome, reasons, spec.state)
            if number < len(outcomes) and outcome["changed"] and outcome["actions"][-1].startswith("restart ") \
                    and self.waits:
                self._wait_ready(container, spec.timeout, True)   # replicas restart one after the other
            self._record("container", container, outcome["changed"], outcome["actions"], outcome["reasons"],
                         outcome["diff"]["before"], outcome["diff"]["after"], resource=name)
            self.say("%s: %s%s" % (container, ", ".join(outcome["actions"]) if outcome["changed"] else "unchanged",
                                   " (%s)" % ", ".join(outcome["reasons"]) if outcome["reasons"] else ""),
                     verbosity=0 if outcome["changed"] else 1)
        if wait_ready and spec.state == "started" and self.waits:
            started = self.engine.monotonic()
            for container, outcome in outcomes:
                if outcome["container"].get("state") == "absent":
                    continue   # a replica scaled away
                if name in self._awaited:
                    # What connects to it starts once it runs (is healthy, with a healthcheck), as with
                    # Compose's conditions; that it keeps running is settled with the rest at the end.
                    self._wait_ready(container, spec.timeout, False)
                if name not in self._awaited or outcome["changed"]:
                    # The rest of the waiting (a container that nothing waits for, the settling of one
                    # just started) is done at the end, for all at once: this worker moves on.
                    self._awaited_at_end.append((name, container, spec.timeout, outcome["changed"], started))

    def _wait_ready(self, name, timeout, just_started, since=None):
        attrs = self.engine.container(name)
        condition = "healthy" if has_healthcheck(attrs) else "started"
        if condition == "healthy" and (attrs.get("State") or {}).get("Health", {}).get("Status") != "healthy":
            self.say("%s: waiting until healthy" % name)
        wait_for(self.engine, name, condition, timeout, just_started=just_started, who="container %s" % name,
                 since=since)

    # -- absent ------------------------------------------------------------------

    def absent(self, purge=False):
        """Remove, in reverse order, what carries this stack's label; volumes only with purge."""
        # A link where the password files' directory or the record of kept volumes is expected is
        # refused before the first change.
        secrets = secrets_to_remove(self.name)
        record, recorded = self._kept_anonymous()
        engine = self.engine
        label = {"label": "%s=%s" % (STACK_LABEL, self.name)}
        labelled = dict((c["Names"][0].lstrip("/"), c) for c in engine.containers(all=True, filters=label))
        # In reverse order of their resources (replicas included); what the plan no longer names last.
        rank = dict((resource, index) for index, resource in enumerate(reversed(self.order)))
        removal = sorted(labelled, key=lambda n: (rank.get((labelled[n].get("Labels") or {}).get(RESOURCE_LABEL),
                                                           len(rank)), n))
        # Anonymous volumes the containers carried over recreations are bound by name, so
        # removing a container does not remove them: they hold data, and go only with purge.
        # Those an earlier destroy kept are found in its record: they carry no label.
        mounted = set(m["Name"] for c in labelled.values() for m in c.get("Mounts") or []
                      if m.get("Type") == "volume" and ANONYMOUS_VOLUME.match(m.get("Name") or ""))
        anonymous = sorted(mounted | set(recorded))
        for name in removal:
            container = labelled[name]
            running = container.get("State") in ("running", "restarting")
            self._record("container", name, True, ["stop", "remove"] if running else ["remove"])
            # Stopped with its grace period first, as `docker compose down` does: a database
            # flushes and closes its files rather than being killed.
            spec = self.specs.get((container.get("Labels") or {}).get(RESOURCE_LABEL))
            grace = spec.stop_grace if spec else DEFAULT_GRACE_SECONDS
            remove_gracefully(self.engine, name, container["Id"], grace, networks=False)
        if secrets:
            # Copies of passwords the declaration holds, for the containers just removed.
            self._record("password files", secrets, True, ["remove"])
            engine.files.remove_tree(secrets)
        # One the declaration names external is never removed, even one the stack made before (its label).
        external = set(n["name"] for n in self.plan.networks if n.get("settings") is None) | \
            set(v["name"] for v in getattr(self.plan, "volumes", []) if v.get("driver", "") is None)
        for net in engine.networks(filters=label):
            if net["Name"] in external:
                self._record("network", net["Name"], False, ["external, kept"])
                continue
            self._record("network", net["Name"], True, ["remove"])
            engine.remove_network(net["Id"])
        volumes = engine.volumes(filters=label)
        for volume in volumes:
            if volume["Name"] in external:
                self._record("volume", volume["Name"], False, ["external, kept"])
            elif purge:
                self._record("volume", volume["Name"], True, ["remove"])
                engine.remove_volume(volume["Name"])
            else:
                self._record("volume", volume["Name"], False, ["kept (purge to remove)"])
        kept = []
        for volume in anonymous:
            if not purge:
                self._record("volume", volume[:12], False, ["anonymous, kept (purge to remove)"])
                kept.append(volume)
            elif not self._remove_anonymous(volume, volume in mounted):
                kept.append(volume)
        self._record_kept(record, kept)
        return self.report()

    # Where a destroy records the anonymous volumes it kept, under the stack's home on the Docker
    # host: they carry no label, and once their containers are gone nothing else leads to them.
    KEPT_RECORD = ("kept-volumes", "anonymous.json")

    def _kept_path(self):
        return os.path.join(stack_home(self.name), *self.KEPT_RECORD)

    def _kept_anonymous(self):
        """(the record, None when there is none; the anonymous volumes in it that are still there
        and no other stack's). Only names of 64 hex digits are taken from it: it is data."""
        path = self._kept_path()
        data = self.engine.files.read_private(path)
        if data is None:
            return None, []
        try:
            names = json.loads(data.decode("utf-8"))["anonymous"]
        except (ValueError, KeyError, TypeError):
            raise ClockworkError("%s is not the record of the volumes a destroy of stack %s kept (JSON with a list "
                                 "`anonymous`): remove it and run again" % (path, self.name))
        if not isinstance(names, list):
            names = []
        names = [n for n in names if isinstance(n, str) and ANONYMOUS_VOLUME.match(n)]
        found = []
        for name in names:
            attrs = self.engine.volume(name)
            if attrs is not None and (attrs.get("Labels") or {}).get(STACK_LABEL) in (None, self.name):
                found.append(name)
        return names, found

    def _remove_anonymous(self, volume, mounted):
        """Purge one anonymous volume; one an earlier destroy kept that a container outside the
        stack uses now stays (False), said so."""
        try:
            self.engine.remove_volume(volume)
        except APIError as exc:
            if mounted or status_of(exc) != CONFLICT:
                raise
            self._record("volume", volume[:12], False, ["anonymous, kept: in use by a container outside the stack"])
            return False
        self._record("volume", volume[:12], True, ["remove anonymous volume"])
        return True

    def _record_kept(self, record, kept):
        """The record of the anonymous volumes kept, written when it changes; gone once none is."""
        path = self._kept_path()
        if kept and sorted(set(record or [])) != sorted(kept):
            self.engine.files.write_private(path, json.dumps({"anonymous": sorted(kept)}).encode("utf-8"), 0o600)
        elif not kept and record is not None:
            self.engine.files.remove_tree(os.path.dirname(path))

    def repair(self):
        """Under the lock, before anything reads networks by name: the duplicates concurrent runs made, merged."""
        merged = NetworkConverger(self.ctx).repair_stack()
        if merged:
            self._record("network", "duplicates", True, merged)

    def run_checks(self):
        """Every check against the containers as they run now, with the grace of a deploy."""
        return run_checks(self.engine, self.checks, retries_for=VERIFY_GRACE_SECONDS, parallel=self.parallel)

    # -- back to a release (issue 35: apply/docker_rollback.py) ------------------------

    def _back(self, release, declared=True):
        specs = self.specs if declared else {}
        return ContainersBack(self.engine, self.name, release, order=self.order if declared else None,
                              declared=dict((n, s.update_order) for n, s in specs.items()),
                              timeouts=dict((n, s.timeout) for n, s in specs.items()), say=self.say)

    def _went_back(self, done):
        """Each container's return recorded; what went back, in words."""
        for name, action, reasons, before, after in done:
            self._record("container", name, True, [action], reasons, before, after)
        return ["%s %s" % (action, name) for name, action, _reasons, _before, _after in done]

    def return_to(self, release):
        """After a failed present: each container back on `release`, what it lacked taken out."""
        back = self._back(release)
        try:
            # What a replacement that failed and could not put itself back left aside, restored first.
            repairs = back.repair()
            if repairs:
                self._record("container", "leftovers", True, repairs)
            return repairs + self._went_back(back.run(back.steps()))
        finally:
            self.flush_progress()

    def rolled_back(self, release, restore_data=False):
        """state rolled_back: each container of the stack on `release`'s record, start-first where
        it may; those the release did not have taken out. What an interrupted rollback left is
        completed first."""
        restoring = restores(self.engine, self.name, release, self.connections) if restore_data else []
        refuse_pruned_snapshots(self.engine, self.name, restoring)
        if restoring:
            from ansible_collections.clockwork.connections.plugins.module_utils.database.restore import (  # pylint: disable=import-outside-toplevel
                restore_connection)
        back = self._back(release, declared=False)
        repairs = back.repair()
        if repairs:
            self._record("container", "leftovers", True, repairs)
        for name, changed, actions in networks_back(self.ctx, release):
            self._record("network", name, changed, actions)
        steps = back.steps()
        restored, stopped = [], self._stop_clients(restoring)
        try:
            for label, connection, snapshot, later in restoring:
                result = restore_connection(self.engine, self.name, connection, snapshot)
                self._record("database", label, result.changed, result.actions)
                restored.append(dict(result.extra.get("restore") or {}, database=label, release=later))
            done = back.run(steps)
            self._went_back(done)
            remade = set(name for name, _action, _reasons, _before, _after in done)
            for name in stopped:
                if name not in remade and name in back.records and back.records[name]["state"] == "running":
                    self.engine.start(name)
                    back._await(name)   # pylint: disable=protected-access
                    self._record("container", name, True, ["start"], ["its database is restored"])
        finally:
            self.flush_progress()
        report = self.report()
        report.update(order=list(release.get("order") or []), checks=list(release.get("checks") or []))
        if restore_data:
            report["restored"] = restored
        return report

    def _stop_clients(self, restoring):
        """The running containers of the restored databases' clients, stopped with their grace period
        (nothing writes to a database while it is restored); their names."""
        clients = dict((c["from_resource"], label) for label, c, _snapshot, _later in restoring)
        stopped = []
        for name, attrs in sorted(stack_containers(self.engine, self.name).items()):
            resource = ((attrs.get("Config") or {}).get("Labels") or {}).get(RESOURCE_LABEL)
            if resource in clients and (attrs.get("State") or {}).get("Running"):
                self._record("container", name, True, ["stop"], ["client of %s, whose data is restored"
                                                                 % clients[resource]])
                self.engine.stop(name, timeout=grace_of(container_record(attrs)))
                stopped.append(name)
        return stopped

    # -- verified -----------------------------------------------------------------

    def verified(self):
        """Run every connection's checks against the stack as it runs; change nothing: the stack
        converges on a dry run (of its own; in check mode the run's, which the gateway given is
        already), so the checks are the converged ones, and they run through the gateway given
        (in check mode, one about a container the dry run would make or change is not run)."""
        engine = self.engine
        self._on(dry_run_of(engine))
        # Nothing is waited for: a container that is not ready is what the checks report.
        self.waits = False
        try:
            self.present()
        finally:
            self._on(engine)
            self.waits = True
        return run_checks(engine, self.checks, parallel=self.parallel)

    def report(self):
        report = {"changed": any(e["changed"] for e in self.entries), "order": self.order,
                  "entries": self.entries, "checks": self.checks, "plan": self.plan.as_dict()}
        if self.warnings:
            report["warnings"] = list(self.warnings)
        return report
