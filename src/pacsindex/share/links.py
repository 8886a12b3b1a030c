"""Share links: the rules. Tokens, the series a link is bound to, expiry, passcode lockout, download
limits and download tickets; the rows live in shares.db (`store.py`), the access log in `accesslog.py`,
passcode rules in `passcodes.py`. No web framework here: the web layer hands in a token, a passcode or a
grant cookie, and a client address.

Why it is built this way:
- A token is 32 random bytes from `secrets` (256 bits, 43 URL-safe characters), shown once to the staff
  member who made the link. The database keeps only its SHA-256, so a copy of shares.db (a NAS backup)
  opens nothing. A presented token is hashed, looked up by hash, and the stored hash is compared with
  `hmac.compare_digest`. Tokens never reach the log; at DEBUG a few characters of the hash may.
- A link is bound to the series chosen when it was made (`share_series`): a series indexed later into the
  same study is not added silently. `share_series_keys(share)` is the one answer to "what may this link
  show", for the zip and for the recipient's viewer alike.
- Every use of a link goes through `access()` (or `redeem()` for a download ticket), which writes one
  access-log row whatever happens, so a refused attempt cannot go unrecorded.
- Passcodes are argon2 hashes. Each check first reserves one of the `max_failures` tries in a transaction
  and only then runs argon2, so parallel guesses cannot test more than 5 passcodes per lockout; the 5th
  wrong one locks the link for `lockout_s` (15 minutes). While locked even the right passcode is refused;
  an admin may `unlock` it.
- After a right passcode the browser gets a grant: an HMAC (key held in memory only) over the share, its
  token hash and an expiry, kept in a cookie, so the passcode never travels in a URL.
- The download limit counts zip downloads, reserved atomically when a recipient presses Download (a POST,
  so an e-mail scanner fetching the link uses nothing up). That press gives a ticket, an HMAC like the
  grant, naming its access-log row: the zip is fetched (and resumed with Range, or asked for with HEAD)
  under the ticket as often as needed without using another download. A link with a limit serves no
  single files, or they would be a way around it.
- Times are Unix seconds from an injectable clock, so tests move time instead of waiting.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from pacsindex.errors import (
    BadPasscode,
    InvalidQuery,
    PasscodeRequired,
    ShareError,
    ShareExpired,
    ShareLimitReached,
    ShareLinkNotFound,
    ShareLocked,
    ShareRevoked,
    StoreError,
)
from pacsindex.share import accesslog, passcodes
from pacsindex.share.accesslog import KINDS, OUTCOMES, Kind
from pacsindex.share.grants import Signer
from pacsindex.share.passcodes import MAX_PASSCODE, MIN_PASSCODE
from pacsindex.share.store import Share, connect, iso, read_share, token_hash

__all__ = [
    "GRANT_S",
    "KINDS",
    "MAX_NOTE",
    "MAX_PAGE",
    "MAX_PASSCODE",
    "MAX_SERIES",
    "MIN_PASSCODE",
    "OUTCOMES",
    "Access",
    "Clock",
    "Kind",
    "NewShare",
    "Shares",
    "share_series_keys",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

TOKEN_BYTES = 32
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{22,128}$")
_SERIES_KEY_RE = re.compile(r"^[0-9a-f]{40}$")
MAX_DOWNLOADS = 1000
MAX_SERIES = 500  # series in one link
MAX_NOTE = 300
MIN_EXPIRY_S = 60
MAX_PAGE = 500
GRANT_S = 30 * 60  # how long a right passcode lasts in the recipient's browser
REFUSAL_WINDOW_S = 3600  # identical refusals from one address within this share one access-log row
AGGREGATED = ("not_found", "expired", "revoked", "limited")  # passcode tries stay one row each
TICKET_S = 24 * 3600  # how long a pressed Download can be fetched and resumed


def share_series_keys(share: Share) -> frozenset[str]:
    """The series `share` gives access to: exactly those bound to it when it was made."""
    return frozenset(share.series_keys or (share.SeriesKey,))


@dataclass(frozen=True, slots=True)
class NewShare:
    """A share just made, with its token (and its passcode when pacsindex made one up): the only time
    either exists outside the recipient's hands."""

    share: Share
    token: str
    passcode: str | None = None


@dataclass(frozen=True, slots=True)
class Access:
    """A use of a link that was let through. `log_id` is its access-log row; `grant` is set when a right
    passcode was given just now (the web layer puts it in a cookie)."""

    share: Share
    log_id: int
    grant: str | None = None


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class Shares:
    """The share links in the SQLite file at `path`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = time.time,
        hasher: PasswordHasher | None = None,
        default_s: float = 24 * 3600,
        max_s: float = 7 * 24 * 3600,
        max_failures: int = 5,
        lockout_s: float = 15 * 60,
        grant_s: float = GRANT_S,
        ticket_s: float = TICKET_S,
    ) -> None:
        if not MIN_EXPIRY_S <= default_s <= max_s:
            raise ValueError("the default expiry must lie between a minute and the maximum")
        self.path = Path(path)
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self.default_s = default_s
        self.max_s = max_s
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.grant_s = grant_s
        self.ticket_s = ticket_s
        self.signer = Signer(lambda: self.clock(), grant_s, ticket_s)  # keys last no longer than this process
        self._local = threading.local()
        connect(self.path).close()

    @classmethod
    def from_settings(cls, settings: Any, **kw: Any) -> Shares:
        return cls(
            settings.shares_path,
            default_s=settings.share_default_hours * 3600,
            max_s=settings.share_max_hours * 3600,
            **kw,
        )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection (opened once per thread: a request makes several short queries)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
        try:
            yield conn
        except sqlite3.Error as exc:
            self._local.conn = None
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            raise StoreError(f"cannot use the share store {self.path}: {exc}") from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- staff side ------------------------------------------------------------------------------------
    def create(
        self,
        series_keys: str | Sequence[str],
        created_by: str,
        *,
        expires_in_s: float | None = None,
        passcode: str | None = None,
        generate_passcode: bool = False,
        max_downloads: int | None = None,
        note: str | None = None,
        deidentify: bool = False,
    ) -> NewShare:
        """A new link bound to these series (one SeriesKey, or several). That they exist is the caller's
        to check (they live in the index, not here)."""
        wanted = [series_keys] if isinstance(series_keys, str) else list(series_keys)
        keys: list[str] = []
        for key in wanted:
            key = key.lower() if isinstance(key, str) else ""
            if not _SERIES_KEY_RE.match(key):
                raise InvalidQuery("a SeriesKey is the 40 hexadecimal characters from a search result")
            if key not in keys:
                keys.append(key)
        if not 1 <= len(keys) <= MAX_SERIES:
            raise InvalidQuery(f"a link holds 1 to {MAX_SERIES} series")
        expires_in = self.default_s if expires_in_s is None else float(expires_in_s)
        if not MIN_EXPIRY_S <= expires_in <= self.max_s:
            raise InvalidQuery(
                f"a link lasts between 1 minute and {self.max_s / 3600:g} hours "
                f"(expires_in is in seconds, at most {int(self.max_s)})"
            )
        if generate_passcode and passcode:
            raise InvalidQuery("give a passcode or ask for one to be made up, not both")
        made_up = passcodes.generate() if generate_passcode else None
        typed = passcodes.checked(made_up or passcode)
        passcode_hash = self.hasher.hash(typed) if typed is not None else None
        if max_downloads is not None and not 1 <= max_downloads <= MAX_DOWNLOADS:
            raise InvalidQuery(f"max_downloads must be between 1 and {MAX_DOWNLOADS}, or left out")
        note = (note or "").strip() or None
        if note is not None and (len(note) > MAX_NOTE or any(ord(c) < 32 for c in note)):
            raise InvalidQuery(f"the note is one line of at most {MAX_NOTE} characters")
        seed = secrets.token_hex(16) if deidentify else None
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.clock()
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                """INSERT INTO shares (token_hash, SeriesKey, created_by, created_at, expires_at,
                                       passcode_hash, max_downloads, note, deidentified, deid_seed)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *""",
                (
                    token_hash(token),
                    keys[0],
                    created_by,
                    now,
                    now + expires_in,
                    passcode_hash,
                    max_downloads,
                    note,
                    int(deidentify),
                    seed,
                ),
            ).fetchall()[0]
            conn.executemany(
                "INSERT INTO share_series (share_id, position, SeriesKey) VALUES (?, ?, ?)",
                [(row["id"], n, key) for n, key in enumerate(keys)],
            )
            share = read_share(conn, row)
            conn.execute("COMMIT")
        log.info(
            "share %d created by %s: %d series, expires %s",
            share.id,
            created_by,
            len(keys),
            iso(share.expires_at),
        )
        return NewShare(share, token, made_up)

    def get(self, share_id: int) -> Share:
        with self._db() as conn:
            row = conn.execute("SELECT * FROM shares WHERE id = ?", (share_id,)).fetchone()
            if row is None:
                raise ShareLinkNotFound(f"no share link with id {share_id}")
            return read_share(conn, row)

    def recent(self, *, created_by: str | None = None, limit: int = 100, offset: int = 0) -> list[Share]:
        """Newest first; only `created_by`'s when given."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidQuery(f"limit must be between 1 and {MAX_PAGE}")
        if offset < 0:
            raise InvalidQuery("offset must not be negative")
        sql = "SELECT * FROM shares"
        params: list[Any] = []
        if created_by is not None:
            sql += " WHERE created_by = ? COLLATE NOCASE"
            params.append(created_by)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        with self._db() as conn:
            rows = conn.execute(sql, (*params, limit, offset)).fetchall()
            return [read_share(conn, r) for r in rows]

    def revoke(self, share_id: int, by: str) -> Share:
        """End a link now. Revoking a revoked link changes nothing (the first revocation is kept)."""
        with self._db() as conn:
            row = conn.execute(
                """UPDATE shares
                   SET revoked_at = coalesce(revoked_at, ?), revoked_by = coalesce(revoked_by, ?)
                   WHERE id = ? RETURNING *""",
                (self.clock(), by, share_id),
            ).fetchone()
            if row is None:
                raise ShareLinkNotFound(f"no share link with id {share_id}")
            share = read_share(conn, row)
        log.info("share %d revoked by %s", share_id, by)
        return share

    def unlock(self, share_id: int, by: str) -> Share:
        """Lift a passcode lockout now (an admin's call, once the recipient has been reached another way)."""
        with self._db() as conn:
            row = conn.execute(
                "UPDATE shares SET locked_until = NULL, failed_passcodes = 0 WHERE id = ? RETURNING *",
                (share_id,),
            ).fetchone()
            if row is None:
                raise ShareLinkNotFound(f"no share link with id {share_id}")
            share = read_share(conn, row)
        log.info("share %d unlocked by %s", share_id, by)
        return share

    def access_log(self, share_id: int, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Uses of one link, newest first."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidQuery(f"limit must be between 1 and {MAX_PAGE}")
        if offset < 0:
            raise InvalidQuery("offset must not be negative")
        self.get(share_id)
        with self._db() as conn:
            return accesslog.read(conn, share_id, limit, offset)

    # -- recipient side --------------------------------------------------------------------------------
    def access(
        self,
        token: str | None,
        *,
        kind: Kind,
        client: str | None,
        user_agent: str | None = None,
        passcode: str | None = None,
        grant: str | None = None,
    ) -> Access:
        """Let one use of a link through, or raise the ShareError that says why not. Either way the use is
        in the access log. A "download" reserves one of the link's downloads."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind of access {kind!r}")
        now = self.clock()
        share = self._lookup(token)

        def refuse(outcome: str, exc: ShareError) -> ShareError:
            return self._tag(exc, share.id if share else None, kind, client, user_agent, outcome)

        if share is None:
            raise refuse("not_found", ShareLinkNotFound("this share link does not exist"))
        if share.revoked_at is not None:
            raise refuse("revoked", ShareRevoked("this share link has been withdrawn by the practice"))
        if now >= share.expires_at:
            raise refuse("expired", ShareExpired(f"this share link expired on {iso(share.expires_at)}"))
        if share.max_downloads is not None:
            if share.downloads >= share.max_downloads:
                raise refuse("limited", ShareLimitReached("this share link has been used up"))
            if kind == "file":
                raise refuse(
                    "limited",
                    ShareLimitReached(
                        "this link allows a set number of downloads of the whole zip: "
                        "single files cannot be fetched"
                    ),
                )
        if share.deidentified and kind == "file":
            only_zip = ShareLimitReached("this link gives de-identified images as a whole zip only")
            raise refuse("limited", only_zip)
        if share.locked_until is not None and now < share.locked_until:
            raise refuse("locked", self._locked(share.locked_until - now))
        new_grant = None
        if share.has_passcode and not self.granted(share, grant):
            if not passcode:
                raise refuse("passcode_required", PasscodeRequired("this share link needs its passcode"))
            self._check_passcode(share, passcode, kind, client, user_agent)
            new_grant = self.grant(share)
        if kind == "download":
            share = self._reserve_download(share, kind, client, user_agent, now)
        if kind == "image":
            return Access(share, 0, new_grant)
        log_id = self._log(share.id, kind, client, user_agent, "ok", now)
        return Access(share, log_id, new_grant)

    def finish(self, log_id: int, bytes_sent: int, *, complete: bool, outcome: str | None = None) -> None:
        """Record how a download or file transfer ended: ok, incomplete, or the `outcome` given (e.g.
        not_found for a file number the series does not have)."""
        with self._db() as conn:
            accesslog.finish(conn, log_id, bytes_sent, outcome or ("ok" if complete else "incomplete"))

    def unreserve(self, access: Access) -> None:
        """Give back the download `access` reserved when the download could not start (nothing was sent);
        `finish` records how it ended."""
        with self._db() as conn:
            conn.execute(
                "UPDATE shares SET downloads = downloads - 1 WHERE id = ? AND downloads > 0",
                (access.share.id,),
            )

    def refuse(
        self,
        token: str | None,
        exc: ShareError,
        outcome: str,
        *,
        kind: Kind,
        client: str | None,
        user_agent: str | None = None,
    ) -> ShareError:
        """Log a use turned away before `access` (e.g. "busy": no free download slot) and mark `exc` with
        what was logged."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        share = self._lookup(token)
        return self._tag(exc, share.id if share else None, kind, client, user_agent, outcome)

    def grant(self, share: Share) -> str:
        """A cookie value saying this browser gave `share`'s passcode (`grants.Signer`)."""
        return self.signer.grant(share)

    def granted(self, share: Share, value: str | None) -> bool:
        return self.signer.granted(share, value)

    def ticket(self, got: Access) -> str:
        """The download a recipient just reserved (`access(kind="download")`), as a URL part: valid until
        the link expires (at most `ticket_s`), for this link only, while this process runs."""
        return self.signer.ticket(got.share, got.log_id)

    def redeem(
        self, token: str | None, ticket: str, *, client: str | None, user_agent: str | None = None
    ) -> Access:
        """One request for a reserved download's bytes (all of them, a Range, or HEAD): logged as a
        download, using no further download of the link. A withdrawn or expired link stops it."""
        now = self.clock()
        share = self._lookup(token)
        kind: Kind = "zip"
        if share is None:
            raise self._tag(
                ShareLinkNotFound("this share link does not exist"),
                None,
                kind,
                client,
                user_agent,
                "not_found",
            )
        if share.revoked_at is not None:
            raise self._tag(
                ShareRevoked("this share link has been withdrawn by the practice"),
                share.id,
                kind,
                client,
                user_agent,
                "revoked",
            )
        if now >= share.expires_at:
            expired = ShareExpired(f"this share link expired on {iso(share.expires_at)}")
            raise self._tag(expired, share.id, kind, client, user_agent, "expired")
        if not self.signer.ticket_valid(share, ticket):
            stale = ShareExpired("this download has run out: open the link again and press Download")
            raise self._tag(stale, share.id, kind, client, user_agent, "expired")
        return Access(share, self._log(share.id, kind, client, user_agent, "ok", now))

    # -- internals -------------------------------------------------------------------------------------
    def _lookup(self, token: str | None) -> Share | None:
        if not isinstance(token, str) or not _TOKEN_RE.match(token):
            return None
        digest = token_hash(token)
        with self._db() as conn:
            row = conn.execute("SELECT * FROM shares WHERE token_hash = ?", (digest,)).fetchone()
            if row is None or not hmac.compare_digest(row["token_hash"], digest):
                log.debug("no share for token hash %s…", digest[:6])
                return None
            return read_share(conn, row)

    def _log(
        self,
        share_id: int | None,
        kind: str,
        client: str | None,
        user_agent: str | None,
        outcome: str,
        at: float,
    ) -> int:
        if outcome in AGGREGATED:
            # Made-up or dead links cannot grow the log without bound: the same refusal from the same
            # address within an hour adds to one row's count.
            with self._db() as conn:
                row = conn.execute(
                    """SELECT id FROM access_log WHERE client IS ? AND at >= ? AND outcome = ? AND kind = ?
                       AND share_id IS ? AND user_agent IS ? ORDER BY id DESC LIMIT 1""",
                    (
                        accesslog.clip(client, 64),
                        at - REFUSAL_WINDOW_S,
                        outcome,
                        kind,
                        share_id,
                        accesslog.clip(user_agent),
                    ),
                ).fetchone()
                if row is not None:
                    conn.execute(
                        "UPDATE access_log SET repeats = repeats + 1, last_at = ? WHERE id = ?",
                        (at, row["id"]),
                    )
                    return int(row["id"])
        with self._db() as conn:
            log_id = accesslog.write(conn, share_id, kind, client, user_agent, outcome, at)
        if outcome != "ok":
            log.info("share %s: %s refused (%s)", share_id if share_id is not None else "?", kind, outcome)
        return log_id

    def _locked(self, seconds: float) -> ShareLocked:
        return ShareLocked(
            f"too many wrong passcodes: this link is locked for {_minutes(seconds)}",
            retry_after=int(seconds) + 1,
        )

    def _check_passcode(
        self, share: Share, passcode: str, kind: Kind, client: str | None, user_agent: str | None
    ) -> None:
        now = self.clock()
        # Reserve one try before the (slow) check, so parallel guesses share the same five.
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT failed_passcodes, locked_until, passcode_hash FROM shares WHERE id = ?", (share.id,)
            ).fetchone()
            failed, locked_until, digest = row["failed_passcodes"], row["locked_until"], row["passcode_hash"]
            if locked_until is not None and now < locked_until:
                conn.execute("COMMIT")
                raise self._tag(
                    self._locked(locked_until - now), share.id, kind, client, user_agent, "locked"
                )
            if locked_until is not None:  # an earlier lock has run out: five fresh tries
                failed = 0
            if failed >= self.max_failures:  # tries reserved by checks that never finished
                conn.execute(
                    "UPDATE shares SET locked_until = ?, failed_passcodes = 0 WHERE id = ?",
                    (now + self.lockout_s, share.id),
                )
                conn.execute("COMMIT")
                raise self._tag(self._locked(self.lockout_s), share.id, kind, client, user_agent, "locked")
            conn.execute(
                "UPDATE shares SET failed_passcodes = ?, locked_until = NULL WHERE id = ?",
                (failed + 1, share.id),
            )
            conn.execute("COMMIT")
        if passcodes.verify(self.hasher, digest, passcode):
            with self._db() as conn:
                conn.execute("UPDATE shares SET failed_passcodes = 0 WHERE id = ?", (share.id,))
            return
        if failed + 1 >= self.max_failures:
            with self._db() as conn:
                conn.execute(
                    """UPDATE shares SET locked_until = ?, failed_passcodes = 0
                       WHERE id = ? AND locked_until IS NULL""",
                    (self.clock() + self.lockout_s, share.id),
                )
            log.warning("share %d locked after %d wrong passcodes", share.id, self.max_failures)
            locked = ShareLocked(
                f"wrong passcode; after {self.max_failures} wrong passcodes this link is locked for "
                f"{_minutes(self.lockout_s)}",
                retry_after=int(self.lockout_s),
            )
            raise self._tag(locked, share.id, kind, client, user_agent, "bad_passcode")
        left = self.max_failures - failed - 1
        wrong = BadPasscode(
            f"wrong passcode ({left} {'try' if left == 1 else 'tries'} left before a lockout)"
        )
        raise self._tag(wrong, share.id, kind, client, user_agent, "bad_passcode")

    def _reserve_download(
        self, share: Share, kind: Kind, client: str | None, user_agent: str | None, now: float
    ) -> Share:
        with self._db() as conn:
            row = conn.execute(
                """UPDATE shares SET downloads = downloads + 1
                   WHERE id = ? AND revoked_at IS NULL AND expires_at > ?
                     AND (max_downloads IS NULL OR downloads < max_downloads)
                   RETURNING *""",
                (share.id, now),
            ).fetchone()
            if row is not None:
                return read_share(conn, row)
        # used up (or revoked) by a request that got here first
        used_up = ShareLimitReached("this share link has been used up")
        raise self._tag(used_up, share.id, kind, client, user_agent, "limited")

    def _tag(
        self,
        exc: ShareError,
        share_id: int | None,
        kind: Kind,
        client: str | None,
        user_agent: str | None,
        outcome: str,
    ) -> ShareError:
        """Log a refusal and mark the error with what was logged."""
        exc.share_id, exc.outcome = share_id, outcome
        exc.log_id = self._log(share_id, kind, client, user_agent, outcome, self.clock())
        return exc
