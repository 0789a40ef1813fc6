# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""In front of the stack module, on the controller: the files the declaration names beside
the playbook are read into it, connections are completed, and the whole stack is planned and
validated before anything is touched, whatever the target. Relative paths in connections
resolve like Ansible's `src` (the role's or playbook's files/, then the playbook's directory).
Relative paths of things on the Docker host resolve against the playbook's directory when the
Docker host is this machine, else against `~/.clockwork/<stack>` of the remote user.

When the target is this controller itself (the local connection, no become), the stack
converges right here, with the module's own code, arguments and masking: a module process
costs more than the whole convergence of an unchanged stack. Elsewhere, or when this
Python lacks the libraries, the module runs on the target as usual. The diagram is
documentation beside the playbook: it is written here, on the controller, in both cases.

The collection's own code, which this action runs in-process, is imported through Python's
standard loader with its bytecode cache (BytecodeCachedFinder): ansible-core's collection loader
compiles every module from source on every run, a tenth of a second of a no-op. The module sent
to a remote target is built from the same source files, as before.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import getpass
import importlib.util
import os
import socket
import sys

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values

IN_PROCESS_ENV = "CLOCKWORK_STACK_IN_PROCESS"   # "never" forces the module on the target
PLUGINS = "ansible_collections.clockwork.connections.plugins."


class BytecodeCachedFinder(object):
    """This collection's module_utils and plugin_utils, found as Python finds any module: the
    names and files ansible-core's collection loader would give them, loaded by the standard
    loader, which keeps their bytecode in __pycache__ beside them (as ansible-core's plugin loader
    does for this very file; PYTHONPYCACHEPREFIX moves it elsewhere). Where __pycache__ cannot be
    written (a read-only install) or Python is told not to (-B, PYTHONDONTWRITEBYTECODE), they
    compile from source as before. Anything else, a folder without __init__.py included, is left
    to ansible-core's loader; so would a redirect be, which is why meta/runtime.yml has none."""

    prefixes = (PLUGINS + "module_utils.", PLUGINS + "plugin_utils.")

    def find_spec(self, fullname, path, target=None):
        if not fullname.startswith(self.prefixes) or not path or len(path) != 1:
            return None
        base = os.path.join(list(path)[0], fullname.rpartition(".")[2])
        init = os.path.join(base, "__init__.py")
        if os.path.isfile(init):
            return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[base])
        if os.path.isfile(base + ".py"):
            return importlib.util.spec_from_file_location(fullname, base + ".py")
        return None


@contextlib.contextmanager
def bytecode_cached():
    """The collection's code imported meanwhile comes through BytecodeCachedFinder: while this
    action imports it and while the stack converges in-process. Then the finder is removed, and
    every other import in the process is ansible-core's as usual."""
    finder = BytecodeCachedFinder()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


with bytecode_cached():
    from ansible_collections.clockwork.connections.plugins.plugin_utils import completion, controller_files, llm
    from ansible_collections.clockwork.connections.plugins.plugin_utils.connection_action import (
        ConnectionAction, display)


def _module_utils():
    """Imported when first needed: the Docker SDK and friends cost time at start-up."""
    with bytecode_cached():
        from ansible_collections.clockwork.connections.plugins.module_utils import (  # pylint: disable=import-outside-toplevel
            failures, graph, host_files, masking, plan, registry, stack)
        from ansible_collections.clockwork.connections.plugins.module_utils.docker import gateway as docker_client  # pylint: disable=import-outside-toplevel
    return docker_client, failures, graph, host_files, masking, plan, registry, stack


def summary_lines(result, state, check_mode):
    """The result as lines a person reads, as the stack_summary filter makes them: the stack role
    shows them without a filter, which would load every filter plugin in its task's worker. A
    verify says its checks alone."""
    from ansible_collections.clockwork.connections.plugins.filter.summary import stack_summary  # pylint: disable=import-outside-toplevel
    return stack_summary({"checks": result.get("checks")} if state == "verified" else result, check_mode)


def invalid_arguments(plan, stack, args, validation):
    """Why the arguments were refused: the plan's own message when it finds the problems, each named with its
    resource or connection and all at once (Ansible's validator names no entry, and fails on a field given in
    another shape), with the validator's on the other arguments; else the validator's."""
    if validation is None:   # the validator failed on resources or connections: its words on the rest
        validation = ArgumentSpecValidator(stack.STACK_ARGUMENT_SPEC).validate(dict(args, resources=[], connections=[]))
    try:
        plan.Plan(str(args.get("name") or "stack"), args.get("resources") or [], args.get("connections") or [],
                  base_dir=args.get("base_dir"), engine=args.get("engine") or "docker")
    except plan.ClockworkError as exc:
        # The validator's words on the other arguments (state: bogus) too: all problems at once.
        others = [m for m in validation.error_messages if "resources" not in m and "connections" not in m]
        return "\n".join([str(exc)] + others)
    except Exception:  # pylint: disable=broad-except  # a shape the plan cannot read either: the validator's words
        pass
    return "; ".join(validation.error_messages) or "invalid arguments: a field with suboptions given in another shape"


class ActionModule(ConnectionAction):

    def execute(self, args, task_vars):
        docker_client, failures, graph, host_files, masking, plan, _registry, stack = _module_utils()
        # Who deployed, as each release records it: this controller, whichever host the module runs on.
        args.setdefault("controller", "%s@%s" % (getpass.getuser(), socket.gethostname()))
        if args.get("state", "present") != "absent" and any(
                isinstance(r, dict) and r.get("build") for r in args.get("resources") or []):
            failed = self.ship_builds(args)
            if failed:
                return failed
        try:
            validation = ArgumentSpecValidator(stack.STACK_ARGUMENT_SPEC).validate(args)
            refused = validation.error_messages
        except TypeError:   # a field with suboptions given in another shape (healthcheck: 1): the plan names it
            validation, refused = None, True
        params = validation.validated_parameters if validation else args
        # What AnsibleModule masks, and every secret the declaration holds (masking.py says which).
        secrets = set(validation._no_log_values) if validation else set()  # pylint: disable=protected-access
        secrets |= masking.declared_secrets(params.get("resources"), params.get("connections"))
        if refused:
            return remove_values({"failed": True, "msg": invalid_arguments(plan, stack, args, validation)}, secrets)
        diagram_path = args.pop("diagram_path", None)
        params["diagram_path"] = None
        try:
            # The plan, here on the controller: a bad declaration fails before any module runs.
            planned = plan.Plan(params["name"], params["resources"], params["connections"],
                                base_dir=params["base_dir"], engine=params["engine"])
            if self.in_process():
                with bytecode_cached():   # what the convergence imports when it needs it (the stack's lock)
                    result = stack.run_stack(self.gateway(docker_client), params, diff=self._task.diff,
                                             progress=self.progress_printer(params["name"]), plan=planned)
                result["invocation"] = {"module_args": params}
            else:
                result = super(ActionModule, self).execute(args, task_vars)
            if diagram_path and params["state"] == "present" and not result.get("failed"):
                self.write_diagram(result, host_files, graph, diagram_path, params)
            if not result.get("failed"):
                result["summary"] = summary_lines(result, params["state"], self._task.check_mode)
        except Exception as exc:  # pylint: disable=broad-except  # sorted by failure_message; bugs re-raised
            message = failures.failure_message(exc)
            if message is None:
                raise
            result = dict(getattr(exc, "details", {}), failed=True, msg=message)
        return remove_values(result, secrets)

    def ship_builds(self, args):
        """The build contexts, read here on the controller (plugin_utils/build_context.py) into the
        tars the engine's POST /build takes, sent to the target's temporary directory with the
        module; the failure to return, or None."""
        with bytecode_cached():
            from ansible_collections.clockwork.connections.plugins.plugin_utils import build_context  # pylint: disable=import-outside-toplevel
        try:
            args["resources"] = build_context.ship_builds(
                args.get("resources"), self.local_path, build_context.action_transfer(self),
                heading="stack %s cannot be deployed" % args.get("name"),
                own_files=[args.get("diagram_path"), self.lock_path(args)])   # the stack's own files: no part of a context
        except build_context.BuildContextError as exc:
            return {"failed": True, "msg": exc.msg}
        return None

    def gateway(self, docker_client):
        """The Docker gateway of the run: in check mode a dry run's (docker/dry_run.py), which makes
        the same calls as a real run and changes nothing, on the engine or the host's files."""
        if not self._task.check_mode:
            return docker_client.DockerGateway(environment=self.task_environment())
        from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway  # pylint: disable=import-outside-toplevel
        return dry_run_gateway(environment=self.task_environment())

    def task_environment(self):
        """The task's `environment:` (DOCKER_HOST and friends) over this process's, as the
        module would see it on its target."""
        environment = {}
        self._compute_environment_string(environment)
        return dict(os.environ, **dict((k, str(v)) for k, v in environment.items()))

    def progress_printer(self, name):
        """Compose-like progress while the stack converges here: a line per container that
        changes (with -v, also those that do not); nothing under no_log. Lines hold names and
        actions, never values."""
        if self._task.no_log:
            return None
        verbosity = display.verbosity

        def show(line, level):
            if level <= verbosity:
                display.display("  %s | %s" % (name, line))
        return show

    def write_diagram(self, result, host_files, graph, path, params):
        """The Markdown picture of the stack, beside the playbook, when its content differs."""
        from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionResult  # pylint: disable=import-outside-toplevel
        done = ConnectionResult("diagram", params["name"], params["name"])
        text = graph.diagram_document(params["name"], params["resources"], params["connections"])
        files = host_files.DryRunFiles() if self._task.check_mode else host_files.HostFiles()
        host_files.write_file(path, text, "0644", None, files, done)
        result.setdefault("entries", []).append({"kind": "diagram", "name": path, "changed": done.changed,
                                                 "actions": done.actions, "reasons": []})
        result["changed"] = bool(result.get("changed")) or done.changed

    def is_local(self):
        return getattr(self._connection, "transport", None) == "local"

    def in_process(self):
        """Converge in this process when the target is this controller and this Python can."""
        if os.environ.get(IN_PROCESS_ENV, "auto") == "never" or not self.is_local() or self._play_context.become:
            return False
        return _module_utils()[0].HAS_DOCKER

    def prepare_args(self, args):
        local = self.is_local()
        args.setdefault("base_dir", self._loader.get_basedir() if local
                        else "~/.clockwork/%s" % args.get("name"))
        if args.get("diagram_path"):
            args["diagram_path"] = os.path.join(self._loader.get_basedir(), os.path.expanduser(args["diagram_path"]))
        registry = _module_utils()[6]
        connections = []
        for connection in args.get("connections") or []:
            kind = registry.CONNECTION_TYPES.get(connection.get("type"))
            connections.append(controller_files.ship(connection, kind, self.local_path, local))
        args["connections"] = connections
        return args

    def complete(self, args, lock):
        """Complete every connection that needs it, in one pass, before the one module call."""
        return completion.complete_stack(args, lock, llm.settings(args.get("llm")))
