# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local TCP port that leads to a port on a container's own loopback, through the engine.

On Swarm the overlay network is not routed to the controller, and a task on another node
(or on a manager in another network namespace) has no address the controller reaches. Its
engine is reachable, though: each connection to the local port becomes an exec in the task's
container that relays its stdin and stdout to 127.0.0.1:<port> there, as `kubectl
port-forward` does. The relay is a fixed bash script; the port reaches it as its argument.
Schema, migrations and password rotations then log in from the controller as on one engine.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import socket
import threading

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker_client import (
    EXEC_NOT_FOUND, APIError, exec_in)

# bash opens the TCP connection on the container's loopback, then one cat copies the server's
# bytes to stdout while another copies stdin to the server; stdin's end ends the relay.
RELAY = ["bash", "-c", 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 7; cat <&3 & cat >&3; kill $! 2>/dev/null',
         "clockwork-tunnel"]
CHUNK = 65536


class NoRelay(ClockworkError):
    """The container has no bash to relay with."""


class ExecTunnel(object):
    """Listens on 127.0.0.1:<self.port>; every connection is relayed by an exec in `container`
    (through `api`, the engine of its node) to `target_port` on the container's loopback."""

    def __init__(self, api, container, target_port, name=None):
        self.api = api
        self.container = container
        self.target_port = int(target_port)
        self.name = name or container
        self.errors = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        thread = threading.Thread(target=self._accept, name="clockwork-tunnel-%s" % self.name)
        thread.daemon = True
        thread.start()

    def close(self):
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass

    def _accept(self):
        while not self._closed:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._relay, args=(client,), name="clockwork-tunnel-relay")
            thread.daemon = True
            thread.start()

    def _relay(self, client):
        try:
            exec_id = self.api.exec_create(self.container, RELAY + [str(self.target_port)], stdin=True,
                                           stdout=True, stderr=True, tty=False)["Id"]
            stream = self.api.exec_start(exec_id, socket=True)
        except APIError as exc:
            self.errors.append("cannot relay to %s: %s" % (self.name, exc.explanation or exc))
            client.close()
            return
        raw = getattr(stream, "_sock", stream)
        upstream = threading.Thread(target=_copy_in, args=(client, raw), name="clockwork-tunnel-in")
        upstream.daemon = True
        upstream.start()
        try:
            self._copy_out(raw, client)
        finally:
            for closable in (client, raw, stream):
                try:
                    closable.close()
                except OSError:
                    pass

    def _copy_out(self, raw, client):
        """The exec's stdout frames to the client; its stderr kept for the error message."""
        pending = b""
        while True:
            try:
                chunk = raw.recv(CHUNK)
            except OSError:
                return
            if not chunk:
                return
            pending += chunk
            while len(pending) >= 8:
                size = int.from_bytes(pending[4:8], "big")
                if len(pending) < 8 + size:
                    break
                kind, payload, pending = pending[0], pending[8:8 + size], pending[8 + size:]
                if kind == 1:
                    try:
                        client.sendall(payload)
                    except OSError:
                        return
                elif payload.strip():
                    self.errors.append(payload.decode("utf-8", "replace").strip())


def _copy_in(client, raw):
    """The client's bytes to the exec's stdin; its end is the end of stdin (a half close)."""
    try:
        while True:
            chunk = client.recv(CHUNK)
            if not chunk:
                break
            raw.sendall(chunk)
    except OSError:
        pass
    try:
        raw.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def open_tunnel(engine, container, target_port, name):
    """An ExecTunnel into `container` (a name `engine` routes to its node), once a probe in it
    has opened target_port on its loopback; ClockworkError naming what is missing otherwise."""
    probe = RELAY[:2] + ['exec 3<>"/dev/tcp/127.0.0.1/$1"', "clockwork-tunnel-probe", str(int(target_port))]
    code, out = exec_in(engine, container, probe, timeout=5)
    if code == EXEC_NOT_FOUND:
        raise NoRelay("%s cannot be reached from here, and relaying to it needs bash in its image: set "
                      "login_host and login_port to an address of it that this host reaches" % name)
    if code != 0:
        raise ClockworkError("%s does not accept connections on its port %s: %s" % (name, target_port, out or code))
    return ExecTunnel(engine.api, container, target_port, name)
