# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP/1.1 to a local Docker engine over its Unix socket, with the standard library alone
(http.client): what the SDK does through `requests`, whose import alone costs about 0.1 s of
every run. Connections are kept alive and shared by the stack's worker threads."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import http.client
import json
import select
import socket
import threading

from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import EngineUnreachable, api_error

# The SDK's default: no answer of the engine takes longer, or the engine is stuck.
DEFAULT_TIMEOUT = 60
USER_AGENT = "clockwork.connections"
# What the URL in an error names, as the SDK names a local engine's.
LOCAL_BASE_URL = "http+docker://localhost"


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection whose transport is a Unix socket."""

    def __init__(self, socket_path, timeout=DEFAULT_TIMEOUT):
        super(UnixHTTPConnection, self).__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _dropped(connection):
    """An idle kept-alive connection has nothing to read: anything (the engine's close, or
    bytes nobody asked for) means it cannot carry another request."""
    if connection.sock is None:
        return True
    try:
        return bool(select.select([connection.sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class UnixHTTPClient(object):
    """Requests to the engine at `socket_path`; each answer read whole (Content-Length or
    chunked), its connection then kept for the next request. Safe to share between threads."""

    def __init__(self, socket_path, timeout=DEFAULT_TIMEOUT, pool_size=32):
        self.socket_path = socket_path
        self.timeout = timeout
        self.pool_size = pool_size
        self._idle = []
        self._lock = threading.Lock()
        self.opened = 0     # connections made: the tests see keep-alive at work

    def _take(self):
        """(connection, whether it was kept from an earlier request)."""
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not _dropped(connection):
                    return connection, True
                connection.close()
            self.opened += 1
        return UnixHTTPConnection(self.socket_path, self.timeout), False

    def _keep(self, connection):
        with self._lock:
            if len(self._idle) < self.pool_size:
                self._idle.append(connection)
                return
        connection.close()

    def close(self):
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def request(self, method, target, body=None):
        """(status, reason, body bytes) of `method target`; `body`, if any, is sent as JSON.
        EngineUnreachable when the socket cannot be reached or the answer breaks off."""
        headers = {"User-Agent": USER_AGENT}
        if body is not None:
            body = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            connection, kept = self._take()
            try:
                connection.request(method, target, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if kept and attempt == 1 and method == "GET":
                    continue   # the engine closed a kept connection meanwhile: a read is asked again
                raise EngineUnreachable("cannot reach the Docker engine at unix://%s: %s"
                                        % (self.socket_path, exc or type(exc).__name__))
            if answer.will_close:
                connection.close()
            else:
                self._keep(connection)
            return answer.status, answer.reason, data
        raise AssertionError("unreachable")   # pragma: no cover

    def call(self, method, target, body=None, missing_ok=False):
        """The engine's JSON answer (None for an empty one); with `missing_ok`, None for a 404.
        An error status raises the error the SDK raises for it (errors.api_error)."""
        status, reason, data = self.request(method, target, body)
        if status == 404 and missing_ok:
            return None
        if status >= 400:
            raise api_error(status, reason, LOCAL_BASE_URL + target, _explanation(data))
        if not data:
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError:
            return data.decode("utf-8", "replace")   # a text answer (GET /_ping: OK)

    def upgrade(self, target, body):
        """POST `target` (an exec's start) asking the engine to hand the connection over to the
        exec's stream: the socket, its answer's headers read off byte by byte, so no byte of
        the stream is left in a buffer. An error status raises the SDK's error for it."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
            payload = json.dumps(body).encode("utf-8")
            sock.sendall(("POST %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                          % (target, USER_AGENT, len(payload))).encode("latin-1") + payload)
            status, reason, headers = _read_head(sock)
            if status in (101, 200):
                return sock
            data = _read_body(sock.makefile("rb"), headers)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            sock.close()
            raise EngineUnreachable("cannot reach the Docker engine at unix://%s: %s"
                                    % (self.socket_path, exc or type(exc).__name__))
        sock.close()
        raise api_error(status, reason, LOCAL_BASE_URL + target, _explanation(data))


# The most an answer's headers may take: an engine's are a few hundred bytes.
MAX_HEAD = 64 * 1024


def _read_head(sock):
    """(status, reason, headers with lower-case names) of an answer, read up to its blank line."""
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte or len(head) > MAX_HEAD:
            raise http.client.HTTPException("the engine's answer broke off")
        head += byte
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise http.client.HTTPException("not an HTTP answer: %r" % lines[0][:80])
    headers = dict((name.strip().lower(), value.strip()) for name, _sep, value in
                   (line.partition(":") for line in lines[1:] if line))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


def _read_body(stream, headers):
    """An error answer's body: by Content-Length, or chunked."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return bytes(body)
            body += stream.read(size)
            stream.readline()
    return stream.read(int(headers.get("content-length") or 0))


def _explanation(data):
    """The engine's words on an error: the `message` of its JSON, else its text."""
    text = data.decode("utf-8", "replace")
    try:
        message = json.loads(text).get("message")
    except (ValueError, AttributeError):
        message = None
    return message if message is not None else text.strip()
