# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One clear line for a failure, whichever path met it: the stack module, a single module,
or the stack action plugin in the controller's process."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.database.engines import ENGINES
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    DockerException, EngineUnreachable)


def failure_message(exc):
    """One clear line for an error of the Docker engine, a database driver or the file system,
    whichever path (in-process or module) met it; None for anything else, which is a bug and
    should show as one."""
    if isinstance(exc, ClockworkError):
        return exc.msg
    origin = type(exc).__module__.split(".")[0]
    text = " ".join(str(getattr(exc, "explanation", None) or exc).split())
    # The SDK's errors, and ours when a request went over the standard library (docker/errors.py).
    if isinstance(exc, EngineUnreachable):
        return text   # it names the engine it could not reach
    if origin in ("requests", "urllib3"):
        return "cannot reach the Docker engine: %s" % text
    if origin == "docker" or isinstance(exc, DockerException):
        return "the Docker engine refused: %s" % text
    for engine in ENGINES.values():
        if origin == engine.driver_module:
            return "%s: %s" % (engine.title, text)
    if isinstance(exc, (OSError, IOError)):
        return "%s%s" % (text, "" if not getattr(exc, "filename", None) or exc.filename in text
                         else " (%s)" % exc.filename)
    return None
