# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every connection type shares: its endpoints, its arguments, its result, and
`ConnectionType`, the one object at the end of each type's file that says everything
about the type. `registry.py` lists those objects; everything else reads them there.

A connection's work has two moments. `prepare` makes what containers need before any
of them is created (a network, a volume, a file, TLS material). `converge` runs once
its `to` is up and before its `from` is (re)created (waits, schema, migrations), and
returns the contribution for `from`: `from` may not exist yet. Its `to` resource must
exist, except on a dry run (check mode), where a missing one is reported instead.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import (
    ClockworkError, owned_by, port_number, ports_from_labels)
from ansible_collections.clockwork.connections.plugins.module_utils.contribution import Contribution
from ansible_collections.clockwork.connections.plugins.module_utils.differences import masked_diff

# Fields every connection module takes; each type adds its own.
CONNECTION_ARGS = dict(
    from_resource=dict(type="str", required=True, aliases=["from"]),
    to_resource=dict(type="str", required=True, aliases=["to"]),
    description=dict(type="str"),
    stack=dict(type="str", default="default"),
)

# Used by the action plugins in front of the modules (field completion); accepted here so
# that module_defaults can set them.
COMPLETION_ARGS = dict(
    llm=dict(type="dict", options=dict(
        base_url=dict(type="str"),
        model=dict(type="str"),
        api_key=dict(type="str", no_log=True),
        timeout=dict(type="int"),
    )),
    lock_file=dict(type="path"),
)


class Endpoint(object):
    """One end of a connection: what was declared (in a stack) and what Docker has now."""

    def __init__(self, name, attrs=None, spec=None):
        self.name = name
        self.attrs = attrs      # inspected container, or None
        self.spec = spec        # ContainerSpec when declared in a stack, else None

    @property
    def exists(self):
        return self.attrs is not None

    @property
    def running(self):
        return bool(self.attrs) and (self.attrs.get("State") or {}).get("Status") == "running"

    def declared_ports(self):
        """Container ports as declared, like `8000/tcp`: the spec's, else the container's label."""
        if self.spec is not None:
            return self.spec.declared_ports()
        return ports_from_labels(((self.attrs or {}).get("Config") or {}).get("Labels"))

    def exposed_ports(self, engine):
        """Ports the image exposes, as a fallback for discovery."""
        if self.attrs:
            exposed = (self.attrs.get("Config") or {}).get("ExposedPorts") or {}
        elif self.spec is not None and engine.image(self.spec.image):
            exposed = (engine.image(self.spec.image).get("Config") or {}).get("ExposedPorts") or {}
        else:
            exposed = {}
        return sorted(exposed, key=port_number)


class ConnectionContext(object):
    """Where a connection runs: the engine (a DockerGateway: a dry run's in check mode), the stack,
    and declared resources."""

    def __init__(self, engine, stack, declared=None, base_dir=None):
        self.engine = engine
        self.stack = stack
        self.declared = declared or {}   # resource name -> ContainerSpec (stack module only)
        self.base_dir = base_dir
        # Resource -> its containers' names, where it has several (replicas on the docker target).
        self.replicated = {}
        # What this run already did or, on a dry run, already reported it would do, such as
        # ("volume", name): each is reported once, where it happens first.
        self.planned = set()

    def first_time(self, key):
        """True the first time this run asks about `key`, then False."""
        if key in self.planned:
            return False
        self.planned.add(key)
        return True

    @property
    def in_stack(self):
        """True when the stack converges the containers: attachments and `to`'s mounts are
        then part of each container's planned spec, not applied by the connection."""
        return bool(self.declared)

    def containers_of(self, name):
        """The names of a resource's containers: itself, or its replicas."""
        return self.replicated.get(name) or [name]

    def endpoint(self, name):
        """A resource's end; a replicated one is seen through its first replica."""
        return Endpoint(name, self.engine.container(self.containers_of(name)[0]), self.declared.get(name))

    def require_to(self, name, connection):
        """The `to` container; it must exist and be the stack's. On a dry run it may be absent: a
        task before this one would create it."""
        endpoint = self.endpoint(name)
        if not endpoint.exists and endpoint.spec is None and not self.engine.dry_run:
            raise ClockworkError("%s: resource %s does not exist in stack %s"
                                 % (connection, name, self.stack))
        if endpoint.exists and not owned_by(endpoint.attrs["Config"].get("Labels"), self.stack):
            raise ClockworkError("%s: container %s is not owned by stack %s (no label io.clockwork.stack=%s)"
                                 % (connection, name, self.stack, self.stack))
        return endpoint


def required_field(params, field, connection):
    """A field the connection cannot do without, once completion had its chance."""
    value = params.get(field)
    if not value:
        raise ClockworkError("%s: %s is required (or a description to complete it from)" % (connection, field))
    return value


def connection_label(kind, from_name, to_name):
    return "%s %s -> %s" % (kind, from_name, to_name)


class ConnectionResult(object):
    """What a connection did (or would do), and what it gives its `from` container."""

    def __init__(self, kind, from_name, to_name):
        self.name = connection_label(kind, from_name, to_name)
        self.changed = False
        self.actions = []
        self.contribution = Contribution(self.name)
        self.before = {}
        self.after = {}
        self.extra = {}

    def act(self, action):
        self.changed = True
        self.actions.append(action)

    def as_module_result(self, diff=False):
        result = dict(changed=self.changed, connection=self.name, actions=self.actions,
                      contribution=self.contribution.as_dict())
        result.update(self.extra)
        if diff:
            result["diff"] = masked_diff(self.before, self.after)
        return result


def no_problems(_params):
    return []


def no_contribution_to_target(_params, _stack):
    return {"mounts": [], "networks": []}


def nothing_to_prepare(_ctx, _params, _result):
    return None


HOOK_DEFAULTS = dict(
    known_env=lambda params, to_name: {},
    mount_targets=lambda params: [],
    networks=lambda params: [],
    volumes=lambda params: [],
    written_files=lambda params, stack: {},
    planned_steps=lambda params: None,
    preflight=lambda engine, plan, params, images, written: [],
    swarm_problems=lambda params: [],
    prepares_on_swarm=False,
    waits_for_completion=lambda params: False,
    claimed_mounts=lambda params, to_is_container: [],
    ship_files=lambda params, find, local: params,
    completion=None,
    single_to=False,
    drivers=lambda params: (),
)


class ConnectionType(object):
    """Everything about one connection type, read by the stack, the single modules, the
    checks, the diagram and completion.

    name              the `type` of a connection in a stack
    args              its own argument spec (the shared fields are CONNECTION_ARGS)
    converge          (ctx, params, result): the step once `to` is up; it fills
                      result.contribution, what `from` gets (env, mounts, networks, checks)
    prepare           (ctx, params, result) -> None: what must exist before containers
    to_contribution   (params, stack) -> {mounts, networks}: what `to` carries
    checks            check kind -> function(engine, check) -> (ok, message)
    injected_env      (params, to_name) -> the env names `from` gets
    validate          (params) -> [(field, problem)], without the engine
    completable       fields a description may complete
    to_kinds          the resource types `to` may be
    controller_files  fields naming files that live beside the playbook
    adopt             (params, to_resource) -> params filled from a declared `to` resource
    diagram_details   (params) -> [str] shown on the diagram's edge before the env names
    before_to         (ctx, params, spec, result) -> None: runs, in a stack, right before the `to`
                      container converges with `spec` (its final spec): what must happen while the
                      old `to` still runs (a password rotated in place)

    What the plan, the pre-flight and the appliers ask of a type, so that none of them
    compares a type's name (each has a default that means "nothing"):
    known_env         (params, to_name) -> {env name: value} of injected env known without the engine
    mount_targets     (params) -> [paths] this connection mounts into `from`
    networks          (params) -> [(name, settings)] the networks it makes
    volumes           (params) -> [(name, driver, create)] the named volumes it uses
    written_files     (params, stack) -> {host path: content, or None when made by the run}
    planned_steps     (params) -> [step] it applies beyond containers (SQL files), or None
    preflight         (engine, plan, params, images, written) -> [(field, problem)] that need the engine
    swarm_problems    (params) -> [(field, problem)] of a declaration Swarm cannot run
    prepares_on_swarm True when `prepare` makes material the Swarm applier needs too (TLS);
                      networks and volumes it makes from the plan itself
    waits_for_completion  (params) -> True when `to` runs once to completion (a Swarm job)
    claimed_mounts    (params, to_is_container) -> [(end, path, source)]: the mounts it gives "from" and
                      "to" as declared, before completion (a completed mount path keeps clear of them)
    ship_files        (params, find, local) -> params with the controller files its fields name read in,
                      so that a module on a remote Docker host needs nothing from the controller;
                      `find(path)` resolves a path like Ansible's `src`, `local` when the Docker host is here
    completion        a TypeCompletion (completion_rules.py) for a type with completable fields
    single_to         True when `to` must be one container on the docker target (a database server:
                      each replica would hold data of its own)
    drivers           (params) -> [Python modules] a run with this connection imports (a database's
                      driver): the applier imports them in the background while it reads the engine
    """

    def __init__(self, name, args, converge, checks, injected_env, validate=no_problems, completable=(),
                 prepare=nothing_to_prepare, to_contribution=no_contribution_to_target, to_kinds=("container",),
                 controller_files=(), adopt=None, diagram_details=None, before_to=None, **hooks):
        self.name = name
        self.args = args
        self.converge = converge
        self.prepare = prepare
        self.to_contribution = to_contribution
        self.checks = checks
        self.injected_env = injected_env
        self.validate = validate
        self.completable = tuple(completable)
        self.to_kinds = tuple(to_kinds)
        self.controller_files = tuple(controller_files)
        self.adopt = adopt or (lambda params, _to: params)
        self.diagram_details = diagram_details or (lambda params: [])
        self.before_to = before_to or (lambda ctx, params, spec, result: None)
        unknown = set(hooks) - set(HOOK_DEFAULTS)
        if unknown:
            raise TypeError("ConnectionType %s: unknown hooks %s" % (name, ", ".join(sorted(unknown))))
        for hook, default in HOOK_DEFAULTS.items():
            setattr(self, hook, hooks.get(hook, default))

    def new_result(self, params):
        return ConnectionResult(self.name, params["from_resource"], params["to_resource"])

    def run(self, ctx, params):
        """Both moments, for one connection on its own (the single modules)."""
        result = self.new_result(params)
        self.prepare(ctx, params, result)
        self.converge(ctx, params, result)
        return result
