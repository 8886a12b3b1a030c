"""Staff accounts: argon2 hashes, sessions and their idle timeout (on a clock the test moves, no sleeps),
throttling of failed sign-ins, disabling, password changes and the last-admin rule."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from pacsindex.accounts.auth import MAX_SESSION_S, Accounts, Throttle
from pacsindex.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidQuery,
    NotFound,
    SignInFailed,
    TooManyAttempts,
)

PASSWORD = "correct horse battery"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def accounts(tmp_path: Path, clock: Clock) -> Accounts:
    acc = Accounts(
        tmp_path / "i.db",
        idle_s=30 * 60,
        throttle=Throttle(per_user=3, per_address=5, lockout_s=600),
        clock=clock,
        hasher=CHEAP,
    )
    acc.add_user("alice", PASSWORD, admin=True)
    acc.add_user("bob", PASSWORD)
    return acc


def db_rows(accounts: Accounts, sql: str) -> list[tuple]:
    conn = sqlite3.connect(accounts.db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_passwords_are_stored_as_argon2id_hashes_never_in_clear(tmp_path: Path) -> None:
    acc = Accounts(tmp_path / "i.db")  # the real, default-cost hasher
    acc.add_user("thandi", PASSWORD)
    [(digest,)] = db_rows(acc, "SELECT password_hash FROM users")
    assert digest.startswith("$argon2id$") and PASSWORD not in digest
    assert acc.sign_in("thandi", PASSWORD, "10.0.0.5").user.name == "thandi"


def test_sign_in_gives_a_session_whose_token_is_not_in_the_database(accounts: Accounts) -> None:
    session = accounts.sign_in("ALICE", PASSWORD, "10.0.0.5")  # user names ignore letter case
    assert session.user.name == "alice" and session.user.is_admin
    assert session.token and session.csrf_token and session.token != session.csrf_token
    stored = db_rows(accounts, "SELECT token_hash FROM sessions")
    assert stored and all(session.token not in row[0] for row in stored)
    again = accounts.session(session.token)
    assert again.user.name == "alice" and again.csrf_ok(session.csrf_token) and not again.csrf_ok("forged")


def test_wrong_password_and_unknown_user_get_the_same_answer(accounts: Accounts) -> None:
    with pytest.raises(SignInFailed) as wrong:
        accounts.sign_in("alice", "not the password", "10.0.0.5")
    with pytest.raises(SignInFailed) as unknown:
        accounts.sign_in("mallory", PASSWORD, "10.0.0.6")
    assert str(wrong.value) == str(unknown.value) == "wrong user name or password"


def test_an_idle_session_ends_and_background_polls_do_not_keep_it_alive(
    accounts: Accounts, clock: Clock
) -> None:
    token = accounts.sign_in("bob", PASSWORD, "10.0.0.5").token
    clock.advance(29 * 60)
    accounts.session(token)  # a search: resets the idle clock
    for _ in range(29):
        clock.advance(60)
        accounts.session(token, touch=False)  # the page's status polls do not
    clock.advance(61)
    with pytest.raises(AuthError, match="without activity"):
        accounts.session(token, touch=False)
    with pytest.raises(AuthError):  # and it stays ended
        accounts.session(token)


def test_a_busy_session_still_ends_after_a_working_day(accounts: Accounts, clock: Clock) -> None:
    token = accounts.sign_in("bob", PASSWORD, "10.0.0.5").token
    while clock.now < 1_750_000_000.0 + MAX_SESSION_S - 600:
        clock.advance(600)
        accounts.session(token)
    clock.advance(1200)
    with pytest.raises(AuthError, match="ended"):
        accounts.session(token)


def test_repeated_failures_lock_the_name_until_the_lockout_passes(accounts: Accounts, clock: Clock) -> None:
    for _ in range(3):
        with pytest.raises(SignInFailed):
            accounts.sign_in("bob", "guess", "10.0.0.7")
        clock.advance(10)
    with pytest.raises(TooManyAttempts) as locked:
        accounts.sign_in("bob", PASSWORD, "10.0.0.8")  # even the right password, from elsewhere
    assert 560 <= locked.value.retry_after <= 600
    clock.advance(300)
    with pytest.raises(TooManyAttempts):  # attempts while locked neither count nor extend the lock
        accounts.sign_in("bob", "guess", "10.0.0.7")
    clock.advance(301)
    assert accounts.sign_in("bob", PASSWORD, "10.0.0.8").user.name == "bob"
    accounts.sign_in("alice", PASSWORD, "10.0.0.7")  # other names were never locked


def test_a_success_clears_the_names_failures(accounts: Accounts) -> None:
    for _ in range(2):
        with pytest.raises(SignInFailed):
            accounts.sign_in("bob", "guess", "10.0.0.7")
    accounts.sign_in("bob", PASSWORD, "10.0.0.7")
    for _ in range(2):
        with pytest.raises(SignInFailed):
            accounts.sign_in("bob", "guess", "10.0.0.7")
    accounts.sign_in("bob", PASSWORD, "10.0.0.7")


def test_failures_from_one_address_lock_that_address_for_every_name(accounts: Accounts) -> None:
    for name in ("a1", "a2", "a3", "a4", "a5"):  # different names: no name reaches its own limit
        with pytest.raises(SignInFailed):
            accounts.sign_in(name, "guess", "10.6.6.6")
    with pytest.raises(TooManyAttempts, match="this computer"):
        accounts.sign_in("alice", PASSWORD, "10.6.6.6")
    assert accounts.sign_in("alice", PASSWORD, "10.0.0.5").user.name == "alice"


def test_disabling_a_user_ends_their_sessions_and_refuses_sign_in(accounts: Accounts) -> None:
    token = accounts.sign_in("bob", PASSWORD, "10.0.0.5").token
    accounts.update_user("bob", disabled=True)
    with pytest.raises(AuthError):
        accounts.session(token)
    with pytest.raises(SignInFailed, match="disabled"):
        accounts.sign_in("bob", PASSWORD, "10.0.0.5")
    accounts.update_user("bob", disabled=False)
    accounts.sign_in("bob", PASSWORD, "10.0.0.5")


def test_a_new_password_ends_the_old_sessions(accounts: Accounts) -> None:
    token = accounts.sign_in("bob", PASSWORD, "10.0.0.5").token
    accounts.set_password("bob", "a brand new secret")
    with pytest.raises(AuthError):
        accounts.session(token)
    with pytest.raises(SignInFailed):
        accounts.sign_in("bob", PASSWORD, "10.0.0.5")
    accounts.sign_in("bob", "a brand new secret", "10.0.0.5")
    with pytest.raises(Forbidden):
        accounts.change_own_password("bob", "wrong current", "another new secret")
    accounts.change_own_password("bob", "a brand new secret", "another new secret")
    accounts.sign_in("bob", "another new secret", "10.0.0.5")


def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(accounts: Accounts) -> None:
    with pytest.raises(Conflict):
        accounts.update_user("alice", admin=False)
    with pytest.raises(Conflict):
        accounts.update_user("alice", disabled=True)
    accounts.update_user("bob", admin=True)
    assert not accounts.update_user("alice", admin=False).is_admin
    assert accounts.count_admins() == 1


@pytest.mark.parametrize("name", ["", " alice", "a b", "x" * 65, "-lead", "名前", "a/b"])
def test_odd_user_names_are_refused(accounts: Accounts, name: str) -> None:
    with pytest.raises(InvalidQuery):
        accounts.add_user(name, PASSWORD)


@pytest.mark.parametrize("password", ["short", "x" * 1025, "ten chars\x00"])
def test_weak_or_odd_passwords_are_refused(accounts: Accounts, password: str) -> None:
    with pytest.raises(InvalidQuery):
        accounts.add_user("carol", password)


def test_duplicate_and_unknown_users(accounts: Accounts) -> None:
    with pytest.raises(Conflict):
        accounts.add_user("Alice", PASSWORD)
    with pytest.raises(NotFound):
        accounts.set_password("nobody", PASSWORD)
    assert [u.name for u in accounts.list_users()] == ["alice", "bob"]
