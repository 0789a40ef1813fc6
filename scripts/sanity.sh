#!/usr/bin/env bash
# ansible-test must run from a path ending in ansible_collections/<ns>/<name>, not
# through a symlink: copy the tracked tree into a scratch directory and run there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# A venv of its own: ansible-test pins its sanity tools (pylint, mypy, ...), which
# must not fight ansible-lint's in .venv. Its --venv mode downloads pip from a host
# that cannot be reached here, so it runs --local inside this venv instead.
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
scratch=$(mktemp -d /tmp/clockwork-sanity.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
dest="$scratch/ansible_collections/clockwork/connections"
mkdir -p "$dest"
git -C "$root" ls-files -z --cached --others --exclude-standard \
  | grep -zv '^collections/' | (cd "$root" && xargs -0 cp --parents -t "$dest")
cd "$dest"
git init -q && git add -A   # ansible-test asks git which files belong to the collection
PATH="$venv/bin:$PATH" ansible-test sanity --python "$(python3 -c 'import sys;print("%d.%d"%sys.version_info[:2])')" \
  --local --requirements --color no "$@" plugins/
