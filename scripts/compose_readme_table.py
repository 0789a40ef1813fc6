#!/usr/bin/env python3
"""Write README's table of the Compose service keys the container resource has (between its
markers) from the option table, as plugin_utils/compose/options.py readme_table() gives it.
tests/unit/test_compose_options.py fails while README's table differs from it: rerun this then.

    .venv/bin/python scripts/compose_readme_table.py          write README's table
    .venv/bin/python scripts/compose_readme_table.py --check  exit 1 when it is out of date
    .venv/bin/python scripts/compose_readme_table.py --print  print the table (for a README without the markers yet)
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "collections"))
from ansible_collections.clockwork.connections.plugins.plugin_utils.compose.options import (  # noqa: E402
    README_BEGIN, README_END, readme_table)

README = os.path.join(ROOT, "README.md")


def main(argv):
    table = readme_table()
    if "--print" in argv:
        sys.stdout.write(table)
        return 0
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    if README_BEGIN not in text or README_END not in text:
        sys.stderr.write("README.md has no %s ... %s lines: paste the table (--print) where it goes\n"
                         % (README_BEGIN, README_END))
        return 1
    start, end = text.index(README_BEGIN), text.index(README_END) + len(README_END) + 1
    written = text[:start] + table + text[end:]
    if "--check" in argv:
        if written != text:
            sys.stderr.write("README.md's table of compose keys is out of date: run scripts/compose_readme_table.py\n")
            return 1
        return 0
    if written != text:
        with open(README, "w", encoding="utf-8") as handle:
            handle.write(written)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
