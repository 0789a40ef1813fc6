"""The way to a local engine without the Docker SDK (plugins/module_utils/docker/): HTTP/1.1 on
its Unix socket with http.client, against a tiny fake engine on a socket in a temporary
directory (fake_unix_engine.py). Status codes, Content-Length and chunked bodies, kept-alive
connections, 404 as None, every error one clear message with the SDK's type and text, the
same requests the SDK would send, and no import of the SDK on a no-op's path."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest

import fake_unix_engine
from fake_unix_engine import Answer

from ansible_collections.clockwork.connections.plugins.module_utils.docker import gateway as docker_client
from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.docker.engine_api import EngineAPI, local_socket
from ansible_collections.clockwork.connections.plugins.module_utils.docker.errors import (
    APIError, EngineUnreachable, NotFound)
from ansible_collections.clockwork.connections.plugins.module_utils.docker.unix_http import UnixHTTPClient
from ansible_collections.clockwork.connections.plugins.module_utils.failures import failure_message

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTAINER = {"Id": "c" * 64, "Name": "/web", "State": {"Status": "running"}, "Config": {"Labels": {"a": "b"}}}


@pytest.fixture
def socket_dir():
    # A short path: a Unix socket's path is limited to about 100 bytes.
    path = tempfile.mkdtemp(prefix="cw-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def engine(socket_dir):
    server = fake_unix_engine.start(os.path.join(socket_dir, "engine.sock"))
    server.socket_path = os.path.join(socket_dir, "engine.sock")
    yield server
    fake_unix_engine.stop(server)


def environment(server):
    return {"DOCKER_HOST": "unix://" + server.socket_path}


# -- the transport ----------------------------------------------------------------------

@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_json_answer_is_decoded_whatever_its_framing(engine, chunked):
    engine.answer("GET", "/containers/web/json", Answer(200, CONTAINER, chunked=chunked, chunk=5))
    client = UnixHTTPClient(engine.socket_path)
    assert client.call("GET", "/v1.41/containers/web/json") == CONTAINER


def test_connections_are_kept_alive_and_reused(engine):
    engine.answer("GET", "/info", Answer(200, {"ID": "x"}))
    engine.answer("GET", "/networks", Answer(200, [], chunked=True))
    client = UnixHTTPClient(engine.socket_path)
    for _ in range(3):
        assert client.call("GET", "/v1.41/info") == {"ID": "x"}
        assert client.call("GET", "/v1.41/networks") == []
    assert client.opened == 1
    assert set(r["connection"] for r in engine.requests) == {1}


def test_a_connection_the_engine_closed_is_not_reused(engine):
    engine.answer("GET", "/info", Answer(200, {"ID": "x"}, close=True))
    client = UnixHTTPClient(engine.socket_path)
    assert client.call("GET", "/v1.41/info") == {"ID": "x"}
    assert client.call("GET", "/v1.41/info") == {"ID": "x"}
    assert len(set(r["connection"] for r in engine.requests)) == 2


def test_threads_share_the_client(engine):
    engine.answer("GET", "/containers/web/json", Answer(200, CONTAINER, chunked=True))
    client = UnixHTTPClient(engine.socket_path, pool_size=4)
    answers = []

    def read():
        for _ in range(10):
            answers.append(client.call("GET", "/v1.41/containers/web/json"))

    threads = [threading.Thread(target=read) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [CONTAINER] * 60
    assert client.opened <= 6


def test_404_is_none_when_asked_for(engine):
    client = UnixHTTPClient(engine.socket_path)
    assert client.call("GET", "/v1.41/containers/nothing/json", missing_ok=True) is None


@pytest.mark.parametrize("status, reason, kind", [(500, "Internal Server Error", "Server"),
                                                  (409, "Conflict", "Client"), (404, "Not Found", "Client")])
def test_an_error_status_is_the_sdk_error_with_the_sdk_text(engine, status, reason, kind):
    import docker.errors   # imported: the error is the SDK's type too, and reads as the SDK's
    engine.answer("POST", "/containers/create", Answer(status, {"message": "the engine's words"}, chunked=True))
    client = UnixHTTPClient(engine.socket_path)
    with pytest.raises(APIError) as raised:
        client.call("POST", "/v1.41/containers/create?name=x", {"Image": "i"})
    error = raised.value
    assert error.status_code == status and error.explanation == "the engine's words"
    assert str(error) == ('%d %s Error for http+docker://localhost/v1.41/containers/create?name=x: %s '
                          '("the engine\'s words")' % (status, kind, reason))
    assert isinstance(error, NotFound) == (status == 404)
    assert isinstance(error, docker.errors.APIError) and isinstance(error, docker_client.APIError)
    assert failure_message(error) == "the Docker engine refused: the engine's words"


WITHOUT_SDK = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.clockwork.connections.plugins.module_utils.docker import gateway as docker_client
from ansible_collections.clockwork.connections.plugins.module_utils.failures import failure_message
api = docker_client.DockerGateway().api
try:
    api.services(filters={"label": "x=y"})
except docker_client.APIError as exc:
    print(json.dumps({"status": exc.status_code, "text": str(exc), "oserror": isinstance(exc, OSError),
                      "message": failure_message(exc), "sdk": "docker" in sys.modules}))
"""


def test_an_expected_error_costs_no_sdk_import_and_is_still_one_line(engine):
    """An engine that is no swarm manager answers GET /services with 503, which the pre-flight of
    every run expects: the error is ours alone then, caught as the SDK's would be, and an OSError
    (as the SDK's), so uncaught it is still one line."""
    engine.answer("GET", "/services", Answer(503, {"message": "This node is not a swarm manager."}))
    proc = subprocess.run([sys.executable, "-c", WITHOUT_SDK, os.path.join(ROOT, "collections")], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, **environment(engine)))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "status": 503, "oserror": True, "sdk": False,
        "message": "the Docker engine refused: This node is not a swarm manager.",
        "text": '503 Server Error for http+docker://localhost/v1.41/services?filters=%7B%22label%22%3A+%5B%22x%3Dy'
                '%22%5D%7D: Service Unavailable ("This node is not a swarm manager.")'}


def test_an_error_without_json_keeps_the_engine_text(engine):
    engine.answer("GET", "/info", Answer(500, b"  plain words\n"))
    with pytest.raises(APIError) as raised:
        UnixHTTPClient(engine.socket_path).call("GET", "/v1.41/info")
    assert raised.value.explanation == "plain words"


def test_an_answer_that_breaks_off_is_one_clear_message(engine):
    engine.answer("GET", "/info", Answer(200, {"ID": "x" * 100}, broken=True))
    with pytest.raises(EngineUnreachable) as raised:
        UnixHTTPClient(engine.socket_path).call("GET", "/v1.41/info")
    message = failure_message(raised.value)
    assert message.startswith("cannot reach the Docker engine at unix://%s: " % engine.socket_path), message
    assert "\n" not in message and "Traceback" not in message


def test_no_engine_at_the_socket_is_one_clear_message(socket_dir):
    missing = os.path.join(socket_dir, "none.sock")
    with pytest.raises(ClockworkError) as raised:
        docker_client.DockerGateway(environment={"DOCKER_HOST": "unix://" + missing})
    assert raised.value.msg.startswith("cannot reach the Docker engine at unix://%s: " % missing), raised.value.msg


# -- the engine's API over it -----------------------------------------------------------------

def test_which_transport_is_local():
    assert local_socket({"PATH": "/bin"}) == local_socket({"DOCKER_HOST": ""}) == "/var/run/docker.sock"
    assert local_socket({"DOCKER_HOST": "unix:///run/user/1/docker.sock"}) == "/run/user/1/docker.sock"
    assert local_socket({"DOCKER_HOST": " unix:// "}) == "/var/run/docker.sock"
    for other in ("tcp://10.0.0.1:2376", "ssh://me@host", "https://h:2376", "unix://relative.sock", "npipe:////./pipe/x"):
        assert local_socket({"DOCKER_HOST": other}) is None, other


def test_the_version_is_asked_once_and_used_in_every_path(engine):
    engine.answer("GET", "/containers/web/json", Answer(200, CONTAINER))
    api = EngineAPI(environment=environment(engine))
    assert api.light and api.api_version == "1.41" and api.base_url == "http+docker://localhost"
    api.inspect_container("web")
    api.inspect_container("web")
    assert engine.paths() == [("GET", "/version")] + [("GET", "/v1.41/containers/web/json")] * 2


def test_the_cache_reads_each_object_once_and_404_is_none(engine):
    engine.answer("GET", "/containers/web/json", Answer(200, CONTAINER))
    engine.answer("GET", "/networks/gone", Answer(404, {"message": "network gone not found"}))
    engine.answer("GET", "/images/clockwork-test/nginx:1.22/json", Answer(200, {"Id": "sha256:1"}, chunked=True))
    cached = docker_client.DockerGateway(environment=environment(engine))
    for _ in range(2):
        assert cached.container("web") == CONTAINER
        assert cached.network("gone") is None
        assert cached.image("clockwork-test/nginx:1.22") == {"Id": "sha256:1"}
    assert engine.paths()[1:] == [("GET", "/v1.41/containers/web/json"), ("GET", "/v1.41/networks/gone"),
                                  ("GET", "/v1.41/images/clockwork-test/nginx:1.22/json")]
    with pytest.raises(docker_client.NotFound):
        cached.api.inspect_network("gone")


def test_workers_asking_for_one_object_at_once_make_one_read(engine):
    engine.answer("GET", "/images/nginx:1/json", Answer(200, {"Id": "sha256:1"}, chunked=True))
    cached = docker_client.DockerGateway(environment=environment(engine))
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(cached.image("nginx:1"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [{"Id": "sha256:1"}] * 8
    assert engine.paths().count(("GET", "/v1.41/images/nginx:1/json")) == 1


def _sdk_requests(engine, call):
    """What the SDK's APIClient sends for `call(api)` to the same fake engine."""
    import docker
    sdk = docker.APIClient(base_url="unix://" + engine.socket_path, version="1.41")
    before = len(engine.requests)
    try:
        call(sdk)
    except docker.errors.APIError:
        pass
    return [(r["method"], r["path"], r["query"], r["body"]) for r in engine.requests[before:]]


def _our_requests(engine, api, call):
    before = len(engine.requests)
    try:
        call(api)
    except APIError:
        pass
    return [(r["method"], r["path"], r["query"], r["body"]) for r in engine.requests[before:]]


CALLS = {
    "inspect_container": lambda api: api.inspect_container("web"),
    "inspect_network": lambda api: api.inspect_network("back end"),
    "inspect_volume": lambda api: api.inspect_volume("data"),
    "inspect_image": lambda api: api.inspect_image("registry:5000/team/app:1.2"),
    "containers": lambda api: api.containers(all=True, filters={"label": "io.clockwork.stack=shop"}),
    "containers_plain": lambda api: api.containers(),
    "containers_quiet_trunc": lambda api: api.containers(quiet=True, trunc=True, filters={"name": "x", "health": True}),
    "networks": lambda api: api.networks(),
    "networks_named": lambda api: api.networks(names=["shop_default"], filters={"label": "a=b"}),
    "volumes": lambda api: api.volumes(filters={"label": "io.clockwork.stack=shop"}),
    "images": lambda api: api.images(),
    "services": lambda api: api.services(filters={"label": "io.clockwork.stack=shop"}),
    "info": lambda api: api.info(),
    "exec_inspect": lambda api: api.exec_inspect("e1"),
    "lock_create": lambda api: api.create_container(
        "sha256:abc", command=["clockwork-lock"], name="clockwork-lock-shop", labels={"io.clockwork.lock": "shop"},
        host_config=api.create_host_config(network_mode="none")),
    "lock_remove": lambda api: api.remove_container("c" * 64, force=True, v=True),
    "exec_create": lambda api: api.exec_create("web", ["timeout", "3", "cat", "/x"], environment={"PW": "s3cret"}),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_each_call_sends_what_the_sdk_sends(engine, name):
    engine.answer("GET", "/containers/json", Answer(200, [{"Id": "d" * 64}], chunked=True))
    ours = _our_requests(engine, EngineAPI(environment=environment(engine)), CALLS[name])
    assert ours and ours == _sdk_requests(engine, CALLS[name])


def test_list_answers_are_shaped_as_the_sdk_shapes_them(engine):
    engine.answer("GET", "/containers/json", Answer(200, [{"Id": "d" * 64, "Names": ["/web"]}], chunked=True))
    engine.answer("GET", "/images/json", Answer(200, [{"Id": "sha256:1"}]))
    api = EngineAPI(environment=environment(engine))
    assert api.containers(quiet=True) == [{"Id": "d" * 64}]
    assert api.containers(trunc=True)[0]["Id"] == "d" * 12
    assert api.images(quiet=True) == ["sha256:1"]


def test_an_exec_streams_over_the_handed_over_socket(engine):
    engine.answer("POST", "/containers/web/exec", Answer(201, {"Id": "e1"}))
    engine.script_exec("e1", [(1, b"out line\n"), (2, b"err line\n")], 3)
    cached = docker_client.DockerGateway(environment=environment(engine))
    code, output = docker_client.exec_in(cached, "web", ["cat", "/x"], timeout=5, env={"PW": "s3cret"})
    assert (code, output) == (3, "out line\nerr line")
    created = [r for r in engine.requests if r["path"].endswith("/exec")][0]
    assert created["body"]["Cmd"] == ["timeout", "5", "cat", "/x"] and created["body"]["Env"] == ["PW=s3cret"]


def test_an_exec_the_engine_refuses_is_its_message(engine):
    engine.answer("POST", "/containers/web/exec", Answer(201, {"Id": "missing"}))
    cached = docker_client.DockerGateway(environment=environment(engine))
    code, output = docker_client.exec_in(cached, "web", ["true"], timeout=5)
    assert (code, output) == (126, "No such exec instance: missing")


# -- the SDK only when needed ------------------------------------------------------------------

NO_OP = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.clockwork.connections.plugins.module_utils.docker import gateway as docker_client
from ansible_collections.clockwork.connections.plugins.module_utils.apply.lock import stack_lock
engine = docker_client.DockerGateway()
seen = [engine.container("web"), engine.network("gone"), engine.volume("data"), engine.image("nginx:1"),
        engine.api.containers(all=True, filters={"label": "io.clockwork.stack=shop"}), engine.api.networks(),
        engine.api.volumes(), engine.api.images(), engine.api.info()]
try:
    engine.api.services(filters={"label": "x=y"})
except docker_client.APIError as exc:
    assert exc.status_code == 503
with stack_lock(engine, "shop", timeout=5):
    seen.append(docker_client.exec_in(engine, "web", ["cat", "/x"], timeout=5))
print(json.dumps({"modules": sorted(m for m in ("docker", "requests", "urllib3") if m in sys.modules),
                  "exec": seen[-1], "container": seen[0]}))
"""


def _no_op_engine(engine):
    engine.answer("GET", "/containers/web/json", Answer(200, CONTAINER))
    engine.answer("GET", "/volumes/data", Answer(200, {"Name": "data"}))
    engine.answer("GET", "/images/nginx:1/json", Answer(200, {"Id": "sha256:1"}))
    engine.answer("GET", "/images/json", Answer(200, [{"Id": "sha256:1", "Size": 1}], chunked=True))
    for path, body in (("/containers/json", []), ("/networks", []), ("/volumes", {"Volumes": []}),
                       ("/info", {"ID": "x"})):
        engine.answer("GET", path, Answer(200, body, chunked=True))
    # No swarm manager (the usual engine): the pre-flight's GET /services is refused, and caught.
    engine.answer("GET", "/services", Answer(503, {"message": "This node is not a swarm manager."}))
    engine.answer("POST", "/containers/create", Answer(201, {"Id": "1" * 64, "Warnings": []}))
    engine.answer("DELETE", "/containers/" + "1" * 64, Answer(204))
    engine.answer("POST", "/containers/web/exec", Answer(201, {"Id": "e1"}))
    engine.script_exec("e1", [(1, b"fine")], 0)


def test_a_no_op_does_not_import_the_sdk(engine):
    _no_op_engine(engine)
    proc = subprocess.run([sys.executable, "-c", NO_OP, os.path.join(ROOT, "collections")], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, **environment(engine)))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result == {"modules": [], "exec": [0, "fine"], "container": CONTAINER}, proc.stdout
    assert ("POST", "/v1.41/containers/create?name=clockwork-lock-shop") in engine.paths()


def test_a_change_imports_the_sdk_and_its_errors_are_ours(engine):
    _no_op_engine(engine)
    engine.answer("POST", "/containers/web/restart", Answer(409, {"message": "is being removed"}))
    api = docker_client.DockerGateway(environment=environment(engine)).api
    with pytest.raises(docker_client.APIError) as raised:
        api.restart("web")   # the SDK's method, its error translated
    assert raised.value.status_code == 409 and raised.value.explanation == "is being removed"
    assert failure_message(raised.value) == "the Docker engine refused: is being removed"
    # The SDK was made for the version already known: no second GET /version.
    assert engine.paths().count(("GET", "/version")) == 1


def test_an_error_of_the_standard_library_path_reads_as_the_sdks_does():
    """Without the SDK loaded, an error status or an unreachable socket is ours alone: the same
    one line as the SDK's (failures.failure_message), on both paths."""
    from ansible_collections.clockwork.connections.plugins.module_utils.docker import errors
    refused = errors.APIError("409 Client Error", explanation="is being removed")
    assert failure_message(refused) == "the Docker engine refused: is being removed"
    unreachable = errors.EngineUnreachable("cannot reach the Docker engine at unix:///var/run/docker.sock: no socket")
    assert failure_message(unreachable) == "cannot reach the Docker engine at unix:///var/run/docker.sock: no socket"
