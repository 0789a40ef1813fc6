#!/usr/bin/env bash
# make docs: lint the plugin docs and the changelog fragments, then build the HTML site into
# docs/build/html (antsibull-docs writes one RST page per module, filter and role, Sphinx the HTML).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.venv/bin"
export PATH="$bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$root/collections" ANSIBLE_CONFIG="$root/ansible.cfg"
cd "$root"
antsibull-changelog lint
# The linter wants the collection at a path ending in ansible_collections/clockwork/connections.
(cd collections/ansible_collections/clockwork/connections && antsibull-docs lint-collection-docs --plugin-docs .)
rst="$root/docs/build/rst"
rm -rf "$rst" "$root/docs/build/html"
mkdir -p -m 0700 "$rst"   # antsibull-docs wants a directory only its owner can write
antsibull-docs --config-file docs/antsibull-docs.cfg collection --use-current --squash-hierarchy \
  --dest-dir "$rst" clockwork.connections
sphinx-build -q -b html -c docs -W --keep-going "$rst" "$root/docs/build/html"
echo "docs: docs/build/html/index.html"
