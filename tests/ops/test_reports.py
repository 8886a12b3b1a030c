"""Access reports (POPIA s23) over a real socket: after a staff search, an opened series, a share and its
download by a recipient, the admin's report for that patient lists all four, with time and address, as
CSV and as a PDF (text read back with pypdf); another patient's accesses are not in it; staff may not make
reports; making one is audited. The audit export gives the entries of a date range as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from opskit import Live, add_study, live_service
from pypdf import PdfReader

from conftest import run_cli
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import source_for

SA = ZoneInfo("Africa/Johannesburg")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("reports")
    archive = base / "archive"
    add_study(archive, "MÜLLER^HANS", "PID-M", "1.2.826.7")
    add_study(archive, "NKOSI^THABO", "PID-N", "1.2.826.8")
    run_index(base / "pacsindex.db", [source_for(str(archive))], ScanOptions(workers=1))
    with live_service(base) as live:
        yield live


def key_of(live: Live, words: str) -> str:
    r = live.staff.get("/api/search", params={"q": words})
    assert r.status_code == 200 and len(r.json()) == 1, r.text
    return str(r.json()[0]["SeriesKey"])


def share_and_download(live: Live, key: str) -> None:
    made = live.staff.post("/api/shares", json={"SeriesKey": key}, headers=live.staff_csrf)
    assert made.status_code == 201, made.text
    with live.anon() as recipient:
        pressed = recipient.post(f"/share/{made.json()['token']}/download")  # the Download button
        assert pressed.status_code == 303, pressed.text
        assert recipient.get(pressed.headers["location"]).status_code == 200


def test_the_access_report_lists_search_open_share_and_download(live: Live, tmp_path: Path) -> None:
    muller = key_of(live, "müller")  # a search that lists him
    assert live.staff.get(f"/api/series/{muller}").status_code == 200  # opened
    share_and_download(live, muller)  # shared, downloaded by the recipient
    nkosi = key_of(live, "nkosi")
    share_and_download(live, nkosi)  # someone else's: not in his report
    live.app.state.pacsindex.audit.flush(10)

    assert live.staff.get("/api/reports/patients", params={"q": "müller"}).status_code == 403
    patients = live.admin.get("/api/reports/patients", params={"q": "muller"}).json()
    assert patients == [
        {"PatientID": "PID-M", "PatientName": "MÜLLER^HANS", "PatientBirthDate": "19800101", "series": 1}
    ]

    as_json = live.admin.get("/api/reports/access", params={"patient_id": "PID-M"}).json()
    whats = [a["what"] for a in as_json["accesses"]]
    assert whats == [
        "search listed their records",
        "opened a series",
        "shared a series by link",
        "pressed Download",
        "downloaded the series",
    ]
    who = ["sipho", "sipho", "sipho", "link recipient", "link recipient"]
    assert [a["who"] for a in as_json["accesses"]] == who
    assert all(a["client"] == "127.0.0.1" and a["at"].endswith("+02:00") for a in as_json["accesses"])
    assert all(a["series"] == "2026-12-07 CT AXIAL" for a in as_json["accesses"])

    r = live.admin.get("/api/reports/access", params={"patient_id": "PID-M", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["Access report for patient", "PID-M", "MÜLLER^HANS"]
    table = rows[rows.index(["time", "who", "address", "what", "series", "detail"]) + 1 :]
    assert [row[3] for row in table] == whats
    assert "ok" in table[4][5] and "bytes" in table[4][5]

    pdf = live.admin.get("/api/reports/access", params={"patient_id": "PID-M", "format": "pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    (tmp_path / "report.pdf").write_bytes(pdf.content)
    text = "\n".join(page.extract_text() for page in PdfReader(tmp_path / "report.pdf").pages)
    for words in (
        "MÜLLER, Hans",
        "PID-M",
        "search listed their records",
        "opened a series",
        "shared a series by link",
        "downloaded the series",
        "link recipient",
        "127.0.0.1",
    ):
        assert words in text, words
    assert "NKOSI" not in text

    made = live.admin.get("/api/audit", params={"action": "access_report"}).json()
    assert [e["detail"]["format"] for e in made][:3] == ["pdf", "csv", "json"]
    assert made[0]["detail"]["PatientID"] == "PID-M" and made[0]["user"] == "admin"


def test_the_audit_export_gives_a_date_range_as_csv(live: Live) -> None:
    today = datetime.now(SA).date()
    r = live.admin.get("/api/reports/audit.csv", params={"date_from": str(today), "date_to": str(today)})
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {"signin", "search"} <= {row["action"] for row in rows}
    assert all(row["at_local"].startswith(str(today)) for row in rows)
    before = today - timedelta(days=30)
    empty = live.admin.get(
        "/api/reports/audit.csv", params={"date_from": str(before), "date_to": str(before)}
    )
    assert empty.text.strip() == "id,at_utc,at_local,user,client,action,repeats,detail"
    bad = live.admin.get("/api/reports/audit.csv", params={"date_from": str(today), "date_to": str(before)})
    assert bad.status_code == 400 and "before the start" in bad.text
    assert (
        live.staff.get(
            "/api/reports/audit.csv", params={"date_from": "2026-01-01", "date_to": "2026-01-02"}
        ).status_code
        == 403
    )


def test_the_cli_writes_the_report_and_the_export(live: Live, tmp_path: Path) -> None:
    muller = key_of(live, "müller")  # this test's own accesses: it passes alone too
    assert live.staff.get(f"/api/series/{muller}").status_code == 200
    share_and_download(live, muller)
    live.app.state.pacsindex.audit.flush(10)
    db = str(live.settings.db)
    out = tmp_path / "müller.pdf"
    done = run_cli("access-report", "PID-M", "--db", db, "--out", str(out))
    assert "accesses to the records of patient PID-M" in done.stderr
    assert "downloaded the series" in "".join(p.extract_text() for p in PdfReader(out).pages)
    listed = run_cli("access-report", "müller", "--db", db).stdout
    assert "opened a series" in listed
    today = str(datetime.now(SA).date())
    exported = run_cli("audit-export", "--from", today, "--to", today, "--db", db).stdout
    assert exported.startswith("id,at_utc,at_local") and "access_report" in exported


def test_the_pdf_prints_any_alphabet_and_degrades_without_a_unicode_font(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pacsindex.ops import pdf
    from pacsindex.ops.reports import Access, AccessReport

    report = AccessReport(
        PatientID="PID-I",
        PatientNames=("Иванов^Иван",),
        made_at="2026-12-07T10:00:00+02:00",
        timezone="Africa/Johannesburg",
        accesses=(Access("2026-12-07T09:00:00+02:00", "thandi", "10.0.0.5", "opened a series", "", ""),),
    )
    if pdf._font() is not None:
        (tmp_path / "a.pdf").write_bytes(pdf.report_pdf(report))
        assert "Иванов, Иван" in PdfReader(tmp_path / "a.pdf").pages[0].extract_text()
    monkeypatch.setattr(pdf, "FONTS", ())
    (tmp_path / "b.pdf").write_bytes(pdf.report_pdf(report))
    text = PdfReader(tmp_path / "b.pdf").pages[0].extract_text()
    assert "PID-I" in text and "opened a series" in text and "??????, ????" in text
