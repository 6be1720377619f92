"""Who is asking: HTTP Basic credentials or a page session (the edge).

Users come from HUMIDITY_USERS_FILE, read again when it changes (so
``add-user`` needs no restart). Password checks run in a thread (Argon2 is
slow on purpose) and go through a :class:`humidity.core.users.Throttle` per
user name and per client address. A session's requests that write carry its
CSRF token in ``X-CSRF-Token``; every write must be JSON, and a request that
names another origin is refused, so another site cannot make a browser write
with credentials it holds.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from humidity.core import users as users_core
from humidity.core.settings import Settings

log = logging.getLogger(__name__)

COOKIE = "humidity_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass
class Denied(Exception):
    status: int
    message: str
    retry_after: float = 0.0


class Access:
    def __init__(self, settings: Settings) -> None:
        self.path = settings.users_file
        self.secure_cookie = settings.public_url.startswith("https://")
        self.names = users_core.Throttle(users_core.FAILURES_BEFORE_LOCK)
        self.addresses = users_core.Throttle(users_core.ADDRESS_FAILURES_BEFORE_LOCK)
        self.sessions = users_core.Sessions(settings.session_secret)
        self._users: dict[str, users_core.User] = {}
        self._stamp: tuple | None = None

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def users(self) -> dict[str, users_core.User]:
        """The users file's users, read again when it has changed; a file that
        became unreadable or invalid keeps the users it had, loudly."""
        try:
            info = self.path.stat()
            stamp = (info.st_mtime_ns, info.st_size)
        except OSError as exc:
            stamp = ("missing", exc.strerror)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._users = users_core.load_users(self.path)
                log.info("Users file %s: %d user(s)", self.path, len(self._users))
            except users_core.UsersError as exc:
                log.error("%s; keeping the %d user(s) read before", exc, len(self._users))
        return self._users

    async def check_password(self, name: str, password: str, client: str) -> users_core.User:
        """The user, or :class:`Denied` (401 wrong, 429 while locked)."""
        now = time.time()
        wait = max(self.names.wait(name, now), self.addresses.wait(client, now))
        if wait > 0:
            raise Denied(429, "too many failed logins: try again later", wait)
        user = await asyncio.get_running_loop().run_in_executor(
            None, users_core.authenticate, self.users(), name, password)
        if user is None:
            self.names.failed(name, time.time())
            self.addresses.failed(client, time.time())
            log.warning("Failed login as %r from %s", name[:64], client)
            raise Denied(401, "wrong user name or password")
        self.names.succeeded(name)
        self.addresses.succeeded(client)
        return user

    def session_of(self, request) -> tuple[str | None, users_core.Session | None, users_core.User | None]:
        """The cookie's token, its session and its user as the users file has
        them now (None if removed since)."""
        token = request.cookies.get(COOKIE)
        session = self.sessions.get(token, time.time()) if self.enabled else None
        user = self.users().get(session.name) if session is not None else None
        return token, (session if user is not None else None), user

    async def writer(self, request) -> users_core.User:
        """The user behind a request that writes, or :class:`Denied`."""
        if not self.enabled:
            raise Denied(403, "this service is read-only: no users are configured (HUMIDITY_USERS_FILE)")
        check_same_origin(request)
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            name, password = _basic(header)
            return await self.check_password(name, password, request.remote or "?")
        _token, session, user = self.session_of(request)
        if session is None or user is None:
            raise Denied(401, "log in, or send HTTP Basic credentials")
        if request.headers.get(CSRF_HEADER) != session.csrf:
            raise Denied(403, f"missing or wrong {CSRF_HEADER}")
        return user

    async def operator(self, request, what: str) -> users_core.User:
        """The operator behind a request that writes ``what``, or :class:`Denied` (403 for a viewer)."""
        user = await self.writer(request)
        if not user.is_operator:
            raise Denied(403, f"{user.name} is a {user.role}: only an operator may {what}")
        return user


def check_same_origin(request) -> None:
    """Writes are JSON from this origin (a form or another site's page cannot send them)."""
    if request.content_type != "application/json":
        raise Denied(415, "send the request as application/json")
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        raise Denied(403, "cross-origin requests are not accepted")


def _basic(header: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Denied(401, "malformed Basic credentials") from None
    name, sep, password = decoded.partition(":")
    if not sep:
        raise Denied(401, "malformed Basic credentials")
    return name, password
