# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    # Options and attributes every connection module shares.
    DOCUMENTATION = r"""
options:
  from_resource:
    description:
      - The container that uses the connection and receives its contribution (env, mounts, networks).
      - It may not exist yet; connections run before it is created so their contributions can be merged in.
    type: str
    required: true
    aliases: [from]
  to_resource:
    description:
      - The resource the connection points at. It must exist and belong to O(stack), except in check
        mode, where a missing one is reported instead.
    type: str
    required: true
    aliases: [to]
  description:
    description:
      - What the connection is for, in plain words. Fields left out can be completed from it
        (see the collection's README on field completion).
    type: str
  stack:
    description: The stack that owns what the connection creates (label C(io.clockwork.stack)).
    type: str
    default: default
attributes:
  check_mode:
    support: full
    description: Nothing is created, attached or executed; the result says what would be done.
  diff_mode:
    support: full
    description: Shows what the connection owns before and after.
notes:
  - Fields left out are completed from O(description) where the module can complete them (see its C(llm)
    option), and the result's C(completion) says which, and by whom (C(llm) or C(local)). Values the task
    gives always win.
  - Every completed value, from a model, the local completer or the lock file, passes a policy before it is
    used (a template keeps C({host}) and C({port}), a mount path is absolute and no system path, a volume or
    network is new or the stack's, names follow Docker's rules); a model answer that fails it is asked again,
    then completed locally (C(fallback) in C(completion)); a lock entry that fails it is refused.
  - The result's C(contribution) is meant for M(clockwork.connections.container)'s O(clockwork.connections.container#module:contributions),
    and its C(contribution.checks) for M(clockwork.connections.verify).
"""

    # Options of the connection modules whose fields a description can complete.
    COMPLETION = r"""
options:
  llm:
    description:
      - The OpenAI-compatible endpoint that completes missing fields from a connection's C(description). Without it,
        E(CLOCKWORK_LLM_BASE_URL), E(CLOCKWORK_LLM_MODEL) and E(CLOCKWORK_LLM_API_KEY) (or E(OPENAI_BASE_URL)
        and E(OPENAI_API_KEY)) apply; with no endpoint at all, a deterministic local completer fills them.
      - Can be set for every connection module at once through C(module_defaults) and the action group
        C(group/clockwork.connections.completion).
    type: dict
    suboptions:
      base_url:
        description: Base URL, such as C(https://api.openai.com/v1) or C(http://localhost:11434/v1).
        type: str
      model:
        description: Model name.
        type: str
      api_key:
        description: API key, sent as a bearer token. Never shown.
        type: str
      timeout:
        description: Seconds one request may take.
        type: int
  lock_file:
    description:
      - Where completions are recorded and reused, so that reruns make no model call and change nothing.
        Defaults to E(CLOCKWORK_LOCK_FILE), else C(clockwork.lock.yml) beside the playbook. Commit it.
    type: path
"""

    RETURN = r"""
connection:
  description: The connection's name, as used in messages.
  returned: always
  type: str
  sample: network api -> redis
actions:
  description: What was done, or would be done in check mode.
  returned: always
  type: list
  elements: str
completion:
  description:
    - The fields completed from the description, by whom (C(llm) or C(local)), and whether the lock file had them.
    - C(fallback) says why a model's answer was not used and the local completer filled the fields instead;
      C(password) says where a database password comes from (a reference to the C(to) resource's env, or
      generated locally), never its value.
  returned: when fields were completed
  type: dict
  sample: {fields: {network_name: backend-network, driver: bridge}, source: local, from_lock: true}
contribution:
  description: What the connection gives its C(from) container.
  returned: always
  type: dict
  contains:
    env:
      description: Environment variables for C(from).
      type: dict
    secret_env:
      description: Names of env variables whose values are secret (masked in diffs).
      type: list
      elements: str
    mounts:
      description: Mounts for C(from).
      type: list
      elements: dict
    networks:
      description: Networks for C(from) to join, with aliases.
      type: list
      elements: dict
    checks:
      description: Checks that prove the connection works, for M(clockwork.connections.verify).
      type: list
      elements: dict
"""
