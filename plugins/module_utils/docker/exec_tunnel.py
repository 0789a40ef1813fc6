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

The relay ends on the container's loopback, which the official PostgreSQL image trusts without a
password, so a connection is relayed only when it comes from a process of this process's user:
its uid is read from the kernel's socket table before anything is exec'd (`peer_uid`). Why not
a Unix socket in a 0700 directory: PyMySQL and redis-py take a socket path in an argument of its
own, so the engines' logins would change; the port keeps their (host, port) interface, and a
database protocol has no room for a per-run secret.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import socket
import struct
import threading

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import engine_words
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import (
    EXEC_NOT_FOUND, APIError, exec_in)

# bash opens the TCP connection on the container's loopback, then one cat copies the server's
# bytes to stdout while another copies stdin to the server; stdin's end ends the relay. bash
# reaps the cat it kills (`wait`): an orphan goes to the container's PID 1, and PostgreSQL's
# postmaster there takes an unknown child killed by a signal for a crashed backend and restarts
# every session.
RELAY = ["bash", "-c", 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 7; cat <&3 & cat >&3; kill $! 2>/dev/null; wait',
         "clockwork-tunnel"]
CHUNK = 65536
# The kernel's tables of TCP sockets (IPv4, and IPv6 with IPv4-mapped addresses), as
# netstat reads them: sl, local address, remote address, state, queues, timers, uid, timeout, inode.
SOCKET_TABLES = (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6))
# A socket table read while connections come and go can miss a line: read again before refusing.
TABLE_READS = 3


class NoRelay(ClockworkError):
    """No relay can be opened to the container: no bash in it, or no way to tell who connects."""


class ExecTunnel(object):
    """Listens on 127.0.0.1:<self.port>; every connection is relayed by an exec in `container`
    (through `engine`, a gateway that routes the container to its node) to `target_port` on the
    container's loopback."""

    def __init__(self, engine, container, target_port, name=None):
        self.engine = engine
        self.container = container
        self.target_port = int(target_port)
        self.name = name or container
        self.errors = []
        self.refused = 0        # connections from another user's process, closed unrelayed
        self._uid = os.geteuid()
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
        if not self._admitted(client):
            self.refused += 1
            client.close()
            return
        try:
            exec_id = self.engine.exec_create(self.container, RELAY + [str(self.target_port)], stdin=True,
                                              stdout=True, stderr=True, tty=False)["Id"]
            stream = self.engine.exec_start(exec_id, socket=True)
        except APIError as exc:
            self.errors.append("cannot relay to %s: %s" % (self.name, engine_words(exc)))
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

    def _admitted(self, client):
        """Whether a process of this user holds the client's end: not another user's, nor
        one already closed (its bytes would reach the server all the same)."""
        try:
            return peer_uid(client.getpeername(), client.getsockname()) == self._uid
        except OSError:
            return False   # gone already

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


def table_address(family, address):
    """(ip, port) as /proc/net/tcp{,6} spells it: each 32-bit word of the address in host
    order, in hex, then the port; an IPv4 peer of an IPv6 socket is IPv4-mapped there."""
    ip, port = address[0], address[1]
    if family == socket.AF_INET6 and ":" not in ip:
        ip = "::ffff:" + ip
    packed = socket.inet_pton(family, ip)
    words = struct.unpack("=%dI" % (len(packed) // 4), packed)
    return "%s:%04X" % ("".join("%08X" % word for word in words), port)


def socket_owners(table, local, remote):
    """The uids of the live sockets in `table` (the text of a /proc/net/tcp file) whose local
    and remote addresses (in its spelling) are `local` and `remote`. A socket no process holds
    any longer (closed, time-wait) has inode 0, and its uid (0 on older kernels) speaks for nobody."""
    owners = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 10 and fields[1] == local and fields[2] == remote and fields[9] != "0":
            owners.append(int(fields[7]))
    return owners


def peer_uid(peer, ours, tables=SOCKET_TABLES):
    """The uid of the process that holds the other end of a connection accepted on `ours` from
    `peer` (both (ip, port) on this host), None when the kernel's tables do not name one."""
    for _read in range(TABLE_READS):
        owners = []
        for path, family in tables:
            try:
                with open(path) as handle:
                    table = handle.read()
            except (IOError, OSError):
                continue
            owners += socket_owners(table, table_address(family, peer), table_address(family, ours))
        if owners:
            return owners[0] if len(set(owners)) == 1 else None
    return None


def open_tunnel(engine, container, target_port, name):
    """An ExecTunnel into `container` (a name `engine` routes to its node), once a probe in it
    has opened target_port on its loopback; ClockworkError naming what is missing otherwise."""
    if not os.path.exists(SOCKET_TABLES[0][0]):
        raise NoRelay("%s cannot be reached from here, and relaying to it needs the kernel's table of TCP sockets "
                      "(%s, Linux) to refuse other users' connections: set login_host and login_port to an address "
                      "of it that this host reaches" % (name, SOCKET_TABLES[0][0]))
    probe = RELAY[:2] + ['exec 3<>"/dev/tcp/127.0.0.1/$1"', "clockwork-tunnel-probe", str(int(target_port))]
    code, out = exec_in(engine, container, probe, timeout=5)
    if code == EXEC_NOT_FOUND:
        raise NoRelay("%s cannot be reached from here, and relaying to it needs bash in its image: set "
                      "login_host and login_port to an address of it that this host reaches" % name)
    if code != 0:
        raise ClockworkError("%s does not accept connections on its port %s: %s" % (name, target_port, out or code))
    return ExecTunnel(engine, container, target_port, name)
