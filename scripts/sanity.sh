#!/usr/bin/env bash
# ansible-test must run from a path ending in ansible_collections/<ns>/<name>, not
# through a symlink: copy the tracked tree into a scratch directory and run there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# One run at a time on this machine: ansible-test keeps its tests' venvs in ~/.ansible/test/venv, each
# made by the first run that needs it, and `make test` runs sanity beside the integration tests, one of
# which (test_fresh_pythons.py) runs it too. The lock goes with this process and its children.
exec 9>/tmp/clockwork-sanity.lock
flock 9
# A venv of its own: ansible-test pins its sanity tools (pylint, mypy, ...), which
# must not fight ansible-lint's in .venv. Its --venv mode downloads pip from a host
# that cannot be reached here, so it runs in this venv (the origin host) instead.
venv="$root/.venv-sanity"
if [ ! -f "$venv/.installed" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$(grep '^ansible-core' "$root/requirements.txt")" \
    "$(grep '^docker' "$root/requirements.txt")"
  touch "$venv/.installed"
fi
pip_version=$("$venv/bin/python" -c 'import re, ansible_test._internal.python_requirements as r, inspect
print(re.search(r"pip=.([0-9.]+).", inspect.getsource(r)).group(1))')
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
[ -f "$cache" ] || install -D -m 0644 "$root/scripts/get_pip_offline.py" "$cache"

# Modules run on the target's Python: the multi-version tests (compile, import) run on every
# Python this ansible-core supports that the machine has (tests/compat/pythons.py finds them);
# everything else once, on the controller.
controller=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
read -r -a supported < <("$venv/bin/python" -c 'from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS as v
print(" ".join(v))')
# CLOCKWORK_SANITY_PYTHONS="3.8 3.13" narrows the run to those target Pythons (tests use it).
[ -z "${CLOCKWORK_SANITY_PYTHONS:-}" ] || read -r -a supported <<<"$CLOCKWORK_SANITY_PYTHONS"
scratch=$(mktemp -d /tmp/clockwork-sanity.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# ansible-test makes each target's venv with the first `pythonX.Y` on PATH, whatever path
# --target-python names. On PATH a pyenv shim for a version that pyenv's global setting does
# not name fails ("pyenv: python3.8: command not found"): put the interpreters found first.
pythons="$scratch/pythons"
mkdir -p "$pythons"
targets=() covered=() missing=()
for version in "${supported[@]}"; do
  if [ "$version" = "$controller" ]; then
    path="$venv/bin/python"
  else
    path=$("$venv/bin/python" "$root/tests/compat/pythons.py" "$version" | cut -d' ' -f2)
    [ -z "$path" ] || ln -s "$path" "$pythons/python$version"
  fi
  if [ -n "$path" ]; then
    targets+=(--target-python "$version@$path") covered+=("$version")
  else
    missing+=("$version")
  fi
done
record="$root/tests/output/compat/sanity.json"
[ $# -gt 0 ] || rm -f "$record"
if [ ${#missing[@]} -gt 0 ]; then
  echo "sanity: no Python ${missing[*]} on this machine (looked in pyenv's versions and on PATH):" \
    "compile and import not run for it; install it (for example \`pyenv install ${missing[0]}\`) to cover it" >&2
fi
dest="$scratch/ansible_collections/clockwork/connections"
mkdir -p "$dest"
git -C "$root" ls-files -z --cached --others --exclude-standard \
  | grep -zv '^collections/' | (cd "$root" && xargs -0 cp --parents -t "$dest")
cd "$dest"
git init -q && git add -A   # ansible-test asks git which files belong to the collection
PATH="$venv/bin:$pythons:$PATH" ansible-test sanity --controller "origin:python=$controller@$venv/bin/python" "${targets[@]}" \
  --requirements --color no "$@" plugins/

# What a full run covered, for the compatibility table (tests/compat/run.py checks README against it).
if [ $# -eq 0 ]; then
  mkdir -p "$(dirname "$record")"
  "$venv/bin/python" - "$record" "$controller" "${covered[@]}" <<'PY'
import json, sys
from ansible.release import __version__
with open(sys.argv[1], "w") as handle:
    json.dump({"ansible_core": __version__, "controller_python": sys.argv[2], "target_pythons": sys.argv[3:]}, handle)
PY
  echo "sanity: compile and import passed on Python ${covered[*]}"
fi
