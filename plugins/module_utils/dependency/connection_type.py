# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DependencyConnection: ordering only. Waits, bounded, until `to` reaches a condition;
it changes nothing, so it never reports a change."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.connection import ConnectionType
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_wait import condition_reached, has_healthcheck, wait_for
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import container_state, exec_arg

DEPENDENCY_ARGS = dict(
    condition=dict(type="str", choices=["started", "healthy", "completed_successfully"]),
    timeout=dict(type="int", default=60),
)


def validate(params):
    if params.get("timeout") is not None and params["timeout"] <= 0:
        return [("timeout", "must be a positive number of seconds, got %s" % params["timeout"])]
    return []


def converge(ctx, params, result):
    to_name = params["to_resource"]
    to = ctx.require_to(to_name, result.name)
    declared_healthcheck = bool(to.spec.healthcheck) if to.spec is not None else has_healthcheck(to.attrs)
    condition = params.get("condition") or ("healthy" if declared_healthcheck else "started")
    result.extra["dependency"] = {"condition": condition}
    result.contribution.checks.append({"kind": "running", "connection": result.name,
                                       "target": to_name, "condition": condition})
    if ctx.engine.dry_run:
        # A dry run says the state and waits for nothing: what it made is a forecast, and a live `to`
        # that is not ready is the checks' to report (state verified), not a wait's to fail.
        status, health = container_state(to.attrs)
    else:
        for container in ctx.containers_of(to_name):   # every replica
            status, health = wait_for(ctx.engine, container, condition, params.get("timeout", 60), who=result.name)
    result.extra["dependency"].update(state=status, health=health)


def check_running(engine, check):
    attrs = engine.container(check["target"])
    status, health = container_state(attrs)
    ok = bool(attrs) and condition_reached(attrs, check.get("condition", "started"))
    return ok, "%s is %s%s" % (check["target"], status, ", %s" % health if health else "")


check_running.fields = dict(target=dict(type=exec_arg, required=True),
                            condition=dict(type="str", choices=["started", "healthy", "completed_successfully"]))


TYPE = ConnectionType(
    "dependency", DEPENDENCY_ARGS, converge,
    checks={"running": check_running},
    injected_env=lambda params, to_name: [],
    validate=validate,
    waits_for_completion=lambda params: params.get("condition") == "completed_successfully",
)
