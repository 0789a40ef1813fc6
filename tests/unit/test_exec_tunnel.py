"""The tunnel into a container (exec_tunnel.py): its relay's frames, and who asks for it.
Pure logic on socket pairs; the real relay runs in make test-cluster."""
import socket

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils import exec_tunnel
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
