# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a connection gives its `from` container: env, mounts, networks and checks.

Every connection module returns one `Contribution`; the container is then converged
with its declared settings plus all contributions merged. Two connections that want
different values for the same env var or mount target are a conflict naming both.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError


class Contribution(object):
    def __init__(self, connection, env=None, secret_env=None, mounts=None, networks=None,
                 checks=None, restart=None):
        self.connection = connection          # e.g. "network api -> redis"
        self.env = dict(env or {})
        self.secret_env = sorted(secret_env or [])  # env names whose values are secrets
        self.mounts = list(mounts or [])      # {type, source, target, read_only}
        self.networks = list(networks or [])  # {name, aliases}
        self.checks = list(checks or [])      # {kind, container, ...}: see apply/checks.py
        # Why a running `from` that is not recreated must restart (a file it reads at start got
        # new content), or None.
        self.restart = restart

    def as_dict(self):
        return {
            "connection": self.connection, "env": self.env, "secret_env": self.secret_env,
            "mounts": self.mounts, "networks": self.networks, "checks": self.checks,
            "restart": self.restart,
        }

    @classmethod
    def from_dict(cls, data):
        data = data or {}
        return cls(data.get("connection", "unnamed connection"), data.get("env"),
                   data.get("secret_env"), data.get("mounts"), data.get("networks"),
                   data.get("checks"), data.get("restart"))


def merge(declared_env, declared_mounts, declared_networks, contributions):
    """Merge contributions into a container's declared env, mounts and networks.

    Returns (env, mounts, networks, secret_env). The declared settings win over
    nothing silently: a contribution that disagrees with them, or with another
    contribution, raises ClockworkError naming both sides.
    """
    env = dict(declared_env or {})
    env_owner = dict((name, "the container's own env") for name in env)
    mounts = list(declared_mounts or [])
    mount_owner = dict((m["target"], "the container's own mounts") for m in mounts)
    networks = [dict(n) for n in declared_networks or []]
    secret_env = set()

    for contribution in contributions:
        for name, value in contribution.env.items():
            if name in env and env[name] != value:
                raise ClockworkError(
                    "env %s is set differently by %s and by %s"
                    % (name, env_owner[name], contribution.connection))
            env[name] = value
            env_owner.setdefault(name, contribution.connection)
        secret_env.update(contribution.secret_env)
        for mount in contribution.mounts:
            target = mount["target"]
            if target in mount_owner:
                existing = [m for m in mounts if m["target"] == target][0]
                if existing != mount:
                    raise ClockworkError(
                        "mount target %s is claimed differently by %s and by %s"
                        % (target, mount_owner[target], contribution.connection))
                continue
            mounts.append(mount)
            mount_owner[target] = contribution.connection
        for network in contribution.networks:
            same = [n for n in networks if n["name"] == network["name"]]
            if same:
                aliases = set(same[0].get("aliases") or []) | set(network.get("aliases") or [])
                same[0]["aliases"] = sorted(aliases)
            else:
                networks.append(dict(network))
    return env, mounts, networks, sorted(secret_env)
