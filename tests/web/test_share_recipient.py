"""Sharing a study with a referring doctor, over a real socket (uvicorn in a thread, httpx and raw sockets
as staff, recipients, scanners and stalled clients): one link for a whole study, bound to its series at
creation; a readable passcode and a message to send; the practice and the "for" note on the recipient's
page; de-identified links flagged for burned-in text; downloads that resume with Range, answer HEAD, and
are not used up by a scanner's GET; stalled clients lose their place; made-up links never take one;
refused views are logged as refused; admins unlock a locked link and set the practice details."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import socket
import sqlite3
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pydicom
import pytest
from argon2 import PasswordHasher
from pydicom.fileset import FileSet

from conftest import write_dicom
from pacsindex.config.settings import Settings
from pacsindex.index import store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.share.limits import StreamLimiter
from pacsindex.sources.files import LocalTree
from pacsindex.web import create_app
from pacsindex.web.server import ThreadedServer
from support_wait import wait_until

PASSWORD = "correct horse battery"
STUDY = "1.2.826.0.1.3680043.77.1717"
PATIENT, PATIENT_ID = "DLAMINI^ZANELE", "8505150123086"


def write_archive(root: Path) -> None:
    """A CT/CT/MR study of 3 series; an ultrasound study; a study of 12 files of 1 MiB (for stalls)."""
    for s, (modality, count) in enumerate((("CT", 3), ("CT", 2), ("MR", 4)), start=1):
        for i in range(count):
            write_dicom(
                root / "study" / f"S{s}" / f"IM{i}.dcm",
                PatientName=PATIENT,
                PatientID=PATIENT_ID,
                StudyInstanceUID=STUDY,
                SeriesInstanceUID=f"{STUDY}.{s}",
                SeriesNumber=s,
                SeriesDescription=f"SERIES {s}",
                Modality=modality,
                InstanceNumber=i + 1,
                rows=16,
            )
    for i in range(2):
        write_dicom(
            root / "us" / f"IM{i}.dcm",
            PatientName=PATIENT,
            PatientID=PATIENT_ID,
            StudyInstanceUID=f"{STUDY}.9",
            SeriesInstanceUID=f"{STUDY}.9.1",
            Modality="US",
            InstanceNumber=i + 1,
        )
    for i in range(12):
        write_dicom(
            root / "big" / f"IM{i}.dcm",
            StudyInstanceUID=f"{STUDY}.8",
            SeriesInstanceUID=f"{STUDY}.8.1",
            InstanceNumber=i + 1,
            rows=724,  # 1 MiB of pixels each
        )


@dataclass
class Live:
    url: str
    app: Any
    settings: Settings
    staff: httpx.Client
    csrf: dict[str, str]
    admin: httpx.Client
    admin_csrf: dict[str, str]
    keys: dict[str, str]  # SeriesInstanceUID -> SeriesKey

    def share(self, uid: str, **body: Any) -> dict[str, Any]:
        r = self.staff.post("/api/shares", json={"SeriesKey": self.keys[uid], **body}, headers=self.csrf)
        assert r.status_code == 201, r.text
        return r.json()

    def recipient(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def log(self, share_id: int) -> list[dict[str, Any]]:
        return self.staff.get(f"/api/shares/{share_id}/log", params={"limit": 500}).json()


def sign_in(url: str, name: str) -> tuple[httpx.Client, dict[str, str]]:
    client = httpx.Client(base_url=url, timeout=60)
    r = client.post("/auth/signin", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return client, {"X-CSRF-Token": r.json()["csrf_token"]}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("share-recipient")
    write_archive(base / "archive")
    settings = Settings(db=base / "pacsindex.db", roots=(str(base / "archive"),), workers=1)
    run_index(settings.db, [LocalTree(str(base / "archive"))], ScanOptions(workers=1))
    with store.reading(settings.db) as conn:
        keys = dict(conn.execute("SELECT SeriesInstanceUID, SeriesKey FROM series").fetchall())
    app = create_app(settings, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    accounts = app.state.pacsindex.accounts
    accounts.add_user("thandi", PASSWORD)
    accounts.add_user("boss", PASSWORD, admin=True)
    with ThreadedServer(app, settings) as server:
        staff, csrf = sign_in(server.url, "thandi")
        admin, admin_csrf = sign_in(server.url, "boss")
        yield Live(server.url, app, settings, staff, csrf, admin, admin_csrf, keys)
        staff.close()
        admin.close()


def press(anon: httpx.Client, token: str, **data: str) -> str:
    r = anon.post(f"/share/{token}/download", data=data)
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_whole_study_is_one_link_and_one_zip_bound_to_its_series(
    live: Live, tmp_path: Path, open_fileset: Callable[[Path], FileSet]
) -> None:
    preview = live.staff.post(
        "/api/shares/preview",
        json={"SeriesKey": live.keys[f"{STUDY}.2"], "whole_study": True},
        headers=live.csrf,
    ).json()
    assert [s["SeriesNumber"] for s in preview["series"]] == [1, 2, 3] and preview["file_count"] == 9
    made = live.share(f"{STUDY}.2", whole_study=True, note="Dr Naidoo, Milpark orthopaedics")
    assert (
        len(made["series_keys"]) == 3 and made["file_count"] == 9 and made["SeriesDescription"] == "3 series"
    )
    ticked = live.share(
        f"{STUDY}.1", whole_study=True, series_keys=[live.keys[f"{STUDY}.1"], live.keys[f"{STUDY}.3"]]
    )
    assert ticked["file_count"] == 3 + 4
    # A series indexed into the study later is not added to the link.
    root = Path(live.settings.roots[0])
    write_dicom(
        root / "study" / "S4" / "IM0.dcm",
        PatientName=PATIENT,
        PatientID=PATIENT_ID,
        StudyInstanceUID=STUDY,
        SeriesInstanceUID=f"{STUDY}.4",
        SeriesNumber=4,
        InstanceNumber=1,
    )
    run_index(live.settings.db, [LocalTree(str(root))], ScanOptions(workers=1))
    with live.recipient() as anon:
        page = anon.get(f"/share/{made['token']}")
        assert page.status_code == 200 and "<dd id='share-file-count'>9</dd>" in page.text
        assert "Dr Naidoo, Milpark orthopaedics" in page.text and "thandi" in page.text
        assert "DLAMINI" not in page.text
        r = anon.get(press(anon, made["token"]))
    assert r.status_code == 200 and int(r.headers["content-length"]) == len(r.content)
    out = tmp_path / "cd"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        zf.extractall(out)
    fs = open_fileset(out / "DICOMDIR")
    assert len(fs) == 9 and sorted(fs.find_values("SeriesNumber")) == [1, 2, 3]
    with store.reading(live.settings.db) as conn:
        paths = dict(
            conn.execute(
                "SELECT SOPInstanceUID, d.path || d.sep || f.name FROM files f JOIN dirs d ON d.id = f.dir_id"
            )
        )
    for instance in fs:
        assert Path(instance.path).read_bytes() == Path(paths[instance.SOPInstanceUID]).read_bytes()
    listed = {s["id"]: s for s in live.staff.get("/api/shares").json()}
    assert listed[made["id"]]["note"] == "Dr Naidoo, Milpark orthopaedics"


def test_a_made_up_passcode_and_a_message_ready_to_send(live: Live) -> None:
    r = live.admin.put(
        "/api/settings/practice",
        json={"name": "Sandton Radiology", "address": "1 Rivonia Rd, Sandton", "phone": "011 555 0100"},
        headers=live.admin_csrf,
    )
    assert r.status_code == 200
    assert live.staff.get("/api/settings/practice").status_code == 403
    assert live.staff.put("/api/settings/practice", json={"name": "x"}, headers=live.csrf).status_code == 403
    made = live.share(
        f"{STUDY}.1", whole_study=True, generate_passcode=True, note="Dr Pillay", expires_in=3600
    )
    code = made["passcode"]
    assert re.fullmatch(r"[346789abcdefghjkmnpqrtuvwxy]{4}-[346789abcdefghjkmnpqrtuvwxy]{4}", code)
    message = made["message"]
    assert made["url"] in message and "SAST" in message and "Sandton Radiology" in message
    assert "Dr Pillay" in message and "passcode" in message and "separately" in message
    assert code not in message and "DLAMINI" not in message
    assert "passcode" not in {s["id"]: s for s in live.staff.get("/api/shares").json()}[made["id"]]
    with live.recipient() as anon:
        assert "name='passcode'" in anon.get(f"/share/{made['token']}").text
        typed = code.replace("-", " ").upper()  # read over the phone: spaces, capitals
        assert anon.post(f"/share/{made['token']}", data={"passcode": typed}).status_code == 303
        page = anon.get(f"/share/{made['token']}")
    assert "Sandton Radiology" in page.text and "011 555 0100" in page.text and "Dr Pillay" in page.text


def test_a_resumed_download_is_the_same_zip_and_uses_no_second_download(live: Live) -> None:
    made = live.share(f"{STUDY}.8.1", max_downloads=1)
    with live.recipient() as anon:
        url = press(anon, made["token"])
        head = anon.head(url)
        assert head.status_code == 200 and head.headers["accept-ranges"] == "bytes" and not head.content
        size = int(head.headers["content-length"])
        with anon.stream("GET", url) as cut:  # the connection breaks part-way
            got = b""
            for piece in cut.iter_bytes():
                got += piece
                if len(got) > size // 3:
                    break
        rest = anon.get(url, headers={"Range": f"bytes={len(got)}-", "If-Range": head.headers["etag"]})
        assert (
            rest.status_code == 206 and rest.headers["content-range"] == f"bytes {len(got)}-{size - 1}/{size}"
        )
        whole = anon.get(url)
        assert whole.status_code == 200 and len(whole.content) == size
        assert sha(got + rest.content) == sha(whole.content)
        tail = anon.get(url, headers={"Range": "bytes=-100"})
        assert tail.status_code == 206 and tail.content == whole.content[-100:]
        assert anon.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
        again = anon.post(f"/share/{made['token']}/download")
        assert again.status_code == 410 and "used up" in again.text  # the one download is the pressed one
    assert {s["id"]: s for s in live.staff.get("/api/shares").json()}[made["id"]]["downloads"] == 1
    kinds = [(e["kind"], e["outcome"]) for e in live.log(made["id"])]
    assert kinds.count(("download", "ok")) == 1 and kinds.count(("zip", "ok")) >= 4


def test_a_scanner_fetching_the_link_uses_nothing_up(live: Live) -> None:
    made = live.share(f"{STUDY}.1", max_downloads=1)
    scanner = {"User-Agent": "Mozilla/5.0 (compatible; SafeLinks scanner)"}
    with live.recipient() as bot:
        for path in ("", "/download", "/files", "/download?confirm=1"):
            r = bot.get(f"/share/{made['token']}{path}", headers=scanner, follow_redirects=True)
            assert r.status_code == 200, path
            assert "application/zip" not in r.headers["content-type"]
    assert {s["id"]: s for s in live.staff.get("/api/shares").json()}[made["id"]]["downloads"] == 0
    with live.recipient() as anon:
        assert anon.get(press(anon, made["token"])).status_code == 200  # the doctor's download still works


def raw_stalled_get(live: Live, path: str) -> socket.socket:
    """A client that asks for a download and then reads nothing (a tiny receive buffer fills at once)."""
    host, port = urlsplit(live.url).hostname, urlsplit(live.url).port
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    return s


def test_stalled_clients_lose_their_place_and_made_up_links_never_take_one(live: Live) -> None:
    sharing = live.app.state.sharing
    saved = sharing.limiter, sharing.stall_s
    sharing.limiter, sharing.stall_s = StreamLimiter(4, per_link=4, per_client=4), 1.0
    stalled: list[socket.socket] = []
    try:
        links = [live.share(f"{STUDY}.8.1") for _ in range(5)]
        with live.recipient() as anon:
            urls = [press(anon, link["token"]) for link in links]
            for url in urls[:4]:
                stalled.append(raw_stalled_get(live, urlsplit(url).path))
            wait_until(lambda: sharing.limiter.active == 4)
            assert anon.get(urls[4]).status_code == 429  # the four hold every place ...
            # ... a flood of made-up links meanwhile gets 404 and takes no place
            fakes = [secrets.token_urlsafe(32) for _ in range(60)]
            for fake in fakes:
                assert anon.get(f"/share/{fake}/zip/1.2.3.abc").status_code == 404
                assert anon.post(f"/share/{fake}/download").status_code == 404
            wait_until(lambda: sharing.limiter.active == 0, timeout=30)  # stalled for 1 s: places back
            fifth = anon.get(urls[4])
            assert fifth.status_code == 200 and len(fifth.content) == int(fifth.headers["content-length"])
        outcome = {e["kind"]: e["outcome"] for e in live.log(links[0]["id"])}
        assert outcome["zip"] == "stalled"
    finally:
        for s in stalled:
            s.close()
        sharing.limiter, sharing.stall_s = saved


def test_per_link_and_per_client_limits(live: Live) -> None:
    sharing = live.app.state.sharing
    saved = sharing.limiter, sharing.stall_s
    sharing.limiter, sharing.stall_s = StreamLimiter(4, per_link=1, per_client=4), 30.0
    stalled: list[socket.socket] = []
    try:
        one, other = live.share(f"{STUDY}.8.1"), live.share(f"{STUDY}.8.1")
        with live.recipient() as anon:
            url_one, url_other = press(anon, one["token"]), press(anon, other["token"])
            stalled.append(raw_stalled_get(live, urlsplit(url_one).path))
            wait_until(lambda: sharing.limiter.active == 1)
            busy = anon.get(url_one)
            assert busy.status_code == 429 and "this link" in busy.text
            assert anon.get(url_other).status_code == 200  # another link is not held up
    finally:
        for s in stalled:
            s.close()
        wait_until(lambda: sharing.limiter.active == 0)
        sharing.limiter, sharing.stall_s = saved


def test_deidentified_link_flags_burned_in_text_and_strips_identifiers(live: Live) -> None:
    body = {"SeriesKey": live.keys[f"{STUDY}.9.1"], "deidentify": True}
    preview = live.staff.post("/api/shares/preview", json=body, headers=live.csrf).json()
    assert preview["burned_in"] and "ultrasound" in preview["burned_in"][0]["reason"]
    refused = live.staff.post("/api/shares", json=body, headers=live.csrf)
    assert refused.status_code == 409 and "burned" in refused.json()["detail"]
    made = live.share(f"{STUDY}.9.1", deidentify=True, accept_burned_in=True)
    assert made["deidentified"]
    study = live.share(f"{STUDY}.1", whole_study=True, deidentify=True)
    with live.recipient() as anon:
        assert "de-identified" in anon.get(f"/share/{study['token']}").text
        r = anon.get(press(anon, study["token"]))
        assert anon.get(f"/share/{study['token']}/files/1").status_code == 410  # whole zip only
    assert r.status_code == 200 and int(r.headers["content-length"]) == len(r.content)
    for needle in (b"DLAMINI", PATIENT_ID.encode(), STUDY.encode(), b"Netcare"):
        assert needle not in r.content
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        first = pydicom.dcmread(io.BytesIO(zf.read(zf.namelist()[3])))
    assert first.PatientName != PATIENT and first.StudyInstanceUID != STUDY


def test_refused_views_are_logged_as_refused(live: Live) -> None:
    made = live.share(f"{STUDY}.1")
    gone = live.share(f"{STUDY}.3")
    with sqlite3.connect(live.settings.db) as conn:  # the series leaves the index (moved off the NAS)
        sid = conn.execute(
            "SELECT id FROM series WHERE SeriesKey = ?", (live.keys[f"{STUDY}.3"],)
        ).fetchone()[0]
        conn.execute("DELETE FROM files WHERE series_id = ?", (sid,))
        conn.execute("DELETE FROM series WHERE id = ?", (sid,))
    with live.recipient() as anon:
        assert anon.get(f"/share/{gone['token']}").status_code == 410
        assert anon.get(f"/share/{gone['token']}/files").status_code == 410
        live.staff.post(f"/api/shares/{made['id']}/revoke", headers=live.csrf)
        assert anon.get(f"/share/{made['token']}").status_code == 410
    assert [(e["kind"], e["outcome"]) for e in live.log(gone["id"])] == [
        ("files", "not_found"),
        ("page", "not_found"),
    ]
    assert [e["outcome"] for e in live.log(made["id"])] == ["revoked"]


def test_an_admin_unlocks_a_locked_link(live: Live) -> None:
    made = live.share(f"{STUDY}.1", passcode="kidney-stone-42")
    with live.recipient() as anon:
        for _ in range(5):
            anon.post(f"/share/{made['token']}", data={"passcode": "guess-guess"})
        assert anon.post(f"/share/{made['token']}", data={"passcode": "kidney-stone-42"}).status_code == 429
        assert live.staff.post(f"/api/shares/{made['id']}/unlock", headers=live.csrf).status_code == 403
        r = live.admin.post(f"/api/shares/{made['id']}/unlock", headers=live.admin_csrf)
        assert r.status_code == 200 and r.json()["status"] == "active"
        assert anon.post(f"/share/{made['token']}", data={"passcode": "kidney-stone-42"}).status_code == 303
    audit = live.admin.get("/api/audit", params={"limit": 500}).json()
    assert ("share_unlock", made["id"]) in {(e["action"], e["detail"].get("share_id")) for e in audit}


def test_a_flood_of_made_up_links_leaves_real_downloads_unaffected(live: Live) -> None:
    sharing = live.app.state.sharing
    made = live.share(f"{STUDY}.1")
    stop = threading.Event()
    answers: list[int] = []

    def flood() -> None:
        with live.recipient() as bot:
            while not stop.is_set():
                fake = secrets.token_urlsafe(32)
                answers.append(bot.get(f"/share/{fake}/zip/1.2.3.abc").status_code)
                answers.append(bot.post(f"/share/{fake}/download").status_code)

    threads = [threading.Thread(target=flood) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(answers) > 50)
        with live.recipient() as anon:
            for _ in range(5):
                r = anon.get(press(anon, made["token"]))
                assert r.status_code == 200 and len(r.content) == int(r.headers["content-length"])
            assert sharing.limiter.active <= 1  # only real downloads ever held a place
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert set(answers) == {404}
