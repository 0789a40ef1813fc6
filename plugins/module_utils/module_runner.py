# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The few lines every module shares: the engine, and errors as clean failures."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import (
    COMPLETION_ARGS, CONNECTION_ARGS, ConnectionContext)
from ansible_collections.clockwork.connections.plugins.module_utils.docker_client import (
    Engine, require_docker)

STACK_ARG = dict(stack=dict(type="str", default="default"))


def run_module(module, converge):
    """Call `converge(engine)` and exit with its result; a ClockworkError fails cleanly."""
    require_docker(module)
    try:
        result = converge(Engine())
    except ClockworkError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


def connection_spec(type_args, completion=True):
    """The argument spec of a connection module: the shared fields plus the type's own,
    and the completion options where a description can complete fields."""
    spec = dict(CONNECTION_ARGS)
    if completion:
        spec.update(COMPLETION_ARGS)
    spec.update(type_args)
    return spec


def run_connection(module, converge):
    """Run one connection type's `converge(ctx, params)` as a module."""
    def run(engine):
        ctx = ConnectionContext(engine, module.params["stack"], module.check_mode)
        return converge(ctx, module.params).as_module_result(diff=module._diff)

    run_module(module, run)
