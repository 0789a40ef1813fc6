#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: stack_info
short_description: A stack's releases, its current release, its drift from it and its connections' health
version_added: 0.1.0
description:
  - Every apply of a stack that changes something records a release of the stack in the Docker engine the
    stack runs on (M(clockwork.connections.stack)); an apply that changes nothing records none. A release holds
    its number, the time (UTC), the controller's C(user@host), the digest of the plan, each container as
    C(docker inspect) read it back after the apply (its image by ID, its whole configuration, its networks'
    endpoint settings, its name and labels), each database connection's applied schema and migration files
    with their sha256, and the snapshots taken for it. The last C(releases_kept) (default 5) are kept.
  - Releases live in the engine, not on the controller, so that whoever reaches the engine finds the same
    ones, however it reaches it (a run on the Docker host over SSH, another checkout or machine, an in-process
    run against C(DOCKER_HOST=tcp://...) or C(ssh://...)). Each record is an image of one file of mode 0600,
    C(clockwork-releases:<name>.<n>), with an index C(clockwork-releases:<name>.index); it is read back without
    running anything (what C(docker save) asks), and replaced atomically (an import moves the tag at once), so
    that a run killed half-way leaves the previous record whole. Its only label says whose releases it holds
    (C(io.clockwork.releases-of)). Destroying the stack keeps them; C(docker image prune -a) would remove them
    (no container uses them) unless given C(--filter label!=io.clockwork.releases-of).
  - A release keeps env values, secrets among them, as Docker's own record of a container does (in
    C(/var/lib/docker), root's; readable by exactly who may inspect the containers). What this module returns
    never holds one. Every env value that is a secret (by its name, a password in a URL, or a value that holds a
    declared password) is masked, every secret flag of a command too, and every secret value found anywhere in
    a release is masked wherever it would still appear.
  - Each record is read as untrusted data (bounded in size, read in memory, never extracted, its shape
    checked); an image that is not a release record fails the task with one message naming it.
  - The drift compares the stack as it runs now (its containers, or its Swarm services) with the current
    release, field by field, and names the fields that differ (for an env variable its name, never its value).
  - The health runs the checks the connections named when the current release was made (see
    M(clockwork.connections.verify)), once each, from inside the containers.
  - Only reads; never reports a change.
author:
  - Clockwork Connections developers (@clockwork-connections)
requirements:
  - docker (the Docker SDK for Python) >= 7.0, where the Docker engine is not a local socket
  - psycopg >= 3.1 and redis >= 4 for the health of database connections
options:
  name:
    description: The stack's name (its label C(io.clockwork.stack)).
    type: str
    required: true
  health:
    description:
      - Run the current release's connection checks, and return their reports in RV(health).
      - With V(false) nothing is run inside the containers.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description:
      - It only reads, so it runs in check mode too, alike.
  diff_mode:
    support: none
    description: It changes nothing, so there is nothing to show.
seealso:
  - module: clockwork.connections.stack
  - module: clockwork.connections.verify
"""

EXAMPLES = r"""
- name: The releases of the shop stack
  clockwork.connections.stack_info:
    name: shop
  register: shop

- name: Say which release runs, and whether anything drifted from it
  ansible.builtin.debug:
    msg: "release {{ shop.current }}; drift: {{ shop.drift | map(attribute='container') | list }}"

- name: Without running the checks
  clockwork.connections.stack_info:
    name: shop
    health: false
"""

RETURN = r"""
releases:
  description: The kept releases, oldest first, as they may be shown (secret values masked).
  returned: always
  type: list
  elements: dict
  contains:
    number:
      description: The release's number; numbers are never reused.
      type: int
      sample: 3
    time:
      description: When it was recorded, UTC.
      type: str
      sample: "2026-12-06T18:00:00Z"
    controller:
      description: C(user@host) of the controller whose run recorded it.
      type: str
    plan_digest:
      description: The sha256 of the plan that was applied.
      type: str
    target:
      description: C(docker) or C(swarm).
      type: str
    current:
      description: Whether this is the current release.
      type: bool
    containers:
      description:
        - Container name -> its C(resource), C(image), C(image_id), C(state), C(command), C(entrypoint), C(env)
          (secret values masked), C(ports), C(networks) (with their aliases), C(mounts) and C(labels).
      type: dict
    services:
      description: The Swarm target's services, by name, with C(image), C(env) (masked), C(replicas).
      type: dict
    databases:
      description:
        - Database connection -> C(to), C(engine), C(database), C(migrations) (each with C(kind), C(name),
          C(sha256) and C(applied_here), true when this release applied it), C(migrations_from) and C(snapshots).
      type: dict
    networks:
      description: The stack's networks, by name, with the settings the plan wanted (a rollback makes a gone one again).
      type: dict
    rolled_back_to:
      description: When a rollback made this release, the release it returned to (then also C(restored_data)).
      type: int
      returned: when a rollback made it
    restored_data:
      description: Whether that rollback also restored the databases (O(clockwork.connections.stack#module:restore_data)).
      type: bool
      returned: when a rollback made it
    missing_images:
      description:
        - Container name -> the image ID it ran, for each image the engine no longer has; a return to this
          release needs them.
      type: dict
current:
  description: The number of the current release; null when the stack has none.
  returned: always
  type: int
  sample: 3
missing:
  description: Releases the index names whose file is gone.
  returned: always
  type: list
  elements: int
drift:
  description:
    - How the stack as it runs differs from the current release, per container (or service on Swarm); empty when
      it runs as recorded. C(changes) names fields, such as C(image (release ..., running ...)), C(state (...)),
      C(env DATABASE_URL), C(label ...), C(config.Cmd), C(host_config.PortBindings), C(network ...), C(missing),
      C(not in the release).
  returned: always
  type: list
  elements: dict
  sample:
    - {container: frontend, changes: ["env MODE", "config.Cmd"]}
health:
  description: One report per check of the current release (C(connection), C(kind), C(ok), C(msg)); empty when
    O(health=false) or there is no release. C(ok) is null for a check that was not run.
  returned: always
  type: list
  elements: dict
healthy:
  description: Whether every check that ran passed; null when none ran.
  returned: always
  type: bool
release_images:
  description: The images in the Docker engine that hold the stack's release records (one per kept release and
    an index).
  returned: always
  type: str
  sample: clockwork-releases:shop.*
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clockwork.connections.plugins.module_utils.module_runner import run_module
from ansible_collections.clockwork.connections.plugins.module_utils.releases.info import stack_info

ARGUMENT_SPEC = dict(name=dict(type="str", required=True), health=dict(type="bool", default=True))


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)

    def info(engine):
        # In check mode `engine` is a dry run's (module_runner): this only reads, so it answers alike.
        result, secrets = stack_info(engine, module.params["name"], health=module.params["health"])
        module.no_log_values.update(secrets)   # nothing printed after this carries one either
        return result

    run_module(module, info)


if __name__ == "__main__":
    main()
