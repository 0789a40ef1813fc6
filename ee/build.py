#!/usr/bin/env python3
"""Build the collection's execution environment (`make ee`) with no container registry.

1. The base image ``clockwork-ee/base:bookworm``: a Debian root file system made by debootstrap
   (ee/base-packages.txt plus bindep.txt's Debian packages), with no apt source, ``docker import``ed.
2. Wheels, downloaded on the host into ee/_build/wheels: the build has no package index, and
   every ``pip install`` of ansible-builder's Containerfile reads them (execution-environment.yml).
3. The collection as ``ansible-galaxy collection build`` makes it, installed in the image from
   ee/_build/collection; ansible-builder reads its meta/execution-environment.yml there.
4. ``ansible-builder build`` of execution-environment.yml (schema 3), with ``DOCKER_BUILDKIT=0``.

Each image carries the label ``io.clockwork.recipe`` with a hash of what made it: a matching
image is reused (a warm ``make ee`` only hashes). Usage: ``ee/build.py [--force]``.
"""
import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "ee"
OUT = HERE / "_build"
EE_FILE = ROOT / "execution-environment.yml"
BASE_TAG = "clockwork-ee/base:bookworm"
GUARD = "/usr/local/sbin/ee-packages"
VENV = "/opt/ee"
BUILD_LABEL = "io.clockwork.ee-build=true"   # execution-environment.yml puts it on every stage
# What ansible-builder 3's Containerfile pip-installs besides ansible-core and ansible-runner
# (containerfile.py, ee_schema.py): the builder stage's tools and the entrypoint's dumb-init.
BUILDER_TOOLS = ["bindep", "pyyaml", "packaging", "dumb-init==1.2.5"]
# pip download evaluates markers with the host's Python, not --python-version: what the image's
# 3.11.2 needs and a newer host does not (redis: async-timeout; python_full_version < "3.11.3").
MARKER_EXTRAS = ["async-timeout>=4.0.3"]
# Wheels for the image's Python (Debian bookworm's 3.11.2: markers compare the full version), whatever Python the host runs.
WHEEL_TARGET = ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11.2",
                "--abi", "cp311", "--abi", "abi3", "--abi", "none",
                "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
                "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_5_x86_64",
                "--platform", "linux_x86_64", "--platform", "any"]


def _load_images_module():
    """tests/images/build.py's recipe hashing, mirror lookup and debootstrap install."""
    spec = importlib.util.spec_from_file_location("clockwork_images", ROOT / "tests/images/build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


images = _load_images_module()


def run(argv, **kwargs):
    kwargs.setdefault("check", True)
    return subprocess.run(argv, **kwargs)


def image_tag():
    return yaml.safe_load(EE_FILE.read_text())["options"]["tags"][0]


def lines_of(path):
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def bindep_debian_packages():
    """bindep.txt's packages for Debian: those with no profile, or with platform:dpkg."""
    packages = []
    for line in lines_of(ROOT / "bindep.txt"):
        name, _, profiles = line.partition("[")
        selectors = profiles.rstrip("]").split()
        if not selectors or "platform:dpkg" in selectors or "platform:debian" in selectors:
            packages.append(name.strip())
    return packages


def build_base(recipe):
    packages = lines_of(HERE / "base-packages.txt") + bindep_debian_packages()
    images.ensure_debootstrap()
    mirror = images.debian_mirror()
    with tempfile.TemporaryDirectory(prefix="clockwork-ee-rootfs-") as rootfs:
        print("ee: debootstrap %s with %s" % (images.SUITE, ", ".join(packages)), flush=True)
        result = run(["debootstrap", "--variant=minbase", "--include=" + ",".join(packages),
                      images.SUITE, rootfs, mirror],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        if result.returncode != 0:
            tail = [line for line in result.stdout.splitlines()[-15:] if "://" not in line]
            sys.exit("ee: debootstrap failed:\n" + "\n".join(tail))
        for leftover in ("etc/apt/sources.list", "var/cache/apt/archives", "var/lib/apt/lists",
                         "var/log/bootstrap.log"):
            run(["rm", "-rf", os.path.join(rootfs, leftover)])
        # The mirror's host must be nowhere in the image: refuse to import a tree that names it.
        host = re.sub(r"^\w+://([^/]+).*$", r"\1", mirror)
        found = run(["grep", "-rlsI", "-F", host, os.path.join(rootfs, "etc"), os.path.join(rootfs, "var")],
                    stdout=subprocess.PIPE, text=True, check=False).stdout.split()
        if found:
            sys.exit("ee: the Debian mirror is named in %d file(s) of the root file system" % len(found))
        # Debian's system Python refuses ensurepip and pip installs (PEP 668): the EE's Python
        # is a venv of it, first on PATH (execution-environment.yml's python_path).
        run(["chroot", rootfs, "python3", "-m", "venv", VENV], stdout=subprocess.DEVNULL)
        shutil.copy(HERE / "ee-packages", rootfs + GUARD)
        os.chmod(rootfs + GUARD, 0o755)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        run(["docker", "import", "--change", "LABEL %s=%s" % (images.RECIPE_LABEL, recipe),
             "--change", "ENV LANG=C.UTF-8",
             "--change", "ENV PATH=%s/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" % VENV, "--change", 'CMD ["bash"]', "-", BASE_TAG],
            stdin=tar.stdout, stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            sys.exit("ee: tar of the root file system failed")


def wheel_requirements():
    dependencies = yaml.safe_load(EE_FILE.read_text())["dependencies"]
    return ([dependencies["ansible_core"]["package_pip"], dependencies["ansible_runner"]["package_pip"]]
            + BUILDER_TOOLS + MARKER_EXTRAS + lines_of(ROOT / "meta/ee-requirements.txt"))


def download_wheels(requirements):
    """pip download on the host (its own index settings), once per list of requirements."""
    wheels = OUT / "wheels"
    stamp = wheels / ".requirements"
    wanted = "\n".join(WHEEL_TARGET + requirements) + "\n"
    if stamp.exists() and stamp.read_text() == wanted:
        return
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    print("ee: downloading wheels: %s" % ", ".join(requirements), flush=True)
    result = run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                  "--dest", str(wheels)] + WHEEL_TARGET + requirements,
                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if result.returncode != 0:
        sys.exit("ee: pip download failed:\n" + "\n".join(result.stdout.splitlines()[-20:]))
    stamp.write_text(wanted)


def build_collection():
    """The collection tarball, and a hash of its members (a tarball's bytes carry times)."""
    target = OUT / "collection"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="clockwork-ee-collection-") as scratch:
        run([str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "build", "--output-path",
             scratch, str(ROOT)], stdout=subprocess.DEVNULL)
        built = next(Path(scratch).glob("*.tar.gz"))
        shutil.copy(built, target / "clockwork-connections.tar.gz")
    digest = hashlib.sha256()
    with tarfile.open(target / "clockwork-connections.tar.gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            digest.update(member.name.encode())
            if member.isfile():
                digest.update(tar.extractfile(member).read())
    return digest.hexdigest()[:16]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args()
    import docker  # the venv's Docker SDK, as tests/images/build.py uses it
    client = docker.from_env()
    started = time.monotonic()

    base_recipe = images.recipe_hash(images.SUITE, HERE / "base-packages.txt", HERE / "ee-packages",
                                     ROOT / "bindep.txt", Path(__file__))
    if args.force or images.current_recipe(client, BASE_TAG) != base_recipe:
        build_base(base_recipe)
    requirements = wheel_requirements()
    download_wheels(requirements)
    recipe = images.recipe_hash(base_recipe, EE_FILE, "\n".join(requirements), build_collection())
    tag = image_tag()
    if not args.force and images.current_recipe(client, tag) == recipe:
        print("ee: %s up to date (%.1fs)" % (tag, time.monotonic() - started))
        return
    print("ee: ansible-builder build of %s" % tag, flush=True)
    # The build context outside the tree: its generated YAML is no file of the collection to lint.
    with tempfile.TemporaryDirectory(prefix="clockwork-ee-context-") as context:
        result = run([str(Path(sys.executable).parent / "ansible-builder"), "build", "--file", str(EE_FILE),
                      "--context", os.path.join(context, "context"), "--container-runtime", "docker",
                      "--verbosity", "2",
                      "--extra-build-cli-args", "--force-rm --label %s=%s" % (images.RECIPE_LABEL, recipe)],
                     cwd=ROOT, env=dict(os.environ, DOCKER_BUILDKIT="0"),
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    # The build stages and the image this one replaced, now untagged: this build's leftovers only.
    for image in client.images.list(filters={"dangling": True, "label": BUILD_LABEL}):
        try:
            client.images.remove(image.id)
        except docker.errors.APIError:
            pass   # in use by a container, or removed concurrently
    if result.returncode != 0:
        sys.exit("ee: ansible-builder failed:\n" + "\n".join(result.stdout.splitlines()[-40:]))
    print("ee: built %s in %.1fs" % (tag, time.monotonic() - started))


if __name__ == "__main__":
    main()
