#!/usr/bin/env python3
"""Build the local test images (PostgreSQL, MariaDB, Redis, nginx) with no container registry.

A Debian root file system is made with debootstrap from Debian's packages only and
turned into a base image with `docker import`; each service image is a small
Dockerfile on top of it. Every image carries the label ``io.clockwork.recipe`` with
a hash of its recipe: an image whose label matches is reused, a changed recipe
rebuilds. Usage: ``build.py [--force]``.
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

HERE = Path(__file__).resolve().parent
SUITE = "bookworm"
RECIPE_LABEL = "io.clockwork.recipe"
BASE_TAG = "clockwork-test/base:" + SUITE
# image directory -> local tag; tests/images/local-images.yml maps playbook images to these.
SERVICES = {
    "postgres": "clockwork-test/postgres:15",
    "mariadb": "clockwork-test/mariadb:10.11",
    "redis": "clockwork-test/redis:7",
    "nginx": "clockwork-test/nginx:1.22",
}


def recipe_hash(*parts):
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path) and part.is_dir():
            for path in sorted(p for p in part.rglob("*") if p.is_file()):
                digest.update(str(path.relative_to(part)).encode())
                digest.update(path.read_bytes())
        elif isinstance(part, Path):
            digest.update(part.read_bytes())
        else:
            digest.update(str(part).encode())
    return digest.hexdigest()[:16]


def current_recipe(client, tag):
    try:
        return (client.images.get(tag).labels or {}).get(RECIPE_LABEL)
    except docker.errors.ImageNotFound:
        return None


def debian_mirror():
    """The mirror this machine's apt uses; read at build time, never written down."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0] == "deb":
                return fields[1]
    sys.exit("build.py: no Debian mirror found in this machine's apt sources")


def ensure_debootstrap():
    """On a fresh Debian machine, as root, install debootstrap like the engine bootstrap does."""
    if shutil.which("debootstrap"):
        return
    if os.geteuid() != 0 or not os.path.exists("/etc/debian_version"):
        sys.exit("build.py: debootstrap is missing; install it (Debian package debootstrap) and rerun")
    print("build.py: installing the Debian package debootstrap", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"], check=True, env=env, stdout=subprocess.DEVNULL)


def build_base(recipe):
    packages = [
        line.strip() for line in (HERE / "base/packages.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    ensure_debootstrap()
    with tempfile.TemporaryDirectory(prefix="clockwork-rootfs-") as rootfs:
        print("build.py: debootstrap %s with %s" % (SUITE, ", ".join(packages)), flush=True)
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=" + ",".join(packages),
             SUITE, rootfs, debian_mirror()],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        if result.returncode != 0:
            # The log may name the mirror: show only the end, without URLs.
            tail = [l for l in result.stdout.splitlines()[-15:] if "://" not in l]
            sys.exit("build.py: debootstrap failed:\n" + "\n".join(tail))
        # No mirror address and no package caches in the image.
        for leftover in ("etc/apt/sources.list", "var/cache/apt/archives", "var/lib/apt/lists"):
            subprocess.run(["rm", "-rf", os.path.join(rootfs, leftover)], check=True)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "--change", "LABEL %s=%s" % (RECIPE_LABEL, recipe),
             "--change", 'CMD ["bash"]', "-", BASE_TAG],
            stdin=tar.stdout, stdout=subprocess.DEVNULL, check=True)
        if tar.wait() != 0:
            sys.exit("build.py: tar of the root file system failed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args()
    client = docker.from_env()
    started = time.monotonic()
    built = []

    base_recipe = recipe_hash(SUITE, HERE / "base", Path(__file__))
    if args.force or current_recipe(client, BASE_TAG) != base_recipe:
        build_base(base_recipe)
        built.append(BASE_TAG)
    for directory, tag in SERVICES.items():
        recipe = recipe_hash(base_recipe, HERE / directory)
        if not args.force and current_recipe(client, tag) == recipe:
            continue
        client.images.build(path=str(HERE / directory), tag=tag, rm=True, forcerm=True,
                            buildargs={"BASE": BASE_TAG}, labels={RECIPE_LABEL: recipe})
        built.append(tag)
    elapsed = time.monotonic() - started
    if built:
        print("build.py: built %s in %.1fs" % (", ".join(built), elapsed))
    else:
        print("build.py: local images up to date (%s)" % ", ".join(SERVICES.values()))


if __name__ == "__main__":
    main()
