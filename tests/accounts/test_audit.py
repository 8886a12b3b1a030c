"""The audit log: entries written and listed newest first, filters, repeats within a window written once,
and an entry that finds the index locked by an indexing run written a moment later, never lost."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pacsindex.accounts import audit
from pacsindex.accounts.audit import AuditLog
from pacsindex.errors import InvalidQuery
from pacsindex.index import store


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    db = tmp_path / "i.db"
    store.connect(db).close()
    return AuditLog(db, clock=Clock())


def test_entries_are_listed_newest_first_and_filtered(log: AuditLog) -> None:
    clock = log.clock
    assert isinstance(clock, Clock)
    log.record(audit.SIGNIN, "alice", "10.0.0.5")
    clock.now += 5
    log.record(audit.SEARCH, "alice", "10.0.0.5", q="müller", modality="MR")
    clock.now += 5
    log.record(audit.OPEN_SERIES, "bob", "10.0.0.9", SeriesKey="ab" * 20, PatientName="MÜLLER^HANS")
    entries = log.entries()
    assert [e["action"] for e in entries] == ["open_series", "search", "signin"]
    assert entries[1]["detail"] == {"q": "müller", "modality": "MR"}
    assert entries[1]["at"] == "2025-06-15T15:06:45+00:00"
    assert [e["action"] for e in log.entries(user="ALICE")] == ["search", "signin"]
    assert [e["user"] for e in log.entries(action="open_series")] == ["bob"]
    assert [e["action"] for e in log.entries(limit=1, offset=1)] == ["search"]


def test_a_repeat_within_the_window_is_written_once(log: AuditLog) -> None:
    clock = log.clock
    assert isinstance(clock, Clock)
    assert log.record(audit.SEARCH, "alice", "10.0.0.5", q="müller")
    clock.now += 60
    assert not log.record(audit.SEARCH, "alice", "10.0.0.5", q="müller")  # the page refreshing results
    assert log.record(audit.SEARCH, "bob", "10.0.0.9", q="müller")  # someone else
    assert log.record(audit.SEARCH, "alice", "10.0.0.5", q="ivanov")  # another search
    clock.now += 61
    assert log.record(audit.SEARCH, "alice", "10.0.0.5", q="müller")  # later: written again
    assert len(log.entries()) == 4


def test_an_entry_that_finds_the_index_locked_is_written_once_the_lock_is_gone(log: AuditLog) -> None:
    writer = sqlite3.connect(log.db_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # what an indexing run holds between its commits
    try:
        assert log.record(audit.SEARCH, "alice", "10.0.0.5", q="dlamini")
        assert writer.execute("SELECT count(*) FROM audit").fetchone()[0] == 0
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert log.flush(timeout=30)
    assert [e["detail"] for e in log.entries()] == [{"q": "dlamini"}]


@pytest.mark.parametrize("kw", [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"action": "drop table"}])
def test_bad_filters_are_refused(log: AuditLog, kw: dict[str, object]) -> None:
    with pytest.raises(InvalidQuery):
        log.entries(**kw)  # type: ignore[arg-type]
