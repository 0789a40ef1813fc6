"""A fresh machine's pyenv: sanity's import test finds its target Pythons by itself.

On a fresh machine of this kind pyenv's global setting names one version only, so the shim
`python3.8` on PATH fails ("pyenv: python3.8: command not found") although 3.8 is installed.
ansible-test makes each target's venv with the first `pythonX.Y` on PATH, so scripts/sanity.sh
must put the interpreters it found there first. This test runs the import test on the oldest
and the newest supported target Python from a shell whose pyenv version is the default alone.
"""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "compat"))
from pythons import find as find_python  # noqa: E402

OLD, NEW = "3.8", "3.13"   # ansible-core 2.19's oldest and newest target Pythons


def _default_pyenv_version():
    """The first version pyenv's global setting names (what a fresh machine has alone), or None."""
    if not shutil.which("pyenv"):
        return None
    out = subprocess.run(["pyenv", "global"], capture_output=True, text=True, timeout=30)
    names = out.stdout.split()
    return names[0] if out.returncode == 0 and names else None


def test_sanity_import_on_old_and_new_python_with_default_pyenv_only():
    for version in (OLD, NEW):
        if not find_python(version):
            pytest.fail("no Python %s on this machine: this kind keeps 3.8 to 3.13 in ~/.pyenv/versions" % version)
    env = dict(os.environ, CLOCKWORK_SANITY_PYTHONS="%s %s" % (OLD, NEW))
    default = _default_pyenv_version()
    if default:
        env["PYENV_VERSION"] = default
        # The fresh machine's state, reproduced: the shim for the old version does not run.
        shim = subprocess.run(["python" + OLD, "-c", "pass"], env=env, capture_output=True, text=True)
        assert shim.returncode != 0, "python%s runs with PYENV_VERSION=%s alone: not a fresh machine's state" % (
            OLD, default)
    out = subprocess.run([os.path.join(ROOT, "scripts", "sanity.sh"), "--test", "import"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    output = out.stdout + out.stderr
    assert out.returncode == 0, output[-3000:]
    for version in (OLD, NEW):
        assert 'Running sanity test "import" on Python %s' % version in output, output[-3000:]
    assert "command not found" not in output
