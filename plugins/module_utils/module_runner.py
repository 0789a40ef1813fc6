# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The few lines every module shares: the engine, and errors as clean failures."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import Problems
from ansible_collections.clockwork.connections.plugins.module_utils.failures import failure_message
from ansible_collections.clockwork.connections.plugins.module_utils.connection import (
    COMPLETION_ARGS, CONNECTION_ARGS, ConnectionContext, connection_label)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import (
    DockerGateway, require_docker)

STACK_ARG = dict(stack=dict(type="str", default="default"))


def open_gateway(check_mode):
    """The gateway of a run: in check mode a dry run's (docker/dry_run.py: it reads the engine and
    keeps every write to itself, so nothing a check run does reaches Docker or the host's files)."""
    if not check_mode:
        return DockerGateway()
    from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway  # pylint: disable=import-outside-toplevel
    return dry_run_gateway()


def run_module(module, converge, secrets=()):
    """Call `converge(engine)` and exit with its result. Errors of the engine, the database
    drivers and the file system fail cleanly, with one message; `secrets` are masked in
    everything the module returns, its invocation included."""
    require_docker(module)
    module.no_log_values.update(secrets)
    try:
        result = converge(open_gateway(module.check_mode))
    except Exception as exc:  # pylint: disable=broad-except  # sorted by failure_message; bugs re-raised
        message = failure_message(exc)
        if message is None:
            raise
        module.fail_json(msg=message, **getattr(exc, "details", {}))
    module.exit_json(**result)


def connection_spec(type_args, completion=True):
    """The argument spec of a connection module: the shared fields plus the type's own,
    and the completion options where a description can complete fields."""
    spec = dict(CONNECTION_ARGS)
    if completion:
        spec.update(COMPLETION_ARGS)
    spec.update(type_args)
    return spec


def run_connection(module, connection_type):
    """Run one connection type on its own: validate it, then prepare and converge it."""
    def run(engine):
        params = module.params
        problems = Problems()
        label = connection_label(connection_type.name, params["from_resource"], params["to_resource"])
        problems.extend(label, ("%s: %s" % problem for problem in connection_type.validate(params)))
        problems.raise_if_any("invalid connection")
        ctx = ConnectionContext(engine, params["stack"])   # in check mode `engine` is a dry run's
        return connection_type.run(ctx, params).as_module_result(diff=module._diff)

    run_module(module, run)
