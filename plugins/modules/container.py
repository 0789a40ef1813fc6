#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: container
short_description: Converge one Docker container of a clockwork stack
version_added: 0.1.0
description:
  - Creates, recreates, starts, stops or removes a Docker container through the Docker SDK for Python.
  - The wanted and the running configuration are normalised (env order, port forms, image by id,
    defaults the image adds) and compared; a matching container is left alone with the same id,
    a drifted one is recreated and the diff says which settings differ.
  - Every container carries the labels C(io.clockwork.stack) and C(io.clockwork.resource). A container
    with the same name that the stack does not own is refused, never taken over or removed.
  - Networks attached later by connections (for example M(clockwork.connections.network_connection))
    are kept when the container is recreated.
author:
  - Clockwork Connections developers (@clockwork-connections)
requirements:
  - docker (the Docker SDK for Python) >= 7.0
extends_documentation_fragment:
  - clockwork.connections.container_options
options:
  name:
    description: Container name; also the resource name in the stack.
    type: str
    required: true
  state:
    description:
      - C(started) creates the container if needed and makes sure it runs.
      - C(present) creates it if needed and leaves its run state alone.
      - C(stopped) creates it if needed and makes sure it is stopped.
      - C(absent) stops it as C(docker stop) does (its stop signal, then SIGKILL after 10 seconds) and removes
        it, only if the stack owns it.
    type: str
    choices: [present, started, stopped, absent]
    default: started
  wait:
    description: With O(state=started), wait until the container runs, and is healthy if it has a healthcheck.
    type: bool
    default: true
  timeout:
    description: Seconds to wait; on time-out or exit the task fails with the last log lines.
    type: int
    default: 60
  contributions:
    description:
      - Contributions returned by connection modules (their C(contribution) result), merged into
        O(env), O(mounts) and O(networks). Two that disagree are an error naming both.
    type: list
    elements: dict
    default: []
  stack:
    description: The stack that owns the container (label C(io.clockwork.stack)).
    type: str
    default: default
attributes:
  check_mode:
    support: full
    description: Nothing is created, changed or pulled; the result says what would be done.
  diff_mode:
    support: full
    description: Shows the normalised configuration before and after; secret env values are masked.
"""

EXAMPLES = r"""
- name: Run Redis, reachable as redis on the stack network
  clockwork.connections.container:
    name: redis
    image: redis:7
    ports: ["6379"]
    networks:
      - name: shop-default
        aliases: [redis]
    stack: shop

- name: An API with a healthcheck and a config file, merging a connection's contribution
  clockwork.connections.container:
    name: api
    image: nginx:1.27
    ports: ["8000", "127.0.0.1:8080:8000"]
    mounts:
      - type: bind
        source: /srv/api/config.json
        target: /etc/app/config.json
        read_only: true
    healthcheck:
      test: curl -fsS http://localhost:8000/health
      interval: 2s
    contributions:
      - "{{ db_connection.contribution }}"
    stack: shop

- name: Remove it (only if the stack owns it)
  clockwork.connections.container:
    name: api
    state: absent
    stack: shop
"""

RETURN = r"""
container:
  description: The container after the run (in check mode, as it is now).
  returned: always
  type: dict
  contains:
    id:
      description: Container id.
      type: str
    name:
      description: Container name.
      type: str
    image:
      description: Image reference the container was created from.
      type: str
    image_id:
      description: Image id.
      type: str
    state:
      description: C(running), C(created), C(exited) or C(absent).
      type: str
    health:
      description: C(healthy), C(unhealthy), C(starting), or null without a healthcheck.
      type: str
    ports:
      description: Declared container ports, like C(8000/tcp).
      type: list
      elements: str
    exposed_ports:
      description: Ports the container exposes, its image's included.
      type: list
      elements: str
    networks:
      description: Network name to the container's IP address on it.
      type: dict
  sample:
    id: 3f2a9c...
    name: api
    state: running
    health: healthy
    ports: [8000/tcp]
    networks: {shop-default: 172.18.0.3}
actions:
  description: What was done or would be done, in order (create, recreate, attach NETWORK, start, stop, remove).
  returned: always
  type: list
  elements: str
  sample: [recreate, start]
reasons:
  description: The settings that drifted and made a recreation necessary.
  returned: always
  type: list
  elements: str
  sample: [env LOG_LEVEL]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clockwork.connections.plugins.module_utils.apply.container import (
    ContainerConverger, reserved_label_problem, restart_to_read)
from ansible_collections.clockwork.connections.plugins.module_utils.apply.container_spec import (
    CONTAINER_ARGS, ContainerSpec, describe)
from ansible_collections.clockwork.connections.plugins.module_utils.contribution import (
    Contribution, merge)
from ansible_collections.clockwork.connections.plugins.module_utils.masking import env_secrets
from ansible_collections.clockwork.connections.plugins.module_utils.module_runner import (
    STACK_ARG, run_module)


def main():
    argument_spec = dict(CONTAINER_ARGS, contributions=dict(type="list", elements="dict", default=[]))
    argument_spec.update(STACK_ARG)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("state", "present", ["image"]), ("state", "started", ["image"]),
                                        ("state", "stopped", ["image"])])
    if module.params.get("build"):
        # No action plugin reads a build context on the controller for this module.
        module.fail_json(msg="container %s: build: the container module builds no image; declare the resource in a "
                             "stack (clockwork.connections.stack), whose action reads the context on the controller"
                         % module.params["name"])
    problem = reserved_label_problem(module.params["name"], module.params["labels"])
    if problem:
        module.fail_json(msg=problem)   # before the engine is reached: nothing is changed

    def converge(engine):
        params = dict(module.params)
        contributions = [Contribution.from_dict(c) for c in params.pop("contributions")]
        env, mounts, networks, secret_env = merge(
            params["env"], params["mounts"], params["networks"], contributions)
        params.update(env=env, mounts=mounts, networks=networks)
        spec = ContainerSpec(params, params["stack"])
        spec.secret_env = set(secret_env)
        # In check mode `engine` is a dry run's (module_runner): the same calls, none made. What is
        # returned of the container is then what it is now, not the dry run's forecast of it.
        now = describe(engine, spec.name) if module.check_mode else None
        outcome = ContainerConverger(engine).converge(spec)
        restart_to_read(engine, spec.name, outcome, sorted(set(c.restart for c in contributions if c.restart)),
                        spec.state)
        result = dict(changed=outcome["changed"], container=now or outcome["container"],
                      actions=outcome["actions"], reasons=outcome["reasons"])
        if module._diff:
            result["diff"] = outcome["diff"]
        return result

    secrets = env_secrets(module.params["env"])
    for contribution in module.params["contributions"]:
        secrets |= env_secrets((contribution or {}).get("env"))
    run_module(module, converge, secrets)


if __name__ == "__main__":
    main()
