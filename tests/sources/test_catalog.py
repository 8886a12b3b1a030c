"""A Firebird catalog read end to end from a real Firebird 3 server, and its URL and mapping checked."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from firebird_server import (
    FirebirdServer,
    firebird_fixture,  # noqa: F401  (the "firebird" fixture)
)
from pacsindex.dicom.headers import HeaderRecord
from pacsindex.errors import (
    AuthenticationFailed,
    ConfigError,
    PermissionDenied,
    SourceUnreachable,
)
from pacsindex.sources.catalog.mapping import (
    CatalogMapping,
    CatalogUrl,
    catalog_password,
    load_mapping,
    parse_catalog_url,
    parse_mapping,
    resolve_path,
)
from pacsindex.sources.catalog.reader import CatalogRow, read_catalog

SCHEMA = [
    """CREATE TABLE PATIENTS (
        ID INTEGER NOT NULL PRIMARY KEY,
        SURNAME VARCHAR(60) CHARACTER SET UTF8,
        FIRST_NAMES VARCHAR(60) CHARACTER SET WIN1252,
        HOSP_NO VARCHAR(20),
        SA_ID VARCHAR(20),
        BIRTH_DATE DATE,
        SEX CHAR(1),
        MEDICAL_AID VARCHAR(60) CHARACTER SET UTF8)""",
    """CREATE TABLE STUDIES (
        ID INTEGER NOT NULL PRIMARY KEY,
        PATIENT_ID INTEGER NOT NULL REFERENCES PATIENTS,
        STUDY_UID VARCHAR(64),
        STUDY_DATE TIMESTAMP,
        REPORT_DATE VARCHAR(10),
        DESCRIPTION VARCHAR(64) CHARACTER SET UTF8,
        ACCESSION VARCHAR(16),
        INSTITUTION VARCHAR(64) CHARACTER SET UTF8)""",
    """CREATE TABLE SERIES (
        ID INTEGER NOT NULL PRIMARY KEY,
        STUDY_ID INTEGER NOT NULL REFERENCES STUDIES,
        SERIES_UID VARCHAR(64),
        SERIES_NO SMALLINT,
        DESCRIPTION VARCHAR(64) CHARACTER SET UTF8,
        MODALITY CHAR(2))""",
    """CREATE TABLE IMAGES (
        ID INTEGER NOT NULL PRIMARY KEY,
        SERIES_ID INTEGER NOT NULL REFERENCES SERIES,
        FILE_PATH VARCHAR(260) CHARACTER SET UTF8,
        INSTANCE_NO INTEGER)""",
]
PATIENTS = [
    (1, "NDLOVU", "Sipho", "H0001", "800101 5009 087", date(1980, 1, 1), "M", "Discovery Health"),
    (2, "PRETORIUS", "Anél Zoë", "H0002", None, date(1975, 6, 30), "F", "GEMS EMERALD"),
    (3, "MÜLLER", "Hans-Jürgen", "H0003", None, None, "M", None),
    (4, "ИВАНОВ", "Ivan", "H0004", None, date(1990, 2, 28), "M", "Bonitas"),
]
STUDIES = [
    (
        1,
        1,
        "1.2.710.1",
        datetime(2024, 1, 15, 10, 15, 30),
        "15/01/2024",
        "CT CHEST",
        "ACC1",
        "NETCARE MILPARK HOSP",
    ),
    (2, 2, "1.2.710.2", datetime(2023, 3, 1, 8, 0, 0), "01/03/2023", "MR KNEE", "ACC2", "Life Fourways"),
    (3, 3, "1.2.710.3", datetime(2022, 12, 31, 23, 59, 59), "not a date", "XR CHEST", "ACC3", None),
    (4, 4, "1.2.710.4", datetime(2021, 7, 4, 12, 0, 0), None, "CT BRAIN", "ACC4", "IALCH"),
]
SERIES = [
    (1, 1, "1.2.710.1.1", 1, "AXIAL", "CT"),
    (2, 1, "1.2.710.1.2", 2, "SCOUT", "CT"),
    (3, 2, "1.2.710.2.1", 1, "PD FS COR", "MR"),
    (4, 3, "1.2.710.3.1", 1, "PA", "DX"),
    (5, 4, "1.2.710.4.1", 3, "AXIAL", "CT"),
]
IMAGES = [
    (1, 1, "2024\\01\\NDLOVU\\IM0001.j2k", 1),
    (2, 1, "2024\\01\\NDLOVU\\IM0002.j2k", 2),
    (3, 1, "2024/01/NDLOVU/IM0003.j2k", 3),
    (4, 2, "2024\\01\\NDLOVU\\SC0001.j2k", 1),
    (5, 3, "2023\\03\\PRETORIUS\\IM0001.jp2", 1),
    (6, 3, "2023\\03\\PRETORIUS\\IM0002.jp2", 2),
    (7, 4, "/mnt/old-archive/MULLER/CR0001.j2k", 1),  # absolute: kept as it is
    (8, 5, "2021\\07\\ИВАНОВ\\IM0001.j2k", 1),
    (9, 5, None, 2),  # a row that lost its file
]
QUERY = """
SELECT p.SURNAME, p.FIRST_NAMES, p.HOSP_NO, p.SA_ID, p.BIRTH_DATE, p.SEX, p.MEDICAL_AID,
       st.STUDY_UID, st.STUDY_DATE, st.REPORT_DATE, st.DESCRIPTION AS STUDY_DESC, st.ACCESSION,
       st.INSTITUTION, se.SERIES_UID, se.SERIES_NO, se.DESCRIPTION AS SERIES_DESC, se.MODALITY,
       i.FILE_PATH, i.INSTANCE_NO
FROM IMAGES i
JOIN SERIES se ON se.ID = i.SERIES_ID
JOIN STUDIES st ON st.ID = se.STUDY_ID
JOIN PATIENTS p ON p.ID = st.PATIENT_ID
ORDER BY i.ID
"""
COLUMNS: dict[str, Any] = {
    "path": "FILE_PATH",
    "PatientName": ["SURNAME", "FIRST_NAMES"],
    "PatientID": "HOSP_NO",
    "OtherPatientIDs": "SA_ID",
    "PatientBirthDate": "BIRTH_DATE",
    "PatientSex": "SEX",
    "InsurancePlanIdentification": "MEDICAL_AID",
    "StudyInstanceUID": "STUDY_UID",
    "StudyDate": "STUDY_DATE",
    "StudyTime": "STUDY_DATE",
    "StudyDescription": "STUDY_DESC",
    "AccessionNumber": "accession",  # any case
    "InstitutionName": "INSTITUTION",
    "SeriesInstanceUID": "SERIES_UID",
    "SeriesNumber": "SERIES_NO",
    "SeriesDescription": "SERIES_DESC",
    "Modality": "MODALITY",
    "InstanceNumber": "INSTANCE_NO",
}


def mapping(**changes: Any) -> CatalogMapping:
    data: dict[str, Any] = {"query": QUERY, "columns": dict(COLUMNS), "base": "/archive/J2K", "batch_size": 3}
    data.update(changes)
    return parse_mapping(data, source="test mapping")


@pytest.fixture(scope="module")
def catalog(firebird: FirebirdServer) -> Path:
    """catalog.fdb on the server, with the schema and rows above."""
    from firebird.driver import create_database

    path = firebird.data / "catalog.fdb"
    with create_database(
        firebird.dsn(path), user=firebird.user, password=firebird.password, charset="UTF8", overwrite=True
    ) as con:
        for ddl in SCHEMA:
            con.execute_immediate(ddl)
        con.commit()
        cur = con.cursor()
        for table, rows in (
            ("PATIENTS", PATIENTS),
            ("STUDIES", STUDIES),
            ("SERIES", SERIES),
            ("IMAGES", IMAGES),
        ):
            marks = ", ".join("?" * len(rows[0]))
            cur.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        con.commit()
    return path


def other_attachments(firebird: FirebirdServer, catalog: Path) -> int:
    from firebird.driver import connect

    with connect(firebird.dsn(catalog), user=firebird.user, password=firebird.password) as con:
        cur = con.cursor()
        cur.execute(
            "SELECT COUNT(*) FROM MON$ATTACHMENTS WHERE MON$SYSTEM_FLAG = 0 "
            "AND MON$ATTACHMENT_ID <> CURRENT_CONNECTION"
        )
        (count,) = cur.fetchone()
        con.commit()
        return int(count)


@pytest.mark.firebird
def test_reads_every_image_with_its_fields_in_several_batches(
    firebird: FirebirdServer, catalog: Path
) -> None:
    rows = list(read_catalog(firebird.url(catalog), mapping(), firebird.password))
    assert len(rows) == len(IMAGES)
    first = rows[0]
    assert first.path == "/archive/J2K/2024/01/NDLOVU/IM0001.j2k"
    assert first.problems == ()
    assert first.fields == {
        "PatientName": "NDLOVU^Sipho",
        "PatientID": "H0001",
        "OtherPatientIDs": "800101 5009 087",
        "PatientBirthDate": "19800101",
        "PatientSex": "M",
        "InsurancePlanIdentification": "Discovery Health",
        "StudyInstanceUID": "1.2.710.1",
        "StudyDate": "20240115",
        "StudyTime": "101530",
        "StudyDescription": "CT CHEST",
        "AccessionNumber": "ACC1",
        "InstitutionName": "NETCARE MILPARK HOSP",
        "SeriesInstanceUID": "1.2.710.1.1",
        "SeriesNumber": 1,
        "SeriesDescription": "AXIAL",
        "Modality": "CT",
        "InstanceNumber": 1,
    }
    record = first.record()
    assert isinstance(record, HeaderRecord)
    assert (record.PatientName, record.SeriesNumber, record.StudyDate) == ("NDLOVU^Sipho", 1, "20240115")
    kept = {k: v for k, v in first.fields.items() if k in HeaderRecord.__dataclass_fields__}
    assert {k: getattr(record, k) for k in kept} == kept
    assert [r.fields["SeriesInstanceUID"] for r in rows].count("1.2.710.1.1") == 3


@pytest.mark.firebird
def test_non_ascii_names_arrive_intact_from_utf8_and_legacy_win1252_columns(
    firebird: FirebirdServer, catalog: Path
) -> None:
    names = {
        r.fields["PatientName"] for r in read_catalog(firebird.url(catalog), mapping(), firebird.password)
    }
    assert names == {"NDLOVU^Sipho", "PRETORIUS^Anél Zoë", "MÜLLER^Hans-Jürgen", "ИВАНОВ^Ivan"}


@pytest.mark.firebird
def test_paths_absolute_kept_relative_joined_missing_reported(
    firebird: FirebirdServer, catalog: Path
) -> None:
    rows = list(
        read_catalog(firebird.url(catalog), mapping(base="Z:\\Image Archiving\\J2K"), firebird.password)
    )
    paths = [r.path for r in rows]
    assert paths[4] == "Z:\\Image Archiving\\J2K\\2023\\03\\PRETORIUS\\IM0001.jp2"
    assert paths[2] == "Z:\\Image Archiving\\J2K\\2024\\01\\NDLOVU\\IM0003.j2k"  # "/" in the catalog too
    assert paths[6] == "/mnt/old-archive/MULLER/CR0001.j2k"
    assert paths[7] == "Z:\\Image Archiving\\J2K\\2021\\07\\ИВАНОВ\\IM0001.j2k"
    assert rows[8].path == "" and rows[8].problems == ("no file path in column FILE_PATH",)
    assert rows[8].fields["SeriesNumber"] == 3  # the rest of the row is still there


@pytest.mark.firebird
def test_text_dates_follow_date_format_and_a_bad_one_is_a_problem_not_a_crash(
    firebird: FirebirdServer, catalog: Path
) -> None:
    columns = {"path": "FILE_PATH", "StudyDate": "REPORT_DATE"}
    rows = list(
        read_catalog(
            firebird.url(catalog), mapping(columns=columns, date_format="%d/%m/%Y"), firebird.password
        )
    )
    assert [r.fields["StudyDate"] for r in rows[:5]] == ["20240115"] * 4 + ["20230301"]
    muller = rows[6]
    assert muller.fields["StudyDate"] is None
    assert muller.problems == ("StudyDate: cannot read 'not a date' as DA",)
    assert rows[7].fields["StudyDate"] is None and rows[7].problems == ()  # NULL is simply empty


@pytest.mark.firebird
def test_the_connection_is_closed_when_reading_stops_early(firebird: FirebirdServer, catalog: Path) -> None:
    rows = read_catalog(firebird.url(catalog), mapping(), firebird.password)
    assert isinstance(next(rows), CatalogRow)
    assert other_attachments(firebird, catalog) == 1
    rows.close()  # type: ignore[attr-defined]
    assert other_attachments(firebird, catalog) == 0


@pytest.mark.firebird
def test_a_wrong_password_says_where_the_password_comes_from_and_never_shows_it(
    firebird: FirebirdServer, catalog: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthenticationFailed, match="PACS_DB_PASSWORD or PACSINDEX_CATALOG_PASSWORD") as info:
        list(read_catalog(firebird.url(catalog), mapping(password_env="PACS_DB_PASSWORD"), "Wrong-Secret-9"))
    assert "SYSDBA" in str(info.value)
    list(read_catalog(firebird.url(catalog), mapping(), firebird.password))
    assert "Wrong-Secret-9" not in str(info.value) + caplog.text
    assert firebird.password not in caplog.text


@pytest.mark.firebird
def test_nothing_listening_is_unreachable_at_once(firebird: FirebirdServer, catalog: Path) -> None:
    from firebird_server import free_port

    with pytest.raises(SourceUnreachable, match="is the Firebird server running"):
        list(read_catalog(firebird.url(catalog, port=free_port()), mapping(), firebird.password))


@pytest.mark.firebird
def test_a_missing_database_is_unreachable_and_named(firebird: FirebirdServer, catalog: Path) -> None:
    missing = firebird.data / "nope.fdb"
    with pytest.raises(SourceUnreachable, match="nope.fdb"):
        list(read_catalog(firebird.url(missing), mapping(), firebird.password))


@pytest.mark.firebird
def test_a_database_the_server_may_not_open_is_permission_denied(firebird: FirebirdServer) -> None:
    with pytest.raises(PermissionDenied, match="not allowed"):
        list(read_catalog(firebird.url("/etc/passwd"), mapping(), firebird.password))


@pytest.mark.firebird
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"query": "SELECT FILE_PATH FROM NO_SUCH_TABLE"},
            "the query in test mapping failed: .*NO_SUCH_TABLE",
        ),
        ({"query": "SELECT ID FROM IMAGES"}, "gives no column 'FILE_PATH'; it gives ID"),
        ({"query": "DELETE FROM IMAGES"}, "the query must be a SELECT"),
        ({"query": "UPDATE IMAGES SET FILE_PATH = NULL"}, "the query must be a SELECT"),
    ],
)
def test_a_bad_query_is_a_config_error_and_changes_nothing(
    firebird: FirebirdServer, catalog: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        list(read_catalog(firebird.url(catalog), mapping(**changes), firebird.password))
    assert len(list(read_catalog(firebird.url(catalog), mapping(), firebird.password))) == len(IMAGES)
    assert other_attachments(firebird, catalog) == 0


@pytest.mark.firebird
def test_a_mapping_file_with_a_relative_base_and_its_own_password_variable(
    firebird: FirebirdServer, catalog: Path, tmp_path: Path
) -> None:
    (tmp_path / "mapping.toml").write_text(
        'query = """' + QUERY + '"""\nbase = "J2K"\npassword_env = "PACS_DB_PASSWORD"\n'
        '[columns]\npath = "FILE_PATH"\nPatientName = ["SURNAME", "FIRST_NAMES"]\nModality = "MODALITY"\n',
        encoding="utf-8",
    )
    loaded = load_mapping(tmp_path / "mapping.toml")
    password = catalog_password(loaded, {"PACS_DB_PASSWORD": firebird.password})
    rows = list(read_catalog(firebird.url(catalog), loaded, password))
    assert rows[0].path == str(tmp_path / "J2K") + "/2024/01/NDLOVU/IM0001.j2k"
    assert rows[0].fields == {"PatientName": "NDLOVU^Sipho", "Modality": "CT"}


# --- The URL, the mapping and paths, without a server ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("firebird://sysdba@nas:3050/catalog", CatalogUrl("sysdba", "nas", 3050, "catalog")),
        (
            "firebird://pacs@nas/var/lib/pacs/cat.fdb",
            CatalogUrl("pacs", "nas", 3050, "/var/lib/pacs/cat.fdb"),
        ),
        (
            "firebird://pacs@nas//var/lib/pacs/cat.fdb",
            CatalogUrl("pacs", "nas", 3050, "/var/lib/pacs/cat.fdb"),
        ),
        (
            "FIREBIRD://pacs@10.0.0.5:3051/C:/PACS/CAT.FDB",
            CatalogUrl("pacs", "10.0.0.5", 3051, "C:/PACS/CAT.FDB"),
        ),
        (
            "firebird://pacs@nas/D:/Image%20Archiving/CAT.FDB",
            CatalogUrl("pacs", "nas", 3050, "D:/Image Archiving/CAT.FDB"),
        ),
        ("firebird://pacs@[::1]:3052/catalog", CatalogUrl("pacs", "::1", 3052, "catalog")),
    ],
)
def test_catalog_urls(url: str, expected: CatalogUrl) -> None:
    assert parse_catalog_url(url) == expected


def test_the_dsn_and_the_url_shown_in_messages() -> None:
    assert CatalogUrl("pacs", "nas", 3051, "/data/cat.fdb").dsn == "nas/3051:/data/cat.fdb"
    assert CatalogUrl("pacs", "::1", 3050, "catalog").dsn == "[::1]/3050:catalog"
    assert str(CatalogUrl("pacs", "nas", 3050, "C:/CAT.FDB")) == "firebird://pacs@nas:3050/C:/CAT.FDB"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("firebird://pacs:Secret-1@nas/catalog", "no password in the catalog URL"),
        ("postgres://pacs@nas/catalog", "firebird://USER@HOST"),
        ("firebird://nas/catalog", "names no user"),
        ("firebird://pacs@nas", "names no database"),
        ("firebird://pacs@nas:99999/catalog", "bad host or port"),
        ("firebird://pacs@nas/catalog?charset=UTF8", "no \\?query"),
    ],
)
def test_bad_catalog_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse_catalog_url(url)
    assert "Secret-1" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"columns": {"path": "P"}}, "query must be the SELECT"),
        ({"query": "SELECT 1"}, "a \\[columns\\] table"),
        ({"query": "SELECT 1", "columns": {"PatientName": "N"}}, "\\[columns\\] path must name"),
        (
            {"query": "SELECT 1", "columns": {"path": "P", "PatientsName": "N"}},
            "'PatientsName' is not a DICOM",
        ),
        ({"query": "SELECT 1", "columns": {"path": "P", "Modality": ["A", "B"]}}, "only names"),
        ({"query": "SELECT 1", "columns": {"path": "P", "Modality": 3}}, "must name a column"),
        ({"query": "SELECT 1", "columns": {"path": "P"}, "password": "x"}, "password does not belong"),
        ({"query": "SELECT 1", "columns": {"path": "P"}, "batch_size": 0}, "batch_size"),
        ({"query": "SELECT 1", "columns": {"path": "P"}, "charset": "UTF-8; DROP"}, "charset"),
        ({"query": "SELECT 1", "columns": {"path": "P"}, "date_format": "dd/mm"}, "strptime"),
        ({"query": "SELECT 1", "columns": {"path": "P"}, "bsae": "/x"}, "unknown keys bsae"),
    ],
)
def test_bad_mappings_say_what_is_wrong(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_mapping(data)


def test_a_missing_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mapping file not found"):
        load_mapping(tmp_path / "mapping.toml")


def test_the_password_comes_from_the_named_variable_first_then_the_default() -> None:
    named = mapping(password_env="PACS_DB_PASSWORD")
    both = {"PACS_DB_PASSWORD": "from-named", "PACSINDEX_CATALOG_PASSWORD": "from-default"}
    assert catalog_password(named, both) == "from-named"
    assert catalog_password(named, {"PACSINDEX_CATALOG_PASSWORD": "from-default"}) == "from-default"
    assert catalog_password(mapping(), {"PACSINDEX_CATALOG_PASSWORD": "from-default"}) == "from-default"
    with pytest.raises(ConfigError, match="set PACS_DB_PASSWORD or PACSINDEX_CATALOG_PASSWORD"):
        catalog_password(named, {})


@pytest.mark.parametrize(
    ("stored", "base", "expected"),
    [
        ("2024\\01\\IM1.j2k", "/archive", "/archive/2024/01/IM1.j2k"),
        (".\\2024\\01\\IM1.j2k", "/archive/", "/archive/2024/01/IM1.j2k"),
        ("2024/01/IM1.j2k", "Z:\\Image Archiving", "Z:\\Image Archiving\\2024\\01\\IM1.j2k"),
        ("2024\\01\\IM1.j2k", "\\\\nas\\Image Archiving", "\\\\nas\\Image Archiving\\2024\\01\\IM1.j2k"),
        ("2024\\01\\IM1.j2k", "smb://nas/archive/J2K", "smb://nas/archive/J2K/2024/01/IM1.j2k"),
        ("D:\\J2K\\IM1.j2k", "/archive", "D:\\J2K\\IM1.j2k"),
        ("\\\\pacs\\j2k\\IM1.j2k", "/archive", "\\\\pacs\\j2k\\IM1.j2k"),
        ("/mnt/j2k/IM1.j2k", None, "/mnt/j2k/IM1.j2k"),
    ],
)
def test_resolve_path(stored: str, base: str | None, expected: str) -> None:
    assert resolve_path(stored, base) == expected


def test_relative_paths_without_a_base_say_to_set_one() -> None:
    with pytest.raises(ConfigError, match="set base in the mapping"):
        resolve_path("2024\\IM1.j2k", None)


@pytest.fixture(autouse=True)
def _no_catalog_password_from_the_outside(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("PACSINDEX_CATALOG_PASSWORD", raising=False)
    monkeypatch.delenv("PACS_DB_PASSWORD", raising=False)
    yield


@pytest.mark.firebird
def test_index_with_a_catalog_end_to_end(
    firebird: FirebirdServer, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pacsindex index --catalog ... --mapping ...`: the catalog's series join the index and search, the
    JPEG 2000 files are stat'ed but not opened, and a row whose file is gone is an error, not a crash."""
    import json
    import subprocess
    import sys
    import tomllib

    base = tmp_path / "J2K"
    for _, _, stored, _ in IMAGES:
        if stored and not stored.startswith("/"):
            f = Path(resolve_path(stored, str(base)))
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(b"\xff\x4f\xff\x51" + b"\x00" * 100)
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(
        f"query = '''{QUERY}'''\nbase = '{base}'\npassword_env = 'TEST_CATALOG_PW'\n[columns]\n"
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in COLUMNS.items()),
        encoding="utf-8",
    )
    tomllib.loads(mapping_file.read_text(encoding="utf-8"))
    url = f"firebird://{firebird.user}@127.0.0.1:{firebird.port}/{catalog}"
    db = tmp_path / "p.db"
    env = {**os.environ, "TEST_CATALOG_PW": firebird.password}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pacsindex",
            "index",
            "--catalog",
            url,
            "--mapping",
            str(mapping_file),
            "--db",
            str(db),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert firebird.password not in run.stderr + run.stdout
    summary = json.loads(run.stdout)
    assert summary["files_from_records"] == 7 and summary["files_read"] == 0
    assert summary["errors"] == 2  # the absolute path that is not here, and the row without a file
    found = subprocess.run(
        [sys.executable, "-m", "pacsindex", "search", "ndlovu", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(found.stdout)
    assert {r["SeriesDescription"]: r["file_count"] for r in rows} == {"AXIAL": 3, "SCOUT": 1}
    assert rows[0]["hospital_group"] == "Netcare" and rows[0]["medical_aid"].startswith("Discovery")
