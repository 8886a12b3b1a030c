"""Lockouts hold under parallel attempts (issue 14, point 1): ten simultaneous wrong passwords for one user
over the live server's socket get exactly `signin_failures_per_user` argon2 checks, the rest 429; the same
for one address across many names; and DICOMweb's failed-token limit per address."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import httpx
import pytest

from hardening_kit import PASSWORD, CountingHasher, live_server, sample_index


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_index(tmp_path_factory.mktemp("lockout"))


def copy(db: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index.db"
    target.write_bytes(db.read_bytes())
    return target


def parallel(n: int, call: object) -> list[int]:
    """`call(i)` in `n` threads released at once; their status codes."""
    barrier = threading.Barrier(n)
    codes: list[int] = [0] * n

    def one(i: int) -> None:
        barrier.wait()
        codes[i] = call(i)  # type: ignore[operator]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return codes


def test_ten_parallel_wrong_passwords_get_five_checks(db: Path, tmp_path: Path) -> None:
    hasher = CountingHasher()
    with live_server(copy(db, tmp_path), hasher, signin_failures_per_user=5) as (server, _app):
        hasher.verified = 0

        def attempt(i: int) -> int:
            r = httpx.post(
                server.url + "/auth/signin", json={"name": "alice", "password": f"wrong {i:02d} guess"}
            )
            return r.status_code

        codes = parallel(10, attempt)
        assert hasher.verified == 5
        assert sorted(codes) == [401] * 5 + [429] * 5
        # The right password is refused too while the name is locked, without a check.
        r = httpx.post(server.url + "/auth/signin", json={"name": "alice", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
        assert hasher.verified == 5
        # Another name still signs in: the lock is per name.
        assert (
            httpx.post(server.url + "/auth/signin", json={"name": "bob", "password": PASSWORD}).status_code
            == 200
        )


def test_a_right_password_gives_its_reserved_try_back(db: Path, tmp_path: Path) -> None:
    with live_server(copy(db, tmp_path), signin_failures_per_user=2) as (server, _app):
        for _ in range(3):  # more right sign-ins than the limit: none counts as a failure
            r = httpx.post(server.url + "/auth/signin", json={"name": "alice", "password": PASSWORD})
            assert r.status_code == 200


def test_parallel_guesses_across_names_share_the_addresss_tries(db: Path, tmp_path: Path) -> None:
    hasher = CountingHasher()
    with live_server(
        copy(db, tmp_path), hasher, signin_failures_per_user=5, signin_failures_per_address=6
    ) as (server, _app):
        hasher.verified = 0

        def attempt(i: int) -> int:
            r = httpx.post(
                server.url + "/auth/signin", json={"name": f"user{i}", "password": "wrong password!"}
            )
            return r.status_code

        codes = parallel(16, attempt)
        assert hasher.verified == 6
        assert sorted(codes) == [401] * 6 + [429] * 10


def test_wrong_dicomweb_tokens_are_limited_per_address_in_parallel(db: Path, tmp_path: Path) -> None:
    with live_server(copy(db, tmp_path), dicomweb_token_failures_per_address=5) as (server, app):
        _, good = app.state.apitokens.create("viewer", "alice")
        ok = httpx.get(server.url + "/dicom-web/studies", headers={"Authorization": f"Bearer {good}"})
        assert ok.status_code == 200  # a right token spends no try

        def attempt(i: int) -> int:
            if i % 2:  # HTTP Basic with the token as the password, as a PACS sends it
                r = httpx.get(server.url + "/dicom-web/studies", auth=("orthanc", f"guess-{i}"))
            else:
                r = httpx.get(
                    server.url + "/dicom-web/studies", headers={"Authorization": f"Bearer guess-{i}"}
                )
            return r.status_code

        codes = parallel(20, attempt)
        assert sorted(codes) == [401] * 5 + [429] * 15
        locked = httpx.get(server.url + "/dicom-web/studies", headers={"Authorization": f"Bearer {good}"})
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0


def test_a_burst_of_right_sign_ins_from_one_address_is_never_locked_out(db: Path, tmp_path: Path) -> None:
    """A practice behind one NAT address, everyone signing in at 8 o'clock: past the address's limit a
    sign-in waits a moment (a short Retry-After), and nothing is counted as a failure."""
    with live_server(copy(db, tmp_path), signin_failures_per_address=4) as (server, app):
        accounts = app.state.pacsindex.accounts
        for i in range(10):
            accounts.add_user(f"staff{i}", PASSWORD)

        def attempt(i: int) -> int:
            r = httpx.post(server.url + "/auth/signin", json={"name": f"staff{i}", "password": PASSWORD})
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) <= 5 and "at once" in r.json()["detail"]
            return r.status_code

        codes = parallel(10, attempt)
        assert set(codes) <= {200, 429} and codes.count(200) >= 4
        for i, code in enumerate(codes):  # the ones asked to wait get in on their next try
            if code == 429:
                r = httpx.post(server.url + "/auth/signin", json={"name": f"staff{i}", "password": PASSWORD})
                assert r.status_code == 200


def test_argon2_checks_at_once_are_bounded_by_the_cpus(db: Path, tmp_path: Path) -> None:
    """Each check holds argon2's memory (64 MiB by default): a burst of sign-ins waits its turn rather than
    holding gigabytes at once."""
    hasher = CountingHasher()
    with live_server(copy(db, tmp_path), hasher, signin_failures_per_address=100) as (server, _app):

        def attempt(i: int) -> int:
            return httpx.post(
                server.url + "/auth/signin", json={"name": f"u{i}", "password": "wrong password!"}
            ).status_code

        assert parallel(16, attempt) == [401] * 16
    assert hasher.verified == 16 and hasher.peak <= max(2, os.cpu_count() or 2)
