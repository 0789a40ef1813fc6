# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the stack_info module returns: the stack's releases as they may be shown, its current one,
the drift of the running stack from it, and each connection's health. Only reads."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.releases.health import connection_health
from ansible_collections.clockwork.connections.plugins.module_utils.releases.recreate import missing_images
from ansible_collections.clockwork.connections.plugins.module_utils.releases.record import (
    stack_containers, stack_services)
from ansible_collections.clockwork.connections.plugins.module_utils.releases.store import ReleaseStore
from ansible_collections.clockwork.connections.plugins.module_utils.releases.view import (
    release_view, scrub, secrets_of, service_drift, stack_drift)


def stack_info(engine, stack, health=True):
    """(the module's result, every secret value the releases hold: for Ansible's no_log)."""
    store = ReleaseStore(engine, stack)
    index = store.index()
    releases, missing = store.releases()
    secrets = set()
    for release in releases:
        secrets |= secrets_of(release)
    current = next((r for r in releases if r["number"] == index["current"]), None)
    if current is None:
        drift = []
    elif current["target"] == "swarm":
        drift = service_drift(current, stack_services(engine, stack))
    else:
        drift = stack_drift(current, stack_containers(engine, stack))
    reports = connection_health(engine, current["checks"]) if health and current is not None else []
    ran = [r["ok"] for r in reports if r["ok"] is not None]
    views = []
    for release in releases:
        view = release_view(release, index["current"])
        # What a rollback to it would be refused for, before any change: its images gone.
        view["missing_images"] = missing_images(engine, release)
        views.append(view)
    result = {
        "changed": False,
        "releases": views,
        "current": index["current"],
        "missing": missing,
        "drift": drift,
        "health": reports,
        "healthy": all(ran) if ran else None,
        "release_images": store.images,
    }
    # A check's message may quote what it read (a URL it tried): masked like everything else.
    return scrub(result, secrets), secrets
