# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names, labels and errors shared by every part of the collection."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

# Ownership labels: destroy and takeover decisions rest on these alone.
STACK_LABEL = "io.clockwork.stack"
RESOURCE_LABEL = "io.clockwork.resource"
# Declared container ports, so that port discovery reads what the user declared.
PORTS_LABEL = "io.clockwork.ports"
# Mounts that connections added to a container after its creation (file, TLS).
KEPT_MOUNTS_LABEL = "io.clockwork.connection-mounts"


class ClockworkError(Exception):
    """A failure the user can act on; the message names the problem and the place."""

    def __init__(self, msg, **details):
        super(ClockworkError, self).__init__(msg)
        self.msg = msg
        self.details = details


def env_name(resource_name):
    """`backend-api` -> `BACKEND_API`: upper case, anything outside A-Z0-9 becomes `_`."""
    return re.sub(r"[^A-Z0-9]", "_", resource_name.upper())


def owner_labels(stack, resource):
    return {STACK_LABEL: stack, RESOURCE_LABEL: resource}


def owned_by(labels, stack):
    return (labels or {}).get(STACK_LABEL) == stack
