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

import os
import queue
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.clockwork.connections.plugins.module_utils.apply.applier import (
    DEFAULT_PARALLEL, VERIFY_GRACE_SECONDS, Applier, connection_steps, merged_contributions)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.checks import run_checks
from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    RESOURCE_LABEL, STACK_LABEL, ClockworkError)
from ansible_collections.clockwork.connections.plugins.module_utils.connection import (
    ConnectionContext, ConnectionResult)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import ANONYMOUS_VOLUME, restart_to_read
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_wait import has_healthcheck, wait_for
from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import NetworkConverger
from ansible_collections.clockwork.connections.plugins.module_utils.apply.volumes import ensure_volume
from ansible_collections.clockwork.connections.plugins.module_utils.graph import diagram_document
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import secrets_to_remove, write_file
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.module_utils.apply.preflight import Preflight
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES
from ansible_collections.clockwork.connections.plugins.module_utils.apply.replicas import ReplicaConverger, expand_checks
from ansible_collections.clockwork.connections.plugins.module_utils.apply.rolling import DEFAULT_GRACE_SECONDS, remove_gracefully
from ansible_collections.clockwork.connections.plugins.module_utils.apply.scheduler import failure_report, run_ordered, step_error



class DockerApplier(Applier):
    """Applies a plan. Containers converge in parallel, each as soon as what it connects to is
    ready; what is recorded (entries, diffs, checks) is kept per resource and reported in the
    plan's order, so the result does not depend on which worker finished first."""

    def __init__(self, engine, name, resources, connections, check_mode=False, base_dir=None,
                 parallel=DEFAULT_PARALLEL, progress=None, plan=None):
        self.plan = plan or Plan(name, resources, connections, base_dir=base_dir)
        self.declaration = (resources, connections)
        self.engine = engine
        self.name = name
        self.check_mode = check_mode
        self.parallel = max(1, parallel or 1)
        self.progress = progress          # a function taking one line, or None
        self._lines = queue.Queue()       # progress lines from the workers, printed by the caller's thread
        self.base_dir = self.plan.base_dir
        self.order = self.plan.order
        self.by_name = self.plan.by_name
        self.connections = self.plan.connections
        self.specs = self.plan.specs
        self.ctx = ConnectionContext(engine, name, check_mode, declared=self.specs, base_dir=self.base_dir)
        self.ctx.replicated = self.plan.replicated
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
        Preflight(self.engine, self.plan, self.check_mode).run()
        self._shared()
        self._converge_containers()
        if verify:
            # The checks overlap the last waits (containers nothing waits for, settling): one that
            # does not become ready is the error reported, before any check that failed because of it.
            with ThreadPoolExecutor(max_workers=1) as side:
                rest = side.submit(self._await_the_rest)
                self.check_reports = run_checks(self.engine, self.checks, check_mode=self.check_mode,
                                                retries_for=0 if self.check_mode else VERIFY_GRACE_SECONDS,
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
                   self.check_mode, result)
        self._record("diagram", self.plan.host_path(path), result.changed, result.actions)

    def _converge_file(self, resource):
        result = ConnectionResult("file", resource["name"], resource["name"])
        path = self.plan.host_path(resource["path"])
        if resource.get("content") is not None:
            if self.ctx.first_time(("file", path)):
                write_file(path, resource["content"], resource.get("mode"), resource.get("owner"),
                           self.check_mode, result)
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
        outcomes = ReplicaConverger(self.engine, self.check_mode).converge(
            spec, name, len(self.plan.containers_of(name)))
        reasons = ["for its new certificate"] if name in self.restart_if_running else []
        reasons += sorted(set(r.contribution.restart for r in outgoing if r.contribution.restart))
        for number, (container, outcome) in enumerate(outcomes, 1):
            restart_to_read(self.engine, container, outcome, reasons, spec.state, self.check_mode)
            if number < len(outcomes) and outcome["changed"] and outcome["actions"][-1].startswith("restart ") \
                    and not self.check_mode:
                self._wait_ready(container, spec.timeout, True)   # replicas restart one after the other
            self._record("container", container, outcome["changed"], outcome["actions"], outcome["reasons"],
                         outcome["diff"]["before"], outcome["diff"]["after"], resource=name)
            self.say("%s: %s%s" % (container, ", ".join(outcome["actions"]) if outcome["changed"] else "unchanged",
                                   " (%s)" % ", ".join(outcome["reasons"]) if outcome["reasons"] else ""),
                     verbosity=0 if outcome["changed"] else 1)
        if wait_ready and spec.state == "started" and not self.check_mode:
            started = time.monotonic()
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
        # A link where the password files' directory is expected is refused before the first change.
        secrets = secrets_to_remove(self.name)
        engine = self.engine
        label = {"label": "%s=%s" % (STACK_LABEL, self.name)}
        labelled = dict((c["Names"][0].lstrip("/"), c) for c in engine.containers(all=True, filters=label))
        # In reverse order of their resources (replicas included); what the plan no longer names last.
        rank = dict((resource, index) for index, resource in enumerate(reversed(self.order)))
        removal = sorted(labelled, key=lambda n: (rank.get((labelled[n].get("Labels") or {}).get(RESOURCE_LABEL),
                                                           len(rank)), n))
        # Anonymous volumes the containers carried over recreations are bound by name, so
        # removing a container does not remove them: they hold data, and go only with purge.
        anonymous = sorted(set(m["Name"] for c in labelled.values() for m in c.get("Mounts") or []
                               if m.get("Type") == "volume" and ANONYMOUS_VOLUME.match(m.get("Name") or "")))
        for name in removal:
            container = labelled[name]
            running = container.get("State") in ("running", "restarting")
            self._record("container", name, True, ["stop", "remove"] if running else ["remove"])
            if not self.check_mode:
                # Stopped with its grace period first, as `docker compose down` does: a database
                # flushes and closes its files rather than being killed.
                spec = self.specs.get((container.get("Labels") or {}).get(RESOURCE_LABEL))
                grace = spec.stop_grace if spec else DEFAULT_GRACE_SECONDS
                remove_gracefully(self.engine, name, container["Id"], grace, networks=False)
        if secrets:
            # Copies of passwords the declaration holds, for the containers just removed.
            self._record("password files", secrets, True, ["remove"])
            if not self.check_mode:
                shutil.rmtree(secrets)
        for net in engine.networks(filters=label):
            self._record("network", net["Name"], True, ["remove"])
            if not self.check_mode:
                engine.remove_network(net["Id"])
        volumes = engine.volumes(filters=label)
        for volume in volumes:
            if purge:
                self._record("volume", volume["Name"], True, ["remove"])
                if not self.check_mode:
                    engine.remove_volume(volume["Name"])
            else:
                self._record("volume", volume["Name"], False, ["kept (purge to remove)"])
        for volume in anonymous:
            if not purge:
                self._record("volume", volume[:12], False, ["anonymous, kept (purge to remove)"])
                continue
            self._record("volume", volume[:12], True, ["remove anonymous volume"])
            if not self.check_mode:
                engine.remove_volume(volume)
        return self.report()

    def repair(self):
        """Under the lock, before anything reads networks by name: the duplicates concurrent runs made, merged."""
        merged = NetworkConverger(self.ctx).repair_stack()
        if merged:
            self._record("network", "duplicates", True, merged)

    # -- verified -----------------------------------------------------------------

    def verified(self, dry_run=False):
        """Run every connection's checks against the running stack; change nothing.

        In a dry run (Ansible's check mode) checks of containers that do not exist are not run."""
        self.present()   # in check mode: builds every check, touches nothing
        return run_checks(self.engine, self.checks, check_mode=dry_run, parallel=self.parallel)

    def report(self):
        report = {"changed": any(e["changed"] for e in self.entries), "order": self.order,
                  "entries": self.entries, "checks": self.checks, "plan": self.plan.as_dict()}
        if self.warnings:
            report["warnings"] = list(self.warnings)
        return report
