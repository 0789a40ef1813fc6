#!/usr/bin/env bash
# make showcase: deploy the seed's showcase stack, then prove it with --tags assert.
# Official images when they are present or a registry answers; else the local test images.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export ANSIBLE_CONFIG="$root/ansible.cfg"
images=()
if ! (for image in postgres:15 redis:7 nginx:1.27; do
        docker image inspect "$image" >/dev/null 2>&1 || timeout 60 docker pull -q "$image" >/dev/null 2>&1 || exit 1
      done); then
  echo "showcase: the official images cannot be pulled here; using the local test images"
  .venv/bin/python tests/images/build.py
  images=(-e @tests/images/local-images.yml)
fi
.venv/bin/ansible-playbook playbooks/showcase.yml "${images[@]}" "$@"
case " $* " in
  *clockwork_state=absent*) ;;
  *) .venv/bin/ansible-playbook playbooks/showcase.yml "${images[@]}" --tags assert "$@" ;;
esac
