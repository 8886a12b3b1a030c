"""The one database layer (index/db.py) for the index and the share store: two processes opening a brand-new
database at the same moment both succeed; a database from a newer pacsindex, another program's SQLite file
and a file that is not SQLite are refused with one clear message and left as they were; sqlite3 errors met
while querying are StoreErrors that still say which sqlite3 error they were."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from multiprocessing.pool import Pool
from pathlib import Path

import pytest

from pacsindex.errors import PacsIndexError, StoreError
from pacsindex.index import store
from pacsindex.index.db import NotADatabase, StoreBusy, StoreIntegrityError, token_hash
from pacsindex.index.schema import MIGRATIONS
from pacsindex.share import store as share_store

_barrier: threading.Barrier | None = None


def _init(barrier: threading.Barrier) -> None:
    global _barrier
    _barrier = barrier


def _open_at_once(args: tuple[str, str]) -> str:
    """In a worker process: wait for the other one, then open the new database at the same moment."""
    kind, path = args
    assert _barrier is not None
    _barrier.wait(timeout=60)
    try:
        conn = store.connect(path) if kind == "index" else share_store.connect(path)
    except PacsIndexError as exc:
        return f"failed: {exc}"
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    return f"version {version}"


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2, initializer=_init, initargs=(ctx.Barrier(2),)) as workers:
        yield workers


@pytest.mark.parametrize("kind", ["index", "share store"])
def test_two_processes_opening_a_new_database_at_once_both_succeed(
    pool: Pool, tmp_path: Path, kind: str
) -> None:
    expected = len(MIGRATIONS) if kind == "index" else len(share_store.MIGRATIONS)
    for attempt in range(20):
        path = str(tmp_path / f"{attempt}.db")
        outcomes = pool.map(_open_at_once, [(kind, path), (kind, path)], chunksize=1)
        assert outcomes == [f"version {expected}"] * 2, (attempt, outcomes)


def test_a_database_from_a_newer_pacsindex_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    store.connect(db).close()
    raw = sqlite3.connect(db)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 3}")
    raw.close()
    for readonly in (False, True):
        with pytest.raises(StoreError, match="newer pacsindex") as caught:
            store.connect(db, readonly=readonly)
        assert "upgrade pacsindex" in str(caught.value) and "\n" not in str(caught.value)


def test_another_programs_database_and_a_non_database_are_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "contacts.sqlite"
    raw = sqlite3.connect(other)
    raw.execute("CREATE TABLE contacts (name TEXT)")
    raw.commit()
    raw.close()
    before = other.read_bytes()
    with pytest.raises(NotADatabase, match="not a pacsindex index"):
        store.connect(other)
    assert other.read_bytes() == before  # none of our tables added to it

    text = tmp_path / "notes.db"
    text.write_text("not SQLite at all " * 100, encoding="utf-8")
    with pytest.raises(NotADatabase, match="not a pacsindex share store"):
        share_store.connect(text)
    assert text.read_text(encoding="utf-8").startswith("not SQLite")


def test_errors_while_querying_are_store_errors(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    conn = store.connect(db)
    with pytest.raises(StoreError, match="no such table") as caught:
        conn.execute("SELECT * FROM no_such_table").fetchall()
    assert isinstance(caught.value, sqlite3.OperationalError) and str(db) in str(caught.value)

    conn.execute("INSERT INTO dirs (path, sep) VALUES ('/a', '/')")
    # Still an IntegrityError, for code that tells a clash from other failures.
    with pytest.raises(StoreIntegrityError) as clash:
        conn.execute("INSERT INTO dirs (path, sep) VALUES ('/a', '/')")
    assert isinstance(clash.value, sqlite3.IntegrityError)

    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        conn.execute("PRAGMA busy_timeout = 0")
        with pytest.raises(StoreBusy, match="busy"):
            conn.execute("INSERT INTO dirs (path, sep) VALUES ('/b', '/')")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        conn.close()


def test_one_token_hash_for_sessions_api_tokens_and_share_links() -> None:
    assert token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert share_store.token_hash is token_hash
