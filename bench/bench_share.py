"""Share-link zip streaming against reading the same files raw, in one run. Target: the zip over HTTP
delivers the series at 70 % or more of the raw rate.

One CT-like series (default 300 files of 1 MiB: 300 MiB) is generated once under ~/.cache/pacsindex-bench/,
indexed, and shared. The server is `python -m pacsindex serve` in a process of its own, as in production.
Three ways of getting the series, in rounds, each round in a rotated order (so a warm cache or a busy
neighbour does not favour one):

- raw disk: this process reads every file of the series in 1 MiB pieces (the reader the server uses) -
  the cost of the files alone, no HTTP, no zip;
- raw HTTP: the same files, one after another, as one response from the same server, through the same
  streaming code as the zip (a route only this benchmark adds) - everything but the zip;
- zip HTTP: the zip built on the fly (Download pressed, then `/share/{token}/zip/{ticket}`), with its
  DICOMDIR, README and MANIFEST;
- de-identified zip HTTP: the same from a de-identified link: every header read, de-identified (PS3.15
  Basic Profile, dicognito) and re-encoded while the pixel data streams unchanged;
- per-file HTTP: every file through the share's per-file URLs (`/share/{token}/files/{n}`, one
  keep-alive connection): what a recipient without the zip would do (each request is checked and logged).

The headline ratio is zip HTTP / raw HTTP: what building the zip costs. De-identified zip / zip is what
de-identifying costs on top (issue 17). Against raw disk (files in the page
cache, no network) it also shows what HTTP from Python costs; on a real NAS link (1 Gbit/s, ~110 MiB/s)
both are far above the wire.

The client is a plain socket reading into one buffer, so Python HTTP parsing in the client does not hide
the server's speed. Rates are the series' file bytes per second (the zip's few KB of headers and its
manifest are not counted as progress). The figures are a measurement, never a pass/fail: the script exits
0 either way, prints a table and writes bench/out/bench_share.json.

    python -m bench.bench_share [--files 300] [--file-mib 1] [--rounds 5]

(`--serve DB PORT` is the server side: the app with the raw route added; the benchmark starts it.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import Request
from fastapi.responses import Response

from bench.bench_status import free_port, stop_server, wait_until_up
from pacsindex.accounts.auth import Accounts
from pacsindex.index import store
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalReader, LocalTree

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
CACHE = Path(os.path.expanduser("~/.cache/pacsindex-bench"))
PASSWORD = "benchmark password"
TARGET = 0.70
CHUNK = 1 << 20


def series_tree(files: int, file_mib: int) -> Path:
    """A folder holding one series of `files` DICOM files of about `file_mib` MiB, written once."""
    root = CACHE / f"share-series-{files}x{file_mib}"
    done = root / ".complete"
    if done.exists():
        return root
    print(f"writing a {files}-file series ({files * file_mib} MiB) under {root} (once) ...", file=sys.stderr)
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    root.mkdir(parents=True, exist_ok=True)
    columns = 512
    rows = file_mib * (1 << 20) // (columns * 2)
    pixels = os.urandom(rows * columns * 2)  # noise: nothing the (absent) compression could shrink
    study, series = generate_uid(), generate_uid()
    for n in range(1, files + 1):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
        ds.PatientName, ds.PatientID = "BENCH^SHARE", "PID-BENCH"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.StudyDate, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "20240115", "CT", 1, n
        ds.SeriesDescription = "AXIAL 1MM"
        ds.Rows, ds.Columns = rows, columns
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelData = pixels[n:] + pixels[:n]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta, ds.preamble = meta, b"\x00" * 128
        ds.save_as(root / f"IM{n:05d}.dcm", enforce_file_format=True)
    done.write_text("ok\n", encoding="utf-8")
    return root


class RawClient:
    """HTTP/1.1 GETs on one keep-alive socket, bodies read into one reused buffer and thrown away."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.sock = socket.create_connection((self.host, self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(CHUNK)
        self.view = memoryview(self.buf)
        self.pending = b""

    def get(self, path: str) -> int:
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUser-Agent: bench\r\n\r\n"
        self.sock.sendall(request.encode())
        head = self.pending
        while b"\r\n\r\n" not in head:
            more = self.sock.recv(65536)
            if not more:
                raise ConnectionError("the server closed the connection")
            head += more
        head, _, rest = head.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        if status != 200:
            raise RuntimeError(f"GET {path.split('/')[-1]} answered {status}: {rest[:300]!r}")
        left = length - len(rest[:length])
        self.pending = rest[length:]
        while left:
            got = self.sock.recv_into(self.view, min(left, CHUNK))
            if not got:
                raise ConnectionError("the body stopped short")
            left -= got
        return length

    def close(self) -> None:
        self.sock.close()


def serve(db: str, port: int, chunk: int) -> None:
    """The server process: the production app, plus `GET /bench/raw/{token}` streaming the shared series'
    files back to back (no zip) through the same path as a zip download."""
    import uvicorn

    from pacsindex.config.settings import Settings
    from pacsindex.share.download import exact_chunks
    from pacsindex.web import create_app
    from pacsindex.web.recipient import parts_of, sharing, stream, take_slot, use
    from pacsindex.web.server import uvicorn_config

    settings = Settings(db=Path(db), port=port)
    app = create_app(settings)
    app.state.sharing.chunk = chunk

    @app.get("/bench/raw/{token}", include_in_schema=False)
    def raw(request: Request, token: str) -> Response:
        got = use(request, token, "download")
        slot = take_slot(request, got)
        files = [f for _, series_files in parts_of(request, got) for f in series_files]
        reader, chunk = LocalReader(), sharing(request).chunk
        sizes = [os.path.getsize(f["path"]) for f in files]
        pieces = (
            data
            for f, size in zip(files, sizes, strict=True)
            for data in exact_chunks(reader, f["path"], "raw", size, chunk)
        )
        headers = {"Content-Length": str(sum(sizes))}
        return stream(request, got, slot, "zip", pieces, headers, "application/octet-stream")

    uvicorn.Server(uvicorn_config(app, settings)).run()


def read_raw(paths: list[str]) -> int:
    reader, total = LocalReader(), 0
    for path in paths:
        with reader.open(path) as fh:
            while data := fh.read(CHUNK):
                total += len(data)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--file-mib", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunk-kib", type=int, default=CHUNK // 1024, help="bytes read and sent at a time")
    parser.add_argument("--serve", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.chunk_kib * 1024)
        return 0

    root = series_tree(args.files, args.file_mib)
    with tempfile.TemporaryDirectory(prefix="pacsindex-bench-share-") as tmp:
        workdir = Path(tmp)
        db = workdir / "index.db"
        run_index(db, [LocalTree(str(root))], ScanOptions(workers=1))
        with store.reading(db) as conn:
            key = conn.execute("SELECT SeriesKey FROM series").fetchone()[0]
            detail = store.get_series(conn, key)
            assert detail is not None
            paths = [f["path"] for f in store.series_files(conn, detail["series_id"])]
        series_bytes = sum(os.path.getsize(p) for p in paths)
        Accounts(db).add_user("bench", PASSWORD)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.bench_share",
                "--serve",
                str(db),
                str(port),
                "--chunk-kib",
                str(args.chunk_kib),
            ],
            cwd=BENCH_DIR.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(url, proc)
            with httpx.Client(base_url=url, timeout=60) as client:
                r = client.post("/auth/signin", json={"name": "bench", "password": PASSWORD})
                r.raise_for_status()
                csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
                made = client.post("/api/shares", json={"SeriesKey": key}, headers=csrf)
                made.raise_for_status()
                token = made.json()["token"]
                anon = client.post("/api/shares", json={"SeriesKey": key, "deidentify": True}, headers=csrf)
                anon.raise_for_status()
                deid_token = anon.json()["token"]

            def zip_path(link: str) -> str:
                """Press Download (before the timing: a person's click), a new ticket each time, so the zip
                is planned anew inside the timing, as the old one-step download did."""
                pressed = httpx.post(f"{url}/share/{link}/download")
                assert pressed.status_code == 303, pressed.text
                return str(pressed.headers["location"])

            def one_stream(path: str) -> int:
                c = RawClient(url)
                try:
                    return c.get(path)
                finally:
                    c.close()

            def per_file_http() -> int:
                c = RawClient(url)
                try:
                    return sum(c.get(f"/share/{token}/files/{n}") for n in range(1, len(paths) + 1))
                finally:
                    c.close()

            zip_bytes = deid_bytes = 0

            def zip_http(path: str) -> int:
                nonlocal zip_bytes
                c = RawClient(url)
                try:
                    zip_bytes = c.get(path)
                finally:
                    c.close()
                return series_bytes

            def deid_zip_http(path: str) -> int:
                nonlocal deid_bytes
                c = RawClient(url)
                try:
                    deid_bytes = c.get(path)
                finally:
                    c.close()
                return series_bytes

            ways: dict[str, Any] = {
                "raw disk": lambda _: read_raw(paths),
                "raw HTTP": lambda _: one_stream(f"/bench/raw/{token}"),
                "zip HTTP": zip_http,
                "de-identified zip HTTP": deid_zip_http,
                "per-file HTTP": lambda _: per_file_http(),
            }
            pressed = {"zip HTTP": token, "de-identified zip HTTP": deid_token}

            def prepare(name: str) -> str | None:
                return zip_path(pressed[name]) if name in pressed else None

            for name, way in ways.items():  # warm-up: page cache, server imports, connections
                way(prepare(name))
            times: dict[str, list[float]] = {name: [] for name in ways}
            names = list(ways)
            for i in range(args.rounds):
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    arg = prepare(name)
                    t0 = time.perf_counter()
                    got = ways[name](arg)
                    times[name].append(time.perf_counter() - t0)
                    assert got == series_bytes, (name, got, series_bytes)
        finally:
            stop_server(proc)

    def rate(name: str) -> dict[str, Any]:
        best, median = min(times[name]), statistics.median(times[name])
        return {
            "median_s": round(median, 4),
            "best_s": round(best, 4),
            "median_mib_per_s": round(series_bytes / median / 2**20, 1),
            "best_mib_per_s": round(series_bytes / best / 2**20, 1),
        }

    rates = {name: rate(name) for name in times}
    zip_rate = rates["zip HTTP"]["median_mib_per_s"]
    result = {
        "series": {
            "files": len(paths),
            "bytes": series_bytes,
            "zip_bytes": zip_bytes,
            "deid_zip_bytes": deid_bytes,
        },
        "rounds": args.rounds,
        "chunk_bytes": args.chunk_kib * 1024,
        "rates": rates,
        "zip_vs_raw_http": round(zip_rate / rates["raw HTTP"]["median_mib_per_s"], 3),
        "zip_vs_raw_disk": round(zip_rate / rates["raw disk"]["median_mib_per_s"], 3),
        "zip_vs_per_file_http": round(zip_rate / rates["per-file HTTP"]["median_mib_per_s"], 3),
        "deid_zip_vs_zip": round(rates["de-identified zip HTTP"]["median_mib_per_s"] / zip_rate, 3),
        "target": TARGET,
        "meets_target": zip_rate / rates["raw HTTP"]["median_mib_per_s"] >= TARGET,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
    }
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "bench_share.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    mib, zip_mib = series_bytes / 2**20, zip_bytes / 2**20
    print(f"one series of {len(paths)} files, {mib:.0f} MiB (zip {zip_mib:.1f} MiB); {args.rounds} rounds")
    print(f"{'':24}{'median s':>10}{'MiB/s':>9}{'best MiB/s':>12}")
    for name, r in rates.items():
        print(f"{name:24}{r['median_s']:>10.3f}{r['median_mib_per_s']:>9.1f}{r['best_mib_per_s']:>12.1f}")
    verdict = "yes" if result["meets_target"] else "NO"
    print(
        f"zip / raw HTTP: {result['zip_vs_raw_http']:.0%} (target {TARGET:.0%}: {verdict}); "
        f"zip / raw disk: {result['zip_vs_raw_disk']:.0%}; "
        f"zip / per-file: {result['zip_vs_per_file_http']:.0%}"
    )
    print(f"de-identified zip / zip: {result['deid_zip_vs_zip']:.0%}")
    print(f"load average {result['machine']['load_avg_1m']} on {os.cpu_count()} CPUs")
    print(f"written to {OUT_DIR / 'bench_share.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
