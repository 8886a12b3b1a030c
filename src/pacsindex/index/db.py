"""The one way pacsindex opens an SQLite file (the index, and the share store): connect in WAL mode, run the
schema's migrations, and turn every `sqlite3` error, while opening or while querying, into `StoreError`.

    open_db(path, migrations, what)      create or migrate, then read and write
    open_db(..., readonly=True)          an existing database only, `PRAGMA query_only`

Errors are translated where they enter, by one table (most specific first). The exception raised is a
`StoreError` that is also the `sqlite3` class it came from (`StoreIntegrityError` is a
`sqlite3.IntegrityError` too), so code that tells a unique-constraint clash from other failures keeps
working, and anything that reaches the CLI or the web layer is one clear line, never a traceback.

Migrations are safe when two processes open a brand-new database at the same moment: each migration is
run inside `BEGIN IMMEDIATE` after reading `PRAGMA user_version` again, so the second process finds the
first one's work done instead of failing with "table runs already exists". A database written by a newer
pacsindex (a higher version than the migrations this one knows) is refused with a message that says so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from pacsindex.errors import IndexNotFound, StoreError

__all__ = [
    "Connection",
    "StoreBusy",
    "StoreIntegrityError",
    "NotADatabase",
    "open_db",
    "migrate",
    "statements",
    "token_hash",
    "translated",
]

log = logging.getLogger(__name__)


class StoreIntegrityError(StoreError, sqlite3.IntegrityError):
    """A write broke a constraint (e.g. a name that must be unique is taken)."""


class StoreBusy(StoreError, sqlite3.OperationalError):
    """Another process held the database longer than the busy timeout."""


class NotADatabase(StoreError, sqlite3.DatabaseError):
    """The file is not an SQLite database of pacsindex (another program's, or not SQLite at all)."""


class _StoreOperational(StoreError, sqlite3.OperationalError):
    pass


class _StoreDatabase(StoreError, sqlite3.DatabaseError):
    pass


class _StoreInterface(StoreError, sqlite3.Error):
    pass


# Most specific first: the first row whose class matches (and whose words, if any, are in the message) wins.
_TABLE: tuple[tuple[type[sqlite3.Error], tuple[str, ...], type[StoreError], str], ...] = (
    (sqlite3.IntegrityError, (), StoreIntegrityError, "the {what} {path}: {exc}"),
    (
        sqlite3.OperationalError,
        ("locked", "busy"),
        StoreBusy,
        "the {what} {path} is busy (another process is writing to it); try again in a moment",
    ),
    (
        sqlite3.OperationalError,
        ("readonly", "read-only"),
        _StoreOperational,
        "cannot write to the {what} {path}: the file or its folder is read-only",
    ),
    (
        sqlite3.OperationalError,
        ("unable to open",),
        _StoreOperational,
        "cannot open the {what} {path}: the folder is missing or not writable",
    ),
    (
        sqlite3.OperationalError,
        ("disk i/o", "full"),
        _StoreOperational,
        "cannot write to the {what} {path}: {exc} (is the disk full or gone?)",
    ),
    (sqlite3.OperationalError, (), _StoreOperational, "the {what} {path}: {exc}"),
    (
        sqlite3.DatabaseError,
        ("not a database", "malformed", "encrypted"),
        NotADatabase,
        "cannot open the {what} {path}: it is not a pacsindex {what} (not SQLite, or damaged)",
    ),
    (sqlite3.DatabaseError, (), _StoreDatabase, "the {what} {path}: {exc}"),
    (sqlite3.Error, (), _StoreInterface, "the {what} {path}: {exc}"),
)


def translated(exc: sqlite3.Error, what: str, path: str | os.PathLike[str] | None) -> StoreError:
    """The StoreError to raise (`from exc`) for an sqlite3 error met on `what` at `path`."""
    text = str(exc).lower()
    for kind, words, error, message in _TABLE:
        if isinstance(exc, kind) and (not words or any(w in text for w in words)):
            return error(message.format(what=what, path=path if path is not None else "", exc=exc))
    raise AssertionError("sqlite3.Error is the last row")  # pragma: no cover


class Cursor(sqlite3.Cursor):
    """A cursor whose failures, while running a statement or fetching its rows, are StoreErrors."""

    def _fail(self, exc: sqlite3.Error) -> StoreError:
        conn = self.connection
        return translated(exc, getattr(conn, "what", "database"), getattr(conn, "path", None))

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Cursor:
        try:
            return super().executemany(sql, seq_of_parameters)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        try:
            return super().fetchmany(self.arraysize if size is None else size)
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            raise self._fail(exc) from exc


class Connection(sqlite3.Connection):
    """sqlite3.Connection whose statements go through `Cursor`: every sqlite3 error becomes a StoreError
    naming the database (`what`, `path`)."""

    what: str = "database"
    path: str = ""

    def cursor(self, factory: Any = Cursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        return cast(Cursor, self.cursor()).execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Cursor:
        return cast(Cursor, self.cursor()).executemany(sql, seq_of_parameters)

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(sql_script)
        except sqlite3.Error as exc:
            raise translated(exc, self.what, self.path) from exc

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.Error as exc:
            raise translated(exc, self.what, self.path) from exc


def open_db(
    path: str | os.PathLike[str],
    migrations: Sequence[str],
    what: str,
    *,
    create: bool = True,
    readonly: bool = False,
    foreign_keys: bool = False,
    missing_hint: str = "",
) -> Connection:
    """Open `what` at `path` (creating it and running `migrations` unless `readonly`). IndexNotFound when
    it does not exist and `create` is false (or it holds no schema yet and `readonly`), with `missing_hint`;
    StoreError for a file that is not ours, from a newer pacsindex, or cannot be opened."""
    db = Path(path)
    if not db.exists():
        if not create or readonly:
            raise IndexNotFound(f"no {what} at {db}{missing_hint}")
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for the {what} {db}: {exc.strerror or exc}") from exc
    elif db.is_dir():
        raise StoreError(f"{db} is a folder, not a database file")
    try:
        conn = sqlite3.connect(
            db, timeout=30, isolation_level=None, check_same_thread=False, factory=Connection
        )
    except sqlite3.Error as exc:
        raise translated(exc, what, db) from exc
    assert isinstance(conn, Connection)
    conn.what, conn.path = what, str(db)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        if foreign_keys:
            conn.execute("PRAGMA foreign_keys = ON")
        version = _version(conn, migrations, what, db)
        if readonly:
            if version == 0:
                raise IndexNotFound(f"{db} holds no {what} yet{missing_hint}")
            conn.execute("PRAGMA query_only = ON")
        else:
            _wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn, migrations, what)
    except BaseException:
        conn.close()
        raise
    return conn


def _wal(conn: Connection, wait_s: float = 30.0) -> None:
    """Switch to WAL. SQLite answers "busy" at once, without its busy timeout, while another process has
    a brand-new database open in the old journal mode: retry until that process has switched it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except StoreBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _version(conn: Connection, migrations: Sequence[str], what: str, db: Path) -> int:
    """The schema version of `conn`; StoreError for another program's database or a newer pacsindex's."""
    # One statement, one snapshot: a process migrating the same new database meanwhile is seen in full or
    # not at all.
    version, tables = conn.execute(
        "SELECT (SELECT user_version FROM pragma_user_version),"
        " (SELECT count(*) FROM sqlite_schema WHERE type = 'table')"
    ).fetchone()
    if version > len(migrations):
        raise StoreError(
            f"{db} was written by a newer pacsindex ({what} schema version {version}; this one knows up to "
            f"{len(migrations)}): upgrade pacsindex to use it"
        )
    if version == 0:
        if tables:  # someone else's SQLite file: never add our tables to it
            raise NotADatabase(
                f"cannot open the {what} {db}: it is another program's SQLite file, not a pacsindex {what}"
            )
    return int(version)


def migrate(conn: sqlite3.Connection, migrations: Sequence[str], what: str) -> None:
    """Run the migrations `conn` has not had yet (its `PRAGMA user_version` counts them), each in its own
    transaction. The version is read again once the write lock is held, so a second process opening the
    same new database waits, then finds the migration done."""
    while int(conn.execute("PRAGMA user_version").fetchone()[0]) < len(migrations):
        conn.execute("BEGIN IMMEDIATE")  # only when there is work: an up-to-date open takes no write lock
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version >= len(migrations):
                conn.execute("COMMIT")
                return
            number = version + 1
            log.info("migrating %s schema to version %d", what, number)
            for statement in statements(migrations[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def statements(script: str) -> Iterator[str]:
    """Split SQL text into statements, keeping trigger bodies (with their inner `;`) whole."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


@contextmanager
def translating(what: str, path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """For sqlite3 calls made outside a `Connection` (e.g. a plain connection a test made)."""
    try:
        yield
    except sqlite3.Error as exc:
        if isinstance(exc, StoreError):
            raise
        raise translated(exc, what, path) from exc


def token_hash(token: str) -> str:
    """How a secret token (session, API token, share link) is kept: its SHA-256, hex. A token has at least
    128 random bits, so a plain hash is enough; the token itself is never stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
