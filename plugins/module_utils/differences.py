# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One way to say what differs between what is wanted and what is there, for containers,
networks, services and connections alike: a list of short reasons from a table of rules,
and a before/after diff with every secret masked (previous values too, by name)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.clockwork.connections.plugins.module_utils.masking import masked_command, masked_env


def value(key):
    """The setting differs as a whole: its name is the reason."""
    return key, lambda wanted, actual: key if wanted[key] != actual[key] else None


def entries(key, title=None):
    """A mapping: the reason names the entries that differ (`env DATABASE_URL, REDIS_HOST`)."""
    def reason(wanted, actual):
        names = sorted(k for k in set(wanted[key]) | set(actual[key]) if wanted[key].get(k) != actual[key].get(k))
        return "%s %s" % (title or key, ", ".join(names)) if names else None
    return key, reason


def transition(key):
    """The reason says the old and the new value: `replicas 1 -> 3`."""
    return key, lambda wanted, actual: "%s %s -> %s" % (key, actual[key], wanted[key]) \
        if wanted[key] != actual[key] else None


def titled(key, title):
    """As value(), said in other words."""
    return key, lambda wanted, actual: title if wanted[key] != actual[key] else None


def member_of(key, actual_key):
    """Compared only when wanted: the wanted value must be among the actual ones (a subnet the
    engine chose is not compared)."""
    return key, lambda wanted, actual: key if wanted[key] and wanted[key] not in actual[actual_key] else None


def differences(wanted, actual, rules):
    """The reasons, in the rules' order, for every setting that differs."""
    reasons = []
    for _key, reason in rules:
        said = reason(wanted, actual)
        if said:
            reasons.append(said)
    return reasons


def masked_view(settings, secret_env=()):
    """Settings as a diff may show them: env values masked by masking.py's rule (by name too,
    so that a previous value no declaration holds any more is never shown), and secret flags
    of a command (`--requirepass x`)."""
    if not settings:
        return settings
    shown = dict(settings)
    if "env" in shown:
        shown["env"] = masked_env(shown["env"], secret_env)
    for key in ("command", "args"):
        if shown.get(key):
            shown[key] = masked_command(shown[key])
    return shown


def masked_diff(before, after, secret_env=()):
    """{"before", "after"} for Ansible's --diff, both masked."""
    return {"before": masked_view(before, secret_env) or {}, "after": masked_view(after, secret_env) or {}}
