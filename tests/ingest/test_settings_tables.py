"""The settings file's `[medical_aids]` and `[hospitals]` tables reach every indexing run: `pacsindex index`
and a run started with the Start button (the API it calls). A practice's own scheme is found by
`pacsindex search --medical-aid`; a bad section is one line and exit 2, for `index` and for `serve`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import cli_json, run_cli, write_dicom
from pacsindex.config import settings as config
from support_wait import wait_until
from support_web import LiveServer

WOOLTRU = "Wooltru Healthcare Fund"
SETTINGS = """
[[medical_aids.scheme]]
name = "Wooltru Healthcare Fund"
aliases = ["Wooltru"]

[[hospitals.facility]]
name = "Busamed Modderfontein Private Hospital"
group = "Busamed"
aliases = ["Modderfontein Private"]
"""


def practice(tmp_path: Path) -> tuple[Path, Path]:
    """A settings file with the practice's own scheme and hospital, and an archive that names both."""
    write_dicom(
        tmp_path / "archive" / "DUBE" / "IM0.dcm",
        PatientName="DUBE^LINDIWE",
        PatientID="W-1",
        InsurancePlanIdentification="WOOLTRU",
        InstitutionName="MODDERFONTEIN PRIVATE",
    )
    config_file = tmp_path / "pacsindex.toml"
    config_file.write_text(SETTINGS, encoding="utf-8")
    return config_file, tmp_path / "archive"


def test_pacsindex_index_uses_the_settings_files_tables(tmp_path: Path) -> None:
    config_file, archive = practice(tmp_path)
    db = tmp_path / "with.db"
    cli_json("index", str(archive), "--db", str(db), "--config", str(config_file))
    found = cli_json("search", "dube", "--medical-aid", WOOLTRU, "--db", str(db))
    assert [r["PatientName"] for r in found] == ["DUBE^LINDIWE"]
    by_hospital = cli_json("search", "dube", "--hospital-group", "busamed", "--db", str(db))
    assert [r["PatientName"] for r in by_hospital] == ["DUBE^LINDIWE"]

    without = tmp_path / "without.db"  # the built-in tables know neither
    cli_json("index", str(archive), "--db", str(without))
    assert cli_json("search", "dube", "--medical-aid", WOOLTRU, "--db", str(without)) == []


def test_a_run_started_from_the_web_page_uses_them(
    tmp_path: Path, live_server: Callable[..., LiveServer]
) -> None:
    config_file, archive = practice(tmp_path)
    settings = config.load(config_file, environ={}).with_overrides(
        db=tmp_path / "web.db", roots=[str(archive)], workers=1
    )
    server = live_server(settings=settings, users={"sister": False})
    client, csrf = server.sign_in("sister")
    assert client.post("/api/index/start", headers=csrf).status_code == 202
    wait_until(lambda: not client.get("/api/index/status").json()["running"], what="the run to end")
    found = client.get("/api/search", params={"medical_aid": WOOLTRU}).json()
    assert [(r["PatientName"], r["hospital_group"]) for r in found] == [("DUBE^LINDIWE", "Busamed")]


def test_a_bad_section_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config_file, archive = practice(tmp_path)
    config_file.write_text('[[medical_aids.scheme]]\naliases = ["no name"]\n', encoding="utf-8")
    for args in (("index", str(archive)), ("serve", "--port", "1")):
        proc = run_cli(*args, "--db", str(tmp_path / "p.db"), "--config", str(config_file), check=False)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "medical_aids" in lines[0] and "Traceback" not in proc.stderr, lines
