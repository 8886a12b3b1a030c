"""The `pacsindex` command as a user runs it: separate processes, exit codes, JSON on stdout."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import cli_json, run_cli, write_dicom

SERIES_KEYS = {
    "SeriesKey",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyDescription",
    "AccessionNumber",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "file_count",
}
STATUS_KEYS = {
    "enumerated_files",
    "files_processed",
    "files_read",
    "files_unchanged",
    "files_removed",
    "series_count",
    "errors",
    "non_dicom",
    "running",
    "started_at",
    "last_updated",
}


def test_index_json_summary_and_status_file(dicom_tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "idx" / "p.db"
    summary = cli_json("index", str(dicom_tree), "--db", str(db))
    assert STATUS_KEYS <= set(summary)
    assert summary["files_processed"] == 7 and summary["series_count"] == 3 and summary["running"] is False
    assert summary["last_updated"].endswith("+02:00"), "times are shown in Africa/Johannesburg time"
    status = json.loads((db.parent / "index_status.json").read_text(encoding="utf-8"))
    assert STATUS_KEYS <= set(status) and status["files_processed"] == 7 and status["running"] is False


def test_db_from_environment_and_default_location(dicom_tree: Path, tmp_path: Path) -> None:
    env_db = tmp_path / "env.db"
    cli_json("index", str(dicom_tree), env={"PACSINDEX_DB": str(env_db)})
    assert env_db.exists()
    work = tmp_path / "cwd"
    work.mkdir()
    cli_json("index", str(dicom_tree), cwd=work)
    assert (work / "pacsindex.db").exists() and (work / "index_status.json").exists()


def test_series_listing_and_one_series_with_files(dicom_tree: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    cli_json("index", str(dicom_tree), "--db", db)
    rows = cli_json("series", "--db", db)
    assert len(rows) == 3 and all(set(r) == SERIES_KEYS for r in rows)
    ct = next(r for r in rows if r["SeriesInstanceUID"] == "1.2.3.4.1")
    assert ct["SeriesKey"] == hashlib.sha1(b"1.2.3.4.1").hexdigest()
    assert ct["PatientName"] == "MÜLLER^HANS" and ct["SeriesNumber"] == 1 and ct["file_count"] == 3
    one = cli_json("series", ct["SeriesKey"], "--db", db)
    assert len(one["files"]) == 3 and all(Path(f).exists() for f in one["files"])
    assert [Path(f).name for f in one["files"]] == ["IM0.dcm", "IM1.dcm", "IM2.dcm"]


def test_search_any_case_any_alphabet(dicom_tree: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    cli_json("index", str(dicom_tree), "--db", db)
    assert {r["SeriesDescription"] for r in cli_json("search", "hans müller", "--db", db)} == {
        "AXIAL",
        "SCOUT",
    }
    assert [r["PatientName"] for r in cli_json("search", "иван", "--db", db)] == ["Иванов^Иван"]
    assert cli_json("search", "nobody-here", "--db", db) == []
    human = run_cli("search", "müller", "--db", db)
    assert "MÜLLER, Hans" in human.stdout and "^" not in human.stdout  # as reception says it
    assert "MÜLLER^HANS" in json.dumps(cli_json("search", "müller", "--db", db), ensure_ascii=False)


def test_search_without_an_index_says_how_to_make_one(tmp_path: Path) -> None:
    proc = run_cli("search", "x", "--db", str(tmp_path / "none.db"), check=False)
    assert proc.returncode != 0
    assert "pacsindex index" in proc.stderr
    assert not (tmp_path / "none.db").exists(), "a search must not create an empty index"


def test_missing_root_is_one_clear_line_and_non_zero(tmp_path: Path) -> None:
    proc = run_cli("index", str(tmp_path / "no-such-folder"), "--db", str(tmp_path / "p.db"), check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("pacsindex: error:") and "root not found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_unwritable_database_is_a_clear_error(dicom_tree: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = run_cli("index", str(dicom_tree), "--db", str(blocker / "p.db"), check=False)
    assert proc.returncode != 0
    assert "pacsindex: error:" in proc.stderr and "Traceback" not in proc.stderr
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    proc = run_cli("index", str(dicom_tree), "--db", str(garbage), check=False)
    assert proc.returncode != 0 and "cannot open the index" in proc.stderr
    assert garbage.read_bytes() == b"this is not sqlite" * 100, "a file that is not an index is left alone"


def test_bad_arguments(tmp_path: Path) -> None:
    assert run_cli("index", "--limit", "0", str(tmp_path), check=False).returncode == 2
    proc = run_cli("index", "--db", str(tmp_path / "p.db"), check=False)
    assert proc.returncode != 0 and "nothing to index" in proc.stderr
    proc = run_cli("search", "x", "--date-from", "2024-02-30", "--db", str(tmp_path / "p.db"), check=False)
    assert proc.returncode != 0


def test_file_list_limit_and_index_json_like_the_seed(dicom_tree: Path, tmp_path: Path) -> None:
    files = sorted(str(p) for p in dicom_tree.rglob("*") if p.is_file())
    lst = tmp_path / "nas_dicom_files.txt"
    lst.write_text("\r\n".join(files) + "\r\n", encoding="utf-16")  # as PowerShell's `>` writes it
    db, out = str(tmp_path / "p.db"), tmp_path / "index_sample.json"
    summary = cli_json("index", "--list", str(lst), "--limit", "5", "--json-out", str(out), "--db", db)
    assert summary["files_processed"] == 5
    series = json.loads(out.read_text(encoding="utf-8"))
    assert sum(len(s["files"]) for s in series) == 5
    assert all(s["file_count"] == len(s["files"]) for s in series)
    full = cli_json("index", "--list", str(lst), "--db", db)
    assert full["files_processed"] == 7 and full["files_unchanged"] == 5 and full["files_read"] == 2


def test_bad_files_do_not_fail_the_run(tmp_path: Path) -> None:
    root = tmp_path / "nas"
    write_dicom(root / "ok.dcm")
    (root / "broken.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 50)
    (root / "Thumbs.db").write_bytes(b"\x01\x02")
    summary = cli_json("index", str(root), "--db", str(tmp_path / "p.db"))
    assert summary["errors"] == 1 and summary["non_dicom"] == 1 and summary["series_count"] == 1


def test_sample_then_index_then_search(tmp_path: Path) -> None:
    run_cli("sample", str(tmp_path / "arch"), "--patients", "6", "--files", "60")
    summary = cli_json("index", str(tmp_path / "arch"), "--db", str(tmp_path / "p.db"))
    assert summary["files_processed"] - summary["non_dicom"] == 60 and summary["errors"] == 0
    rows = cli_json("search", "müller", "--db", str(tmp_path / "p.db"))
    assert rows and all(r["PatientName"] == "MÜLLER^HANS" for r in rows)


def test_python_dash_m_and_console_script_agree() -> None:
    a = subprocess.run([sys.executable, "-m", "pacsindex", "--version"], capture_output=True, text=True)
    script = Path(sys.executable).parent / ("pacsindex.exe" if os.name == "nt" else "pacsindex")
    b = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout and a.stdout.startswith("pacsindex ")


def test_problems_lists_errors_and_folders_of_bare_jpeg2000(tmp_path: Path) -> None:
    root = tmp_path / "nas"
    write_dicom(root / "ok.dcm")
    (root / "broken.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 50)
    (root / "j2k").mkdir()
    for i in range(3):
        (root / "j2k" / f"IMG{i}.j2k").write_bytes(b"\xff\x4f\xff\x51" + b"\x00" * 60)
    (root / "j2k" / "IMG9.jp2").write_bytes(
        b"\x00\x00\x00\x0c\x6a\x50\x20\x20\x0d\x0a\x87\x0a" + b"\x00" * 60
    )
    db = str(tmp_path / "p.db")
    summary = cli_json("index", str(root), "--db", db)
    assert summary["errors"] == 1 and summary["non_dicom"] == 4, "bare images are not errors"
    errors = cli_json("problems", "--db", db)
    assert [Path(e["path"]).name for e in errors] == ["broken.dcm"]
    (folder,) = cli_json("problems", "--kind", "images", "--db", db)
    assert folder["folder"].endswith("j2k") and folder["images"] == 4
    assert "image without DICOM header" in folder["kind"]


def test_search_filters_by_hospital_group(tmp_path: Path) -> None:
    root = tmp_path / "nas"
    write_dicom(
        root / "a.dcm",
        PatientName="NKOSI^SIPHO",
        InstitutionName="NETCARE MILPARK HOSP",
        StudyInstanceUID="3.1",
        SeriesInstanceUID="3.1.1",
    )
    write_dicom(
        root / "b.dcm",
        PatientName="BOTHA^ANNA",
        InstitutionName="Groote Schuur Hospital",
        StudyInstanceUID="3.2",
        SeriesInstanceUID="3.2.1",
    )
    db = str(tmp_path / "p.db")
    cli_json("index", str(root), "--db", db)
    rows = cli_json("search", "", "--hospital-group", "netcare", "--db", db)
    assert [r["PatientName"] for r in rows] == ["NKOSI^SIPHO"]
