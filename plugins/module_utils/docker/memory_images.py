# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The memory engine's image builds, imports (POST /images/create?fromSrc=-) and saves (GET
/images/{name}/get, in Docker 20.10's layout: the release store's records, releases/shelf.py).
POST /build is answered as the classic builder of Docker
Engine 20.10 answers it, from the context tar it is sent. The Dockerfile is read (continuation
lines, stages, `--target`); the stage's base image must be there (nothing is pulled); FROM, ARG,
ENV, LABEL, EXPOSE, CMD, ENTRYPOINT, WORKDIR and USER make the image's configuration; a COPY or
ADD of a file the context lacks, and a `RUN false` or `RUN exit N`, fail as the step would (the
words, statuses and configurations are the live engine's: tests/integration/test_build.py). The image's id is a digest of what was sent:
the same context, Dockerfile and settings give the same id, as the builder's cache would."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import io
import json
import posixpath
import re
import tarfile

from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_base import (
    api_method, digest, plain, refuse)

_INSTRUCTION = re.compile(r"^\s*([A-Za-z]+)\s*(.*)$", re.DOTALL)
_FAILING = re.compile(r"^(?:false|exit\s+([1-9][0-9]*))$")


def dockerfile_lines(text):
    """(instruction upper-cased, its argument) of each line, continuations joined, comments left out."""
    lines, pending = [], ""
    for raw in text.splitlines():
        if not pending and raw.strip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line, pending = pending + raw, ""
        matched = _INSTRUCTION.match(line)
        if matched and line.strip():
            lines.append((matched.group(1).upper(), matched.group(2).strip()))
    return lines


def stages(lines):
    """[(name or None, base, [(instruction, argument)])] of a Dockerfile's lines."""
    found = []
    for instruction, argument in lines:
        if instruction == "FROM":
            words = [w for w in argument.split() if not w.startswith("--")]
            name = words[2].lower() if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append((name, words[0] if words else "", []))
        elif found:
            found[-1][2].append((instruction, argument))
    return found


def _pairs(argument):
    """KEY=value pairs of ENV or LABEL (quotes removed), or the old form `KEY value`."""
    if "=" not in argument.split(" ", 1)[0]:
        key, _sep, value = argument.partition(" ")
        return [(key, value.strip())]
    words = re.findall(r'(?:[^\s"]|"[^"]*")+', argument)
    return [(key, value.replace('"', "")) for key, value in (w.split("=", 1) for w in words if "=" in w)]


def _words(argument):
    """A CMD's or ENTRYPOINT's words: its JSON form, or its shell form run by /bin/sh -c."""
    try:
        words = json.loads(argument)
        if isinstance(words, list):
            return [str(w) for w in words]
    except ValueError:
        pass
    return ["/bin/sh", "-c", argument]


def answer_build(engine, fileobj=None, tag=None, dockerfile=None, target=None, buildargs=None, labels=None,
                 decode=False, **_options):
    """POST /build on the memory `engine`: the stream's chunks (decoded or as the engine sends them)."""
    data = fileobj.read()
    dockerfile = dockerfile or "Dockerfile"
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            files = dict((m.name, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers())
    except tarfile.TarError as exc:
        refuse(500, "failed to read the build context: %s" % exc, "/build")
    if dockerfile not in files:
        refuse(500, "Cannot locate specified Dockerfile: %s" % dockerfile, "/build")
    chosen = _stage(stages(dockerfile_lines(files[dockerfile].decode("utf-8", "replace"))), target)
    output = []
    config = _stage_config(engine, chosen, output, files)
    if "error" in config:
        return _stream(output + [config], decode)
    config["Labels"] = dict(config.get("Labels") or {}, **plain(labels or {})) or None
    image_id = "sha256:" + digest("build", hashlib.sha256(data).hexdigest(), dockerfile, target or "",
                                  sorted((buildargs or {}).items()), sorted((labels or {}).items()))
    engine.add_image(tag, config, image_id=image_id)
    output += [{"aux": {"ID": image_id}}, {"stream": "Successfully built %s\n" % image_id[7:19]},
               {"stream": "Successfully tagged %s\n" % tag}]
    return _stream(output, decode)


class ImageEngine(object):
    """POST /build of the memory engine (memory.py's MemoryEngine composes it)."""

    @api_method
    def build(self, path=None, tag=None, **options):
        """The SDK's APIClient.build, with a custom context (`fileobj`, a tar) only."""
        return answer_build(self, tag=tag, **options)

    @api_method
    def remove_image(self, image, force=False, noprune=False):
        """DELETE /images/{name}, as 20.10 answers it: an image a container (running or not) is made from is
        refused (409), a tag alone is untagged, an image by its id goes with its tags."""
        path = "/images/%s?force=%s&noprune=%s" % (image, force, noprune)
        with self._lock:
            attrs = self._find_image(image)
            if attrs is None:
                refuse(404, "No such image: %s" % image, path)
            users = [c for c in self._containers.values() if c["Image"] == attrs["Id"]]
            running = [c for c in users if c["State"]["Running"]]
            short = attrs["Id"].split(":")[-1][:12]
            if running or users and not force:
                refuse(409, "conflict: unable to delete %s (%s) - image is being used by %s container %s" % (
                    short, "cannot be forced" if running else "must be forced", "running" if running else "stopped",
                    (running or users)[0]["Id"][:12]), path)
            named = [t for t in attrs["RepoTags"] if image in (t, t.rsplit(":", 1)[0])]
            if named and len(attrs["RepoTags"]) > 1:
                attrs["RepoTags"].remove(named[0])
                return [{"Untagged": named[0]}]
            del self._images[attrs["Id"]]
            self.removed["image"].add(attrs["Id"])
            return [{"Untagged": t} for t in attrs["RepoTags"]] + [{"Deleted": attrs["Id"]}]

    @property
    def _image_layers(self):
        """Image id -> the tar of the files an import made it of (what get_image saves)."""
        return self.__dict__.setdefault("_imported_layers", {})

    @api_method
    def import_image_from_data(self, data, repository=None, tag=None, changes=None):
        """POST /images/create?fromSrc=-: an image of the files of the tar `data` alone, its labels from the
        `changes`' LABEL instructions; each import a new image (the engine stamps its creation time)."""
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.getmembers()
        except tarfile.TarError as exc:
            refuse(500, "archive/tar: %s" % exc, "/images/create")
        labels = dict(change[len("LABEL "):].split("=", 1) for change in changes or () if change.startswith("LABEL "))
        image_id = "sha256:" + digest("import", hashlib.sha256(data).hexdigest(), next(self._serial))
        self.add_image("%s:%s" % (repository, tag or "latest"), {"Env": None, "Labels": labels or None},
                       image_id=image_id)
        self._image_layers[image_id] = data
        return '{"status":"%s"}\r\n' % image_id

    @api_method
    def get_image(self, image, chunk_size=None):
        """GET /images/{name}/get: the image as `docker save` writes it (manifest.json, its layer)."""
        attrs = self._find_image(image)
        if attrs is None:
            refuse(404, "reference does not exist", "/images/%s/get" % image)
        layer = self._image_layers.get(attrs["Id"])
        if layer is None:
            return self._saved_elsewhere(image)
        return iter([saved_image(attrs, layer)])

    def _saved_elsewhere(self, image):
        """An image the memory holds no files of (added by a test): saved with an empty layer."""
        return iter([saved_image(self._find_image(image), b"")])


def saved_image(attrs, layer):
    """What `docker save` writes of one image of one layer (Docker 20.10's layout)."""
    layer_id = hashlib.sha256(layer).hexdigest()
    config = attrs["Id"].split(":")[-1] + ".json"
    manifest = [{"Config": config, "RepoTags": attrs["RepoTags"], "Layers": [layer_id + "/layer.tar"]}]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("manifest.json", json.dumps(manifest).encode("utf-8")),
                           (config, json.dumps({"config": attrs["Config"]}).encode("utf-8")),
                           (layer_id + "/layer.tar", layer)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _stream(chunks, decode):
    return iter(chunks if decode else [json.dumps(c).encode("utf-8") + b"\r\n" for c in chunks])


def _stage(found, target):
    if not found:
        refuse(400, "the Dockerfile (Dockerfile) cannot be empty", "/build")
    if not target:
        return found, len(found) - 1
    names = [s[0] for s in found]
    if target.lower() not in names:
        refuse(400, "failed to reach build target %s in Dockerfile" % target, "/build")
    return found, names.index(target.lower())


def _stage_config(engine, chosen, output, files):
    """The configuration the chosen stage ends with, or the stream's error chunk."""
    found, index = chosen
    _name, base, steps = found[index]
    output.append({"stream": "Step 1/%d : FROM %s\n" % (len(steps) + 1, base)})
    earlier = [s[0] for s in found[:index]]
    if base.lower() in earlier:
        config = _stage_config(engine, (found, earlier.index(base.lower())), [], files)
        if "error" in config:
            return config
    elif base == "scratch":
        config = {}
    else:
        image = engine._find_image(base)   # pylint: disable=protected-access  # the engine's own lookup
        if image is None:
            message = ("pull access denied for %s, repository does not exist or may require 'docker login': "
                       "denied: requested access to the resource is denied" % base.rsplit(":", 1)[0])
            return {"errorDetail": {"message": message}, "error": message}
        config = dict(plain(image["Config"]))
    for number, (instruction, argument) in enumerate(steps, 2):
        output.append({"stream": "Step %d/%d : %s %s\n" % (number, len(steps) + 1, instruction, argument)})
        missing = _missing_source(argument, files) if instruction in ("COPY", "ADD") else None
        if missing:
            message = ("%s failed: file not found in build context or excluded by .dockerignore: stat %s: file does "
                       "not exist" % (instruction, missing))
            return {"errorDetail": {"message": message}, "error": message}
        failing = _FAILING.match(argument) if instruction == "RUN" else None
        if failing:
            code = int(failing.group(1) or 1)
            message = "The command '/bin/sh -c %s' returned a non-zero code: %d" % (argument, code)
            return {"errorDetail": {"code": code, "message": message}, "error": message}
        _apply_step(config, instruction, argument)
    return config


def _missing_source(argument, files):
    """The first source of a COPY or ADD that the context does not hold (a URL, a pattern or another
    stage's file is not looked for); None when all are there."""
    try:
        words = json.loads(argument)
    except ValueError:
        words = argument.split()
    if not isinstance(words, list) or any(str(w).startswith("--from") for w in words):
        return None
    sources = [str(w) for w in words if not str(w).startswith("--")][:-1]
    for source in sources:
        name = posixpath.normpath(source.lstrip("/"))
        if "://" in source or any(c in source for c in "*?[") or name == ".":
            continue
        if name not in files and not any(f.startswith(name + "/") for f in files):
            return source
    return None


def _apply_step(config, instruction, argument):
    if instruction in ("ENV", "LABEL"):
        key = "Env" if instruction == "ENV" else "Labels"
        pairs = _pairs(argument)
        if key == "Env":
            names = set(k for k, _v in pairs)
            config["Env"] = [e for e in config.get("Env") or [] if e.partition("=")[0] not in names] + \
                ["%s=%s" % p for p in pairs]
        else:
            config["Labels"] = dict(config.get("Labels") or {}, **dict(pairs))
    elif instruction == "EXPOSE":
        ports = dict(config.get("ExposedPorts") or {})
        for port in argument.split():
            ports[port if "/" in port else port + "/tcp"] = {}
        config["ExposedPorts"] = ports
    elif instruction in ("CMD", "ENTRYPOINT"):
        config["Cmd" if instruction == "CMD" else "Entrypoint"] = _words(argument)
        if instruction == "ENTRYPOINT":
            config["Cmd"] = None
    elif instruction == "WORKDIR":
        config["WorkingDir"] = argument
    elif instruction == "USER":
        config["User"] = argument
