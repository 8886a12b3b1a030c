"""Search as people type: the name exactly as the page shows it, SA IDs with hyphens, German
transliterations, person names with ideographic and phonetic groups (search and QIDO), the referring
physician; `--medical-aid` takes a scheme's aliases; and an index made before these rules is rebuilt on
first open so it finds what a new one finds."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from conftest import run_cli, write_dicom
from pacsindex.dicomweb import query as dicomweb
from pacsindex.index import schema, store
from pacsindex.index.search import search
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree

PEOPLE = [
    # PatientName, charset, PatientID, ReferringPhysicianName, InsurancePlanIdentification
    ("MÜLLER^HANS", "ISO_IR 100", "PID-M", "DR^NAIDOO", "GEMS"),
    ("SCHÄFER^ANNA", "ISO_IR 100", "PID-S", "DR^MOODLEY^PRIYA", None),
    ("VAN DER MERWE^PIETER", "ISO_IR 192", "800101-5009-087", "DR^BOTHA", "Discovery Health"),
    ("Yamada^Tarou=山田^太郎=やまだ^たろう", "\\ISO 2022 IR 87", "PID-Y", "DR^SATO", None),
    ("O'BRIEN^SEÁN", "ISO_IR 100", "8001015009087", "DR^KHUMALO", None),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("typed") / "archive"
    for i, (name, charset, pid, doctor, plan) in enumerate(PEOPLE):
        extra = {"InsurancePlanIdentification": plan} if plan else {}
        write_dicom(
            root / f"p{i}" / "IM1.dcm",
            PatientName=name,
            charset=charset,
            PatientID=pid,
            ReferringPhysicianName=doctor,
            StudyInstanceUID=f"1.2.12.5.{i}",
            SeriesInstanceUID=f"1.2.12.5.{i}.1",
            **extra,
        )
    path = root.parent / "i.db"
    run_index(path, [LocalTree(str(root))], ScanOptions(workers=1))
    return path


def found(db: Path, query: str) -> set[str]:
    with store.reading(db) as conn:
        return {r["PatientName"] for r in search(conn, query)}


@pytest.mark.parametrize(
    "query, name",
    [
        ("MÜLLER, HANS", "MÜLLER^HANS"),  # as the page shows it: the comma is a word break
        ("Müller, Hans", "MÜLLER^HANS"),
        ("mueller", "MÜLLER^HANS"),  # German transliteration
        ("schaefer anna", "SCHÄFER^ANNA"),
        ("van der merwe, pieter", "VAN DER MERWE^PIETER"),
        ("800101-5009-087", "VAN DER MERWE^PIETER"),  # as typed in PatientID, and the digits joined
        ("8001015009087", "VAN DER MERWE^PIETER"),
        ("山田太郎", "Yamada^Tarou=山田^太郎=やまだ^たろう"),  # each group as written in its script
        ("やまだ たろう", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
        ("Yamada^Tarou", "Yamada^Tarou=山田^太郎=やまだ^たろう"),
        ("moodley", "SCHÄFER^ANNA"),  # the referring physician
        ("o'brien", "O'BRIEN^SEÁN"),
    ],
)
def test_names_and_ids_as_people_type_them(db: Path, query: str, name: str) -> None:
    assert name in found(db, query)


def test_hyphenated_id_finds_the_id_typed_without_hyphens(db: Path) -> None:
    assert found(db, "800101-5009-087") == {"VAN DER MERWE^PIETER", "O'BRIEN^SEÁN"}


@pytest.mark.parametrize("pattern", ["山田^太郎", "やまだ^たろう", "Yamada^Tarou", "山田*", "yamada*"])
def test_qido_matches_each_person_name_group(db: Path, pattern: str) -> None:
    with store.reading(db) as conn:
        query = dicomweb.parse_query("study", [("PatientName", pattern)])
        items = dicomweb.search(conn, query, "https://pacs/dicom-web").items
    assert [i["0020000D"]["Value"][0] for i in items] == ["1.2.12.5.3"]


def test_medical_aid_filter_takes_aliases_and_suggests_names(db: Path) -> None:
    out = run_cli("search", "", "--medical-aid", "GEMS", "--db", str(db), "--json")
    assert [r["PatientName"] for r in json.loads(out.stdout)] == ["MÜLLER^HANS"]
    assert "Government Employees Medical Scheme" in out.stderr
    typo = run_cli("search", "", "--medical-aid", "Discovry Health", "--db", str(db), "--json")
    assert json.loads(typo.stdout) == []
    assert "did you mean 'Discovery Health Medical Scheme'" in typo.stderr


def test_an_older_index_is_refolded_on_first_open(db: Path, tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    old.write_bytes(db.read_bytes())
    conn = sqlite3.connect(old)
    conn.execute("UPDATE series SET search_text = ' stale | text '")  # what the old rules stored
    conn.execute("CREATE TABLE IF NOT EXISTS refold (series_after INTEGER NOT NULL)")
    conn.execute("INSERT INTO refold VALUES (0)")  # what the migration leaves for the first open
    conn.commit()
    conn.close()
    assert found(old, "moodley") == set()
    store.connect(old).close()  # an indexing run or the server opens it for writing
    assert found(old, "moodley") == {"SCHÄFER^ANNA"} and found(old, "schaefer") == {"SCHÄFER^ANNA"}
    conn = sqlite3.connect(old)
    assert conn.execute("SELECT count(*) FROM refold").fetchone()[0] == 0
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
    conn.close()


def test_hospital_filters_take_aliases_too(db: Path) -> None:
    out = run_cli("search", "", "--hospital", "milpark hosp", "--db", str(db), "--json")
    assert len(json.loads(out.stdout)) == len(PEOPLE) and "Netcare Milpark Hospital" in out.stderr
    out = run_cli("search", "", "--hospital-group", "Netcare Hospital Group", "--db", str(db), "--json")
    assert len(json.loads(out.stdout)) == len(PEOPLE) and "'Netcare Hospital Group': Netcare" in out.stderr
