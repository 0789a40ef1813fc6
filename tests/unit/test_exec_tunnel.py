"""The tunnel into a container (exec_tunnel.py): its relay's frames, who may use it, and who asks
for it. Pure logic on socket pairs; the real relay runs in tests/integration/test_exec_relay.py
and make test-cluster."""
import os
import socket
import sys

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.docker import exec_tunnel
from ansible_collections.clockwork.connections.plugins.module_utils.database import settings as database
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.connection import Endpoint


def frame(stream, payload):
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


class FakeAPI(object):
    """An engine whose exec stream is one end of a socket pair; the test plays the relay."""

    def __init__(self):
        self.created = []
        self.relay, self._ours = socket.socketpair()

    def exec_create(self, container, cmd, **kwargs):
        self.created.append((container, cmd, kwargs))
        return {"Id": "x1"}

    def exec_start(self, exec_id, socket=False):   # pylint: disable=redefined-outer-name
        return self._ours


def test_stdout_frames_reach_the_client_and_stderr_is_kept():
    api = FakeAPI()
    tunnel = exec_tunnel.ExecTunnel(api, "db-task", 5432, "service db")
    try:
        client = socket.create_connection(("127.0.0.1", tunnel.port), timeout=5)
        client.sendall(b"hello server")
        assert api.relay.recv(100) == b"hello server"
        # Frames split across reads: the client sees stdout only, in order.
        data = frame(1, b"hello ") + frame(2, b"bash: warning") + frame(1, b"client")
        api.relay.sendall(data[:5])
        api.relay.sendall(data[5:])
        received = b""
        while len(received) < len(b"hello client"):
            received += client.recv(100)
        assert received == b"hello client"
        # The client's end is the end of the relay's stdin (a half close)...
        client.shutdown(socket.SHUT_WR)
        assert api.relay.recv(100) == b""
        # ... and the relay's end closes the client.
        api.relay.close()
        assert client.recv(100) == b""
        client.close()
    finally:
        tunnel.close()
    container, cmd, options = api.created[0]
    assert container == "db-task" and options["stdin"] and not options["tty"]
    # A fixed script; the port is its argument.
    assert cmd[:2] == ["bash", "-c"] and cmd[-1] == "5432" and "5432" not in cmd[2]
    assert tunnel.errors == ["bash: warning"]


# Lines of /proc/net/tcp as the kernel wrote them (x86): a listener on 127.0.0.1:60561, a client's
# end (127.0.0.1:34898, uid 1000) and the end the listener accepted; a client end closed by its
# process (inode 0, uid 0) and one in time-wait.
TABLE = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   1: 0100007F:EC91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 29093 1 0 100 0 0 10 0
   2: 0100007F:EC91 0100007F:8852 01 00000000:00000000 00:00000000 00000000     0        0 29097 1 0 20 0 0 10 -1
   3: 0100007F:8852 0100007F:EC91 01 00000000:00000000 00:00000000 00000000  1000        0 29096 2 0 20 0 0 10 -1
   4: 0100007F:8844 0100007F:EC91 05 00000000:00000000 03:00001766 00000000     0        0 0 3 0
   5: 0100007F:8840 0100007F:EC91 06 00000000:00000000 03:00001766 00000000     0        0 0 3 0
"""
SERVER = ("127.0.0.1", 0xEC91)


@pytest.mark.skipif(sys.byteorder != "little", reason="the table's words are in host order")
def test_addresses_are_spelled_as_the_kernel_tables_spell_them():
    assert exec_tunnel.table_address(socket.AF_INET, ("127.0.0.1", 5432)) == "0100007F:1538"
    # An IPv4 peer of an IPv6 socket is IPv4-mapped in tcp6.
    assert exec_tunnel.table_address(socket.AF_INET6, ("127.0.0.1", 5432)) == \
        "0000000000000000FFFF00000100007F:1538"
    assert exec_tunnel.table_address(socket.AF_INET6, ("::1", 80)) == "00000000000000000000000001000000:0050"


@pytest.mark.skipif(sys.byteorder != "little", reason="the table's words are in host order")
def test_the_owner_of_a_connection_is_its_client_ends_live_socket():
    def owners(peer):
        return exec_tunnel.socket_owners(TABLE, exec_tunnel.table_address(socket.AF_INET, peer),
                                         exec_tunnel.table_address(socket.AF_INET, SERVER))
    # The client's end, not the accepted end (which is ours, uid 0).
    assert owners(("127.0.0.1", 0x8852)) == [1000]
    # An end its process closed, or in time-wait, owns nothing (its uid 0 is no one's): a root
    # controller would otherwise relay the bytes a closed socket of another user left behind.
    assert owners(("127.0.0.1", 0x8844)) == []
    assert owners(("127.0.0.1", 0x8840)) == []
    assert owners(("127.0.0.2", 0x8852)) == []


def test_peer_uid_reads_every_table_and_names_one_owner_or_none(tmp_path, monkeypatch):
    monkeypatch.setattr(exec_tunnel, "TABLE_READS", 1)
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    peer, ours = ("127.0.0.1", 40000), ("127.0.0.1", 5000)
    local = exec_tunnel.table_address(socket.AF_INET6, peer)
    remote = exec_tunnel.table_address(socket.AF_INET6, ours)

    def line(uid, inode):
        return "   0: %s %s 01 00000000:00000000 00:00000000 00000000 %5d 0 %d 1 0\n" % (local, remote, uid, inode)

    tcp, tcp6 = tmp_path / "tcp", tmp_path / "tcp6"
    tcp.write_text(header)
    tables = ((str(tmp_path / "absent"), socket.AF_INET), (str(tcp), socket.AF_INET), (str(tcp6), socket.AF_INET6))
    tcp6.write_text(header + line(1000, 77))
    assert exec_tunnel.peer_uid(peer, ours, tables) == 1000
    tcp6.write_text(header + line(1000, 77) + line(65534, 78))
    assert exec_tunnel.peer_uid(peer, ours, tables) is None
    tcp6.write_text(header + line(0, 0))
    assert exec_tunnel.peer_uid(peer, ours, tables) is None


def test_a_connection_of_this_process_is_its_users():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.create_connection(listener.getsockname(), timeout=5)
    accepted, peer = listener.accept()
    try:
        assert exec_tunnel.peer_uid(peer, accepted.getsockname()) == os.geteuid()
    finally:
        for each in (client, accepted, listener):
            each.close()


def test_a_connection_of_another_user_is_closed_before_anything_is_execd(monkeypatch):
    monkeypatch.setattr(exec_tunnel, "peer_uid", lambda peer, ours: os.geteuid() + 1)
    api = FakeAPI()
    tunnel = exec_tunnel.ExecTunnel(api, "db-task", 5432, "service db")
    try:
        client = socket.create_connection(("127.0.0.1", tunnel.port), timeout=5)
        client.sendall(b"startup")
        try:
            assert client.recv(100) == b""
        except ConnectionResetError:
            pass   # closed with the bytes unread: a reset
        client.close()
    finally:
        tunnel.close()
    assert api.created == [] and tunnel.refused == 1


def test_no_table_of_sockets_no_relay(monkeypatch):
    monkeypatch.setattr(exec_tunnel, "SOCKET_TABLES", (("/nonexistent/tcp", socket.AF_INET),))
    monkeypatch.setattr(exec_tunnel, "exec_in", lambda *args, **kwargs: (0, ""))
    with pytest.raises(exec_tunnel.NoRelay) as raised:
        exec_tunnel.open_tunnel(ProbeEngine(), "db", 5432, "service db")
    assert "to refuse other users' connections: set login_host and login_port" in raised.value.msg


class ProbeEngine(object):
    def __init__(self):
        self._cache = {}
        self.api = self

    def exec_create(self, container, cmd, **kwargs):
        raise AssertionError("no tunnel expected")


@pytest.mark.parametrize("code, error, words", [
    (127, exec_tunnel.NoRelay, "needs bash in its image: set login_host and login_port"),
    (1, ClockworkError, "does not accept connections on its port 5432"),
])
def test_a_relay_that_cannot_work_is_named_before_any_login(monkeypatch, code, error, words):
    monkeypatch.setattr(exec_tunnel, "exec_in", lambda engine, container, argv, timeout=10: (code, "refused"))
    with pytest.raises(error) as raised:
        exec_tunnel.open_tunnel(ProbeEngine(), "db", 5432, "service db")
    assert words in raised.value.msg


class ReachingEngine(object):
    def __init__(self):
        self.asked = []

    def reach(self, name, address, port):
        self.asked.append((name, address, port))
        return "127.0.0.1", 40001


def test_an_engine_that_reaches_tasks_is_asked_for_the_login_address():
    to = Endpoint("db", {"NetworkSettings": {"Networks": {"docker_gwbridge": {"IPAddress": "172.18.0.5"}}}})
    settings = {"port": 5432}
    engine = ReachingEngine()
    assert database.login_address(to, settings, {}, engine) == ("127.0.0.1", 40001)
    assert engine.asked == [("db", "172.18.0.5", 5432)]
    # login_host wins; a plain engine gets the container's address.
    assert database.login_address(to, settings, {"login_host": "db.example", "login_port": 6432}, engine) == (
        "db.example", 6432)
    assert database.login_address(to, settings, {}, None) == ("172.18.0.5", 5432)
    assert database.login_address(Endpoint("db", None), settings, {}, engine) == (None, None)
