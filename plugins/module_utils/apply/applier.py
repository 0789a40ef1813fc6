# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The applier interface: what applies a plan on a target. docker_applier.py's DockerApplier (the
`docker` target: containers) and swarm/applier.py's SwarmApplier (Swarm services) are its two implementations;
both share the connection steps around a resource, the ending of a run and the states."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib
import sys
import threading

from ansible_collections.clockwork.connections.plugins.module_utils.common import STACK_LABEL, ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.contribution import merge
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES

# Containers converging at once. Bounded: each worker holds an engine connection and, while a
# container becomes healthy, a polling loop; the engine, not the controller, is what is shared.
DEFAULT_PARALLEL = 16
# After a deploy, a check that fails at first is retried this long: a server that was just
# started may need a moment to accept connections, as it would in a separate verify step.
VERIFY_GRACE_SECONDS = 10


class Applier(object):
    """Applies one plan (plan.py) through one gateway (`engine`: a dry run's in check mode, which
    makes the same calls and writes nothing). An implementation sets `plan`, `name`, `engine`,
    `parallel` and `check_reports` (None, or the reports of the checks run by
    present(verify=True)), and implements:

    present(verify)   converge everything; with verify, run the checks in the same pass
    absent(purge)     remove what the stack owns, in reverse order; volumes only with purge
    verified()        the reports of every check, changing nothing
    repair()          finish what a killed or concurrent run left (set-aside containers, duplicates)
    run_checks()      the reports of every check, run now (after present(verify=False))
    close()           what it holds open, closed
    report()          {changed, order, entries, checks, plan}
    write_diagram(path)
    diffs             the before/after of every change, masked
    """

    check_reports = None

    def present(self, verify=False):
        raise NotImplementedError

    def absent(self, purge=False):
        raise NotImplementedError

    def verified(self):
        raise NotImplementedError

    def repair(self):
        """Nothing to repair by default."""

    def run_checks(self):
        """The reports of every check of the converged stack, run now (with the grace of a deploy)."""
        raise NotImplementedError

    def close(self):
        """What the applier holds open (Swarm: its node gateways), closed."""

    def report(self):
        raise NotImplementedError

    def write_diagram(self, path):
        raise NotImplementedError

    def return_to(self, release):
        """After `present` failed: every container or service this run replaced or created back on
        `release` (the stack's current release, recorded before the run), what this run added
        taken out, under the stack's lock; what went back, in words ([]: nothing had to)."""
        return []

    def rolled_back(self, release, restore_data=False):
        """state rolled_back: the stack brought to `release` (releases/rollback.py chose it and
        refused what it could before any change); the report, as present's. The release it makes
        is recorded by apply_state."""
        raise ClockworkError("stack %s: state rolled_back is not supported by this target" % self.name)


def connection_steps(ctx, connections, results, name, spec):
    """The connection steps around one resource, shared by both appliers: `before_to` of those
    that end at it (while its previous container or service still runs), then `converge` of
    those that start at it. Results are kept in `results` by label; returns the outgoing ones."""
    def result_of(connection):
        if connection["label"] not in results:
            results[connection["label"]] = CONNECTION_TYPES[connection["type"]].new_result(connection)
        return results[connection["label"]]
    for connection in connections:
        if connection["to_resource"] == name:
            CONNECTION_TYPES[connection["type"]].before_to(ctx, connection, spec, result_of(connection))
    outgoing = []
    for connection in connections:
        if connection["from_resource"] == name:
            result = result_of(connection)
            CONNECTION_TYPES[connection["type"]].converge(ctx, connection, result)
            outgoing.append(result)
    return outgoing


def merged_contributions(name, spec, outgoing):
    """(env, mounts, networks, secret env names) of the resource with its connections' contributions."""
    try:
        return merge(spec.env, spec.mounts, spec.networks, [result.contribution for result in outgoing])
    except ClockworkError as exc:
        raise ClockworkError("resource %s: %s" % (name, exc.msg))


def failed_checks_error(reports, result):
    failed = [r for r in reports if r["ok"] is False]
    if failed:
        raise ClockworkError("%d of %d checks failed: %s" % (len(failed), len(reports), "; ".join(
            "%s: %s" % (r["connection"], r["msg"]) for r in failed)), **result)


def present_report(stack, params, diff):
    """Converge (with the checks when asked) and write the diagram; the report, or a failure
    listing the failed checks. The docker and the swarm appliers end alike."""
    return checked_report(stack, converged_report(stack, params, params.get("verify")), diff)


def converged_report(stack, params, verify):
    """Converge (with the checks when `verify`), write the diagram: the report."""
    stack.present(verify=verify)
    if params.get("diagram_path"):
        stack.write_diagram(params["diagram_path"])
    return stack.report()


def checked_report(stack, report, diff):
    """The report with the checks `stack` ran; a failure listing the failed ones."""
    if stack.check_reports is not None:
        report["checks"], report["verified"] = stack.check_reports, True
        failed_checks_error(stack.check_reports, dict(report, diff=stack.diffs) if diff else report)
    return report


def unchanged(probe, engine, params, diff, progress):
    """(the applier, its report) of a stack that is as declared, found without the stack's lock;
    None when anything would change. The lock is an engine write each way (a container made and
    removed), a fifth of an unchanged stack's run, more on a busy engine; a run that only reads
    needs none. So the run first converges on a dry run of its own (`probe(gateway, progress)`: a
    new applier of the same declaration): when that would change nothing (no write recorded,
    nothing changed in the database or the host's files), its report is the run's, and the checks
    run for real (they only read). Otherwise the run converges under the lock from the start and
    reads everything again: what it changes is decided under the lock, as before. A probe that
    fails for any reason decides nothing either: the run under the lock says what is wrong."""
    if probe is None or engine.dry_run:
        return None
    lines = []
    applier = probe(dry_run_of(engine), lambda line, verbosity: lines.append((line, verbosity)))
    try:
        applier.repair()
        report = converged_report(applier, params, verify=False)
    except Exception:  # pylint: disable=broad-except  # decided again under the lock, which says why
        applier.close()
        return None
    if report["changed"] or applier.engine.actions:
        applier.close()
        return None
    try:
        if params.get("verify"):
            applier.check_reports = applier.run_checks()
        for line, verbosity in lines:
            if progress:
                progress(line, verbosity)
        return applier, checked_report(applier, report, diff)
    finally:
        applier.close()


def finished_report(report, stack, lock, diff):
    """What every state adds at the end: the wait for the lock, the diff."""
    if lock is not None and lock.waited:
        report["waited_for_lock"] = lock.waited
    if diff:
        report["diff"] = stack.diffs
    return report


def dry_run_of(engine):
    """A dry run over the engine behind the gateway `engine` (`engine` itself when it is one):
    docker/dry_run.py, imported only when a run needs one (its reads go to that engine, its
    writes stay in its memory)."""
    from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import (  # pylint: disable=import-outside-toplevel
        dry_run_over)
    return dry_run_over(engine)


def import_in_background(modules):
    """Import `modules` (a database's driver: psycopg takes a twentieth of a second) in a thread
    while this one waits for the engine (pre-flight, the lock, the inspects), so that an unchanged
    stack's database login does not wait for it. A module that fails to import here is left to
    the code that needs it, which imports it again and says why."""
    missing = sorted(set(name for name in modules if name and name not in sys.modules))
    if not missing:
        return

    def import_each():
        for name in missing:
            try:
                importlib.import_module(name)
            except Exception:  # pylint: disable=broad-except  # said by driver() where it is needed
                pass
    threading.Thread(target=import_each, name="clockwork-imports", daemon=True).start()


def recorded_release(stack, engine, params, report):
    """An apply that changed something is the stack's next release, recorded on the Docker host
    (releases/record.py, imported only then): {number, pruned, path}, else None."""
    if not report.get("changed"):
        return None
    from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import (  # pylint: disable=import-outside-toplevel
        record_release)
    return record_release(engine, params["name"], params, report, controller=params.get("controller"),
                          results=getattr(stack, "results", None),
                          networks=getattr(getattr(stack, "plan", None), "networks", None))


def target_of(params):
    return "swarm" if params.get("engine") == "swarm" else "docker"


def present_or_back(stack, engine, params, diff):
    """present_report, under the stack's lock; when the convergence fails and the stack has a
    release, everything this run replaced or added goes back to that release (Applier.return_to)
    and the failure says so: a failed deploy leaves the previous release running, whole."""
    from ansible_collections.clockwork.connections.plugins.module_utils.releases import rollback  # pylint: disable=import-outside-toplevel
    previous = rollback.last_release(engine, params["name"])
    if previous is not None and previous["target"] != target_of(params):
        previous = None   # a release of the other target is no spec for this one
    if previous is not None and previous["containers"] and not engine.containers(
            all=True, filters={"label": "%s=%s" % (STACK_LABEL, params["name"])}):
        previous = None   # a stack deployed anew after a destroy: its old release is not what runs
    try:
        # A check that fails after the apply (a client that cannot log in, a URL that does not answer) is a
        # release that failed as much as a container that never became ready: it goes back too.
        report = checked_report(stack, converged_report(stack, params, params.get("verify")), diff)
    except ClockworkError as exc:
        if previous is None:
            raise
        try:
            went_back = stack.return_to(previous)
        except ClockworkError as again:
            raise ClockworkError(rollback.failed_return_message(exc.msg, previous["number"], again.msg),
                                 **exc.details)
        if not went_back:
            raise
        details = dict(exc.details, returned_to=previous["number"], went_back=went_back)
        if diff:
            details["diff"] = stack.diffs
        raise ClockworkError(rollback.back_message(exc.msg, previous["number"], went_back), **details)
    return report


def rolled_back_report(stack, engine, params):
    """state rolled_back, under the stack's lock: the release chosen (refused before any change
    when it cannot be gone back to), the stack brought to it, and that recorded as a new release."""
    from ansible_collections.clockwork.connections.plugins.module_utils.releases import rollback  # pylint: disable=import-outside-toplevel
    release = rollback.chosen_release(engine, params["name"], params.get("release") or "previous", target_of(params))
    report = stack.rolled_back(release, bool(params.get("restore_data")))
    report["rolled_back_to"] = release["number"]
    recorded = rollback.record_rollback(engine, params["name"], params, report, release,
                                        bool(params.get("restore_data")))
    if recorded is not None:
        report["release"] = recorded
    return report


def apply_state(stack, engine, params, diff=False, probe=None):
    """The state asked for, by either applier: absent and present under the stack's lock (one
    run of a stack at a time, whichever controller it comes from; a dry run's gateway takes it in
    its own memory), verified without it; present without it when nothing would change (see
    `unchanged`; `probe(gateway, progress)` makes a new applier of the same declaration). The
    result; failed checks raise ClockworkError with it."""
    from ansible_collections.clockwork.connections.plugins.module_utils.apply.lock import stack_lock  # pylint: disable=import-outside-toplevel
    lock = None
    if params["state"] == "absent":
        with stack_lock(engine, params["name"]) as lock:
            report = stack.absent(params["purge"])
    elif params["state"] == "rolled_back":
        with stack_lock(engine, params["name"]) as lock:
            stack.repair()
            report = rolled_back_report(stack, engine, params)
    elif params["state"] == "verified":
        reports = stack.verified()
        result = dict(stack.report(), changed=False, checks=reports)
        result.pop("plan")
        failed_checks_error(reports, result)
        return result
    else:
        import_in_background(driver for connection in params["connections"]
                             for driver in CONNECTION_TYPES[connection["type"]].drivers(connection))
        found = unchanged(probe, engine, params, diff, stack.progress)
        if found:
            stack, report = found
        else:
            with stack_lock(engine, params["name"]) as lock:
                stack.repair()
                report = present_or_back(stack, engine, params, diff)
                release = recorded_release(stack, engine, params, report)
                if release is not None:
                    report["release"] = release
    return finished_report(report, stack, lock, diff)
