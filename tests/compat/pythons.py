#!/usr/bin/env python3
"""Find CPython X.Y interpreters on this machine, for the compatibility run and sanity.

pyenv's versions come first (this machine kind keeps 3.8 to 3.13 in ~/.pyenv/versions),
then pythonX.Y on PATH. A candidate counts only when it runs and says it is X.Y: a pyenv
shim for a version that is not active is on PATH but fails.

Usage: ``pythons.py 3.8 3.9 ...`` prints ``<version> <path>`` for each one found.
"""
import glob
import os
import re
import shutil
import subprocess
import sys


def _runs_as(path, version):
    try:
        out = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def find(version):
    """The path of a working python<version>, or None."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    releases = []
    for path in glob.glob(os.path.join(root, "versions", version + ".*", "bin", "python" + version)):
        patch = re.match(re.escape(version) + r"\.(\d+)$", os.path.basename(os.path.dirname(os.path.dirname(path))))
        if patch:  # final releases only, not 3.13.0a1 or 3.13-dev
            releases.append((int(patch.group(1)), path))
    candidates = [path for _patch, path in sorted(releases, reverse=True)]
    candidates += [p for p in (shutil.which("python" + version), "/usr/bin/python" + version) if p]
    for path in candidates:
        if os.path.exists(path) and _runs_as(path, version):
            return path
    return None


if __name__ == "__main__":
    for wanted in sys.argv[1:]:
        found = find(wanted)
        if found:
            print(wanted, found)
