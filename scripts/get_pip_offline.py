"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap pip in its
sanity venvs. That download host cannot be reached here, so: bootstrap pip with the
standard library's ensurepip, then let pip install what ansible-test asked for (PyPI)."""
import ensurepip
import os
import subprocess
import sys

environment = dict(os.environ)  # ensurepip points PIP_CONFIG_FILE at /dev/null in-process
ensurepip.bootstrap()
wanted = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--quiet"] + wanted, env=environment))
