# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named Docker volumes: created when missing, labelled as the stack's, and never recreated
or removed here: they hold data. An external one is only used."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError, owner_labels
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    CONFLICT, engine_words, status_of)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import APIError


def ensure_volume(ctx, name, driver, create, result):
    """driver None: an external volume, used as it is; it must exist (the pre-flight said so first)."""
    if not ctx.first_time(("volume", name)):
        return
    attrs = ctx.engine.volume(name)
    if driver is None:
        if attrs is None:
            raise ClockworkError("%s: volume %s is external and does not exist: the stack never makes it"
                                 % (result.name, name))
        return
    if attrs is None:
        if not create:
            raise ClockworkError("%s: volume %s does not exist and create_volume is false" % (result.name, name))
        result.act("create volume %s" % name)
        try:
            ctx.engine.create_volume(name, driver=driver, labels=owner_labels(ctx.stack, name))
        except APIError as exc:
            # A 409: another run created it meanwhile (our read said none); it is used when its
            # driver is the one asked for.
            ctx.engine.forget("volume", name)
            made = ctx.engine.volume(name) if status_of(exc) == CONFLICT else None
            if made is None or made.get("Driver") != driver:
                raise ClockworkError("cannot create volume %s: %s" % (name, engine_words(exc)))
    elif attrs.get("Driver") != driver:
        # Never recreate a volume: its data would go with it.
        raise ClockworkError("%s: volume %s exists with driver %s, not %s; it is not recreated, as that "
                             "would lose its data" % (result.name, name, attrs.get("Driver"), driver))
