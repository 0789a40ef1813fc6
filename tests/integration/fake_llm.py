"""A small OpenAI-compatible chat-completions server on 127.0.0.1 for the tests.

It answers from a table (a list of replies, used in order, the last one repeated), or per
connection type (`answer_by_field`: the replies for the requests whose schema asks for that
field), and records every request, so tests can assert what was asked and how often."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM(object):
    def __init__(self):
        self.replies = []
        self.routes = {}
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                server.requests.append(request)
                status, content = server.reply_to(request)
                if status == 200:
                    payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
                else:
                    payload = json.dumps({"error": {"message": content}})
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self):
        return "http://127.0.0.1:%d/v1" % self.httpd.server_address[1]

    @staticmethod
    def _encoded(replies):
        return [r if isinstance(r, tuple) else (200, json.dumps(r) if isinstance(r, dict) else r) for r in replies]

    def answer(self, *replies):
        """Each reply: a dict (answered as JSON text), a str (answered as is), or (status, text)."""
        self.replies = self._encoded(replies)
        self.routes = {}
        self.requests = []

    def answer_by_field(self, routes):
        """{field: [replies]}: a request whose schema asks for `field` gets the next of those replies."""
        self.routes = dict((field, self._encoded(replies)) for field, replies in routes.items())
        self.replies = []
        self.requests = []

    def asked_for(self, field):
        """The requests whose schema asked for `field`."""
        return [r for r in self.requests if field in self._fields(r)]

    @staticmethod
    def _fields(request):
        return request["body"]["response_format"]["json_schema"]["schema"]["required"]

    def reply_to(self, request):
        for field, replies in self.routes.items():
            if field in self._fields(request):
                count = len(self.asked_for(field))
                return replies[min(count, len(replies)) - 1]
        if not self.replies:
            return 500, "no reply configured for %s" % self._fields(request)
        return self.replies[min(len(self.requests), len(self.replies)) - 1]

    def env(self):
        return {"CLOCKWORK_LLM_BASE_URL": self.base_url, "CLOCKWORK_LLM_MODEL": "test-model",
                "CLOCKWORK_LLM_API_KEY": "sk-test-not-a-secret"}

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
