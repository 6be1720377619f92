"""Real receivers for the notification tests: an HTTP server that records
webhook POSTs, and an SMTP server (aiosmtpd) that keeps the mail it accepts.
Both run in threads of the test process and can be stopped and started
again on the same port (a receiver that is down)."""

from __future__ import annotations

import email
import threading
import warnings
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests import helpers


class Webhook:
    """Records the JSON bodies POSTed to it; ``stop()`` closes the port (refused
    connections), ``start()`` opens it again."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or helpers.free_port()
        self.received: list[dict] = []
        self.headers: list[dict] = []
        self.server: ThreadingHTTPServer | None = None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?token=secret-token"

    def start(self) -> Webhook:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(orjson.loads(body))
                    receiver.headers.append(dict(self.headers))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self) -> list[tuple[str, str, str]]:
        """(guid, kind, state) of what arrived, in order."""
        with self.lock:
            return [(e["guid"], e["kind"], e["state"]) for e in self.received]


class _Keep:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.box.lock:
            self.box.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


class Mailbox:
    """An SMTP server that requires a login (``user`` / ``password``)."""

    def __init__(self, user: str = "mailer", password: str = "smtp-pass-42") -> None:
        self.user, self.password = user, password
        self.port = helpers.free_port()
        self.messages: list = []
        self.logins: list[str] = []
        self.lock = threading.Lock()
        self.controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user \
            and auth_data.password.decode() == self.password
        if ok:
            self.logins.append(self.user)
        return AuthResult(success=ok)

    def start(self) -> Mailbox:
        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")  # a test server on 127.0.0.1
        self.controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port, auth_required=True,
                                     auth_require_tls=False, authenticator=self._authenticate)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def subjects(self) -> list[str]:
        with self.lock:
            return [str(m["Subject"]) for _to, m in self.messages]
