"""Scale: first-index throughput at 10k / 100k / 1M files, peak memory, unchanged re-scan, search latency,
index size per file — each against a baseline measured in the same run — with PNG plots.

    python -m bench.bench_scale [--sizes 10000,100000,1000000] [--workdir DIR] [--api]

Trees are generated once with `pacsindex.sample.write_sample` (16×16 pixels, 20 private elements,
about 10 files per series) and cached outside the repo under ~/.cache/pacsindex-bench/. Baselines:
- throughput: a raw pass over the same files (open, read 16 KiB, close: the I/O floor of any header reader),
  run right before each index;
- re-scan: the first index of the same tree;
- search: the same queries with no index run going (latency is absolute: target p95 < 100 ms).
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

import psutil

from pacsindex import store
from pacsindex.search import search

OUT = Path(__file__).resolve().parent / "out"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "img"
CACHE = Path.home() / ".cache" / "pacsindex-bench"
QUERIES = {
    "name part": "müller",
    "patient ID": "PID-000123",
    "description word": "chest",
    "date range": "",
    "no match": "zzzyxw",
}


def ensure_tree(files: int) -> Path:
    from pacsindex.sample import write_sample

    root = CACHE / f"scale-{files}"
    marker = CACHE / f"scale-{files}.json"
    if not marker.exists():
        print(f"generating {files} files under {root} (once; cached)", flush=True)
        t = time.perf_counter()
        s = write_sample(
            root, patients=max(1, files // 50), files=files, rows=16, columns=16, private_tags=20
        )
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


def run_index(root: Path, db: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pacsindex", "index", str(root), "--db", str(db), "--json", "--no-progress"]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
                    kw.update(date_from="2019-01-01", date_to="2019-03-31")
                t = time.perf_counter()
                search(conn, q, **kw)
                lat[label].append((time.perf_counter() - t) * 1000)
    return lat


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values)


def db_size(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.suffix != ".lock")


def plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    DOCS.mkdir(parents=True, exist_ok=True)
    sizes = [r["files"] for r in results["sizes"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(sizes, [r["first"]["files_per_s"] for r in results["sizes"]], "o-", label="first index")
    ax.plot(sizes, [r["raw"]["files_per_s"] for r in results["sizes"]], "s--", label="raw open+read 16 KiB")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("files in tree")
    ax.set_ylabel("files/s")
    ax.set_title("Throughput against tree size")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(DOCS / "throughput.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results["sizes"]:
        mem = r["first"]["memory"]
        ax.plot([t for t, _ in mem], [m for _, m in mem], label=f"{r['files']:,} files")
    ax.axhline(500, color="red", linestyle=":", label="500 MB target")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("RSS of pacsindex + workers (MB)")
    ax.set_title("Memory while indexing")
    ax.legend()
    fig.tight_layout()
    fig.savefig(DOCS / "memory.png", dpi=100)
    plt.close(fig)

    biggest = results["sizes"][-1]
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = list(biggest["search_ms"])
    ax.boxplot([biggest["search_ms"][k] for k in labels], showfliers=True)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    ax.axhline(100, color="red", linestyle=":", label="100 ms target (p95)")
    ax.set_ylabel("ms")
    ax.set_title(f"Search latency at {biggest['files']:,} files / {biggest['first']['series']:,} series")
    ax.legend()
    fig.tight_layout()
    fig.savefig(DOCS / "search_latency.png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="pacsindex-scale-"))
    results: dict[str, Any] = {"benchmark": "bench_scale", "sizes": []}
    for n in sizes:
        root = ensure_tree(n)
        db = work / f"scale-{n}.db"
        for p in work.glob(db.name + "*"):
            p.unlink()
        raw_n, raw_s = raw_pass(root)
        first = run_index(root, db)
        again = run_index(root, db)
        lat = search_latencies(db)
        size = db_size(db)
        row = {
            "files": n,
            "raw": {"files": raw_n, "seconds": raw_s, "files_per_s": raw_n / raw_s},
            "first": first,
            "rescan": again,
            "rescan_speedup": first["seconds"] / again["seconds"],
            "search_ms": lat,
            "search_p95_ms": {k: p95(v) for k, v in lat.items()},
            "db_bytes": size,
            "db_bytes_per_file": size / max(1, first["files"]),
        }
        results["sizes"].append(row)
        print(
            f"{n:>9,} files: first {first['seconds']:7.1f} s ({first['files_per_s']:6.0f} files/s, raw "
            f"{raw_n / raw_s:6.0f}/s), peak {first['peak_rss_mb']:5.0f} MB, "
            f"re-scan {again['seconds']:6.1f} s "
            f"({row['rescan_speedup']:.1f}x), search p95 max "
            f"{max(row['search_p95_ms'].values()):5.1f} ms, index {row['db_bytes_per_file']:.0f} B/file",
            flush=True,
        )
    OUT.mkdir(exist_ok=True)
    slim = json.loads(json.dumps(results))
    for r in slim["sizes"]:
        for k in ("first", "rescan"):
            r[k]["memory"] = r[k]["memory"][:: max(1, len(r[k]["memory"]) // 200)]
    (OUT / "bench_scale.json").write_text(json.dumps(slim, indent=1))
    plot(results)
    print(f"figures: {OUT / 'bench_scale.json'}, plots in {DOCS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
