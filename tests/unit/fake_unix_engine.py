"""A tiny HTTP/1.1 server on a Unix socket that stands for the Docker engine in unit tests:
scripted answers by method and path, every request recorded with the connection it came on
(so keep-alive shows), bodies sent with Content-Length or chunked, and an exec's start
answered as the engine does (101, then the stream's frames)."""
import json
import socketserver
import struct
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

API = "1.41"


class Answer(object):
    """What the fake engine answers: `body` (JSON-encoded unless bytes), sent with a
    Content-Length or, with `chunked`, in chunks of `chunk` bytes; `close` ends the
    connection after it; `broken` sends the headers and half the body, then closes."""

    def __init__(self, status=200, body=None, chunked=False, chunk=7, close=False, broken=False, reason=None):
        self.status, self.body, self.chunked, self.chunk = status, body, chunked, chunk
        self.close, self.broken, self.reason = close, broken, reason

    def payload(self):
        if self.body is None:
            return b""
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):   # quiet
        pass

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.connection_number = self.server.connections

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        request = {"method": self.command, "path": split.path, "query": dict(parse_qsl(split.query)),
                   "target": self.path, "body": json.loads(raw) if raw else None,
                   "connection": self.connection_number, "headers": dict(self.headers)}
        self.server.requests.append(request)
        if split.path.startswith("/v%s/exec/" % API) and split.path.endswith("/start"):
            return self._exec_start(split.path.split("/")[3])
        answer = self.server.answer_for(self.command, split.path)
        if callable(answer):
            answer = answer(request)
        self._send(answer)

    do_GET = do_POST = do_DELETE = _serve

    def _send(self, answer):
        payload = answer.payload()
        self.send_response(answer.status, answer.reason)
        self.send_header("Content-Type", "application/json")
        if answer.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(payload)))
        if answer.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if answer.broken:
            self.wfile.write(payload[:len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if answer.chunked:
            for start in range(0, len(payload), answer.chunk):
                part = payload[start:start + answer.chunk]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(payload)

    def _exec_start(self, exec_id):
        """The engine hands the connection over to the exec's stream: 101, then stdout (1)
        and stderr (2) frames with 8-byte headers, then the end of the stream."""
        run = self.server.execs.get(exec_id)
        if run is None:
            return self._send(Answer(404, {"message": "No such exec instance: %s" % exec_id}))
        self.wfile.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                         b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        for stream, data in run["frames"]:
            self.wfile.write(struct.pack(">BxxxL", stream, len(data)) + data)
        self.wfile.flush()
        self.close_connection = True


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path):
        super().__init__(path, Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = []
        self.routes = {}
        self.execs = {}
        self.version = API

    def answer_for(self, method, path):
        if method == "GET" and path == "/version":
            return Answer(200, {"ApiVersion": self.version, "Version": "20.10.24"})
        prefix = "/v%s" % self.version
        key = (method, path[len(prefix):] if path.startswith(prefix) else path)
        return self.routes.get(key, Answer(404, {"message": "page not found"}))

    def answer(self, method, path, answer):
        """Script the answer to `method path` (path without the /v1.41 prefix)."""
        self.routes[(method, path)] = answer

    def script_exec(self, exec_id, frames, exit_code):
        """An exec the fake engine runs: its output frames and exit code."""
        self.execs[exec_id] = {"frames": frames}
        self.answer("GET", "/exec/%s/json" % exec_id, Answer(200, {"Running": False, "ExitCode": exit_code}))

    def paths(self):
        return [(r["method"], r["target"]) for r in self.requests]


def start(path):
    server = Server(str(path))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    return server


def stop(server):
    server.shutdown()
    server.server_close()
