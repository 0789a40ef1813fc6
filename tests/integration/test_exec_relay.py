"""The exec relay (exec_tunnel.py) on the real engine: a PostgreSQL container that trusts its
loopback without a password, as the official image does, is reached through the relay by this
user's processes (psycopg, and a raw client over IPv4 and IPv6) and by no other user's: a
`nobody` process is closed before any byte of the server reaches it, and what it sends (a
CREATE TABLE, even from a socket it closes at once) never reaches the server. Sessions ending
through the relay leave the others alone: no orphan of the relay makes the postmaster (the
container's PID 1) restart every backend."""
import os
import subprocess
import tempfile
import time

import pytest

from helpers import POSTGRES_IMAGE, docker

from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.exec_tunnel import open_tunnel

PASSWORD = "relay-Pw-%d" % os.getpid()   # pragma: allowlist secret
# The official image's pg_hba.conf trusts 127.0.0.1 without a password; the local image asks
# for one there: an init script puts the official line first.
TRUST_LOOPBACK = "sed -i '1i host all all 127.0.0.1/32 trust' \"$PGDATA/pg_hba.conf\"\n"
# A PostgreSQL client in the standard library (nobody cannot read the venv): a startup message
# for postgres and, without waiting for the server, a query; it prints what the server sent.
CLIENT = r"""
import socket, struct, sys
port, sql, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
params = b"user\0postgres\0database\0postgres\0\0"
startup = struct.pack("!ii", 8 + len(params), 196608) + params
query = b"Q" + struct.pack("!i", 5 + len(sql)) + sql.encode() + b"\0"
family, host = (socket.AF_INET6, "::ffff:127.0.0.1") if mode == "mapped" else (socket.AF_INET, "127.0.0.1")
sock = socket.socket(family)
sock.settimeout(10)
sock.connect((host, port))
sock.sendall(startup + query)
if mode == "blind":
    sock.close()
    sys.exit(0)
received = b""
try:
    while received.count(b"Z\0\0\0\5") < 2:   # ReadyForQuery after the login, then after the query
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
except ConnectionResetError:
    pass
except socket.timeout:
    received += b" (timed out)"
print(repr(received))
"""
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def client(port, sql, mode="read", user=()):
    proc = subprocess.run(list(user) + ["/usr/bin/python3", "-c", CLIENT, str(port), sql, mode],
                          capture_output=True, text=True, timeout=30, cwd="/")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def psql(name, sql):
    return docker("exec", name, "psql", "-U", "postgres", "-d", "postgres", "-tAc", sql)


@pytest.fixture
def trusting_postgres(stack):
    """A PostgreSQL container of the stack that trusts its loopback, once it answers there."""
    name = stack + "-db"
    docker("create", "--name", name, "--label", "io.clockwork.stack=" + stack, "--label", "io.clockwork.resource=db",
           "-e", "POSTGRES_PASSWORD=" + PASSWORD, POSTGRES_IMAGE)
    with tempfile.TemporaryDirectory() as scratch:
        script = os.path.join(scratch, "trust-loopback.sh")
        with open(script, "w") as handle:
            handle.write(TRUST_LOOPBACK)
        docker("cp", script, name + ":/docker-entrypoint-initdb.d/trust-loopback.sh")
    docker("start", name)
    deadline = time.monotonic() + 90
    while docker("exec", name, "pg_isready", "-h", "127.0.0.1", "-U", "postgres", check=False).find("accepting") < 0:
        assert time.monotonic() < deadline, docker("logs", name, check=False)
        time.sleep(0.5)
    # The premise: on its loopback, no password is asked.
    assert docker("exec", name, "psql", "-h", "127.0.0.1", "-U", "postgres", "-w", "-tAc", "SELECT 1") == "1"
    return name


def wait_refused(tunnel, count):
    deadline = time.monotonic() + 10
    while tunnel.refused < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tunnel.refused == count, "refused %d connections, expected %d" % (tunnel.refused, count)


def test_only_this_users_processes_get_through_the_relay(trusting_postgres):
    name = trusting_postgres
    tunnel = open_tunnel(DockerGateway(), name, 5432, "container db")
    import psycopg   # pylint: disable=import-outside-toplevel
    # A session held open through the relay while the others come and go.
    held = psycopg.connect(host="127.0.0.1", port=tunnel.port, user="postgres", dbname="postgres",
                           connect_timeout=10, autocommit=True)
    try:
        assert held.execute("SELECT current_user").fetchone() == ("postgres",)
        backend = held.execute("SELECT pg_backend_pid()").fetchone()
        # This user: the raw client over IPv4 and IPv6, each ending its session by closing its socket.
        assert "CREATE TABLE" in client(tunnel.port, "CREATE TABLE owner_v4 ()")
        assert "CREATE TABLE" in client(tunnel.port, "CREATE TABLE owner_v6 ()", mode="mapped")
        assert tunnel.refused == 0

        # nobody: closed before any byte of the server, over IPv4 or IPv6, and nothing it sent arrived.
        assert client(tunnel.port, "CREATE TABLE intruder_v4 ()", user=NOBODY) == "b''"
        assert client(tunnel.port, "CREATE TABLE intruder_v6 ()", mode="mapped", user=NOBODY) == "b''"
        # A socket closed at once leaves its bytes behind, in a socket no process holds (whose
        # uid reads 0, root's, on older kernels): refused all the same.
        client(tunnel.port, "CREATE TABLE intruder_blind ()", mode="blind", user=NOBODY)
        wait_refused(tunnel, 3)

        # The relay still serves this user afterwards, and the held session is the same backend.
        assert "CREATE TABLE" in client(tunnel.port, "CREATE TABLE owner_after ()")
        assert held.execute("SELECT pg_backend_pid()").fetchone() == backend
    finally:
        held.close()
        tunnel.close()
    assert tunnel.refused == 3
    tables = psql(name, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
                        "WHERE schemaname = 'public'")
    assert tables == "owner_after,owner_v4,owner_v6"
    log = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr
    assert "terminated by signal" not in log and "server processes terminated" not in log, log[-2000:]
