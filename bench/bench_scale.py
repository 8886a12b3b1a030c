"""Scale: first-index throughput at 10k / 100k / 1M files, peak memory, unchanged re-scan, search latency
in-process and through the API, index size per file — each against a baseline measured in the same run —
with PNG plots (docs/img/).

    python -m bench.bench_scale [--sizes 10000,100000,1000000] [--workdir DIR] [--rounds 40] [--api-rounds 40]
                                [--src DIR] [--out FILE] [--no-plot]

`--src DIR` runs `pacsindex index` (and the API server) from another source tree, to compare engines in the
same session: `git archive COMMIT src | tar -x -C /tmp/before`, then `--src /tmp/before/src --out FILE
--no-plot`.

Trees are generated once with `pacsindex.sample.archive.write_sample` (16×16 pixels, 20 private elements, one
patient per 36 files: about 10 files and 3.6 series a patient, so ~100k series at 1M files) and cached
outside the repo under ~/.cache/pacsindex-bench/scale-FILES-pPATIENTS. Baselines:
- throughput: a raw pass over the same files (open, read 16 KiB, close: the I/O floor of any header reader),
  run right before each index;
- re-scan: the first index of the same tree;
- API search: the same queries in-process (`pacsindex.index.search.search` on a read-only connection), right
  before; the API figures are `GET /api/search` over a real socket to `python -m pacsindex serve` on the
  index, signed in, so they include HTTP, the session check and the audit log write (target p95 < 100 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.bench_status import PASSWORD, free_port, start_server, stop_server, wait_until_up
from bench.plots import scale_plots
from pacsindex.accounts.auth import Accounts
from pacsindex.index import store
from pacsindex.index.search import search

OUT = Path(__file__).resolve().parent / "out"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "img"
CACHE = Path.home() / ".cache" / "pacsindex-bench"
# write_sample plans ~3.6 series a patient: 36 files a patient give ~100k series at 1M files (~10 a series).
FILES_PER_PATIENT = 36
QUERIES = {
    "name part": "müller",
    "common name": "dlamini",
    "patient ID": "PID-000123",
    "description word": "chest",
    "date range": "",
    "no match": "zzzyxw",
}
DATE_RANGE = {"date_from": "2019-01-01", "date_to": "2019-03-31"}
TARGET_MS = 100.0


def ensure_tree(files: int) -> Path:
    from pacsindex.sample.archive import write_sample

    patients = max(1, files // FILES_PER_PATIENT)
    root = CACHE / f"scale-{files}-p{patients}"
    marker = CACHE / f"scale-{files}-p{patients}.json"
    if not marker.exists():
        print(f"generating {files} files under {root} (once; cached)", flush=True)
        t = time.perf_counter()
        s = write_sample(root, patients=patients, files=files, rows=16, columns=16, private_tags=20)
        info = {"files": s.files, "series": s.series, "patients": s.patients, "other": s.other_files}
        marker.write_text(json.dumps({**info, "seconds": time.perf_counter() - t}))
    return root


def raw_pass(root: Path) -> tuple[int, float]:
    """The I/O floor: open, read 16 KiB, close every file, listing with os.walk."""
    t = time.perf_counter()
    n = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as fh:
                fh.read(16384)
            n += 1
    return n, time.perf_counter() - t


class TreeMemory:
    """Samples the RSS of a process and its children (the worker processes) every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            self.samples.append((time.perf_counter() - self._t0, rss / 2**20))

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join()
        return self.samples


def run_index(root: Path, db: Path, src: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pacsindex", "index", str(root), "--db", str(db), "--json", "--no-progress"]
    env = dict(os.environ)
    if src is not None:  # PYTHONPATH comes before the editable install
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    mem = TreeMemory(proc.pid)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t
    samples = mem.stop()
    if proc.returncode != 0:
        raise SystemExit(f"pacsindex index failed: {err}")
    summary = json.loads(out)
    return {
        "seconds": seconds,
        "files": summary["files_processed"],
        "files_per_s": summary["files_processed"] / seconds,
        "files_read": summary["files_read"],
        "files_unchanged": summary["files_unchanged"],
        "series": summary["series_count"],
        "peak_rss_mb": max((m for _, m in samples), default=0.0),
        "memory": samples,
    }


def search_latencies(db: Path, rounds: int = 40) -> dict[str, list[float]]:
    lat: dict[str, list[float]] = {k: [] for k in QUERIES}
    with store.reading(db) as conn:
        for _ in range(rounds):
            for label, q in QUERIES.items():
                kw: dict[str, Any] = {"limit": 100}
                if label == "date range":
                    kw.update(DATE_RANGE)
                t = time.perf_counter()
                search(conn, q, **kw)
                lat[label].append((time.perf_counter() - t) * 1000)
    return lat


def api_latencies(
    db: Path, root: Path, rounds: int, src: Path | None = None
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """The same queries through `GET /api/search` of a real server in its own process, signed in; returns
    the latencies (ms) and the number of series each query returned (at most 100, the page size)."""
    Accounts(db).add_user("bench", PASSWORD)
    lat: dict[str, list[float]] = {k: [] for k in QUERIES}
    hits: dict[str, int] = {}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="pacsindex-scale-api-") as tmp:
        proc = start_server(db, root, port, Path(tmp), src)
        try:
            wait_until_up(url, proc)
            with httpx.Client(base_url=url, timeout=60) as client:
                client.post("/auth/signin", json={"name": "bench", "password": PASSWORD}).raise_for_status()
                for warm in (True,) * 3 + (False,) * rounds:
                    for label, q in QUERIES.items():
                        params: dict[str, Any] = {"q": q, "limit": 100}
                        if label == "date range":
                            params.update(DATE_RANGE)
                        t = time.perf_counter()
                        r = client.get("/api/search", params=params)
                        ms = (time.perf_counter() - t) * 1000
                        r.raise_for_status()
                        hits[label] = len(r.json())
                        if not warm:
                            lat[label].append(ms)
        finally:
            stop_server(proc)
    return lat, hits


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 2),
        "p95": round(p95(values), 2),
        "max": round(max(values), 2),
    }


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values)


def db_size(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.suffix != ".lock")


def measure(n: int, work: Path, rounds: int, api_rounds: int, src: Path | None = None) -> dict[str, Any]:
    root = ensure_tree(n)
    db = work / f"scale-{n}.db"
    for p in work.glob(db.name + "*"):
        p.unlink()
    raw_n, raw_s = raw_pass(root)
    first = run_index(root, db, src)
    again = run_index(root, db, src)
    size = db_size(db)  # before the API run adds audit rows
    lat = search_latencies(db, rounds)
    row: dict[str, Any] = {
        "files": n,
        "raw": {"files": raw_n, "seconds": raw_s, "files_per_s": raw_n / raw_s},
        "first": first,
        "index_to_raw": first["files_per_s"] / (raw_n / raw_s),
        "rescan": again,
        "rescan_speedup": first["seconds"] / again["seconds"],
        "search_ms": lat,
        "search_summary_ms": {k: summary(v) for k, v in lat.items()},
        "db_bytes": size,
        "db_bytes_per_file": size / max(1, first["files"]),
    }
    if api_rounds:
        api, hits = api_latencies(db, root, api_rounds, src)
        row["api_ms"] = api
        row["api_summary_ms"] = {k: summary(v) for k, v in api.items()}
        row["api_hits"] = hits
    print(
        f"{n:>9,} files, {first['series']:,} series: first {first['seconds']:7.1f} s "
        f"({first['files_per_s']:6.0f} files/s, raw {raw_n / raw_s:6.0f}/s), "
        f"peak {first['peak_rss_mb']:5.0f} MB, re-scan {again['seconds']:6.1f} s "
        f"({row['rescan_speedup']:.1f}x), index {row['db_bytes_per_file']:.0f} B/file",
        flush=True,
    )
    for label in QUERIES:
        s, a = row["search_summary_ms"][label], row.get("api_summary_ms", {}).get(label)
        api_text = f"API p50 {a['p50']:6.1f} p95 {a['p95']:6.1f} max {a['max']:6.1f} ms" if a else ""
        print(f"    {label:<17} in-process p50 {s['p50']:6.1f} p95 {s['p95']:6.1f} ms {api_text}", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=40, help="in-process runs of each query")
    parser.add_argument("--api-rounds", type=int, default=40, help="API requests per query (0: skip)")
    parser.add_argument("--plot-only", action="store_true", help="redraw the plots from bench/out only")
    parser.add_argument("--src", type=Path, default=None, help="run pacsindex from this source tree")
    parser.add_argument("--out", type=Path, default=OUT / "bench_scale.json", help="where the JSON goes")
    parser.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True, help="redraw docs/img")
    args = parser.parse_args(argv)
    if args.plot_only:
        scale_plots(json.loads(args.out.read_text()), DOCS)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="pacsindex-scale-"))
    results: dict[str, Any] = {
        "benchmark": "bench_scale",
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_start": psutil.getloadavg(),
        },
        "pacsindex_src": str(args.src or Path(__file__).resolve().parent.parent / "src"),
        "target_search_p95_ms": TARGET_MS,
        "sizes": [measure(n, work, args.rounds, args.api_rounds, args.src) for n in sizes],
    }
    results["machine"]["load_end"] = psutil.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    slim = json.loads(json.dumps(results))
    for r in slim["sizes"]:
        for k in ("first", "rescan"):
            r[k]["memory"] = r[k]["memory"][:: max(1, len(r[k]["memory"]) // 300)]
    args.out.write_text(json.dumps(slim, indent=1))
    if args.plot:
        scale_plots(slim, DOCS)
    print(f"figures: {args.out}" + (f", plots in {DOCS}" if args.plot else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
