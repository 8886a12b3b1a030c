"""Staff accounts: users with argon2 password hashes, sessions with an idle timeout and a CSRF token, and
throttling of failed sign-ins. Owns the `users`, `sessions` and `signin_failures` tables (migration 2 in
store.py). No web framework here: the web layer hands in a cookie value and a client address.

Why it is built this way:
- A session token is 32 random bytes held only in the browser's cookie; the database keeps its SHA-256, so
  a copy of the database (a backup on the NAS) does not let anyone sign in.
- Each session has its own CSRF token, which the page sends back in a header on every state-changing
  request; a forged cross-site form cannot know it.
- Idle timeout: a session not used for `idle_s` seconds is ended. Requests marked as background (the
  page's 2-second status poll) do not count as use, or an unattended screen would stay signed in forever.
- Throttling: `per_user` failures for one user name, or `per_address` from one client address, within the
  lockout window lock further sign-ins (even correct ones) until `lockout_s` after the last failure. While
  locked, attempts are not counted, so the lock cannot be stretched forever. Each attempt reserves its try
  before the slow argon2 check (failures recorded + checks running must stay under the limit), so ten
  simultaneous guesses get five checks, not ten; a right password gives its try back. The running checks
  are counted in this process (one `serve` process signs staff in); failures are in the index. Unknown
  user names cost the same argon2 verification as known ones, so timing does not tell which names exist.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pacsindex.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidQuery,
    NotFound,
    SignInFailed,
    StoreError,
    TooManyAttempts,
)
from pacsindex.index import store
from pacsindex.index.clock import Clock, iso_utc
from pacsindex.index.db import token_hash

log = logging.getLogger(__name__)


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_SESSION_S = 12 * 3600  # a session ends after a working day, however busy
WRONG = "wrong user name or password"
TOUCH_WAIT_MS = 200
BUSY_RETRY_S = 2  # Retry-After when only checks still running fill a limit


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    is_admin: bool
    disabled: bool
    created_at: str
    last_signin_at: str | None

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "is_admin": self.is_admin,
            "disabled": self.disabled,
            "created_at": self.created_at,
            "last_signin_at": self.last_signin_at,
        }


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf_token: str
    created_at: float
    last_active: float
    token: str | None = None  # the cookie value; only set on the Session that sign_in returns

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf_token.encode())


@dataclass(frozen=True, slots=True)
class Throttle:
    per_user: int = 5
    per_address: int = 20
    lockout_s: float = 15 * 60


def generate_password() -> str:
    """16 characters from the URL-safe alphabet: about 96 bits."""
    return secrets.token_urlsafe(12)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidQuery(
            "a user name is 1 to 64 letters, digits, dots, dashes, underscores or @,"
            " starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidQuery(f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    if "\x00" in password:
        raise InvalidQuery("a password must not contain a NUL character")
    return password


class Accounts:
    """Users, sessions and sign-in throttling on the index database at `db_path`."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        idle_s: float = 30 * 60,
        throttle: Throttle | None = None,
        clock: Clock = time.time,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.db_path = db_path
        self.idle_s = idle_s
        self.throttle = throttle or Throttle()
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None
        # Sign-in checks running now, per user name and per client address (see `_reserve`).
        self._pending_users: dict[str, int] = {}
        self._pending_clients: dict[str, int] = {}
        self._pending_lock = threading.Lock()
        # Each argon2 check holds 64 MiB (the default memory cost): a burst of sign-ins must not hold
        # gigabytes at once. Checks beyond one per CPU wait their turn.
        self._checks = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = store.connect(self.db_path)
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot use the staff accounts in {self.db_path}: {exc}") from exc
        finally:
            conn.close()

    # -- users -----------------------------------------------------------------------------------------
    def add_user(self, name: str, password: str, *, admin: bool = False) -> User:
        check_name(name)
        check_password(password)
        digest = self.hasher.hash(password)
        now = iso_utc(self.clock())
        with self._db() as conn:
            try:
                conn.execute(
                    """INSERT INTO users (name, password_hash, is_admin, created_at, password_changed_at)
                       VALUES (?, ?, ?, ?, ?)""",
                    (name, digest, int(admin), now, now),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"a user named {name!r} already exists") from exc
            return self._user(conn, name)

    def list_users(self) -> list[User]:
        with self._db() as conn:
            return [_user_from(r) for r in conn.execute("SELECT * FROM users ORDER BY name COLLATE NOCASE")]

    def get_user(self, name: str) -> User:
        with self._db() as conn:
            return self._user(conn, name)

    def count_admins(self) -> int:
        with self._db() as conn:
            return int(
                conn.execute("SELECT count(*) FROM users WHERE is_admin AND NOT disabled").fetchone()[0]
            )

    def set_password(self, name: str, password: str) -> None:
        """Change a password; the user's sessions end, so a stolen session dies with the old password."""
        check_password(password)
        digest = self.hasher.hash(password)
        with self._db() as conn:
            user = self._user(conn, name)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
                (digest, iso_utc(self.clock()), user.id),
            )
            conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))
            conn.execute("DELETE FROM signin_failures WHERE user_name = ?", (user.name.casefold(),))
            conn.execute("COMMIT")

    def change_own_password(self, name: str, current: str, new: str) -> None:
        """A signed-in user's own change: the current password must be right (Forbidden otherwise)."""
        check_password(new)
        with self._db() as conn:
            row = conn.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
        if row is None or not self._verify(row["password_hash"], current):
            raise Forbidden("the current password is wrong; nothing changed")
        self.set_password(name, new)

    def update_user(self, name: str, *, admin: bool | None = None, disabled: bool | None = None) -> User:
        """Grant or take admin rights, disable or enable. Refuses to leave no enabled admin (Conflict)."""
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                user = self._user(conn, name)
                new_admin = user.is_admin if admin is None else admin
                new_disabled = user.disabled if disabled is None else disabled
                if user.is_admin and not user.disabled and (not new_admin or new_disabled):
                    others = conn.execute(
                        "SELECT count(*) FROM users WHERE is_admin AND NOT disabled AND id != ?", (user.id,)
                    ).fetchone()[0]
                    if others == 0:
                        raise Conflict(f"{user.name} is the last enabled admin; make another admin first")
                conn.execute(
                    "UPDATE users SET is_admin = ?, disabled = ? WHERE id = ?",
                    (int(new_admin), int(new_disabled), user.id),
                )
                if new_disabled:
                    conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return self._user(conn, name)

    @staticmethod
    def _user(conn: sqlite3.Connection, name: str) -> User:
        row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no user named {name!r}")
        return _user_from(row)

    # -- signing in ------------------------------------------------------------------------------------
    def sign_in(self, name: str, password: str, client: str) -> Session:
        """A new session for a correct name and password; SignInFailed or TooManyAttempts otherwise."""
        now = self.clock()
        key = name.casefold() if isinstance(name, str) else ""
        client = client or "unknown"
        t = self.throttle
        since = now - t.lockout_s
        with self._db() as conn:
            self._reserve(conn, key, client, since, now)
            try:
                row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone() if key else None
                ok = self._verify(row["password_hash"] if row else None, password)
                if not ok or row is None or row["disabled"]:
                    # Recorded before the reservation is given back: at no moment does this try count
                    # neither as pending nor as failed.
                    conn.execute(
                        "INSERT INTO signin_failures (user_name, client, at) VALUES (?, ?, ?)",
                        (key, client, now),
                    )
                    conn.execute("DELETE FROM signin_failures WHERE at <= ?", (since,))
                    if ok and row is not None and row["disabled"]:
                        raise SignInFailed("this account is disabled; ask an admin")
                    raise SignInFailed(WRONG)
            finally:
                self._release(key, client)
            token = secrets.token_urlsafe(32)
            csrf = secrets.token_urlsafe(32)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM signin_failures WHERE user_name = ?", (key,))
            conn.execute(
                "DELETE FROM sessions WHERE last_active < ? OR created_at < ?",
                (now - self.idle_s, now - MAX_SESSION_S),
            )
            conn.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_active, client)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (token_hash(token), row["id"], csrf, now, now, client),
            )
            conn.execute(
                "UPDATE users SET last_signin_at = ? WHERE id = ?", (iso_utc(self.clock()), row["id"])
            )
            if self._needs_rehash(row["password_hash"]):
                conn.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ?", (self.hasher.hash(password), row["id"])
                )
            conn.execute("COMMIT")
            user = self._user(conn, row["name"])
        return Session(user=user, csrf_token=csrf, created_at=now, last_active=now, token=token)

    def _reserve(self, conn: sqlite3.Connection, key: str, client: str, since: float, now: float) -> None:
        """Take one try for this name and this address before the (slow) argon2 check, so parallel guesses
        share the same tries: the failures recorded plus the checks still running must stay under each
        limit. TooManyAttempts when they would not: for the lockout's length when enough failures are
        recorded, for a moment when only checks still running fill the limit."""
        t = self.throttle
        with self._pending_lock:
            for column, value, limit, pending, what in (
                ("user_name", key, t.per_user, self._pending_users, "this user name"),
                ("client", client, t.per_address, self._pending_clients, "this computer"),
            ):
                recent = [
                    r[0]
                    for r in conn.execute(
                        f"SELECT at FROM signin_failures WHERE {column} = ? AND at > ?"
                        " ORDER BY at DESC LIMIT ?",
                        (value, since, limit),
                    )
                ]
                if len(recent) >= limit:
                    retry = int(recent[0] + t.lockout_s - now + 0.999)
                    raise TooManyAttempts(
                        f"too many failed sign-ins for {what}; try again in {_minutes(retry)}", retry
                    )
                if len(recent) + pending.get(value, 0) >= limit:
                    raise TooManyAttempts(
                        f"too many sign-ins at once for {what}; try again in a few seconds", BUSY_RETRY_S
                    )
            self._pending_users[key] = self._pending_users.get(key, 0) + 1
            self._pending_clients[client] = self._pending_clients.get(client, 0) + 1

    def _release(self, key: str, client: str) -> None:
        with self._pending_lock:
            for pending, value in ((self._pending_users, key), (self._pending_clients, client)):
                left = pending.get(value, 0) - 1
                if left > 0:
                    pending[value] = left
                else:
                    pending.pop(value, None)

    def _verify(self, digest: str | None, password: Any) -> bool:
        if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD:
            password = "\x00"  # still spend the time of a verification
        if digest is None:
            if self._dummy_hash is None:
                self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
            digest = self._dummy_hash
            password = password + "\x00"  # can never match
        try:
            with self._checks:
                return bool(self.hasher.verify(digest, password))
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            log.warning("a stored password hash cannot be checked; reset that user's password")
            return False

    def _needs_rehash(self, digest: str) -> bool:
        try:
            return bool(self.hasher.check_needs_rehash(digest))
        except (InvalidHashError, ValueError):
            return False

    def session(self, token: str | None, *, touch: bool = True) -> Session:
        """The live session for a cookie value. AuthError when there is none, or it has been idle too long.
        `touch` records use (resets the idle clock); background polls pass False."""
        if not token or len(token) > 256:
            raise AuthError("sign in first")
        now = self.clock()
        digest = token_hash(token)
        with self._db() as conn:
            row = conn.execute(
                """SELECT s.csrf_token, s.created_at AS s_created, s.last_active AS s_active, u.*
                   FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?""",
                (digest,),
            ).fetchone()
            if row is None:
                raise AuthError("sign in first")
            idle = now - row["s_active"] > self.idle_s
            if idle or row["disabled"] or now - row["s_created"] > MAX_SESSION_S:
                conn.execute("DELETE FROM sessions WHERE token_hash = ?", (digest,))
                raise AuthError(
                    f"signed out after {_minutes(int(self.idle_s))} without activity; sign in again"
                    if idle
                    else "this session has ended; sign in again"
                )
            last_active = row["s_active"]
            if touch:
                # Best effort: if an indexing run holds the write lock, this request just does not reset
                # the idle clock, rather than wait for the lock.
                try:
                    conn.execute(f"PRAGMA busy_timeout = {TOUCH_WAIT_MS}")
                    conn.execute("UPDATE sessions SET last_active = ? WHERE token_hash = ?", (now, digest))
                    last_active = now
                except sqlite3.OperationalError as exc:
                    log.debug("session activity not recorded: %s", exc)
        return Session(
            user=_user_from(row),
            csrf_token=row["csrf_token"],
            created_at=row["s_created"],
            last_active=last_active,
        )

    def sign_out(self, token: str | None) -> None:
        if not token:
            return
        with self._db() as conn:
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash(token),))


def _user_from(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        is_admin=bool(row["is_admin"]),
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        last_signin_at=row["last_signin_at"],
    )


def _minutes(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{(seconds + 59) // 60} minutes"
