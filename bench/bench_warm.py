"""Small runs inside the web service: a scheduled-style run (`IndexJobs.start`, as the schedule and the Start
button call it) with the service's warm header readers (`ingest.warm.WarmPool`) against the same run
creating its own pool, in the same process and the same rounds.

    python -m bench.bench_warm [--sizes 1,500] [--rounds 5] [--workers 0] [--out FILE]

This process stands in for `pacsindex serve`: it builds the warm pool as `create_app` does, starts it, waits
until its workers are up (the service has been running for a while before a pass falls due), then alternates
the two designs round by round. Each run is a first index of a CT tree from `bench.ct_tree` (cached in
~/.cache/pacsindex-bench/ct-N) into a new index, so every file is read by a worker; the page cache is warm.
Figures, never pass/fail: the median wall time of each design and own/warm as a ratio, on stdout and in
bench/out/bench_warm.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_index import _warm_page_cache
from bench.ct_tree import iter_files, make_ct_tree
from bench.report import machine, write_figures
from pacsindex.index import store
from pacsindex.ingest.jobs import IndexJobs
from pacsindex.ingest.scan import ScanOptions, default_workers
from pacsindex.ingest.warm import WarmPool
from pacsindex.sources.files import LocalTree

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
CACHE = Path.home() / ".cache" / "pacsindex-bench"


def one_run(root: Path, work: Path, workers: int, pool: WarmPool | None) -> dict[str, Any]:
    db = Path(tempfile.mkdtemp(dir=work)) / "index.db"
    store.connect(db).close()  # the service's index exists before any run
    jobs = IndexJobs(db, LocalTree, options=ScanOptions(workers=workers), pool=pool)
    t0 = time.perf_counter()
    jobs.start([str(root)], started_by="scheduler")
    jobs.wait()
    seconds = time.perf_counter() - t0
    status = jobs.status()
    return {"seconds": seconds, "ok": status["state"] == "completed", "files": status["files_read"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_warm", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,500", help="tree sizes in CT files")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=0, help="0: one per CPU, as the service")
    parser.add_argument("--out", type=Path, default=OUT / "bench_warm.json")
    args = parser.parse_args(argv)
    workers = args.workers or default_workers()
    load_start = os.getloadavg()
    pool = WarmPool(workers)
    pool.start()
    deadline = time.monotonic() + 60
    while len(pool.pids()) < workers and time.monotonic() < deadline:
        time.sleep(0.01)
    sizes: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="pacsindex-warm-") as tmp:
            work = Path(tmp)
            for n in (int(s) for s in args.sizes.split(",")):
                root = make_ct_tree(CACHE / f"ct-{n}", files=n, series=max(1, n // 100))
                _warm_page_cache(list(iter_files(root)))
                one_run(root, work, workers, pool)  # untimed: waits for the workers' imports
                rows: list[dict[str, Any]] = []
                for round_no in range(1, args.rounds + 1):
                    order = ["warm", "own"] if round_no % 2 else ["own", "warm"]
                    for design in order:
                        row = {
                            "round": round_no,
                            "design": design,
                            **one_run(root, work, workers, pool if design == "warm" else None),
                        }
                        rows.append(row)
                        print(
                            f"{n:>5} files  round {round_no}  {design:<5} {row['seconds']:6.3f} s"
                            + ("" if row["ok"] else "  FAILED"),
                            flush=True,
                        )
                warm = statistics.median(r["seconds"] for r in rows if r["design"] == "warm" and r["ok"])
                own = statistics.median(r["seconds"] for r in rows if r["design"] == "own" and r["ok"])
                sizes.append({"files": n, "runs": rows, "warm_s": warm, "own_s": own, "ratio": own / warm})
    finally:
        pool.close()
    load_end = os.getloadavg()
    print(f"\n{'files':>6} {'own pool s':>11} {'warm pool s':>12} {'own / warm':>11}")
    for s in sizes:
        print(f"{s['files']:>6} {s['own_s']:>11.3f} {s['warm_s']:>12.3f} {s['ratio']:>10.1f}x")
    print(
        f"workers {workers}; load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end "
        f"({os.cpu_count()} CPUs)"
    )
    report = {
        "benchmark": "bench_warm",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(load_start=load_start, load_end=load_end),
        "workers": workers,
        "rounds": args.rounds,
        "sizes": sizes,
    }
    write_figures(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
