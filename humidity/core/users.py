"""Users, roles, passwords, sessions and the brake on guessing (pure: no web, no Kafka).

The users file (TOML, ``HUMIDITY_USERS_FILE``)::

    [users.alice]
    role = "operator"
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$..."

``viewer`` may log in and look; ``operator`` may also acknowledge alarms.
Passwords are hashed with Argon2id (argon2-cffi, its recommended
parameters); the file never holds a password, and nothing here logs one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

VIEWER, OPERATOR = "viewer", "operator"
ROLES = (VIEWER, OPERATOR)
NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
PASSWORD_MIN = 8

#: Consecutive failed logins of a user name before it is locked.
FAILURES_BEFORE_LOCK = 5
#: ... and from one client address (higher: people behind one address share it).
ADDRESS_FAILURES_BEFORE_LOCK = 20
#: Seconds of the first lock; each further failure while locked doubles it, up to LOCK_MAX.
LOCK_SECONDS = 30.0
LOCK_MAX = 900.0
#: Seconds a page session lasts.
SESSION_LIFETIME = 8 * 3600.0

_hasher = PasswordHasher()
#: Checked against when the name is unknown, so that an unknown name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class UsersError(ValueError):
    """The users file or a user's details cannot be used; the message says why."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str = field(repr=False)

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise UsersError("a user name is 1 to 64 of the characters A-Z a-z 0-9 . _ @ -")
    return name


def parse_users(text: str, source: str = "users file") -> dict[str, User]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsersError(f"{source} is not valid TOML: {exc}") from None
    table = doc.get("users", {})
    if not isinstance(table, dict):
        raise UsersError(f"{source}: [users.NAME] tables expected")
    users = {}
    for name, entry in table.items():
        if not isinstance(entry, dict) or not NAME_RE.match(name):
            raise UsersError(f"{source}: [users.{name}] is not a valid user")
        role, hashed = entry.get("role"), entry.get("password_hash")
        if role not in ROLES:
            raise UsersError(f"{source}: users.{name}.role must be one of {', '.join(ROLES)}")
        if not isinstance(hashed, str) or not hashed.startswith("$argon2"):
            raise UsersError(f"{source}: users.{name}.password_hash must be an Argon2 hash (use add-user)")
        users[name] = User(name, role, hashed)
    return users


def load_users(path: Path) -> dict[str, User]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsersError(f"users file {str(path)!r} cannot be read: {exc.strerror}") from None
    return parse_users(text, f"users file {str(path)!r}")


def dump_users(users: dict[str, User]) -> str:
    return tomli_w.dumps({"users": {u.name: {"role": u.role, "password_hash": u.password_hash}
                                    for u in sorted(users.values(), key=lambda u: u.name)}})


def with_user(users: dict[str, User], name: str, role: str, password: str) -> dict[str, User]:
    """``users`` with ``name`` added or replaced (its password hashed here)."""
    check_name(name)
    if role not in ROLES:
        raise UsersError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < PASSWORD_MIN:
        raise UsersError(f"a password has at least {PASSWORD_MIN} characters")
    return {**users, name: User(name, role, _hasher.hash(password))}


def authenticate(users: dict[str, User], name: str, password: str) -> User | None:
    """The user if ``password`` is theirs, else None (about as slow either way)."""
    user = users.get(name)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return user


class Throttle:
    """Locks a key (a user name, a client address) after ``limit``
    consecutive failures, for LOCK_SECONDS, doubled by each failure while
    locked, up to LOCK_MAX; a success clears it."""

    def __init__(self, limit: int = FAILURES_BEFORE_LOCK) -> None:
        self.limit = limit
        self.failures: dict[str, int] = {}
        self.locked_until: dict[str, float] = {}

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        return max(self.locked_until.get(key, 0.0) - now, 0.0)

    def failed(self, key: str, now: float) -> None:
        n = self.failures[key] = self.failures.get(key, 0) + 1
        if n >= self.limit:
            self.locked_until[key] = now + min(LOCK_MAX, LOCK_SECONDS * 2 ** min(n - self.limit, 20))
        if len(self.failures) > 100_000:  # a flood of made-up names must not grow memory without end
            self.failures.clear()
            self.locked_until = {k: t for k, t in self.locked_until.items() if t > now}

    def succeeded(self, key: str) -> None:
        self.failures.pop(key, None)
        self.locked_until.pop(key, None)


@dataclass
class Session:
    name: str
    csrf: str
    expires: float


class Sessions:
    """Page sessions as signed tokens: ``<name>|<expires>|<nonce>`` and its
    HMAC-SHA256 under ``secret``. Every worker with the same secret
    (HUMIDITY_SESSION_SECRET) accepts them, so a page behind a proxy that
    spreads requests over workers stays logged in; without one each worker
    makes its own secret and its sessions are its own. A session ends after
    SESSION_LIFETIME, or at logout on the worker that saw it (a copy of the
    cookie kept elsewhere lasts until it expires)."""

    def __init__(self, secret: str = "") -> None:
        self.secret = secret.encode() if secret else secrets.token_bytes(32)
        self.closed: dict[str, float] = {}  # token -> when it would have expired

    def _sign(self, text: str) -> str:
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()

    def open(self, user: User, now: float) -> tuple[str, Session]:
        body = f"{user.name}|{int(now + SESSION_LIFETIME)}|{secrets.token_urlsafe(12)}"
        token = f"{body}|{self._sign(body)}"
        session = self.get(token, now)
        assert session is not None, "a token just signed is valid"
        return token, session

    def get(self, token: str | None, now: float) -> Session | None:
        """The session of a valid, unexpired, open token, else None."""
        if token is None:
            return None
        parts = token.split("|")
        if len(parts) != 4 or token in self.closed:
            return None
        name, expires, _nonce, signature = parts
        if not hmac.compare_digest(signature, self._sign("|".join(parts[:3]))):
            return None
        try:
            until = float(expires)
        except ValueError:
            return None
        if until <= now:
            return None
        return Session(name, self._sign("csrf|" + token), until)

    def close(self, token: str | None, now: float) -> None:
        session = self.get(token, now)
        if session is not None and token is not None:
            self.closed = {t: until for t, until in self.closed.items() if until > now}
            self.closed[token] = session.expires
