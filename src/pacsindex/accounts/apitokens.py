"""API tokens: how machine clients (Orthanc, OHIF, Weasis, scripts) sign in to DICOMweb. Owns the
`api_tokens` table (migration 5 in store.py). No web framework here: the web layer hands in what the
client sent.

Why it is built this way:
- A token is `secrets.token_urlsafe(32)`: 256 random bits, shown once when an admin creates it. The
  database keeps only its SHA-256. With that much entropy nobody can guess a token from its hash, so a
  fast hash is right (argon2 is for passwords people choose); a copy of the database does not let anyone
  in. The stored hash is compared in constant time.
- A token has a name (which PACS or viewer uses it) that the audit log records as `token:NAME`; names
  are unique among tokens still in force. Revoking is final and keeps the row, so the audit log's names
  keep meaning something.
- A token made by a staff admin works only while that account is an enabled admin: disabling the admin
  (or taking the admin right) stops their tokens at once, and enabling them again brings the tokens back.
  Tokens made with `pacsindex token add` (`cli:USER`) belong to whoever runs the machine, not an account.
- Failed tokens are limited per client address (`FailureLimit`): each presented token first reserves one
  of the address's tries, so parallel guesses share the same tries; past the limit the address gets
  TooManyAttempts (429) until the lockout ends. Kept in memory: one `serve` process answers DICOMweb.
- `last_used_at` is written at most once a minute per token, best effort: a viewer fetching thousands of
  instances must not queue behind an indexing run for a write nobody needs to the second.
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
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pacsindex.errors import Conflict, InvalidQuery, NotFound, StoreError, TokenRejected, TooManyAttempts
from pacsindex.index import store
from pacsindex.index.clock import Clock, iso_utc
from pacsindex.index.db import token_hash

log = logging.getLogger(__name__)


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$")
MAX_TOKEN = 256
TOUCH_EVERY_S = 60.0
TOUCH_WAIT_MS = 200


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    name: str
    created_by: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def audit_name(self) -> str:
        """Who the audit log says acted: the token, by name."""
        return f"token:{self.name}"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
            "active": self.active,
        }


class FailureLimit:
    """At most `per_address` failed tokens from one client address within `lockout_s`. `reserve` takes a
    try before the check (TooManyAttempts when none is left); `release` gives it back on success."""

    def __init__(
        self, per_address: int = 20, lockout_s: float = 15 * 60, *, clock: Clock = time.time
    ) -> None:
        self.per_address = per_address
        self.lockout_s = lockout_s
        self.clock = clock
        self._tries: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def reserve(self, client: str) -> float:
        now = self.clock()
        with self._lock:
            tries = self._tries.setdefault(client, deque())
            while tries and tries[0] <= now - self.lockout_s:
                tries.popleft()
            if len(tries) >= self.per_address:
                retry = int(tries[-1] + self.lockout_s - now + 0.999)
                raise TooManyAttempts(
                    f"too many wrong API tokens from this computer; try again in {max(1, retry)} seconds",
                    retry,
                )
            tries.append(now)
            if len(self._tries) > 10_000:  # forget addresses whose tries have all run out
                for key in [k for k, v in self._tries.items() if not v or v[-1] <= now - self.lockout_s]:
                    del self._tries[key]
        return now

    @contextmanager
    def attempt(self, client: str) -> Iterator[None]:
        """One try for `client`: reserved on entry, given back if the block succeeds."""
        reservation = self.reserve(client or "unknown")
        yield
        self.release(client or "unknown", reservation)

    def release(self, client: str, reservation: float) -> None:
        with self._lock:
            tries = self._tries.get(client)
            if tries is not None:
                try:
                    tries.remove(reservation)
                except ValueError:
                    pass


def new_token() -> str:
    """32 random bytes, URL-safe base64: 43 characters."""
    return secrets.token_urlsafe(32)


def check_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else name
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidQuery(
            "a token name is 1 to 64 letters, digits, spaces, dots, dashes, underscores or @,"
            " starting with a letter or digit (e.g. the PACS or viewer that will use it)"
        )
    return name


class ApiTokens:
    """The API tokens kept in the index database at `db_path`."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        failures: FailureLimit | None = None,
    ) -> None:
        self.db_path = db_path
        self.clock = clock
        self.failures = failures or FailureLimit(clock=clock)
        self._touched: dict[int, float] = {}

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        conn = store.connect(self.db_path)
        try:
            yield conn
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot use the API tokens in {self.db_path}: {exc}") from exc
        finally:
            conn.close()

    def create(self, name: str, created_by: str) -> tuple[ApiToken, str]:
        """A new token and its secret value, which is never available again."""
        name = check_name(name)
        secret = new_token()
        with self._db() as conn:
            try:
                cur = conn.execute(
                    """INSERT INTO api_tokens (name, token_hash, created_by, created_at)
                       VALUES (?, ?, ?, ?)""",
                    (name, token_hash(secret), created_by, iso_utc(self.clock())),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"a token named {name!r} is already in force: revoke it first") from exc
            assert cur.lastrowid is not None
            return self._get(conn, cur.lastrowid), secret

    def list_tokens(self) -> list[ApiToken]:
        """Every token, those in force first, newest first."""
        with self._db() as conn:
            rows = conn.execute(
                "SELECT * FROM api_tokens ORDER BY revoked_at IS NOT NULL, created_at DESC, id DESC"
            )
            return [_token_from(r) for r in rows]

    def get(self, token_id: int) -> ApiToken:
        with self._db() as conn:
            return self._get(conn, token_id)

    def revoke(self, token_id: int) -> ApiToken:
        """End a token for good; revoking one already revoked changes nothing."""
        with self._db() as conn:
            conn.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (iso_utc(self.clock()), token_id),
            )
            return self._get(conn, token_id)

    def authenticate(self, presented: str | None, client: str | None = None) -> ApiToken:
        """The token in force whose value was presented; TokenRejected otherwise. With `client`, a failure
        counts against that address (TooManyAttempts once it has too many)."""
        if client is None:
            return self._check(presented)
        with self.failures.attempt(client):
            return self._check(presented)

    def _check(self, presented: str | None) -> ApiToken:
        if not presented or len(presented) > MAX_TOKEN:
            raise TokenRejected("an API token is needed: send it as a Bearer token or as the Basic password")
        digest = token_hash(presented)
        with self._db() as conn:
            row = conn.execute(
                """SELECT t.*, u.id AS creator_id, u.is_admin AS creator_admin, u.disabled AS creator_disabled
                   FROM api_tokens t LEFT JOIN users u ON u.name = t.created_by
                   WHERE t.token_hash = ?""",
                (digest,),
            ).fetchone()
            if row is None or not hmac.compare_digest(row["token_hash"], digest):
                raise TokenRejected("unknown API token: ask an admin for a token")
            token = _token_from(row)
            if not token.active:
                raise TokenRejected("this API token has been revoked: ask an admin for a new one")
            # Accounts are never deleted: a creator without one made the token from the command line.
            if row["creator_id"] is not None and (row["creator_disabled"] or not row["creator_admin"]):
                raise TokenRejected(
                    "the admin who made this API token is disabled or no longer an admin: ask for a new one"
                )
            now = self.clock()
            if now - self._touched.get(token.id, 0.0) >= TOUCH_EVERY_S:
                try:
                    conn.execute(f"PRAGMA busy_timeout = {TOUCH_WAIT_MS}")
                    sql = "UPDATE api_tokens SET last_used_at = ? WHERE id = ?"
                    conn.execute(sql, (iso_utc(now), token.id))
                    self._touched[token.id] = now
                except sqlite3.OperationalError as exc:
                    log.debug("API token use not recorded: %s", exc)
        return token

    @staticmethod
    def _get(conn: sqlite3.Connection, token_id: int) -> ApiToken:
        row = conn.execute("SELECT * FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        if row is None:
            raise NotFound(f"no API token with id {token_id}")
        return _token_from(row)


def _token_from(row: sqlite3.Row) -> ApiToken:
    return ApiToken(
        id=row["id"],
        name=row["name"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )
