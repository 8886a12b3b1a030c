"""Seeing the images, measured in one run against baselines measured in the same run.

1. Rendering against Orthanc 1.10 (with its GDCM plugin, for JPEG 2000): the same 512x512 CT files, stored
   uncompressed and as JPEG 2000 lossless, drawn as PNG by pacsindex (`/api/images/{id}/render`) and by
   Orthanc (`/instances/{id}/preview`), one request at a time over keep-alive connections, alternating, in
   rounds. Reported: median time per image for each and the ratio (target: pacsindex within 1.5x).
   Files Orthanc's preview cannot draw but pacsindex can (Modality LUT Sequence, uncompressed YBR_FULL_422,
   JPEG 2000 with the reversible colour transform, 16-bit RGB) are listed with what each answered.
2. Viewer scrolling: one 200-image series pulled through the viewer's image route in order, four at a
   time as the viewer prefetches: images per second and the time to the first image (the listing, then
   the first image), with the archive on local disk and on a Samba share (tests/samba_server.py) reached
   through ../shared/tools/latency_proxy.py adding 1 ms each way: the practice's NAS.
3. A results page of 100 series on a cold thumbnail cache: six thumbnails at a time (a browser's
   connections per host) until all 100 are there, while another client polls `/api/index/status` and
   `/api/search` every 100 ms: the time to all thumbnails and those requests' latencies (target: within
   the 500 ms status target).

The pacsindex server is `python -m pacsindex serve` in a process of its own, as in production. Figures are
measurements, never pass/fail: the script prints a table and writes bench/out/bench_render.json.

    python -m bench.bench_render [--files 30] [--rounds 3] [--scroll 200] [--series 100]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import convert_color_space
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless, SecondaryCaptureImageStorage

from bench.bench_status import free_port, start_server, stop_server, summary, wait_until_up
from pacsindex.accounts.auth import Accounts
from pacsindex.config.settings import Settings
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree, source_for

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
PASSWORD = "benchmark password"
# ../shared beside the repository (a checkout, or CI's clone); a worktree finds it beside its main checkout
PROXIES = [p / "shared" / "tools" / "latency_proxy.py" for p in (REPO.parent, REPO.parent.parent)]
GDCM_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancGdcm.so")
STUDY = "1.2.826.0.1.3680043.77"


# -- files -----------------------------------------------------------------------------------------------


def _ct(series: str, number: int, size: int = 512, *, patient: str = "BENCH^RENDER") -> Dataset:
    """A CT slice: a body-shaped ellipse of soft tissue with bone and lung, plus noise, stored HU + 1024."""
    rng = np.random.default_rng(number)
    y, x = np.mgrid[0:size, 0:size] / size - 0.5
    hu = np.full((size, size), -1000.0)
    hu[(x / 0.45) ** 2 + (y / 0.35) ** 2 < 1] = 40
    hu[((x + 0.18) / 0.12) ** 2 + (y / 0.2) ** 2 < 1] = -850
    hu[((x - 0.18) / 0.12) ** 2 + (y / 0.2) ** 2 < 1] = -850
    hu[(x**2 + (y - 0.25) ** 2) < 0.003 + number * 1e-5] = 1200
    hu += rng.normal(0, 12, hu.shape)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{series}.{number}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = series.rsplit(".", 1)[0], series
    ds.PatientName, ds.PatientID, ds.Modality, ds.StudyDate = patient, "BENCH-1", "CT", "20240301"
    ds.SeriesNumber, ds.InstanceNumber = int(series.rsplit(".", 1)[1]), number
    ds.ImagePositionPatient = [-180, -180, number * 1.0]
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.PixelData = np.clip(hu + 1024, 0, 4095).astype(np.uint16).tobytes()
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


RGB = np.zeros((128, 128, 3), np.uint8)
RGB[:64, :, 0], RGB[64:, :, 1], RGB[:, 64:, 2] = 255, 255, 255  # red, green and blue stripes overlapping


def _colours_right(img: Image.Image) -> bool:
    return bool(np.abs(np.asarray(img.convert("RGB"), dtype=int) - RGB).mean() < 25)


def _ramp_inverted(img: Image.Image) -> bool:
    grey = np.asarray(img.convert("L"), dtype=float)
    return bool(grey[:, :16].mean() > grey[:, -16:].mean() + 100)  # the LUT turns the ramp round


def _favourable(root: Path) -> dict[str, tuple[Path, str, Callable[[Image.Image], bool]]]:
    """Files Orthanc's preview does not draw right; each with what a right picture looks like (pacsindex's
    tests check the same in tests/viewer/test_render.py)."""
    out: dict[str, tuple[Path, str, Callable[[Image.Image], bool]]] = {}
    lut = _ct(f"{STUDY}.91", 1, 128)
    for key in ("RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth"):
        delattr(lut, key)
    lut.PixelData = np.tile(np.linspace(0, 4095, 128).astype(np.uint16), (128, 1)).tobytes()
    item = Dataset()
    item.LUTDescriptor, item.ModalityLUTType = [4096, 0, 16], "US"
    item.LUTData = (4095 - np.arange(4096)).astype(np.uint16).tobytes()
    lut.ModalityLUTSequence = [item]
    out["Modality LUT Sequence"] = (_save(lut, root / "fav" / "mlut.dcm"), f"{STUDY}.91", _ramp_inverted)
    ybr = convert_color_space(RGB, "RGB", "YBR_FULL").astype(int)
    pairs = ybr.reshape(128, 64, 2, 3)
    packed = np.stack(
        [
            pairs[:, :, 0, 0],
            pairs[:, :, 1, 0],
            pairs[:, :, :, 1].mean(axis=2),
            pairs[:, :, :, 2].mean(axis=2),
        ],
        axis=-1,
    )
    for n, (name, bits, photometric) in enumerate(
        (
            ("YBR_FULL_422 uncompressed", 8, "YBR_FULL_422"),
            ("J2K YBR_RCT", 8, "YBR_RCT"),
            ("16-bit RGB", 16, "RGB"),
        ),
        start=2,
    ):
        ds = _ct(f"{STUDY}.9{n}", 1, 128)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        for key in ("RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth"):
            delattr(ds, key)
        ds.SamplesPerPixel, ds.PlanarConfiguration, ds.PhotometricInterpretation = 3, 0, photometric
        ds.BitsAllocated = ds.BitsStored = bits
        ds.HighBit = bits - 1
        if photometric == "YBR_FULL_422":
            ds.PixelData = np.round(packed).astype(np.uint8).tobytes()
        elif photometric == "YBR_RCT":
            ds.PixelData = RGB.tobytes()
            ds.compress(JPEG2000Lossless, arr=RGB, generate_instance_uid=False)
        else:
            ds.PixelData = (RGB.astype(np.uint16) * 257).tobytes()
        path = _save(ds, root / "fav" / f"{name.replace(' ', '_')}.dcm")
        out[name] = (path, f"{STUDY}.9{n}", _colours_right)
    return out


def build(root: Path, files: int, scroll: int, series: int) -> dict[str, Any]:
    if root.exists():
        shutil.rmtree(root)
    plain = [_save(_ct(f"{STUDY}.1", n), root / "plain" / f"IM{n:04d}.dcm") for n in range(1, files + 1)]
    j2k = []
    for n in range(1, files + 1):
        ds = _ct(f"{STUDY}.2", n)
        ds.compress(JPEG2000Lossless, generate_instance_uid=False)
        j2k.append(_save(ds, root / "j2k" / f"IM{n:04d}.dcm"))
    for n in range(1, scroll + 1):
        _save(_ct(f"{STUDY}.3", n), root / "scroll" / f"IM{n:04d}.dcm")
    for s in range(series):
        for n in range(1, 4):
            _save(
                _ct(f"1.2.826.0.1.3680043.78.{s}.{s + 1}", n, 256, patient=f"THUMB^{s}"),
                root / "many" / f"S{s:03d}" / f"IM{n}.dcm",
            )
    return {"plain": plain, "j2k": j2k, "favourable": _favourable(root)}


# -- servers -----------------------------------------------------------------------------------------------


class Pacsindex:
    def __init__(self, work: Path, root: Path, source: Any = None) -> None:
        self.db = work / "pacsindex.db"
        run_index(self.db, [source or LocalTree(str(root))], ScanOptions(workers=1))
        Accounts(self.db).add_user("bench", PASSWORD)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = start_server(self.db, root, self.port, work)
        wait_until_up(self.url, self.proc)

    def client(self, url: str | None = None) -> httpx.Client:
        c = httpx.Client(base_url=url or self.url, timeout=120)
        c.post("/auth/signin", json={"name": "bench", "password": PASSWORD}).raise_for_status()
        return c

    def images(self, c: httpx.Client, series_uid: str) -> list[dict[str, Any]]:
        key = next(
            s["SeriesKey"]
            for s in c.get("/api/search", params={"limit": 500}).json()
            if s["SeriesInstanceUID"] == series_uid
        )
        return list(c.get(f"/api/series/{key}/images").json()["images"])


def start_orthanc(work: Path) -> Any:
    sys.path.insert(0, str(REPO / "tests"))
    from orthanc_server import PASSWORD as ORTHANC_PASSWORD
    from orthanc_server import USER, start_orthanc

    plugins = [str(GDCM_PLUGIN)] if GDCM_PLUGIN.exists() else []
    server = start_orthanc(work / "orthanc", extra_config={"Plugins": plugins})
    server.auth = (USER, ORTHANC_PASSWORD)
    return server


def orthanc_upload(server: Any, paths: list[Path]) -> list[str]:
    ids = []
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=120) as c:
        for p in paths:
            r = c.post("/instances", content=p.read_bytes())
            r.raise_for_status()
            ids.append(r.json()["ID"])
    return ids


# -- measurements -------------------------------------------------------------------------------------------


def compare(pi: Pacsindex, orthanc: Any, data: dict[str, Any], rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pc = pi.client()
    with httpx.Client(base_url=orthanc.url, auth=orthanc.auth, timeout=120) as oc:
        for kind, series_uid in (
            ("uncompressed 512x512 CT", f"{STUDY}.1"),
            ("JPEG 2000 512x512 CT", f"{STUDY}.2"),
        ):
            paths = data["plain" if kind.startswith("unc") else "j2k"]
            ours = [i["url"] for i in pi.images(pc, series_uid)]
            theirs = orthanc_upload(orthanc, paths)
            pc.get(ours[0]).raise_for_status()
            oc.get(f"/instances/{theirs[0]}/preview").raise_for_status()
            times: dict[str, list[float]] = {"pacsindex": [], "orthanc": []}
            for rnd in range(rounds):
                for n, (url, oid) in enumerate(zip(ours, theirs, strict=True)):
                    order = [("pacsindex", pc, url), ("orthanc", oc, f"/instances/{oid}/preview")]
                    for name, client, path in order if (n + rnd) % 2 == 0 else order[::-1]:
                        t0 = time.perf_counter()
                        r = client.get(path, headers={"Accept": "image/png"})
                        elapsed = time.perf_counter() - t0
                        if r.status_code != 200 or r.headers.get("x-render-problem"):
                            raise SystemExit(f"{name} could not draw a {kind} file: {r.status_code}")
                        times[name].append(elapsed)
            p, o = statistics.median(times["pacsindex"]), statistics.median(times["orthanc"])
            out[kind] = {
                "pacsindex_ms": round(p * 1000, 2),
                "orthanc_ms": round(o * 1000, 2),
                "ratio": round(p / o, 2),
                "images": len(times["pacsindex"]),
            }
        favourable = {}
        for name, (path, series_uid, right) in data["favourable"].items():
            r = oc.post("/instances", content=path.read_bytes())
            oid = r.json()["ID"] if r.status_code == 200 else None
            seen = oc.get(f"/instances/{oid}/preview") if oid else None
            ours = pc.get(pi.images(pc, series_uid)[0]["url"])
            favourable[name] = {
                "orthanc": _verdict(seen, right),
                "pacsindex": _verdict(ours, right),
            }
        out["favourable"] = favourable
    pc.close()
    return out


def _verdict(r: httpx.Response | None, right: Callable[[Image.Image], bool]) -> str:
    if r is None or r.status_code != 200:
        return f"no image (HTTP {r.status_code if r is not None else 'upload refused'})"
    if r.headers.get("x-render-problem"):
        return "placeholder: " + r.headers["x-render-problem"]
    return "right" if right(Image.open(io.BytesIO(r.content))) else "drawn wrong"


def scroll(pi: Pacsindex, url: str, label: str) -> dict[str, Any]:
    c = pi.client(url)
    t0 = time.perf_counter()
    key = next(
        s["SeriesKey"]
        for s in c.get("/api/search", params={"limit": 500}).json()
        if s["SeriesInstanceUID"] == f"{STUDY}.3"
    )
    images = c.get(f"/api/series/{key}/images").json()["images"]
    c.get(images[0]["url"], params={"size": 1024}).raise_for_status()
    first = time.perf_counter() - t0
    clients = [pi.client(url) for _ in range(4)]
    local = threading.local()
    pool = iter(clients)
    lock = threading.Lock()

    def fetch(image: dict[str, Any]) -> None:
        if not hasattr(local, "c"):
            with lock:
                local.c = next(pool)
        r = local.c.get(image["url"], params={"size": 1024})
        r.raise_for_status()
        if r.headers.get("x-render-problem"):
            raise SystemExit(f"{label}: an image was not drawn: {r.headers['x-render-problem']}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(fetch, images))
    elapsed = time.perf_counter() - t0
    for x in (c, *clients):
        x.close()
    return {
        "where": label,
        "images": len(images),
        "images_per_s": round(len(images) / elapsed, 1),
        "first_image_ms": round(first * 1000, 1),
    }


def scroll_over_smb(work: Path, folder: Path) -> dict[str, Any]:
    """The same series on a Samba share reached through latency_proxy.py (1 ms each way): the NAS case."""
    sys.path.insert(0, str(REPO / "tests"))
    from samba_server import PASSWORD as SMB_PASSWORD
    from samba_server import USER as SMB_USER
    from samba_server import samba_problem, start_samba, wait_for_port

    label = "NAS over SMB, 1 ms each way"
    problem = samba_problem()
    script = next((p for p in PROXIES if p.exists()), None)
    if problem or script is None:
        return {
            "where": f"{label}: not measured ({problem or 'latency_proxy.py not found'})",
            "images": 0,
            "images_per_s": None,
            "first_image_ms": None,
        }
    smb = start_samba(work / "samba", {"bench": folder})
    port = free_port()
    proxy = subprocess.Popen(
        [
            sys.executable,
            str(script),
            "--listen",
            str(port),
            "--target",
            f"127.0.0.1:{smb.port}",
            "--delay-ms",
            "1",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.environ.update({"PACSINDEX_SMB_USER": SMB_USER, "PACSINDEX_SMB_PASSWORD": SMB_PASSWORD})
    server = None
    try:
        wait_for_port(port, proxy)
        url = smb.url("bench", port=port)
        data = work / "data-smb"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        settings = Settings(smb_user=SMB_USER, smb_password=SMB_PASSWORD)
        server = Pacsindex(data, folder, source_for(url, settings))
        return scroll(server, server.url, label)
    finally:
        if server is not None:
            stop_server(server.proc)
        os.killpg(proxy.pid, 15)
        proxy.wait()
        smb.stop()


def thumbnails(pi: Pacsindex) -> dict[str, Any]:
    c = pi.client()
    keys = [s["SeriesKey"] for s in c.get("/api/search", params={"q": "thumb", "limit": 500}).json()]
    shutil.rmtree(pi.db.parent / "thumbnails", ignore_errors=True)
    done = threading.Event()
    status: list[float] = []
    search: list[float] = []

    def poll() -> None:
        p = pi.client()
        while not done.is_set():
            t0 = time.perf_counter()
            p.get("/api/index/status", headers={"X-Background": "1"}).raise_for_status()
            status.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            p.get("/api/search", params={"q": "bench"}).raise_for_status()
            search.append(time.perf_counter() - t0)
            done.wait(0.1)
        p.close()

    watcher = threading.Thread(target=poll)
    watcher.start()
    browsers = [pi.client() for _ in range(6)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(6) as ex:
        list(
            ex.map(
                lambda k: browsers[hash(k) % 6].get(f"/api/series/{k}/thumbnail").raise_for_status(),
                keys,
            )
        )
    elapsed = time.perf_counter() - t0
    done.set()
    watcher.join()
    for b in (c, *browsers):
        b.close()
    return {
        "series": len(keys),
        "all_thumbnails_s": round(elapsed, 2),
        "status": summary(status),
        "search": summary(search),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=30, help="CT files per kind for the Orthanc comparison")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scroll", type=int, default=200, help="images in the series scrolled")
    ap.add_argument("--series", type=int, default=100, help="series on the results page")
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "pacsindex-bench" / "render")
    args = ap.parse_args(argv)
    work: Path = args.work
    root = work / "archive"
    data = build(root, args.files, args.scroll, args.series)
    shutil.rmtree(work / "data", ignore_errors=True)
    (work / "data").mkdir(parents=True)
    pi = Pacsindex(work / "data", root)
    orthanc = None
    result: dict[str, Any] = {"python": sys.version.split()[0]}
    try:
        orthanc = start_orthanc(work)
        result["orthanc"] = compare(pi, orthanc, data, args.rounds)
        print(json.dumps(result["orthanc"]), flush=True)
        result["scrolling"] = [scroll(pi, pi.url, "local disk")]
        result["scrolling"].append(scroll_over_smb(work, root / "scroll"))
        result["thumbnails"] = thumbnails(pi)
    finally:
        if orthanc is not None:
            orthanc.stop()
        stop_server(pi.proc)
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "bench_render.json").write_text(json.dumps(result, indent=2))
    print("| kind | pacsindex median | Orthanc /preview median | ratio |")
    print("|---|---|---|---|")
    for kind, row in result["orthanc"].items():
        if kind != "favourable":
            print(f"| {kind} | {row['pacsindex_ms']} ms | {row['orthanc_ms']} ms | {row['ratio']}x |")
    for name, row in result["orthanc"]["favourable"].items():
        print(f"| {name} | {row['pacsindex']} | {row['orthanc']} | |")
    print("\n| viewer scrolling | images/s | first image |\n|---|---|---|")
    for row in result["scrolling"]:
        print(
            f"| {row['where']} ({row['images']} images) | {row['images_per_s']} "
            f"| {row['first_image_ms']} ms |"
        )
    t = result["thumbnails"]
    print(
        f"\n{t['series']} thumbnails, cold cache: {t['all_thumbnails_s']} s; while loading: status p50 "
        f"{t['status']['p50_ms']} ms, p95 {t['status']['p95_ms']} ms, max {t['status']['max_ms']} ms; search "
        f"p50 {t['search']['p50_ms']} ms, p95 {t['search']['p95_ms']} ms, max {t['search']['max_ms']} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
