"""Share links: a token shown once and kept only as a hash, expiry on an injected clock, revocation,
passcodes with a lockout that parallel guessing cannot get around, download limits, guessed tokens
refused, and an access-log row for every use, allowed or not."""

from __future__ import annotations

import base64
import logging
import secrets
import sqlite3
import threading
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from pacsindex.config import settings as config
from pacsindex.errors import (
    BadPasscode,
    ConfigError,
    InvalidQuery,
    PasscodeRequired,
    ShareBusy,
    ShareError,
    ShareExpired,
    ShareLimitReached,
    ShareLinkNotFound,
    ShareLocked,
    ShareRevoked,
)
from pacsindex.share.links import Shares
from pacsindex.share.store import MIGRATIONS, token_hash

KEY = "a" * 40
OTHER_KEY = "b" * 40
HOUR = 3600.0
T0 = 1_750_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def shares(tmp_path: Path, clock: Clock) -> Shares:
    return Shares(
        tmp_path / "shares.db",
        clock=clock,
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
    )


def outcomes(shares: Shares, share_id: int) -> list[str]:
    return [row["outcome"] for row in reversed(shares.access_log(share_id, limit=500))]


def use(shares: Shares, token: str | None, kind: str = "page", **kw: object) -> object:
    return shares.access(token, kind=kind, client="10.0.0.7", user_agent="test-agent", **kw)  # type: ignore[arg-type]


def test_token_is_256_random_bits_shown_once_and_stored_only_as_its_hash(shares: Shares) -> None:
    made = shares.create(KEY, "thandi")
    assert len(base64.urlsafe_b64decode(made.token + "=")) == 32
    assert made.token != shares.create(KEY, "thandi").token
    shares.access(made.token, kind="page", client="10.0.0.7")
    raw = b"".join(p.read_bytes() for p in shares.path.parent.glob("shares.db*"))
    assert made.token.encode() not in raw
    assert token_hash(made.token).encode() in raw
    assert "token" not in repr(made.share) and made.token not in str(made.share.public(T0))


def test_schema_is_versioned_and_in_wal_mode(shares: Shares) -> None:
    conn = sqlite3.connect(shares.path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    Shares(shares.path)  # opening again migrates nothing and keeps the data
    assert sqlite3.connect(shares.path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_link_lasts_24_hours_by_default_then_expires(shares: Shares, clock: Clock) -> None:
    made = shares.create(KEY, "thandi")
    assert made.share.expires_at == T0 + 24 * HOUR
    clock.now = T0 + 24 * HOUR - 1
    assert use(shares, made.token).share.id == made.share.id  # type: ignore[attr-defined]
    clock.now = T0 + 24 * HOUR
    with pytest.raises(ShareExpired, match="expired"):
        use(shares, made.token, "download")
    assert shares.get(made.share.id).status(clock.now) == "expired"
    assert shares.get(made.share.id).downloads == 0
    assert outcomes(shares, made.share.id) == ["ok", "expired"]


def test_expiry_per_link_and_its_bounds(shares: Shares, clock: Clock) -> None:
    made = shares.create(KEY, "thandi", expires_in_s=HOUR)
    clock.now = T0 + HOUR
    with pytest.raises(ShareExpired):
        use(shares, made.token)
    assert (
        shares.create(KEY, "thandi", expires_in_s=7 * 24 * HOUR).share.expires_at == clock.now + 7 * 24 * HOUR
    )
    for bad in (7 * 24 * HOUR + 1, 59, -5):
        with pytest.raises(InvalidQuery, match="lasts between"):
            shares.create(KEY, "thandi", expires_in_s=bad)


def test_settings_give_the_default_and_the_maximum(tmp_path: Path, clock: Clock) -> None:
    settings = config.load(
        environ={
            "PACSINDEX_DB": str(tmp_path / "idx" / "pacsindex.db"),
            "PACSINDEX_SHARE_DEFAULT_HOURS": "2",
            "PACSINDEX_SHARE_MAX_HOURS": "4",
            "PACSINDEX_SHARE_MAX_STREAMS": "3",
            "PACSINDEX_PUBLIC_URL": "https://pacs.example.co.za",
        }
    )
    assert settings.shares_path == tmp_path / "idx" / "shares.db"
    assert settings.share_max_streams == 3 and settings.public_url == "https://pacs.example.co.za"
    shares = Shares.from_settings(settings, clock=clock)
    assert shares.create(KEY, "x").share.expires_at == T0 + 2 * HOUR
    with pytest.raises(InvalidQuery):
        shares.create(KEY, "x", expires_in_s=5 * HOUR)
    for env, message in [
        ({"PACSINDEX_SHARE_DEFAULT_HOURS": "200"}, "share_default_hours"),
        ({"PACSINDEX_SHARE_MAX_HOURS": "0"}, "share_default_hours"),
        ({"PACSINDEX_SHARE_MAX_STREAMS": "0"}, "share_max_streams"),
        ({"PACSINDEX_PUBLIC_URL": "javascript:alert(1)"}, "public_url"),
    ]:
        with pytest.raises(ConfigError, match=message):
            config.load(environ=env)


def test_revoked_links_refuse_every_use(shares: Shares, clock: Clock) -> None:
    made = shares.create(KEY, "thandi")
    other = shares.create(KEY, "thandi")
    clock.now += 10
    shares.revoke(made.share.id, "sipho")
    clock.now += 10
    again = shares.revoke(made.share.id, "thandi")
    assert (again.revoked_at, again.revoked_by) == (T0 + 10, "sipho")  # the first revocation stands
    for kind in ("page", "files", "download", "file"):
        with pytest.raises(ShareRevoked, match="withdrawn"):
            use(shares, made.token, kind)
    assert use(shares, other.token).share.id == other.share.id  # type: ignore[attr-defined]
    assert outcomes(shares, made.share.id) == ["revoked"] * 4
    with pytest.raises(ShareLinkNotFound):
        shares.revoke(9999, "thandi")


def test_passcode_lockout_after_five_wrong_for_fifteen_minutes(shares: Shares, clock: Clock) -> None:
    made = shares.create(KEY, "thandi", passcode="kidney-42")
    assert made.share.has_passcode
    with pytest.raises(PasscodeRequired):
        use(shares, made.token)
    for left in (4, 3, 2, 1):
        with pytest.raises(BadPasscode, match=f"{left} tr"):
            use(shares, made.token, "passcode", passcode="guess")
    with pytest.raises(ShareLocked, match="15 minutes") as locked:
        use(shares, made.token, "passcode", passcode="guess")
    assert locked.value.retry_after == 15 * 60
    # Locked: even the right passcode, and a download, are refused; the lock does not grow.
    clock.now += 15 * 60 - 1
    with pytest.raises(ShareLocked, match="1 minute"):
        use(shares, made.token, "passcode", passcode="kidney-42")
    with pytest.raises(ShareLocked):
        use(shares, made.token, "download", passcode="kidney-42")
    assert shares.get(made.share.id).status(clock.now) == "locked"
    clock.now += 1
    ok = use(shares, made.token, "passcode", passcode="kidney-42")
    assert ok.grant  # type: ignore[attr-defined]
    assert shares.get(made.share.id).failed_passcodes == 0
    assert outcomes(shares, made.share.id) == (
        ["passcode_required"] + ["bad_passcode"] * 5 + ["locked", "locked", "ok"]
    )
    # After the lock, five fresh tries.
    for _ in range(4):
        with pytest.raises(BadPasscode):
            use(shares, made.token, "passcode", passcode="nope-nope")
    assert use(shares, made.token, "passcode", passcode="kidney-42").grant  # type: ignore[attr-defined]


def test_a_grant_stands_in_for_the_passcode_for_that_link_only(shares: Shares, clock: Clock) -> None:
    made = shares.create(KEY, "thandi", passcode="kidney-42")
    other = shares.create(KEY, "thandi", passcode="kidney-42")
    grant = use(shares, made.token, "passcode", passcode="kidney-42").grant  # type: ignore[attr-defined]
    assert use(shares, made.token, "download", grant=grant).share.downloads == 1  # type: ignore[attr-defined]
    with pytest.raises(PasscodeRequired):
        use(shares, other.token, "download", grant=grant)
    forged = grant.rsplit(".", 1)[0] + "." + "0" * 64
    with pytest.raises(PasscodeRequired):
        use(shares, made.token, grant=forged)
    longer = grant.split(".")
    with pytest.raises(PasscodeRequired):
        use(shares, made.token, grant=f"{longer[0]}.{int(longer[1]) + 3600}.{longer[2]}")
    clock.now += 30 * 60
    with pytest.raises(PasscodeRequired):
        use(shares, made.token, grant=grant)


def test_parallel_guesses_get_five_tries_and_no_more(shares: Shares) -> None:
    made = shares.create(KEY, "thandi", passcode="kidney-42")
    results: list[str] = []
    start = threading.Barrier(20)

    def guess(i: int) -> None:
        start.wait()
        try:
            use(shares, made.token, "passcode", passcode=f"guess-{i}")
            results.append("ok")
        except ShareError as exc:
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = outcomes(shares, made.share.id)
    assert log.count("bad_passcode") <= 5 and "ok" not in results
    assert log.count("bad_passcode") + log.count("locked") == 20
    with pytest.raises(ShareLocked):
        use(shares, made.token, "passcode", passcode="kidney-42")


def test_download_limit(shares: Shares) -> None:
    made = shares.create(KEY, "thandi", max_downloads=2)
    use(shares, made.token, "files")
    assert use(shares, made.token, "download").share.downloads == 1  # type: ignore[attr-defined]
    with pytest.raises(ShareLimitReached, match="single files"):
        use(shares, made.token, "file")
    assert use(shares, made.token, "download").share.downloads == 2  # type: ignore[attr-defined]
    for kind in ("download", "page"):
        with pytest.raises(ShareLimitReached, match="used up"):
            use(shares, made.token, kind)
    assert shares.get(made.share.id).status(T0) == "used_up"
    assert outcomes(shares, made.share.id) == ["ok", "ok", "limited", "ok", "limited", "limited"]
    for bad in (0, 1001):
        with pytest.raises(InvalidQuery, match="max_downloads"):
            shares.create(KEY, "thandi", max_downloads=bad)


def test_parallel_downloads_never_pass_the_limit(shares: Shares) -> None:
    made = shares.create(KEY, "thandi", max_downloads=3)
    results: list[str] = []
    start = threading.Barrier(12)

    def download() -> None:
        start.wait()
        try:
            use(shares, made.token, "download")
            results.append("ok")
        except ShareLimitReached:
            results.append("limited")

    threads = [threading.Thread(target=download) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["limited"] * 9 + ["ok"] * 3
    assert shares.get(made.share.id).downloads == 3


def test_guessed_truncated_and_altered_tokens_are_refused(shares: Shares) -> None:
    made = shares.create(KEY, "thandi")
    other = shares.create(OTHER_KEY, "sipho")
    t = made.token
    guesses = [secrets.token_urlsafe(32) for _ in range(50)] + [
        t[:-1],
        t[:22],
        t[1:],
        t + "A",
        t.swapcase(),
        t[:-1] + ("A" if t[-1] != "A" else "B"),
        t + "\n",
        " " + t,
        "",
        None,
        "' OR 1=1 --",
        "../" + t,
        "é" * 43,
        token_hash(t),  # the stored hash is not a token
    ]
    for guess in guesses:
        with pytest.raises(ShareLinkNotFound):
            use(shares, guess, "download")
    # Another link's token opens that link, never this one.
    assert use(shares, other.token, "download").share.SeriesKey == OTHER_KEY  # type: ignore[attr-defined]
    assert shares.get(made.share.id).downloads == 0
    conn = sqlite3.connect(shares.path)
    refused = conn.execute(
        "SELECT sum(repeats) FROM access_log WHERE share_id IS NULL AND outcome = 'not_found'"
    ).fetchone()[0]
    assert refused == len(guesses)  # every attempt counted, on one row per address (issue 13)


def test_access_log_keeps_client_agent_and_bytes(shares: Shares, clock: Clock) -> None:
    made = shares.create(KEY, "thandi")
    got = use(shares, made.token, "download")
    shares.finish(got.log_id, 123_456, complete=True)  # type: ignore[attr-defined]
    broken = use(shares, made.token, "download")
    shares.finish(broken.log_id, 99, complete=False)  # type: ignore[attr-defined]
    busy = shares.refuse(
        made.token, ShareBusy("busy"), "busy", kind="download", client="10.0.0.8", user_agent="x" * 1000
    )
    assert (busy.share_id, busy.outcome) == (made.share.id, "busy") and busy.log_id
    log = shares.access_log(made.share.id)
    assert [(r["outcome"], r["bytes_sent"]) for r in log] == [
        ("busy", 0),
        ("incomplete", 99),
        ("ok", 123_456),
    ]
    assert (
        log[2]["client"] == "10.0.0.7"
        and log[2]["user_agent"] == "test-agent"
        and log[2]["kind"] == "download"
    )
    assert len(log[0]["user_agent"]) == 256
    assert log[0]["at"].startswith("2025-06-15T")


def test_listing_and_status(shares: Shares, clock: Clock) -> None:
    a = shares.create(KEY, "thandi")
    clock.now += 1
    b = shares.create(OTHER_KEY, "sipho", passcode="kidney-42", max_downloads=1)
    assert [s.id for s in shares.recent()] == [b.share.id, a.share.id]
    assert [s.id for s in shares.recent(created_by="THANDI")] == [a.share.id]
    public = b.share.public(clock.now)
    assert public["status"] == "active" and public["has_passcode"] and public["max_downloads"] == 1
    assert public["expires_at"] == "2025-06-16T15:06:41+00:00"
    with pytest.raises(InvalidQuery):
        shares.create("not-a-key", "thandi")
    with pytest.raises(InvalidQuery, match="passcode"):
        shares.create(KEY, "thandi", passcode="123")


def test_tokens_never_reach_the_log(shares: Shares, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pacsindex")
    made = shares.create(KEY, "thandi", passcode="kidney-42")
    for attempt in (made.token, made.token[:-2], secrets.token_urlsafe(32)):
        with pytest.raises(ShareError):
            use(shares, attempt, "download", passcode="wrong-one")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert made.token not in text and made.token[:12] not in text
    assert token_hash(made.token) not in text
    assert "kidney-42" not in text and "wrong-one" not in text


def test_a_refusal_says_which_link_and_what_was_logged(shares: Shares) -> None:
    made = shares.create(KEY, "thandi", passcode="kidney-42")
    with pytest.raises(PasscodeRequired) as needed:
        use(shares, made.token, "download")
    assert (needed.value.share_id, needed.value.outcome) == (made.share.id, "passcode_required")
    assert needed.value.log_id == shares.access_log(made.share.id)[0]["id"]
    with pytest.raises(ShareLinkNotFound) as unknown:
        use(shares, "x" * 43)
    assert unknown.value.share_id is None and unknown.value.outcome == "not_found" and unknown.value.log_id
