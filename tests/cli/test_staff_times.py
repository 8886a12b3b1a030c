"""`pacsindex user list` and `token list` show times in the practice's zone, like everything else."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import run_cli
from pacsindex.accounts.apitokens import ApiTokens
from pacsindex.accounts.auth import Accounts

STORED = "2026-03-02T12:05:00+00:00"  # how the index stores a time: aware UTC


def test_user_and_token_lists_print_practice_time(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    Accounts(db).add_user("thandi", "correct horse battery")
    ApiTokens(db).create("Weasis", "cli:admin")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE users SET last_signin_at = ?", (STORED,))
        conn.execute("UPDATE api_tokens SET last_used_at = ?, revoked_at = ?", (STORED, STORED))
    conn.close()
    users = run_cli("user", "list", "--db", str(db)).stdout
    assert "last sign-in: 2026-03-02 14:05 SAST" in users and "12:05" not in users
    tokens = run_cli("token", "list", "--db", str(db)).stdout
    assert "revoked 2026-03-02 14:05 SAST" in tokens and "last used: 2026-03-02 14:05 SAST" in tokens

    berlin = tmp_path / "berlin.toml"
    berlin.write_text('timezone = "Europe/Berlin"\n', encoding="utf-8")
    users = run_cli("user", "list", "--db", str(db), "--config", str(berlin)).stdout
    assert "last sign-in: 2026-03-02 13:05 CET" in users
