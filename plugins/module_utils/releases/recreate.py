# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What going back to a release needs from it (issue 35 parts 2, 3 and 6 build on this): the body
of the engine's container create that makes a recorded container again exactly as it ran, and what
would refuse a return before any change (its images gone from the engine).

The body is the engine's own shape (POST /containers/create: Config's fields, HostConfig,
NetworkingConfig.EndpointsConfig), not the SDK's keyword arguments: what `docker inspect` read back
goes back as it is, with the image by ID. The gateway's create takes the SDK's arguments today;
a rollback needs a write that takes this body (docker/container_calls.py; the memory engine and
the dry run alike). A Swarm service goes back with its recorded `spec` in an update of the service
(the record keeps the whole spec, not only Swarm's one-step PreviousSpec)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy

# Fields of an inspect's Config that the engine fills in itself and a create does not take as settings.
ENGINE_FILLED = ("Hostname",)


def create_body(record):
    """(the create body of one recorded container (record.container_record), its image by ID;
    {network: endpoint settings} to connect it to after the create, before its start). An engine
    before API 1.44 takes one network at create: the one of its HostConfig.NetworkMode."""
    config = copy.deepcopy(record["config"])
    config["Image"] = record["image_id"]
    for key in ENGINE_FILLED:
        # The engine names a container's host after its id unless one was asked for: the old
        # container's id would be wrong for the new one.
        if config.get(key) and record["id"].startswith(config[key]):
            config.pop(key)
    host_config = config["HostConfig"] = copy.deepcopy(record["host_config"])
    endpoints = copy.deepcopy(record["endpoints"])
    primary = host_config.get("NetworkMode")
    config["NetworkingConfig"] = {"EndpointsConfig": dict(
        (name, endpoint) for name, endpoint in endpoints.items() if name == primary)}
    return config, dict((name, endpoint) for name, endpoint in sorted(endpoints.items()) if name != primary)


def missing_images(gateway, release):
    """The image IDs of `release` that the engine no longer has, by container: a return to it
    would be refused, naming them, before any change."""
    missing = {}
    for name, record in sorted(release.get("containers", {}).items()):
        if record["image_id"] and gateway.image(record["image_id"]) is None:
            missing[name] = record["image_id"]
    return missing
