# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stack module's arguments and the choice of applier: the `docker` target
(apply/docker_applier.py) or the `swarm` target (apply/swarm/applier.py)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.apply.applier import (
    DEFAULT_PARALLEL, apply_state)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.docker_applier import DockerApplier
from ansible_collections.clockwork.connections.plugins.module_utils.common import STACK_LABEL
from ansible_collections.clockwork.connections.plugins.module_utils.connection import COMPLETION_ARGS, CONNECTION_ARGS
from ansible_collections.clockwork.connections.plugins.module_utils.plan import RESOURCE_TYPES
from ansible_collections.clockwork.connections.plugins.module_utils.registry import CONNECTION_TYPES


def _union(specs):
    """One option list that accepts every type's fields; per-type rules (defaults, choices,
    required) are applied later, by the plan, whose errors name the entry."""
    merged = {}
    for spec in specs:
        for key, option in spec.items():
            relaxed = dict((k, v) for k, v in option.items() if k not in ("default", "required", "choices"))
            merged.setdefault(key, relaxed)
    return merged


# The stack module's suboptions: validated and no_log-protected by AnsibleModule itself.
CONNECTION_OPTIONS = dict(_union([CONNECTION_ARGS] + [t.args for t in CONNECTION_TYPES.values()]),
                          type=dict(type="str", required=True, choices=sorted(CONNECTION_TYPES)))
CONNECTION_OPTIONS.pop("stack")
for _top_level in ("llm", "lock_file"):   # options of the whole stack, not of each connection
    CONNECTION_OPTIONS.pop(_top_level, None)
RESOURCE_OPTIONS = dict(_union(RESOURCE_TYPES.values()),
                        type=dict(type="str", default="container", choices=sorted(RESOURCE_TYPES)))
RESOURCE_OPTIONS.pop("state")


# The stack module's arguments: the module and the action plugin's in-process path use them.
STACK_ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    resources=dict(type="list", elements="dict", default=[], options=RESOURCE_OPTIONS),
    connections=dict(type="list", elements="dict", default=[], options=CONNECTION_OPTIONS),
    state=dict(type="str", default="present", choices=["present", "absent", "verified", "rolled_back"]),
    release=dict(type="str", default="previous"),
    restore_data=dict(type="bool", default=False),
    purge=dict(type="bool", default=False),
    base_dir=dict(type="path"),
    diagram_path=dict(type="path"),
    verify=dict(type="bool", default=False),
    parallel=dict(type="int", default=DEFAULT_PARALLEL),
    engine=dict(type="str", default="docker", choices=["docker", "swarm"]),
    releases_kept=dict(type="int", default=5),
    controller=dict(type="str"),
    **COMPLETION_ARGS
)


def run_stack(engine, params, diff=False, progress=None, plan=None):
    """What the stack module does with its validated parameters; returns the result.
    `engine`: the gateway; in check mode a dry run's (docker/dry_run.py), which makes the same
    calls as a real run and writes nothing. `progress(line, verbosity)`, when given, gets a line
    per container as it converges.

    Failed checks raise ClockworkError with the whole report in its details."""
    if params.get("engine") == "swarm":
        # The same plan, applied as Swarm services (apply/swarm/applier.py).
        from ansible_collections.clockwork.connections.plugins.module_utils.apply.swarm.applier import (  # pylint: disable=import-outside-toplevel
            run_swarm_stack)
        return run_swarm_stack(engine, params, diff=diff, progress=progress, plan=plan)

    def applier(gateway, lines, planned=None):
        return DockerApplier(gateway, params["name"], params["resources"], params["connections"],
                             base_dir=params["base_dir"], parallel=params.get("parallel") or DEFAULT_PARALLEL,
                             progress=lines, plan=planned)
    stack = applier(engine, progress, plan)
    # The probe of an unchanged stack plans anew: an applier fills in the plan's specs as it goes.
    # A stack with containers still to make (a first deploy, a scale-up) is not probed: it changes.
    probe = applier if params["state"] == "present" and not engine.dry_run and all_made(engine, stack.plan) else None
    return apply_state(stack, engine, params, diff=diff, probe=probe)


def all_made(engine, plan):
    """Whether every container the plan runs exists (one list of the stack's containers)."""
    wanted = set(container for name, spec in plan.specs.items() if spec.state != "absent"
                 for container in plan.containers_of(name))
    made = set(c["Names"][0].lstrip("/") for c in engine.containers(
        all=True, filters={"label": "%s=%s" % (STACK_LABEL, plan.name)}))
    return wanted <= made
