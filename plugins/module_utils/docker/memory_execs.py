# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The memory engine's execs, logs and files: an exec's result as a test scripts it, streamed as
the engine streams it; files kept per container, or per volume where one is mounted."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import posixpath
import shlex
import socket
import tarfile
import threading

from ansible_collections.clockwork.connections.plugins.module_utils.docker.exec_batch import batch_output, split_batch
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory_base import (
    HANG, MISSING, api_method, digest, frames, now, refuse)


class ExecEngine(object):
    """Execs and files in memory (memory.MemoryEngine holds the state)."""

    # -- execs and files -------------------------------------------------------------------

    def exec_result(self, container, argv, env):
        """(exit code, output) of `argv` in `container`: `execs` decides (a function of
        (container, argv, env), or a table by program of (code, output) or such a function);
        anything else exits 0 with no output. An argv under `timeout N` is answered as the one
        it wraps; MISSING answers as the engine does for a program the container lacks."""
        batch = split_batch(argv)
        if batch is not None:
            # docker/exec_batch.py's script: each program answered in turn, as the script runs them.
            boundary, programs = batch
            return 0, batch_output(boundary, [self.exec_result(container, p, env) for p in programs])
        timed = argv[0] == "timeout" and len(argv) > 2
        program = argv[2:] if timed else argv
        table = self.execs if isinstance(self.execs, dict) else {}
        if timed and table.get("timeout") == MISSING:
            timed, program = False, argv
        if callable(self.execs):
            result = self.execs(container, program, env)
        else:
            entry = table.get(program[0], (0, ""))
            result = entry(container, program, env) if callable(entry) else entry
        if result == MISSING:
            if timed:
                return 127, "timeout: failed to run command '%s': No such file or directory" % program[0]
            return 126, ('OCI runtime exec failed: exec failed: unable to start container process: exec: "%s": '
                         'executable file not found in $PATH: unknown' % program[0])
        return result

    def _stream(self, data, hang):
        """What exec_start(socket=True) gives: a socket whose other end wrote the frames and closed
        (or stays open: a program that never ends)."""
        ours, theirs = socket.socketpair()
        if len(data) > 65536:
            threading.Thread(target=self._send, args=(ours, data, hang), daemon=True).start()
        else:
            self._send(ours, data, hang)
        return theirs

    def _send(self, ours, data, hang):
        try:
            ours.sendall(data)
        finally:
            if hang:
                self._hanging.append(ours)
            else:
                ours.close()

    def _files_at(self, attrs, path):
        """(the files that hold `path` in a container, its key there): a volume's when one is
        mounted there (every container that mounts it sees them), else the container's own."""
        path = posixpath.normpath("/" + path.lstrip("/"))
        best = None
        for point in attrs["Mounts"]:
            target = point["Destination"].rstrip("/") or "/"
            if point["Type"] == "volume" and (path == target or path.startswith(target.rstrip("/") + "/")):
                best = point if best is None or len(target) > len(best["Destination"]) else best
        if best is None:
            return self._meta.setdefault(attrs["Id"], {"anonymous": [], "files": {}})["files"], path
        return self._volume_files.setdefault(best["Name"], {}), "/" + posixpath.relpath(path, best["Destination"])

    def _tar_of(self, attrs, path):
        store, key = self._files_at(attrs, path)
        base = key.rstrip("/")
        found = dict((k, v) for k, v in store.items() if k == key or k.startswith(base + "/"))
        if not found:
            return None, None
        buffer = io.BytesIO()
        root = posixpath.basename(posixpath.normpath(path))
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in sorted(found.items()):
                info = tarfile.TarInfo(root + name[len(key):] if name != key else root)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        single = list(found) == [key]
        stat = {"name": root, "size": len(found[key]) if single else 4096,
                "mode": 0o644 if single else 0o20000000755, "mtime": now(), "linkTarget": ""}
        return buffer.getvalue(), stat

    def _untar(self, attrs, path, data):
        # bytes, a file, or the chunks get_archive streams (as the live engine takes a put_archive's data)
        raw = data if isinstance(data, (bytes, bytearray)) else (data.read() if hasattr(data, "read") else b"".join(data))
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r") as tar:
            for member in tar.getmembers():
                if member.isfile():
                    store, key = self._files_at(attrs, posixpath.join(path, member.name))
                    store[key] = tar.extractfile(member).read()
    # -- execs and files ----------------------------------------------------------------

    @api_method
    def exec_create(self, container, cmd, stdout=True, stderr=True, stdin=False, tty=False, privileged=False,
                    user="", environment=None, workdir=None, detach_keys=None):
        path = "/containers/%s/exec" % container
        attrs = self._container(container, "/containers/%s/exec")
        live = self._passthrough(attrs)
        if live is not None:
            made = live.exec_create(attrs["Id"], cmd, stdout=stdout, stderr=stderr, stdin=stdin, tty=tty,
                                    privileged=privileged, user=user, environment=environment, workdir=workdir)
            self._forwarded[made["Id"]] = live
            return made
        if not attrs["State"]["Running"]:
            refuse(409, "Container %s is not running" % attrs["Id"], path)
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        if isinstance(environment, dict):
            env = dict((k, "" if v is None else str(v)) for k, v in environment.items())
        else:
            env = dict(e.partition("=")[::2] for e in environment or [])
        exec_id = digest("exec", attrs["Id"], next(self._serial))
        self._execs[exec_id] = {
            "ID": exec_id, "Running": False, "ExitCode": None, "OpenStdin": stdin, "OpenStderr": stderr,
            "OpenStdout": stdout, "CanRemove": False, "ContainerID": attrs["Id"], "DetachKeys": "", "Pid": 0,
            "ProcessConfig": {"tty": tty, "entrypoint": argv[0], "arguments": argv[1:], "privileged": privileged},
            "_run": (attrs["Name"][1:], argv, env)}
        return {"Id": exec_id}

    def _exec(self, exec_id):
        exec_id = exec_id.get("Id") if isinstance(exec_id, dict) else exec_id
        if exec_id not in self._execs:
            refuse(404, "No such exec instance: %s" % exec_id, "/exec/%s/json" % exec_id)
        return self._execs[exec_id]

    @api_method
    def exec_start(self, exec_id, detach=False, tty=False, stream=False, socket=False,  # pylint: disable=redefined-outer-name
                   demux=False):
        key = exec_id.get("Id") if isinstance(exec_id, dict) else exec_id
        if key in self._forwarded:
            return self._forwarded[key].exec_start(key, detach=detach, tty=tty, stream=stream, socket=socket,
                                                   demux=demux)
        record = self._exec(key)
        container, argv, env = record["_run"]
        self.exec_log.append((container, argv, env))
        result = self.exec_result(container, argv, env)
        hang = result == HANG
        code, output = (None, "") if hang else result
        record.update(Running=hang, ExitCode=code, Pid=2000 + next(self._serial))
        data = output if isinstance(output, bytes) else (output or "").encode("utf-8")
        if socket:
            return self._stream(frames(data), hang)
        if detach:
            return b""
        if demux:
            return data, None
        return iter([data]) if stream else data

    @api_method
    def exec_inspect(self, exec_id):
        key = exec_id.get("Id") if isinstance(exec_id, dict) else exec_id
        if key in self._forwarded:
            return self._forwarded[key].exec_inspect(key)
        return dict((k, v) for k, v in self._exec(key).items() if not k.startswith("_"))

    @api_method
    def get_archive(self, container, path, chunk_size=None, encode_stream=False):
        attrs = self._container(container, "/containers/%s/archive")
        live = self._passthrough(attrs)
        if live is not None:
            return live.get_archive(attrs["Id"], path)
        data, stat = self._tar_of(attrs, path)
        if data is None:
            refuse(404, "Could not find the file %s in container %s" % (path, container),
                   "/containers/%s/archive?path=%s" % (container, path))
        return iter([data]), stat

    @api_method
    def put_archive(self, container, path, data):
        attrs = self._container(container, "/containers/%s/archive")
        self._untar(attrs, path, data)
        self.touched.add(attrs["Id"])
        return True
