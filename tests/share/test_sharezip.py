"""The share zip's bytes: exactly the series' files, byte for byte, under safe names; a length known before
the first byte; ZIP64 past 4 GiB (on a sparse file: no disk used), also for a range resumed past 4 GiB;
a file that changes while it is sent stops the stream; the limits on streams at once (global, per link,
per client); a series on the NAS zipped straight from SMB."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import pytest

from conftest import write_dicom
from pacsindex.errors import FileChanged, ShareBusy
from pacsindex.index import store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.share.bundle import MANIFEST, ShareZip, share_filename
from pacsindex.share.download import CHUNK, safe_part
from pacsindex.share.limits import StreamLimiter
from pacsindex.share.zipwriter import crc32
from pacsindex.sources.files import LocalReader, LocalTree, source_for
from pacsindex.sources.smb import reader as smb
from samba_server import SambaServer, samba_fixture  # noqa: F401  (the "samba" fixture)

SERIES_UID = "1.2.826.0.1.77.1"


def index_series(tmp_path: Path, count: int = 6, **fields: Any) -> tuple[Path, dict[str, Any], list[dict]]:
    root = tmp_path / "archive"
    for i in range(count):
        write_dicom(
            root / "NKOSI^THABO" / "CT" / f"slice {i:03d}.dcm",
            PatientName="NKOSI^THABO",
            SeriesInstanceUID=SERIES_UID,
            SeriesNumber=3,
            InstanceNumber=count - i,  # reversed: the zip follows instance order, not file names
            rows=16 + i,
            **fields,
        )
    db = tmp_path / "i.db"
    run_index(db, [LocalTree(str(root))], ScanOptions(workers=1))
    with store.reading(db) as conn:
        key = conn.execute("SELECT SeriesKey FROM series").fetchone()[0]
        series = store.get_series(conn, key)
        assert series is not None
        files = list(store.series_files(conn, series["series_id"]))
    return root, series, files


def SeriesZip(series: dict[str, Any], files: list[dict[str, Any]], **kw: Any) -> ShareZip:
    """One series' zip, as a share of that series makes it."""
    return ShareZip([(series, files)], made_at=1_765_000_000, **kw)


FOLDER = "DICOM/PA000001/ST000001/SE000001"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def unzip_t(path: Path, *members: str) -> str:
    proc = subprocess.run(["unzip", "-t", str(path), *members], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_zip_holds_every_file_byte_for_byte(tmp_path: Path) -> None:
    _, series, files = index_series(tmp_path)
    z = SeriesZip(series, files)
    data = b"".join(z)
    assert len(data) == z.size  # the Content-Length is exact
    out = tmp_path / "series.zip"
    out.write_bytes(data)
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        assert infos[1].filename == MANIFEST
        dicoms = [i for i in infos if i.filename.startswith("DICOM/")]
        assert len(dicoms) == series["file_count"] == len(infos) - 3
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        by_instance = sorted(files, key=lambda f: f["InstanceNumber"])
        for info, source in zip(dicoms, by_instance, strict=True):
            assert sha(zf.read(info)) == sha(Path(source["path"]).read_bytes())
        names = [i.filename for i in infos]
        assert names[3:] == [f"{FOLDER}/IM{n:06d}" for n in range(1, 7)]
        manifest = zf.read(MANIFEST).decode()
    assert "Files: 6 in the index, 6 in this zip, 0 missing" in manifest
    for f in files:
        assert f["SOPInstanceUID"] in manifest
    assert "NKOSI" not in manifest and "archive" not in manifest  # no patient name, no NAS paths
    assert "No errors detected" in unzip_t(out)


@pytest.mark.parametrize(
    "description",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "C:\\Windows\\System32",
        "..",
        "AXIAL\x00.dcm",
        "Кишечник",
        "  ",
        None,
    ],
)
def test_names_of_the_download_are_safe(description: str | None) -> None:
    series = {
        "SeriesNumber": 2,
        "Modality": "../MR",
        "SeriesDescription": description,
        "StudyDate": "2024/01",
    }
    for name in (
        share_filename([series]),
        share_filename([series, series]),
        share_filename([series], deidentified=True),
    ):
        assert ".." not in name and "/" not in name and "\\" not in name and "\x00" not in name
        assert name.isascii() and not name.startswith((".", "-", "_")) and name.endswith(".zip")
    assert safe_part("", "fallback") == "fallback"
    assert len(safe_part("x" * 500, "f")) == 48


def test_files_gone_since_indexing_are_listed_not_dropped(tmp_path: Path) -> None:
    _, series, files = index_series(tmp_path)
    by_instance = sorted(files, key=lambda f: f["InstanceNumber"])
    Path(by_instance[1]["path"]).unlink()
    grown = Path(by_instance[4]["path"])
    grown.write_bytes(grown.read_bytes() + b"\x00" * 10)
    z = SeriesZip(series, files)
    data = b"".join(z)
    assert len(data) == z.size
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert f"{FOLDER}/IM000002" not in names and len(names) == 3 + 5
        assert zf.read(f"{FOLDER}/IM000005") == grown.read_bytes()
        manifest = zf.read(MANIFEST).decode().splitlines()
    assert "Files: 6 in the index, 5 in this zip, 1 missing" in manifest
    gone = [line for line in manifest if line.startswith(f"{FOLDER}/IM000002")]
    assert gone and "missing: not found" in gone[0] and by_instance[1]["SOPInstanceUID"] in gone[0]
    changed = [line for line in manifest if line.startswith(f"{FOLDER}/IM000005")][0]
    assert "changed since indexing" in changed


@pytest.mark.parametrize("change", ["shrink", "grow", "delete"])
def test_a_file_that_changes_while_streaming_stops_the_stream(tmp_path: Path, change: str) -> None:
    _, series, files = index_series(tmp_path)
    z = SeriesZip(series, files)
    victim = Path(sorted(files, key=lambda f: f["InstanceNumber"])[3]["path"])
    if change == "shrink":
        victim.write_bytes(victim.read_bytes()[:-1])
    elif change == "grow":
        victim.write_bytes(victim.read_bytes() + b"x")
    else:
        victim.unlink()
    with pytest.raises(FileChanged, match="IM000004") as stopped:
        b"".join(z)
    assert "NKOSI" not in str(stopped.value) and "archive" not in str(stopped.value)


class CountingReader:
    """A local reader that records how much each read asks for."""

    def __init__(self) -> None:
        self.largest = 0
        self.opened: list[str] = []

    def open(self, path: str) -> IO[bytes]:
        self.opened.append(path)
        reader = self
        fh = LocalReader().open(path)
        real_read = fh.read

        def read(size: int | None = -1) -> bytes:
            reader.largest = max(reader.largest, size if size is not None and size >= 0 else 1 << 62)
            return real_read(size)

        fh.read = read  # type: ignore[method-assign]
        return fh


def test_reads_go_through_the_paths_reader_in_bounded_chunks(tmp_path: Path) -> None:
    _, series, files = index_series(tmp_path, count=3)
    counting = CountingReader()
    z = SeriesZip(series, files, reader_for=lambda path: counting, chunk=1000)
    with zipfile.ZipFile(io.BytesIO(b"".join(z))) as zf:
        assert zf.testzip() is None
    assert counting.largest <= 1000 + 1000 // 8  # a short last piece rides with the one before
    assert len(counting.opened) == 2 * 3  # once to take the size, once to send


def test_zip64_past_4_gib_on_a_sparse_file(tmp_path: Path) -> None:
    big = tmp_path / "huge.dcm"
    size = 4 * 2**30 + 64 * 2**20
    head, tail = b"DICM-head" * 100, b"tail-end" * 100
    with open(big, "wb") as f:
        f.write(head)
        f.truncate(size)  # sparse: costs no disk
        f.seek(size - len(tail))
        f.write(tail)
    small = tmp_path / "small.dcm"
    small.write_bytes(b"small file after the big one" * 50)
    files = [
        {"path": str(big), "size": size, "SOPInstanceUID": "1.2.3.1", "InstanceNumber": 1},
        {"path": str(small), "size": small.stat().st_size, "SOPInstanceUID": "1.2.3.2", "InstanceNumber": 2},
    ]
    z = SeriesZip({"SeriesNumber": 1, "Modality": "CT", "SeriesDescription": "HUGE"}, files)
    assert z.size > size
    # Write the zip sparsely too: chunks of zeros become holes, so this costs no disk either.
    out = tmp_path / "huge.zip"
    zero = bytes(CHUNK)
    sent = 0
    with open(out, "wb") as f:
        for chunk in z:
            if len(chunk) == CHUNK and chunk == zero:
                f.seek(CHUNK, io.SEEK_CUR)
            else:
                f.write(chunk)
            sent += len(chunk)
        f.truncate()
    assert sent == z.size == out.stat().st_size
    # The big file's CRC, worked out here from what the file holds (head, zeros, tail).
    crc = zlib.crc32(head)
    zeros = size - len(head) - len(tail)
    for _ in range(zeros // CHUNK):
        crc = zlib.crc32(zero, crc)
    crc = zlib.crc32(tail, zlib.crc32(bytes(zeros % CHUNK), crc))
    with zipfile.ZipFile(out) as zf:
        huge, after = zf.getinfo(f"{FOLDER}/IM000001"), zf.getinfo(f"{FOLDER}/IM000002")
        assert huge.file_size == huge.compress_size == size
        assert huge.CRC == crc
        assert after.header_offset > 2**32  # found through the ZIP64 extra field
        assert zf.read(after) == small.read_bytes()  # CRC checked by zipfile
        with zf.open(huge) as member:
            assert member.read(len(head)) == head
    with open(out, "rb") as f:  # the tail sits where the local header says the data ends
        f.seek(huge.header_offset)
        local = f.read(30)
        assert local[:4] == b"PK\x03\x04"
        data_at = (
            huge.header_offset
            + 30
            + int.from_bytes(local[26:28], "little")
            + int.from_bytes(local[28:30], "little")
        )
        f.seek(data_at + size - len(tail))
        assert f.read(len(tail)) == tail
        f.seek(-200, io.SEEK_END)
        end = f.read()
    assert b"PK\x06\x06" in end and b"PK\x06\x07" in end  # ZIP64 end record and its locator
    listing = subprocess.run(["unzip", "-l", str(out)], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and str(size) in listing.stdout
    assert "OK" in unzip_t(out, f"{FOLDER}/IM000002", MANIFEST)
    # A download resumed past 4 GiB gives the same bytes as that part of the whole.
    resume_at = after.header_offset - 1000
    with open(out, "rb") as f:
        f.seek(resume_at)
        assert b"".join(z.chunks(resume_at, crcs={})) == f.read()


def test_stream_limiter() -> None:
    per = StreamLimiter(4, per_link=2, per_client=3)
    held = [per.acquire("link-a", "10.0.0.1"), per.acquire("link-a", "10.0.0.2")]
    with pytest.raises(ShareBusy, match="this link"):
        per.acquire("link-a", "10.0.0.3")
    held += [per.acquire("link-b", "10.0.0.1"), per.acquire("link-c", "10.0.0.1")]
    with pytest.raises(ShareBusy, match="already running"):  # 4 in all
        per.acquire("link-d", "10.0.0.9")
    held[1].release()  # 10.0.0.2's
    with pytest.raises(ShareBusy, match="your address"):  # 10.0.0.1 holds 3
        per.acquire("link-d", "10.0.0.1")
    assert per.acquire("link-d", "10.0.0.9").limiter is per
    limiter = StreamLimiter(2, retry_after=7)
    a, b = limiter.acquire(), limiter.acquire()
    with pytest.raises(ShareBusy) as busy:
        limiter.acquire()
    assert busy.value.retry_after == 7 and limiter.active == 2
    a.release()
    a.release()  # twice frees one place only
    assert limiter.active == 1
    with limiter.acquire():
        assert limiter.active == 2
    assert limiter.active == 1
    b.release()
    assert limiter.active == 0


@pytest.mark.samba
def test_a_series_on_the_nas_is_zipped_straight_from_smb(samba: SambaServer, tmp_path: Path) -> None:
    smb.close_connections()
    folder = samba.shares["archive"] / "sharezip"
    for i in range(5):
        write_dicom(folder / f"IM{i}", SeriesInstanceUID=SERIES_UID, InstanceNumber=i + 1, rows=64 + i)
    creds = smb.SmbCredentials(samba.user, samba.password)
    db = tmp_path / "smb.db"
    run_index(db, [source_for(samba.url("archive", "sharezip"), creds)], ScanOptions(workers=1))
    with store.reading(db) as conn:
        series = store.get_series(conn, conn.execute("SELECT SeriesKey FROM series").fetchone()[0])
        assert series is not None
        files = list(store.series_files(conn, series["series_id"]))
    assert all(f["path"].startswith("smb://") for f in files)
    (folder / "IM4").unlink()  # gone from the NAS since indexing
    z = SeriesZip(series, files, settings=creds, chunk=20_000)
    data = b"".join(z)
    assert len(data) == z.size
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        for n in range(1, 5):
            assert zf.read(f"{FOLDER}/IM{n:06d}") == (folder / f"IM{n - 1}").read_bytes()
        assert "missing: not found" in zf.read(MANIFEST).decode().splitlines()[-1]
    smb.close_connections()


def test_zip_checksums_use_the_fast_crc_and_agree_with_zlib(tmp_path: Path) -> None:
    from zlib_ng import zlib_ng

    assert crc32 is zlib_ng.crc32
    data = bytes(range(256)) * 5000
    (tmp_path / "a.dcm").write_bytes(data)
    z = SeriesZip({"Modality": "CT"}, [{"path": str(tmp_path / "a.dcm"), "size": len(data)}])
    with zipfile.ZipFile(io.BytesIO(b"".join(z))) as zf:
        assert zf.getinfo(f"{FOLDER}/IM000001").CRC == zlib.crc32(data)
