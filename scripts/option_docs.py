#!/usr/bin/env python3
"""Write the container options' documentation from the option table (plugins/module_utils/options/):
the doc fragment clockwork.connections.container_options (the container module's options), and the
container part of the stack module's `resources` suboptions (between its BEGIN and END lines).
tests/unit/test_options_docs.py fails while either differs from the table: rerun this then.

    .venv/bin/python scripts/option_docs.py            write both
    .venv/bin/python scripts/option_docs.py --check    exit 1 when either is out of date
    .venv/bin/python scripts/option_docs.py --markdown print the table in Markdown (for README)
    .venv/bin/python scripts/option_docs.py --fragment the doc fragment only (stack.py is another's to write)
"""
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "collections"))
from ansible_collections.clockwork.connections.plugins.module_utils.options.registry import TABLE  # noqa: E402
from ansible_collections.clockwork.connections.plugins.module_utils.options.table import SwarmField  # noqa: E402

FRAGMENT_PATH = os.path.join(ROOT, "plugins", "doc_fragments", "container_options.py")
STACK_PATH = os.path.join(ROOT, "plugins", "modules", "stack.py")
BEGIN = "      # BEGIN container options: written by scripts/option_docs.py from the option table; do not edit\n"
END = "      # END container options\n"
HEADER = '''# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Written by scripts/option_docs.py from the option table (plugins/module_utils/options/): do not edit.

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    """The container resource's options, for the container module."""

    DOCUMENTATION = r"""
'''


def _plain(text):
    """O(x) names an option of the container module: plain code in the stack's, where it is nested."""
    return re.sub(r"O\(([^)=]+)(=[^)]*)?\)", lambda m: "C(%s%s)" % (m.group(1), m.group(2) or ""), text)


def _description(option, stack):
    lines = [option.doc] + list(option.details)
    if option.swarm is None and not any("Not on Swarm" in line for line in lines):
        lines.append("Not on Swarm: engine swarm of M(clockwork.connections.stack) refuses it before any change.")
    if isinstance(option.swarm, SwarmField):
        lines.append("Engine swarm of M(clockwork.connections.stack): the service's C(%s) (not declared, that field is "
                     "left as it is)." % option.swarm)
    if option.compose:
        lines.append("Compose: %s." % ", ".join("C(%s)" % key for key in option.compose))
    return [_plain(line) for line in lines] if stack else lines


def _entry(spec, description, relaxed):
    entry = {"description": description, "type": spec.get("type", "str")}
    for field in ("elements", "choices", "default", "required"):
        if field in spec and not (relaxed and field in ("choices", "default", "required")):
            entry[field] = spec[field]
    return entry


def documented(stack=False):
    """The options' documentation as a dict; `stack`: as the stack module's resources take them
    (no default, choices or required at the top level: the plan applies those)."""
    options = {}
    for option in TABLE:
        entry = _entry(option.spec, _description(option, stack), stack)
        if option.spec.get("options"):
            entry["suboptions"] = dict(
                (key, _entry(sub, _plain(option.subdocs.get(key, key)) if stack else option.subdocs.get(key, key),
                             False))
                for key, sub in option.spec["options"].items())
        options[option.name] = entry
    return options


def _yaml(data, indent):
    text = yaml.safe_dump(data, default_flow_style=False, sort_keys=False, width=110)
    return "".join(" " * indent + line if line.strip() else line for line in text.splitlines(True))


def fragment_text():
    return HEADER + _yaml({"options": documented()}, 0) + '"""\n'


def stack_text(current):
    """stack.py with its container options block written anew."""
    head, _sep, rest = current.partition(BEGIN)
    _old, sep, tail = rest.partition(END)
    if not sep:
        raise SystemExit("%s has no %r line" % (STACK_PATH, BEGIN.strip()))
    return head + BEGIN + _yaml(documented(stack=True), 6) + END + tail


def markdown_table():
    """The option table as README shows it: each option, its Compose keys, what a change does, Swarm, grant."""
    rows = ["| option | Compose | a change | engine swarm | grant of the host |", "|---|---|---|---|---|"]
    for option in TABLE:
        change = {"value": "recreate", "entries": "recreate", None: "not compared"}[option.compare]
        if option.update:
            change = "in place (`docker update`)"
        if option.name == "networks":
            change = "attached without a recreate"
        swarm = "the service's `%s`" % option.swarm if option.swarm else "refused"
        rows.append("| `%s` | %s | %s | %s | %s |" % (
            option.name, ", ".join("`%s`" % key for key in option.compose) or "-", change, swarm, option.grant or "-"))
    return "\n".join(rows) + "\n"


def main(argv):
    if "--markdown" in argv:
        sys.stdout.write(markdown_table())
        return 0
    with open(STACK_PATH) as handle:
        stack = handle.read()
    wanted = {FRAGMENT_PATH: fragment_text(), STACK_PATH: stack_text(stack)}
    if "--fragment" in argv:
        del wanted[STACK_PATH]
    stale = []
    for path, text in wanted.items():
        current = open(path).read() if os.path.exists(path) else None
        if current != text:
            stale.append(path)
            if "--check" not in argv:
                with open(path, "w") as handle:
                    handle.write(text)
    if "--check" in argv and stale:
        print("out of date (run scripts/option_docs.py): %s" % ", ".join(os.path.relpath(p, ROOT) for p in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
