"""Checks run argv lists inside containers, never a shell with a user value in it; verify
accepts only the checks the connection types define. A fake engine stands for Docker's
exec API (real frames over a real socket pair) and records every command."""
import socket
import struct
import time

import pytest

from ansible_collections.clockwork.connections.plugins.module_utils.file import connection_type as file
from ansible_collections.clockwork.connections.plugins.module_utils.network import connection_type as network
from ansible_collections.clockwork.connections.plugins.module_utils.service_mesh import connection_type as service_mesh
from ansible_collections.clockwork.connections.plugins.module_utils.database import connection_type as database
from ansible_collections.clockwork.connections.plugins.module_utils.database.engine_postgresql import split_password
from ansible_collections.clockwork.connections.plugins.module_utils.apply.checks import run_checks
from ansible_collections.clockwork.connections.plugins.module_utils.docker.dry_run import dry_run_gateway
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import (
    DockerGateway, exec_first, exec_in)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.memory import WRITES, memory_gateway
from ansible_collections.clockwork.connections.plugins.modules.verify import validated_checks

HOSTILE = "x$(touch /tmp/pwned)`id`;'\" && rm -rf / #.sql"


class FakeAPI(object):
    """Docker's exec endpoints over a socket pair; `programs` says what a container has."""

    def __init__(self, programs, hang=()):
        self.programs, self.hang = programs, hang
        self.calls, self._execs = [], {}

    def exec_create(self, container, cmd, environment=None):
        assert isinstance(cmd, list), "a command must be an argv list, not %r" % (cmd,)
        self.calls.append({"container": container, "argv": list(cmd), "env": dict(environment or {})})
        exec_id = str(len(self.calls))
        self._execs[exec_id] = (container, list(cmd), dict(environment or {}))
        return {"Id": exec_id}

    def exec_start(self, exec_id, socket=False):   # noqa: A002  (Docker's own name)
        assert socket is True
        container, argv, env = self._execs[exec_id]
        ours, theirs = _socketpair()
        program = argv[2] if argv[0] == "timeout" and "timeout" in self.programs else argv[0]
        if program in self.hang:
            self._execs[exec_id] = (container, argv, env, None)
            self._keep = ours   # never closed: the program never ends
            return theirs
        code, out = self.run(argv, env)
        self._execs[exec_id] = (container, argv, env, code)
        data = out.encode()
        if data:
            ours.sendall(struct.pack(">BxxxL", 1, len(data)) + data)
        ours.close()
        return theirs

    def run(self, argv, env):
        if argv[0] == "timeout":
            if "timeout" not in self.programs:
                return 126, 'OCI runtime exec failed: exec failed: unable to start container process: exec: ' \
                            '"timeout": executable file not found in $PATH: unknown'
            argv = argv[2:]
            if argv[0] not in self.programs:
                return 127, "timeout: failed to run command '%s': No such file or directory" % argv[0]
        elif argv[0] not in self.programs:
            return 126, 'OCI runtime exec failed: exec: "%s": executable file not found in $PATH: unknown' % argv[0]
        return self.programs[argv[0]](argv, env)

    def exec_inspect(self, exec_id):
        code = self._execs[exec_id][3]
        return {"ExitCode": code, "Running": code is None}


def _socketpair():
    ours, theirs = socket.socketpair()
    return ours, theirs


class FakeEngine(DockerGateway):
    """The gateway over FakeAPI's exec endpoints; `known`: the containers it inspects, by name."""

    def __init__(self, programs, containers=None, hang=()):
        DockerGateway.__init__(self, api=FakeAPI(programs, hang))
        self.known = containers or {}

    def container(self, name):
        return self.known.get(name)

    def network(self, name):
        return None

    def argvs(self):
        """Each command as the program saw it, without the `timeout N` in front."""
        return [c["argv"][2:] if c["argv"][0] == "timeout" else c["argv"] for c in self.api.calls]


def ok(output=""):
    return lambda argv, env: (0, output)


def fails(code=1, output=""):
    return lambda argv, env: (code, output)


COREUTILS = {"timeout": ok(), "test": ok(), "touch": ok(), "rm": ok(), "getent": ok("172.18.0.3  redis"),
             "sha256sum": lambda argv, env: (0, "%s  %s" % ("a" * 64, argv[-1]))}


def no_shell_with_values(engine, *values):
    """No command is a shell whose script holds a value; every value is a whole argv entry
    (or the value of one --option=value, or the directory of a path)."""
    for argv in engine.argvs():
        if argv[0] in ("sh", "bash", "dash", "ash"):
            script = argv[argv.index("-c") + 1]
            assert not any(v in script for v in values), "a value reached a shell script: %r" % (argv,)
        for entry in argv:
            for value in values:
                if value in entry:
                    assert entry == value or entry.endswith("=" + value) or entry.startswith(value + "/"), \
                        "value spliced into %r" % (entry,)


# -- exec_in --------------------------------------------------------------------

def test_exec_in_takes_argv_lists_only():
    engine = FakeEngine(COREUTILS)
    with pytest.raises(TypeError):
        exec_in(engine, "api", "test -f /etc/passwd")
    with pytest.raises(TypeError):
        exec_in(engine, "api", ["test", 1])
    assert engine.api.calls == []


def test_exec_in_runs_under_timeout_and_passes_values_untouched():
    engine = FakeEngine(dict(COREUTILS, printf=lambda argv, env: (0, argv[1] + env["X"])))
    code, out = exec_in(engine, "api", ["printf", HOSTILE], timeout=7, env={"X": "$(id)"})
    assert (code, out) == (0, HOSTILE + "$(id)")
    assert engine.api.calls[0]["argv"] == ["timeout", "7", "printf", HOSTILE]
    assert engine.api.calls[0]["env"] == {"X": "$(id)"}


def test_a_missing_program_is_127_with_or_without_timeout_in_the_image():
    engine = FakeEngine(COREUTILS)
    assert exec_in(engine, "api", ["nc", "-z", "redis", "6379"]) == (127, "nc is not in container api")
    bare = FakeEngine({"cat": ok("x")})
    assert exec_in(bare, "api", ["nc"]) == (127, "nc is not in container api")
    # Without `timeout`, the image is remembered: one wasted exec per container and run.
    assert exec_in(bare, "api", ["cat", "/f"]) == (0, "x")
    assert [c["argv"][0] for c in bare.api.calls] == ["timeout", "nc", "cat"]


def test_a_program_that_never_ends_is_cut_at_the_timeout():
    engine = FakeEngine({"sleep": ok()}, hang=("sleep",))   # no `timeout` in the image: our side bounds it
    started = time.monotonic()
    code, out = exec_in(engine, "api", ["sleep", "100"], timeout=1)
    assert code == 124 and "sleep timed out after 1s in api" in out
    assert time.monotonic() - started < 3


def test_exec_first_falls_back_and_names_what_is_missing():
    engine = FakeEngine(dict(COREUTILS, wget=ok("fine")))
    assert exec_first(engine, "api", [["curl", "u"], ["wget", "u"]]) == (0, "fine", "wget")
    code, out, tool = exec_first(engine, "api", [["nc"], ["bash"]])
    assert (code, tool) == (127, None) and out == "none of nc, bash is in container api"


# -- the checks -----------------------------------------------------------------

def test_file_check_with_a_hostile_path_is_argv_only():
    path = "/etc/app/" + HOSTILE
    engine = FakeEngine(dict(COREUTILS, test=lambda argv, env: (0 if argv[1] != "-w" else 1, "")))
    ok_, msg = file.check_file(engine, {"container": "api", "path": path, "sha256": "a" * 64, "read_only": True})
    assert ok_, msg
    # The content read proves the file is there and readable; no mount holds the path, so the
    # container is asked whether it can write it.
    assert engine.argvs() == [["sha256sum", path], ["test", "-w", path]]
    no_shell_with_values(engine, path)


@pytest.mark.parametrize("rw, ok_expected", [(False, True), (True, False)])
def test_file_check_reads_read_only_from_the_mount(rw, ok_expected):
    mounts = [{"Destination": "/etc", "RW": True}, {"Destination": "/etc/app/config.json", "RW": rw}]
    engine = FakeEngine(COREUTILS, containers={"api": {"Mounts": mounts}})
    ok_, msg = file.check_file(engine, {"container": "api", "path": "/etc/app/config.json", "sha256": "a" * 64,
                                        "read_only": True})
    assert ok_ is ok_expected, msg
    assert engine.argvs() == [["sha256sum", "/etc/app/config.json"]]
    assert ok_expected or "writable in api" in msg


def test_file_check_names_a_missing_file_and_other_content():
    engine = FakeEngine(dict(COREUTILS, sha256sum=fails(1, "sha256sum: /x: No such file or directory")))
    ok_, msg = file.check_file(engine, {"container": "api", "path": "/x", "sha256": "a" * 64})
    assert not ok_ and msg.startswith("/x is not readable in api")
    engine = FakeEngine(COREUTILS)
    ok_, msg = file.check_file(engine, {"container": "api", "path": "/x", "sha256": "b" * 64})
    assert not ok_ and "does not have the expected content" in msg
    engine = FakeEngine(COREUTILS)
    ok_, msg = file.check_file(engine, {"container": "api", "path": "/d", "directory": True})
    assert ok_ and engine.argvs() == [["test", "-d", "/d", "-a", "-r", "/d"]]


def test_shared_volume_round_trip_is_argv_only():
    seen = []

    def remove(argv, env):
        if argv[-1] not in seen:
            return 1, "rm: cannot remove '%s': No such file or directory" % argv[-1]
        seen.remove(argv[-1])
        return 0, ""
    programs = dict(COREUTILS, touch=lambda argv, env: (seen.append(argv[1]), (0, ""))[1], rm=remove)
    engine = FakeEngine(programs)
    path = "/data/with space/" + HOSTILE
    ok_, msg = file.check_shared_volume(engine, {"container": "api", "peer": "storage", "path": path})
    assert ok_, msg
    calls = engine.api.calls
    # The peer removes the probe: it sees it, and nothing is left behind.
    assert [(c["container"], c["argv"][2]) for c in calls] == [("api", "touch"), ("storage", "rm")]
    assert calls[0]["argv"][3].startswith(path + "/.clockwork-probe-") and not seen
    no_shell_with_values(engine, path)


def test_shared_volume_peer_that_cannot_remove_looks_and_the_writer_cleans_up():
    seen = []

    def remove(argv, env):
        if argv[-2:-1] == ["-f"] or argv[1] == "-f":
            seen.clear()
            return 0, ""
        return 1, "rm: cannot remove '%s': Read-only file system" % argv[-1]
    programs = dict(COREUTILS, touch=lambda argv, env: (seen.append(argv[1]), (0, ""))[1], rm=remove,
                    test=lambda argv, env: (0 if argv[2] in seen else 1, ""))
    engine = FakeEngine(programs)
    ok_, msg = file.check_shared_volume(engine, {"container": "api", "peer": "storage", "path": "/data"})
    assert ok_, msg
    assert [(c["container"], c["argv"][2]) for c in engine.api.calls] == [
        ("api", "touch"), ("storage", "rm"), ("storage", "test"), ("api", "rm")]
    assert not seen

    # Not seen at all: said so, and the writer still removes its probe.
    engine = FakeEngine(dict(COREUTILS, rm=lambda argv, env: (0, "") if argv[-2] == "-f" else (
        1, "rm: cannot remove 'x': No such file or directory")))
    ok_, msg = file.check_shared_volume(engine, {"container": "api", "peer": "storage", "path": "/data"})
    assert not ok_ and "is not seen by storage" in msg
    assert [(c["container"], c["argv"][2]) for c in engine.api.calls][-1] == ("api", "rm")


def test_dns_tcp_falls_back_to_bash_with_a_fixed_script():
    engine = FakeEngine(dict(COREUTILS, bash=ok()))
    ok_, msg = network.check_dns_tcp(engine, {"container": "api", "host": "redis", "port": 6379})
    assert ok_, msg
    # A connection by name proves the name resolves: no lookup when it succeeds.
    assert engine.argvs() == [
        ["nc", "-z", "-w", "3", "redis", "6379"],
        ["bash", "-c", 'exec 3<>"/dev/tcp/$1/$2"', "clockwork-tcp-probe", "redis", "6379"]]
    # The run remembers that the container has no nc.
    ok_, msg = network.check_dns_tcp(engine, {"container": "api", "host": "redis", "port": 6379})
    assert ok_ and engine.argvs()[-1][0] == "bash" and len(engine.argvs()) == 3
    lonely = FakeEngine({"timeout": ok(), "getent": ok("10.0.0.2 redis")})
    ok_, msg = network.check_dns_tcp(lonely, {"container": "api", "host": "redis", "port": 6379})
    assert not ok_ and "none of nc, bash is in container api" in msg


def test_dns_tcp_tells_a_name_that_does_not_resolve_from_a_closed_port():
    engine = FakeEngine(dict(COREUTILS, nc=fails(1, ""), getent=fails(2, "")))
    ok_, msg = network.check_dns_tcp(engine, {"container": "api", "host": "redis", "port": 6379})
    assert not ok_ and msg == "redis does not resolve inside api: no answer"
    engine = FakeEngine(dict(COREUTILS, nc=fails(1, "")))
    ok_, msg = network.check_dns_tcp(engine, {"container": "api", "host": "redis", "port": 6379})
    assert not ok_ and msg == "redis:6379 does not accept TCP from api: refused"
    engine = FakeEngine(COREUTILS)
    ok_, msg = network.check_dns_tcp(engine, {"container": "api", "host": "redis"})
    assert ok_ and msg == "redis resolves to 172.18.0.3" and engine.argvs() == [["getent", "hosts", "redis"]]


def test_http_check_reads_the_status_line_and_falls_back_to_wget():
    url = "http://api:8000/health?q=$(id)&x=[1-9]"
    answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok"
    engine = FakeEngine(dict(COREUTILS, curl=ok(answer)))
    ok_, msg = service_mesh.check_http(engine, {"container": "frontend", "url": url, "ca_file": "/etc/ca dir/ca.crt"})
    assert ok_ and msg.endswith("answered 200")
    argv = engine.argvs()[0]
    assert argv[0] == "curl" and "-g" in argv and argv[-2:] == ["--url", url]
    assert argv[argv.index("--cacert") + 1] == "/etc/ca dir/ca.crt"
    no_shell_with_values(engine, url)

    engine = FakeEngine(dict(COREUTILS, wget=fails(8, "  HTTP/1.1 404 Not Found\n  Server: x")))
    ok_, msg = service_mesh.check_http(engine, {"container": "frontend", "url": url})
    assert not ok_ and "status 404" in msg
    assert engine.argvs()[-1][0] == "wget" and engine.argvs()[-1][-1] == url


def test_database_check_passes_no_secret_and_no_name_into_a_command():
    password = "pa ss'$(id)"  # pragma: allowlist secret
    url = "postgresql://app:pa%20ss%27%24%28id%29@db:5432/appdb?sslmode=disable"
    schema = "x$(touch /tmp/pwned).sql"
    hexed = schema.encode().hex()
    engine = FakeEngine(dict(COREUTILS, psql=ok("%s\n%s" % ("ab", hexed))),
                        containers={"api": {"Config": {"Env": ["DATABASE_URL=" + url]}}})
    check = {"engine": "postgresql", "container": "db", "env_from": "api", "env_var": "DATABASE_URL",
             "schema": [schema]}
    ok_, msg = database.check_database(engine, check)
    assert ok_, msg
    call = engine.api.calls[0]
    assert call["env"]["PGPASSWORD"] == password
    assert not any(password in a or "pa%20ss" in a or schema in a for a in call["argv"])
    assert "--dbname=postgresql://app@db:5432/appdb?sslmode=disable" in call["argv"]
    no_shell_with_values(engine, schema)

    engine = FakeEngine(dict(COREUTILS, psql=ok("ab")),
                        containers={"api": {"Config": {"Env": ["DATABASE_URL=" + url]}}})
    ok_, msg = database.check_database(engine, check)
    assert not ok_ and "schema %s is not recorded" % schema in msg


def test_redis_check_passes_the_password_in_env():
    engine = FakeEngine(dict(COREUTILS, **{"redis-cli": ok("PONG")}),
                        containers={"api": {"Config": {"Env": ["REDIS_URL=redis://:s3cr%40t@cache:6380/2"]}}})
    ok_, msg = database.check_database(engine, {"engine": "redis", "container": "cache", "env_from": "api",
                                                "env_var": "REDIS_URL"})
    assert ok_, msg
    assert engine.argvs() == [["redis-cli", "-h", "cache", "-p", "6380", "-n", "2", "ping"]]
    assert engine.api.calls[0]["env"] == {"REDISCLI_AUTH": "s3cr@t"}


@pytest.mark.parametrize("url, target, password", [
    ("postgresql://u:p%40ss@h:5432/db", "postgresql://u@h:5432/db", "p@ss"),
    ("postgresql://u@h/db?password=x%20y&sslmode=require", "postgresql://u@h/db?sslmode=require", "x y"),
    ("postgres://h/db", "postgres://h/db", None),
    ("host=h user=u password='a b\\'c' dbname=d", "host=h user=u dbname=d", "a b'c"),
    ("host=h password=plain", "host=h", "plain"),
])
def test_split_password(url, target, password):
    assert split_password(url) == (target, password)


# -- run_checks: on a dry run, what it cannot answer is not run ----------------------

IMAGE = "clockwork-test/redis:7"
FILE = {"kind": "file", "connection": "file api -> storage", "path": "/etc/app/config.json"}
ABSENT = {"kind": "running", "connection": "dependency web -> api", "target": "api"}


def _running(gateway, *names):
    for name in names:
        gateway.create_container(name, IMAGE)
        gateway.start(name)


def _live(execs=None):
    """An engine (in memory) with `redis` running; execs exit 0 unless `execs` says otherwise."""
    gateway = memory_gateway(images=[IMAGE], execs=execs)
    _running(gateway, "redis")
    return gateway.api


def test_on_a_dry_run_a_check_about_a_container_it_would_make_or_that_is_absent_is_not_run():
    live = _live()
    since = len(live.calls)
    dry = dry_run_gateway(live=live)
    _running(dry, "web")        # what this run would create
    checks = [dict(FILE, container="redis"), dict(FILE, container="web"), dict(FILE, container="api"),
              {"kind": "dns_tcp", "connection": "network redis -> web", "container": "redis", "host": "web"},
              {"kind": "http", "connection": "service_mesh redis -> web", "container": "redis",
               "url": "http://web:80/"},
              {"kind": "running", "connection": "dependency redis -> web", "target": "web"}]
    reports = run_checks(dry, checks, parallel=3)
    assert [(r["ok"], r["msg"]) for r in reports[1:]] == [
        (None, "not run: web does not exist yet (check mode)"), (None, "not run: api does not exist yet (check mode)")] + \
        [(None, "not run: web does not exist yet (check mode)")] * 3
    # The container the dry run left alone answers from the engine, as in a real run.
    assert reports[0]["ok"] is True, reports[0]
    assert [argv[-1] for _container, argv, _env in live.exec_log] == [FILE["path"]], live.exec_log
    assert [c for c in live.calls[since:] if c.method in WRITES] == [], "a write of the dry run reached the engine"


def test_a_real_run_runs_every_check_an_absent_container_fails_it():
    gateway = memory_gateway(images=[IMAGE])
    _running(gateway, "redis")
    reports = run_checks(gateway, [dict(FILE, container="redis"), ABSENT])
    assert reports[0]["ok"] is True and reports[1]["ok"] is False, reports


def test_a_failing_check_is_retried_on_the_engines_clock():
    answers = iter([(1, ""), (1, ""), (0, "")])
    gateway = memory_gateway(images=[IMAGE], execs=lambda container, argv, env: next(answers))
    _running(gateway, "redis")
    began, real = gateway.monotonic(), time.monotonic()
    reports = run_checks(gateway, [dict(FILE, container="redis")], retries_for=5)
    assert reports[0]["ok"] is True, reports
    assert gateway.monotonic() - began == 1.0, "two retries, 0.5 s apart on the engine's clock"
    assert time.monotonic() - real < 1, "the engine's clock, not the process's"


# -- verify: checks are data from outside ------------------------------------------

def test_verify_accepts_what_connections_return_and_converts_types():
    checks, problems = validated_checks([
        {"kind": "dns_tcp", "connection": "network api -> redis", "container": "api", "host": "redis", "port": "6379"},
        {"kind": "file", "container": "api", "path": "/etc/app/config.json", "read_only": "yes", "directory": False,
         "sha256": "a" * 64},
        {"kind": "http", "container": "frontend", "url": "https://api:8000/health", "retry_for": 30,
         "ca_file": "/etc/clockwork/tls/ca.crt"},
        {"kind": "database", "connection": "database api -> db", "engine": "postgresql", "container": "db",
         "env_from": "api", "env_var": "DATABASE_URL", "schema": ["schema.sql"]},
        {"kind": "shared_volume", "container": "api", "peer": "storage", "path": "/data/shared", "read_only": False},
        {"kind": "no_route_out", "container": "api", "network": "backend"},
        {"kind": "running", "target": "redis", "condition": "healthy"},
    ])
    assert problems == []
    assert checks[0]["port"] == 6379 and checks[1]["read_only"] is True


@pytest.mark.parametrize("check, expected", [
    ({"kind": "shell", "cmd": "id"}, "unknown check kind 'shell'; the kinds are database, dns_tcp"),
    ({"container": "api"}, "unknown check kind None"),
    ({"kind": "file", "container": "api", "path": "/x", "command": "id"},
     "a file check has no field command; its fields are connection, container, directory"),
    ({"kind": "file", "container": "api"}, "missing required arguments: path"),
    ({"kind": "file", "container": "api", "path": "relative/x"}, "must be an absolute path"),
    ({"kind": "file", "container": "-it", "path": "/x"}, "starts with '-'"),
    ({"kind": "dns_tcp", "container": "api", "host": "redis; id"}, "is not a host name"),
    ({"kind": "dns_tcp", "container": "api", "host": "-e/bin/sh"}, "is not a host name"),
    ({"kind": "dns_tcp", "container": "api", "host": "redis", "port": 70000}, "is not a TCP port"),
    ({"kind": "http", "container": "api", "url": "file:///etc/shadow"}, "is not an http:// or https:// URL"),
    ({"kind": "http", "container": "api", "url": "http://a b"}, "is not an http:// or https:// URL"),
    ({"kind": "database", "container": "db", "env_from": "api", "env_var": "X; id"},
     "is not an environment variable name"),
    ({"kind": "database", "container": "db", "env_from": "api", "env_var": "U", "engine": "oracle"}, "one of"),
    ({"kind": "file", "container": "api", "path": "/x", "sha256": "zz"}, "is not a sha256"),
    ({"kind": "running", "target": "redis", "condition": "sleepy"}, "one of"),
])
def test_verify_refuses_what_no_connection_type_defines(check, expected):
    checks, problems = validated_checks([{"kind": "dns_tcp", "container": "api", "host": "redis"}, check])
    assert len(checks) <= 2 and problems, problems
    assert all(p.startswith("checks[1]") for p in problems), problems
    assert any(expected in p for p in problems), problems
