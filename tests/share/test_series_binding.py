"""Share links bound to their series: a link made before links held several series keeps its one series
after the migration; a new link holds exactly the series given, in order, without duplicates; made-up
passcodes are readable and accepted however they are typed; an admin's unlock lifts a lockout."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from pacsindex.errors import BadPasscode, InvalidQuery, ShareLocked
from pacsindex.share import passcodes
from pacsindex.share.links import Shares, share_series_keys
from pacsindex.share.store import MIGRATIONS

KEYS = ["a" * 40, "b" * 40, "c" * 40]
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_a_link_made_before_keeps_its_one_series(tmp_path: Path) -> None:
    db = tmp_path / "shares.db"
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO shares (token_hash, SeriesKey, created_by, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?)",
        ("0" * 64, KEYS[1], "thandi", 1.0, 2e10),
    )
    conn.commit()
    conn.close()
    old = Shares(db, hasher=FAST).get(1)
    assert share_series_keys(old) == frozenset({KEYS[1]}) and old.note is None and not old.deidentified


def test_a_link_holds_exactly_the_series_given(tmp_path: Path) -> None:
    shares = Shares(tmp_path / "shares.db", hasher=FAST)
    made = shares.create([KEYS[2], KEYS[0], KEYS[2].upper()], "thandi", note="Dr Naidoo")
    again = shares.get(made.share.id)
    assert again.series_keys == (KEYS[2], KEYS[0]) and share_series_keys(again) == {KEYS[0], KEYS[2]}
    assert again.SeriesKey == KEYS[2] and again.note == "Dr Naidoo"
    for bad in ([], ["nope"], [KEYS[0]] * 0):
        with pytest.raises(InvalidQuery):
            shares.create(bad, "thandi")
    with pytest.raises(InvalidQuery):
        shares.create(KEYS[0], "thandi", note="line one\nline two")
    with pytest.raises(InvalidQuery):
        shares.create(KEYS[0], "thandi", passcode="secret-1", generate_passcode=True)


def test_made_up_passcodes_are_readable_and_forgiving(tmp_path: Path) -> None:
    codes = {passcodes.generate() for _ in range(200)}
    assert len(codes) == 200
    assert all(
        len(c) == 9 and c[4] == "-" and set(c.replace("-", "")) <= set(passcodes.ALPHABET) for c in codes
    )
    assert not set("0o1li2z5s") & set(passcodes.ALPHABET)
    shares = Shares(tmp_path / "shares.db", hasher=FAST)
    made = shares.create(KEYS[0], "thandi", generate_passcode=True)
    assert made.passcode and made.share.has_passcode
    typed = made.passcode.replace("-", " ").upper()
    got = shares.access(made.token, kind="page", client="10.0.0.1", passcode=typed)
    assert got.grant


def test_an_admin_unlock_lifts_a_lockout(tmp_path: Path) -> None:
    shares = Shares(tmp_path / "shares.db", hasher=FAST)
    made = shares.create(KEYS[0], "thandi", passcode="kidney-stone-42")
    for _ in range(4):
        with pytest.raises(BadPasscode):
            shares.access(made.token, kind="page", client="10.0.0.1", passcode="guess-guess")
    with pytest.raises(ShareLocked):
        shares.access(made.token, kind="page", client="10.0.0.1", passcode="guess-guess")
    assert shares.get(made.share.id).status(shares.clock()) == "locked"
    assert shares.unlock(made.share.id, "boss").status(shares.clock()) == "active"
    assert shares.access(made.token, kind="page", client="10.0.0.1", passcode="kidney-stone-42").grant
