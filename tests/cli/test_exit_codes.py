"""Every failure a user can cause is one line on stderr and the exit code README.md documents, never a
traceback; README's table of exit codes and the code's (errors.EXIT_CODES) say the same."""

from __future__ import annotations

import re
import socket
import sqlite3
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, write_dicom
from pacsindex import errors
from pacsindex.index.schema import MIGRATIONS


def readme_exit_codes() -> dict[int, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("Exit codes of every `pacsindex` command") :]
    rows = re.findall(r"^\| *(\d+) *\| *(.+?) *\|$", table.split("\n\n", 2)[1], re.M)
    return {int(code): meaning for code, meaning in rows}


def test_readme_lists_every_exit_code_the_code_uses() -> None:
    assert readme_exit_codes() == errors.EXIT_CODES

    def subclasses(cls: type[errors.PacsIndexError]) -> list[type[errors.PacsIndexError]]:
        return [cls] + [s for sub in cls.__subclasses__() for s in subclasses(sub)]

    used = {cls.exit_code for cls in subclasses(errors.PacsIndexError)}
    assert used <= set(errors.EXIT_CODES), used - set(errors.EXIT_CODES)


def one_line(proc_args: tuple[str, ...], code: int, words: str) -> None:
    proc = run_cli(*proc_args, check=False)
    lines = proc.stderr.strip().splitlines()
    assert (proc.returncode, len(lines)) == (code, 1), (proc.returncode, proc.stderr)
    assert lines[0].startswith("pacsindex: error:") and words in lines[0], lines[0]
    assert code in errors.EXIT_CODES


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    write_dicom(tmp_path / "archive" / "IM0.dcm")
    return tmp_path / "archive"


def test_index_without_roots_or_with_half_a_catalog(tmp_path: Path, archive: Path) -> None:
    db = str(tmp_path / "p.db")
    one_line(("index", "--db", db), 2, "nothing to index")
    one_line(("index", "--catalog", "firebird://u@h/x.fdb", "--db", db), 2, "--mapping")
    one_line(("index", str(archive), "--mapping", str(tmp_path / "m.toml"), "--db", db), 2, "--catalog")


def test_an_unwritable_json_out_is_refused_before_the_run(tmp_path: Path, archive: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    db = tmp_path / "p.db"
    one_line(
        ("index", str(archive), "--db", str(db), "--json-out", str(blocker / "out.json")), 11, "--json-out"
    )
    one_line(("index", str(archive), "--db", str(db), "--json-out", str(tmp_path)), 11, "folder")
    assert not db.exists(), "nothing indexed: the run did not start"


def test_sample_into_an_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    one_line(("sample", str(blocker / "archive"), "--files", "5", "--patients", "1"), 11, "sample archive")


def test_an_sqlite_file_that_is_not_an_index_is_left_alone(tmp_path: Path, archive: Path) -> None:
    other = tmp_path / "contacts.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    one_line(("search", "dube", "--db", str(other)), 4, "not a pacsindex index")
    one_line(("index", str(archive), "--db", str(other)), 4, "not a pacsindex index")
    assert other.read_bytes() == before


def test_an_index_from_a_newer_pacsindex(tmp_path: Path, archive: Path) -> None:
    db = tmp_path / "p.db"
    run_cli("index", str(archive), "--db", str(db))
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    one_line(("search", "doe", "--db", str(db)), 4, "newer pacsindex")


def test_serve_on_a_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        one_line(("serve", "--port", port, "--db", str(tmp_path / "p.db")), 2, "already in use")
