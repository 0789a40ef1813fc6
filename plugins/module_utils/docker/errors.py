# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's errors, one set of types whichever way a request went, and the Docker SDK,
imported only when something needs it.

Code catches `APIError` and `NotFound` from here. An error the SDK raises is made an instance
of a subclass of both its own type and ours (`from_sdk`): `except` clauses written for either
catch it, and its message and the module it names stay the SDK's, so a failure reads as it
always did. A request that went over the standard library (unix_http.py) fails with the same
class choice and text the SDK would give (`api_error`): the SDK's types too once the SDK is
imported, else ours alone (an expected error, such as GET /services on an engine that is no
swarm manager, must not cost the SDK's import). Ours are OSErrors, as the SDK's are.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib.util
import sys
import threading
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError


def _sdk_installed():
    """Whether the SDK can be imported, without importing it (that takes ~0.1 s: `requests`)."""
    try:
        return importlib.util.find_spec("docker") is not None
    except (ImportError, ValueError):
        return False


HAS_DOCKER = _sdk_installed()
SDK_NAME = "docker (the Docker SDK for Python)"


def load_sdk():
    """The Docker SDK module, imported on first use: a write, or a transport other than a local
    socket, needs it. Without it, one clear message (Ansible's missing_required_lib)."""
    try:
        import docker  # pylint: disable=import-outside-toplevel  # ~0.1 s: only when it is needed
    except ImportError:
        raise ClockworkError(missing_required_lib(SDK_NAME), exception=traceback.format_exc())
    return docker


class DockerException(Exception):
    """Anything the Docker engine, or the way to it, reported."""


class APIError(DockerException, OSError):
    """The engine answered with an error status: `status_code`, and `explanation`, the engine's
    own words. Its text is the SDK's: `404 Client Error for <url>: Not Found ("<words>")`."""

    def __init__(self, message, response=None, explanation=None):
        super(APIError, self).__init__(message)
        self.response = response
        self.explanation = explanation

    def __str__(self):
        message = super(APIError, self).__str__()
        if self.is_client_error() or self.is_server_error():
            message = "%s %s Error for %s: %s" % (self.status_code, "Client" if self.is_client_error() else "Server",
                                                  self.response.url, self.response.reason)
        if self.explanation:
            message = '%s ("%s")' % (message, self.explanation)
        return message

    @property
    def status_code(self):
        return None if self.response is None else self.response.status_code

    @property
    def words(self):
        """What the engine said, for a message: its own words, else the whole error."""
        return self.explanation or str(self)

    def is_client_error(self):
        return self.status_code is not None and 400 <= self.status_code < 500

    def is_server_error(self):
        return self.status_code is not None and 500 <= self.status_code < 600


# The statuses callers act on (the Engine API's, documented per endpoint).
BAD_REQUEST, FORBIDDEN, NOT_FOUND, CONFLICT = 400, 403, 404, 409


def status_of(exc):
    """The engine's status of an error (None when no answer came: the engine was not reached)."""
    return getattr(exc, "status_code", None)


def engine_words(exc):
    """What the engine said of an error, for a message naming what was being done."""
    return getattr(exc, "explanation", None) or str(exc)


class NotFound(APIError):
    pass


class ImageNotFound(NotFound):
    pass


class EngineUnreachable(DockerException, OSError):
    """The engine's socket could not be reached, or broke off mid-answer. An OSError, as the
    SDK's connection errors are, whose text names the engine."""


# What the engine says of an image it does not have (the SDK's list): a 404 that is ImageNotFound.
_IMAGE_NOT_FOUND = ("no such image", "not found: does not exist or no pull access", "repository does not exist",
                    "was found but does not match the specified platform")


class Response(object):
    """What an error keeps of the engine's answer, as the SDK's errors keep requests' Response."""

    def __init__(self, status_code, reason, url):
        self.status_code, self.reason, self.url = status_code, reason, url


def api_error(status, reason, url, explanation):
    """The error for an error status of the engine, as the SDK makes it (same class choice, same
    text): the SDK's own type with ours as a base when the SDK is imported already, else ours."""
    ours = APIError
    if status == 404:
        ours = ImageNotFound if any(f in (explanation or "").lower() for f in _IMAGE_NOT_FOUND) else NotFound
    sdk_errors = sys.modules.get("docker.errors")
    cls = _bridge(getattr(sdk_errors, ours.__name__)) if sdk_errors is not None else ours
    message = "%d %s Error: %s for url: %s" % (status, "Client" if status < 500 else "Server", reason, url)
    return cls(message, response=Response(status, reason, url), explanation=explanation)


_BRIDGES = {}
_BRIDGES_LOCK = threading.Lock()


def _ours_for(sdk_errors, theirs):
    for sdk_type, ours in ((sdk_errors.ImageNotFound, ImageNotFound), (sdk_errors.NotFound, NotFound),
                           (sdk_errors.APIError, APIError), (sdk_errors.DockerException, DockerException)):
        if issubclass(theirs, sdk_type):
            return ours
    return None


def _bridge(theirs):
    """The subclass of the SDK's error type `theirs` and of ours; `theirs` itself when it is no
    error of the SDK's. Named, and placed in the module, as the SDK's own type."""
    with _BRIDGES_LOCK:
        if theirs not in _BRIDGES:
            ours = _ours_for(load_sdk().errors, theirs)
            _BRIDGES[theirs] = theirs if ours is None or issubclass(theirs, ours) else type(
                theirs.__name__, (theirs, ours), {"__module__": theirs.__module__, "__doc__": theirs.__doc__})
        return _BRIDGES[theirs]


def from_sdk(exc):
    """The SDK's exception `exc`, made an instance of our types too (in place: its message,
    attributes and traceback stay as they are); anything else as it is."""
    if type(exc).__module__.split(".")[0] == "docker":
        bridged = _bridge(type(exc))
        if bridged is not type(exc):
            exc.__class__ = bridged
    return exc
