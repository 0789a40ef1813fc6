# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `swarm` engine: the same plan (plan.py), applied as Swarm services across the nodes.

Each container resource is a service named after it, on the stack's attachable overlay
network `<stack>_default` (and the named ones of network connections), so `<X>_HOST` and
every URL name a service. Swarm has no ordering: services converge in parallel (at most
`parallel`, scheduler.py), each as soon as what it connects to has converged (its tasks running,
healthy when they have a healthcheck; a one-shot job completed); results stay in plan order. The connection types' own steps run as on the single
engine, against the tasks (apply/swarm/tasks.py SwarmView): readiness waits, schema and migrations
from here, once, before the dependents start; checks from inside a task.

What differs from the single engine, and why:
- secrets never sit in a service spec: a secret env value becomes a Docker secret and the
  service gets `<NAME>_FILE` (`POSTGRES_PASSWORD_FILE`, `DATABASE_URL_FILE`), unless the
  resource lists the name in `plain_env`, with a warning;
- files become configs (private ones, like TLS keys, secrets), named by content, so new content
  rolls the tasks and the old object goes once unused; a bind of a directory stays a bind;
- volumes are node-local: services sharing one are placed on one node;
- an update lays what we manage over the service as it is (never `force_update`) and waits
  for it, bounded; a failed one reports its tasks as `docker service ps --no-trunc` would.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import threading

from ansible_collections.clockwork.connections.plugins.module_utils.apply.applier import (
    DEFAULT_PARALLEL, VERIFY_GRACE_SECONDS, Applier, apply_state, connection_steps, dry_run_of, merged_contributions)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.checks import run_checks
from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    STACK_LABEL, ClockworkError, Problems, owned_by, owner_labels)
from ansible_collections.clockwork.connections.plugins.module_utils.connection import (
    ConnectionContext, ConnectionResult)
from ansible_collections.clockwork.connections.plugins.module_utils.differences import masked_diff
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    CONFLICT, engine_words, status_of)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError, NotFound
from ansible_collections.clockwork.connections.plugins.module_utils.apply.networks import (
    actual_settings, ipam_config, settings_drift)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.volumes import ensure_volume
from ansible_collections.clockwork.connections.plugins.module_utils.graph import diagram_document
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import write_file
from ansible_collections.clockwork.connections.plugins.module_utils.plan import Plan
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES
from ansible_collections.clockwork.connections.plugins.module_utils.apply.scheduler import (
    failure_report, run_ordered, step_error)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.preflight import SwarmPreflight
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.rollback import (
    return_after_failure, roll_back)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.secrets import (
    SwarmObjects, unused_objects)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.services import (
    changes, file_env, managed_part, secret_env_names, service_body, service_problems,
    wanted_service)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.tasks import (
    SwarmSnapshot, SwarmView, convergence, ipvs_available, retry_while_in_use, wait_converged, wait_tasks_gone)


class SwarmApplier(Applier):
    """Applies a plan as Swarm services; the report has the shape of the docker engine's."""

    def __init__(self, engine, params, progress=None, plan=None):
        self.name = params["name"]
        # The plan the controller built, else (the module on a remote host) built here.
        self.plan = plan or Plan(self.name, params["resources"], params["connections"],
                                 base_dir=params.get("base_dir"), engine="swarm")
        self.declaration = (params["resources"], params["connections"])
        self.engine = engine
        self.progress = progress
        self.parallel = max(1, params.get("parallel") or DEFAULT_PARALLEL)
        self.order = self.plan.order
        self.specs = self.plan.specs
        self.connections = self.plan.connections
        self.entries, self.diffs, self.checks, self.warnings = [], [], [], []
        self.results = {}
        self.check_reports = None
        self._static_problems()
        self.local_node = self._manager_node()
        self._lock = threading.Lock()
        self._on(engine)
        self.object_ids = {}
        self.image_ids = {}
        self.placement = {}
        # A service that a dependency waits to complete runs once, as a replicated job.
        self.jobs = set(c["to_resource"] for c in self.connections
                        if CONNECTION_TYPES[c["type"]].waits_for_completion(c) and c["to_resource"] in self.specs)
        self.default_endpoint_mode = "vip"
        # Services converge in worker threads (_services): each records into its own bucket.
        self._local = threading.local()
        self._buckets = {}

    def _on(self, engine):
        """Converge through `engine`: the view of the services, the connections' context, the
        secrets and configs."""
        self.engine = engine
        self.view = SwarmView(engine, self.name, self.local_node, self.specs)
        self.ctx = ConnectionContext(self.view, self.name, declared=self.specs, base_dir=self.plan.base_dir)
        self.objects = SwarmObjects(engine, self.name)
        self.snapshot = SwarmSnapshot(engine)
        # Two services' connections to one network must not both take it as theirs to make.
        first_time = self.ctx.first_time

        def first_time_locked(key):
            with self._lock:
                return first_time(key)
        self.ctx.first_time = first_time_locked

    # -- what is known before the engine is asked anything -----------------------------

    def _static_problems(self):
        problems = Problems()
        for name in self.order:
            resource = self.plan.by_name[name]
            if resource["type"] == "container":
                problems.extend("resource %s" % name, ("%s: %s" % p for p in service_problems(resource)))
        for connection in self.connections:
            problems.extend(connection["label"], ("%s: %s" % p for p in
                                                  CONNECTION_TYPES[connection["type"]].swarm_problems(connection)))
        problems.raise_if_any("invalid stack %s for Swarm" % self.name)

    def _manager_node(self):
        try:
            swarm = self.engine.info().get("Swarm") or {}
        except APIError as exc:
            raise ClockworkError("cannot ask the Docker engine about its swarm: %s" % engine_words(exc))
        if swarm.get("LocalNodeState") != "active":
            raise ClockworkError("stack %s: engine swarm needs a Swarm manager, and this Docker engine is not in a "
                                 "swarm (state %s): `docker swarm init` makes it one, or use engine docker"
                                 % (self.name, swarm.get("LocalNodeState") or "inactive"))
        if not swarm.get("ControlAvailable"):
            raise ClockworkError("stack %s: this Docker engine is a Swarm worker; services are made on a manager: "
                                 "point the module at one" % self.name)
        return swarm["NodeID"]

    # -- bookkeeping -------------------------------------------------------------------

    def _record(self, kind, name, changed, actions, reasons=None, before=None, after=None):
        bucket = self._bucket() or {"entries": self.entries, "diffs": self.diffs}
        bucket["entries"].append({"kind": kind, "name": name, "changed": changed, "actions": list(actions),
                                  "reasons": list(reasons or [])})
        if changed and (before or after):
            bucket["diffs"].append({"before_header": "%s %s" % (kind, name), "after_header": "%s %s" % (kind, name),
                                    "before": before or {}, "after": after or {}})

    def say(self, line, verbosity=0):
        bucket = self._bucket()
        if bucket is not None:
            bucket["lines"].append((line, verbosity))
        elif self.progress:
            self.progress(line, verbosity)

    def warn(self, message):
        if message not in self.warnings:
            self.warnings.append(message)

    # -- present -----------------------------------------------------------------------

    def present(self, verify=False):
        preflight = SwarmPreflight(self)
        preflight.run()
        self.entries.extend(preflight.built)   # the images it built
        self.view.known_services(preflight.services.values())
        self._endpoint_default()
        self._networks()
        self._volumes()
        self._tls()
        self._services()
        if verify:
            self.check_reports = self.run_checks()
        self._collect_garbage()
        return self.report()

    def _services(self):
        """Each service as soon as those it connects to have converged (waits included), at most
        `parallel` at once; entries, diffs, checks and progress kept per service and given in plan
        order, whatever the order they finish in."""
        names = [n for n in self.order if n in self.specs]
        needs = dict((n, set(c["to_resource"] for c in self.connections if c["from_resource"] == n)) for n in names)
        self._buckets = dict((n, {"entries": [], "diffs": [], "checks": [], "lines": [], "over": False})
                             for n in names)
        self._shown = 0
        try:
            errors, left = run_ordered(names, needs, self._service_worker, self.parallel, tick=self._flush)
        finally:
            self._flush(None, every=True)
            for name in names:
                bucket = self._buckets[name]
                self.entries.extend(bucket["entries"])
                self.diffs.extend(bucket["diffs"])
                self.checks.extend(bucket["checks"])
            self._buckets = {}
        if errors:
            raise ClockworkError(failure_report(self.name, names, errors, left))

    def _service_worker(self, name):
        """One worker's job: a service and its wait; an error message or None."""
        self._local.name = name
        try:
            return step_error(name, self._service, name)
        finally:
            self._buckets[name]["over"] = True
            self._local.name = None

    def _flush(self, _done, every=False):
        """Progress of the services in plan order: a service's lines once every one before it is over."""
        names = [n for n in self.order if n in self._buckets]
        with self._lock:
            while self._shown < len(names):
                bucket = self._buckets[names[self._shown]]
                if not (bucket["over"] or every):
                    return
                lines, bucket["lines"] = bucket["lines"], []
                for line, verbosity in lines if self.progress else []:
                    self.progress(line, verbosity)
                self._shown += 1

    def _bucket(self):
        """The current service's own lists when called from a worker, else None."""
        return self._buckets.get(getattr(self._local, "name", None))

    def _endpoint_default(self):
        if any(self.plan.by_name[n].get("endpoint_mode") is None for n in self.specs) \
                and self.engine.is_local and not ipvs_available():
            self.default_endpoint_mode = "dnsrr"
            self.warn("this Docker host's kernel has no IPVS, so a service's virtual IP (and the ingress routing mesh) "
                      "would not answer: services without endpoint_mode use dnsrr, with host-mode published ports")

    def _networks(self):
        """The stack's attachable overlay networks: `<stack>_default` and the named ones."""
        for planned in self.plan.networks:
            name, settings = planned["name"], planned["settings"]
            if self.engine.network(name) is not None:
                self._record("network", name, False, [])
                continue
            self._record("network", name, True, ["create overlay network %s" % name], after={
                "network": name, "settings": dict(settings, driver="overlay", attachable=True)})
            try:
                self.engine.create_network(name, driver="overlay", attachable=True, internal=settings["internal"],
                                           enable_ipv6=settings["enable_ipv6"], ipam=ipam_config(settings),
                                           check_duplicate=True, labels=owner_labels(self.name, name))
            except APIError as exc:
                if status_of(exc) != CONFLICT:
                    raise ClockworkError("cannot create overlay network %s: %s" % (name, engine_words(exc)))
                self._made_meanwhile(name, settings)

    def _made_meanwhile(self, name, settings):
        """A 409: a concurrent run made the network after our read: used when it is the stack's, as asked."""
        self.engine.forget("network", name)
        attrs = self.engine.network(name)
        if attrs is None or not owned_by(attrs.get("Labels"), self.name) or attrs.get("Scope") != "swarm" \
                or settings_drift(dict(settings, driver="overlay"), actual_settings(attrs)):
            raise ClockworkError("cannot create overlay network %s: another one of this name was created meanwhile, "
                                 "not by stack %s or with other settings; it is left alone" % (name, self.name))

    def _volumes(self):
        """Named volumes on this node, labelled; a node a service is placed on elsewhere makes its own."""
        refused = set(name for c in self.connections
                      for name, _driver, create in CONNECTION_TYPES[c["type"]].volumes(c) if not create)
        for volume in self.plan.volumes:
            result = ConnectionResult("volume", volume["name"], volume["name"])
            ensure_volume(self.ctx, volume["name"], volume["driver"], volume["name"] not in refused, result)
            self._record("volume", volume["name"], result.changed, result.actions)

    def _tls(self):
        for connection in self.connections:
            kind = CONNECTION_TYPES[connection["type"]]
            if kind.prepares_on_swarm:
                result = self.results[connection["label"]] = kind.new_result(connection)
                kind.prepare(self.ctx, connection, result)

    def _service(self, name):
        spec, resource = self.specs[name], self.plan.by_name[name]
        outgoing = connection_steps(self.ctx, self.connections, self.results, name, spec)
        for result in outgoing:
            (self._bucket() or {"checks": self.checks})["checks"].extend(result.contribution.checks)
            for warning in result.extra.get("warnings") or []:
                self.warn(warning)
            self._record("connection", result.name, result.changed, result.actions, before=result.before,
                         after=result.after)
        env, mounts, networks, contributed_secrets = merged_contributions(name, spec, outgoing)
        secret_names, plain = secret_env_names(env, contributed_secrets, resource.get("plain_env"))
        for env_var in plain:
            self.warn("resource %s: env %s holds a secret and is kept in the service's env (plain_env): "
                      "`docker service inspect %s` shows it" % (name, env_var, name))
        secrets = []
        for env_var in secret_names:
            variable, path = file_env(env_var)
            if variable in env:
                raise ClockworkError("resource %s: env %s is set, but Swarm delivers the secret %s as a file named "
                                     "there; drop %s, or keep %s in the env with plain_env"
                                     % (name, variable, env_var, variable, env_var))
            secrets.append((self._object("secret", name, "%s_%s" % (name, env_var), env.pop(env_var).encode("utf-8")),
                            env_var))
            env[variable] = path
        kept, configs = [], []
        for mount in mounts:
            payload, private = self._file_payload(mount) if mount["type"] == "bind" else (None, False)
            if payload is None:
                kept.append(mount)
                continue
            kind = "secret" if private else "config"
            made = self._object(kind, name, "%s_%s" % (name, os.path.basename(mount["target"])), payload)
            (secrets if private else configs).append((made, mount["target"]))
        wanted = wanted_service(spec, resource, env, kept, networks, secrets, configs, node=self.placement.get(name),
                                job=name in self.jobs,
                                endpoint_mode=resource.get("endpoint_mode") or self.default_endpoint_mode,
                                image_id=self.image_ids.get(spec.image), secret_names=secret_names)
        self._converge_service(name, spec, wanted, plain)

    def _file_payload(self, mount):
        """(content, private) of a bind-mounted file, which becomes a config (a secret when the file
        is private, like a key); (None, False) for a directory, which stays a bind."""
        source = mount["source"]
        known = self.plan.written_files()
        if known.get(source) is not None:
            return known[source].encode("utf-8"), False
        if os.path.isdir(source):
            return None, False
        if not os.path.exists(source) and self.engine.dry_run:
            # A dry run writes no file on the host (TLS material it would make): named, not read.
            return ("(%s, once written)" % source).encode("utf-8"), source.endswith(".key")
        try:
            with open(source, "rb") as handle:
                payload = handle.read()
            private = not os.stat(source).st_mode & 0o077
        except (IOError, OSError) as exc:
            raise ClockworkError("cannot read %s for a config: %s" % (source, exc))
        return payload, private

    def _object(self, kind, resource, purpose, payload):
        name, object_id, created = self.objects.ensure(kind, self.name, resource, purpose, payload)
        if object_id:
            self.object_ids[name] = object_id
        recorded = self.entries + (self._bucket() or {"entries": []})["entries"]
        if not any(e["kind"] == kind and e["name"] == name for e in recorded):
            self._record(kind, name, created, ["create"] if created else [])
        return name

    def _converge_service(self, name, spec, wanted, plain):
        existing = self.view.service(name)
        before = None
        if existing is None:
            actions, reasons = ["create"], []
        else:
            before = managed_part(existing["Spec"], wanted, self.snapshot.network_names())
            reasons = changes(wanted, before)
            actions = [] if not reasons else ["recreate"] if wanted["mode"] != before["mode"] else ["update"]
        diff = masked_diff(before, wanted, plain)
        self._record("service", name, bool(actions), actions, reasons, diff["before"], diff["after"])
        self.say("%s: %s%s" % (name, ", ".join(actions) if actions else "unchanged",
                               " (%s)" % ", ".join(reasons) if reasons else ""), verbosity=0 if actions else 1)
        service_id = self._write_service(name, wanted, existing, actions)
        if not spec.wait:
            return
        if not actions:
            state, _words = convergence(existing, self.snapshot.tasks_of(service_id))
            if state == "done":
                return
        wait_converged(self.view, service_id, name, spec.timeout, say=self.say)
        # The swarm replaced the tasks meanwhile, on its own: which one the name stands for is read anew.
        self.view.forget("container", name)

    def _write_service(self, name, wanted, existing, actions):
        """Create, update or recreate the service as `actions` say; its id. A 409 on create: a
        concurrent run made it after our read; it is read again, and updated when it is the stack's."""
        # Through the view: a service's writes make it forget which task the name stood for.
        ids, view = dict(self.object_ids), self.view
        try:
            if "recreate" in actions:
                # A replicated service cannot become a job (or back): the engine refuses to change the mode.
                view.remove_service(existing["ID"])
                wait_tasks_gone(self.engine, [existing["ID"]], name)
                existing = None
            if existing is None:
                body = service_body(name, wanted, None, ids, ids)
                return view.create_service(body["TaskTemplate"], name, labels=body["Labels"], mode=body["Mode"],
                                           update_config=body.get("UpdateConfig"),
                                           endpoint_spec=body["EndpointSpec"])["ID"]
            if actions:
                body = service_body(name, wanted, existing["Spec"], ids, ids)
                view.update_service(existing["ID"], existing["Version"]["Index"], name,
                                    task_template=body["TaskTemplate"], labels=body["Labels"], mode=body["Mode"],
                                    update_config=body.get("UpdateConfig"), endpoint_spec=body["EndpointSpec"],
                                    rollback_config=body.get("RollbackConfig"), fetch_current_spec=False)
            return existing["ID"]
        except APIError as exc:
            if existing is None and status_of(exc) == CONFLICT:
                view.forget("service", name)
                made = view.service(name)
                before = made and managed_part(made["Spec"], wanted, SwarmSnapshot(self.engine).network_names())
                if made is not None and before["mode"] == wanted["mode"]:
                    return self._write_service(name, wanted, made, ["update"] if changes(wanted, before) else [])
            raise ClockworkError("resource %s: the Swarm manager refused service %s: %s" % (
                name, "create" if existing is None else "update", engine_words(exc)))

    def _collect_garbage(self):
        """Secrets and configs of the stack that no service uses any more (a rotation's old ones),
        nor a kept release (a rollback puts them back: apply/swarm/secrets.py unused_objects)."""
        services = self.engine.services(filters={"label": "%s=%s" % (STACK_LABEL, self.name)})
        for kind, name in unused_objects(self.objects, services, self.engine, self.name):
            if self.objects.remove(kind, name):
                self._record(kind, name, True, ["remove (no longer used)"])

    def write_diagram(self, path):
        result = ConnectionResult("diagram", self.name, self.name)
        write_file(self.plan.host_path(path), diagram_document(self.name, *self.declaration), "0644", None,
                   self.engine.files, result)
        self._record("diagram", self.plan.host_path(path), result.changed, result.actions)

    # -- releases (issue 35 part 6: apply/swarm/rollback.py) ------------------------------

    def return_to(self, release):
        """After a failed present, under the lock: the stack back on `release`; the lines of what went back."""
        return return_after_failure(self, release)

    def rolled_back(self, release, restore_data=False):
        """`state: rolled_back`: every service on `release`'s recorded spec; the report."""
        return roll_back(self, release, restore_data)

    # -- absent ------------------------------------------------------------------------

    def absent(self, purge=False):
        """Remove the stack's services (reverse order), then its networks, secrets and configs;
        its volumes on this node only with purge."""
        engine = self.engine
        label = {"label": "%s=%s" % (STACK_LABEL, self.name)}
        services = dict((s["Spec"]["Name"], s) for s in engine.services(filters=label))
        removal = [n for n in reversed(self.order) if n in services] + sorted(n for n in services if n not in self.order)
        for name in removal:
            self._record("service", name, True, ["remove"])
            try:
                engine.remove_service(services[name]["ID"])
            except NotFound:
                pass
        if removal:
            wait_tasks_gone(self.engine, [services[n]["ID"] for n in removal], ", ".join(removal))
        for network in engine.networks(filters=label):
            if network.get("Scope") != "swarm":
                continue   # the docker engine's, for its own destroy
            self._record("network", network["Name"], True, ["remove"])
            retry_while_in_use(engine, lambda n=network: engine.remove_network(n["Id"]), "network", network["Name"])
        for kind in ("secret", "config"):
            for name in sorted(self.objects.owned(kind)):
                self._record(kind, name, True, ["remove"])
                retry_while_in_use(engine, lambda k=kind, n=name: self.objects.remove(k, n), kind, name)
        for volume in engine.volumes(filters=label):
            if not purge:
                self._record("volume", volume["Name"], False, ["kept (purge to remove)"])
                continue
            self._record("volume", volume["Name"], True, ["remove"])
            retry_while_in_use(engine, lambda v=volume: engine.remove_volume(v["Name"]), "volume", volume["Name"])
        return self.report()

    # -- verified (services need no repair before they converge: Applier.repair does nothing) --
    def verified(self):
        """Every connection's check from inside the tasks; changes nothing: the services converge on a
        dry run of their own (the checks are the converged ones), the checks run on the engine as it is."""
        engine = self.engine
        self._on(dry_run_of(engine))
        self.present()
        self.engine = engine
        self.view = self._fresh_view()
        return run_checks(self.view, self.checks, parallel=self.parallel)

    def run_checks(self):
        """Every check from inside the tasks as they run now, with the grace of a deploy."""
        self.view = self._fresh_view()
        return run_checks(self.view, self.checks, retries_for=VERIFY_GRACE_SECONDS, parallel=self.parallel)

    def close(self):
        self.view.close()

    def _fresh_view(self):
        """A view that reads the tasks anew (the services changed); the old one's tunnels close."""
        self.view.close()
        return SwarmView(self.engine, self.name, self.local_node, self.specs)

    def report(self):
        report = {"changed": any(e["changed"] for e in self.entries), "order": self.order, "engine": "swarm",
                  "entries": self.entries, "checks": self.checks, "plan": dict(self.plan.as_dict(), engine="swarm")}
        if self.warnings:
            report["warnings"] = list(self.warnings)
        return report


def run_swarm_stack(engine, params, diff=False, progress=None, plan=None):
    """run_stack's counterpart on Swarm; check mode is the gateway's (a dry run's: docker/dry_run.py)."""
    stack = SwarmApplier(engine, params, progress=progress, plan=plan)
    try:
        # No lock-free look first (applier.unchanged): a dry run over a manager reads the containers of
        # every network it meets (50 services: 50 inspects), more than the lock costs.
        return apply_state(stack, engine, params, diff=diff)
    finally:
        stack.close()
