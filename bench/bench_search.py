"""Search latency on an existing index: the page found by sorting every match (the plan before the walk)
against the default plan (walk the series newest first when the words are common), in the same run.

    python -m bench.bench_search DB [--rounds 40] [--api-rounds 40] [--before-src DIR] [--after-src DIR]

DB is an index `bench_scale` (or `pacsindex index`) built, e.g. of the cached 1M tree. The queries are
bench_scale's six. In-process, each round runs every query with `plan="sorted"` and then with the default
plan on one read-only connection, so both see the same load. With `--api-rounds`, two servers run on the
index, one from `--before-src` (a source tree from before the walk: `git archive COMMIT src | tar -x -C
/tmp/before`) and one from `--after-src` (default: this checkout), and each request goes to one and then
the other. Every page is checked to be the same under both plans.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.bench_scale import DATE_RANGE, OUT, QUERIES, TARGET_MS, summary
from bench.bench_status import PASSWORD, free_port, start_server, stop_server, wait_until_up
from pacsindex.accounts.auth import Accounts
from pacsindex.errors import Conflict
from pacsindex.index import store
from pacsindex.index.search import Plan, search

REPO = Path(__file__).resolve().parent.parent
PLANS: dict[str, Plan] = {"before": "sorted", "after": "auto"}


def kwargs(label: str) -> dict[str, Any]:
    return {"limit": 100, **(DATE_RANGE if label == "date range" else {})}


def in_process(db: Path, rounds: int) -> tuple[dict[str, dict[str, list[float]]], dict[str, int]]:
    lat: dict[str, dict[str, list[float]]] = {side: {k: [] for k in QUERIES} for side in PLANS}
    hits: dict[str, int] = {}
    with store.reading(db) as conn:
        for warm in (True,) * 2 + (False,) * rounds:
            for label, q in QUERIES.items():
                pages = []
                for side, plan in PLANS.items():
                    t = time.perf_counter()
                    pages.append(search(conn, q, plan=plan, **kwargs(label)))
                    if not warm:
                        lat[side][label].append((time.perf_counter() - t) * 1000)
                if pages[0] != pages[1]:
                    raise SystemExit(f"{label}: the plans found different pages")
                hits[label] = len(pages[0])
    return lat, hits


def through_api(
    db: Path, root: Path, rounds: int, sources: dict[str, Path]
) -> dict[str, dict[str, list[float]]]:
    try:
        Accounts(db).add_user("bench", PASSWORD)
    except Conflict:
        pass
    lat: dict[str, dict[str, list[float]]] = {side: {k: [] for k in QUERIES} for side in sources}
    procs: list[subprocess.Popen[bytes]] = []
    clients: dict[str, httpx.Client] = {}
    with tempfile.TemporaryDirectory(prefix="pacsindex-bench-search-") as tmp:
        try:
            for side, src in sources.items():
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                work = Path(tmp) / side
                work.mkdir()
                procs.append(start_server(db, root, port, work, src))
                wait_until_up(url, procs[-1])
                clients[side] = httpx.Client(base_url=url, timeout=60)
                r = clients[side].post("/auth/signin", json={"name": "bench", "password": PASSWORD})
                r.raise_for_status()
            for warm in (True,) * 3 + (False,) * rounds:
                for label, q in QUERIES.items():
                    bodies = []
                    for side, client in clients.items():
                        t = time.perf_counter()
                        r = client.get("/api/search", params={"q": q, **kwargs(label)})
                        ms = (time.perf_counter() - t) * 1000
                        r.raise_for_status()
                        bodies.append(r.json())
                        if not warm:
                            lat[side][label].append(ms)
                    if any(b != bodies[0] for b in bodies):
                        raise SystemExit(f"{label}: the servers answered different pages")
        finally:
            for client in clients.values():
                client.close()
            for proc in procs:
                stop_server(proc)
    return lat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_search", description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path, help="an existing index")
    parser.add_argument("--rounds", type=int, default=40, help="in-process runs of each query and plan")
    parser.add_argument("--api-rounds", type=int, default=0, help="API requests per query and server")
    parser.add_argument("--before-src", type=Path, default=None, help="source tree of the 'before' server")
    parser.add_argument("--after-src", type=Path, default=REPO / "src", help="source of the 'after' server")
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()), help="the servers' root")
    parser.add_argument("--out", type=Path, default=OUT / "bench_search.json")
    args = parser.parse_args(argv)
    if not args.db.exists():
        raise SystemExit(f"no index at {args.db}")
    if args.api_rounds and args.before_src is None:
        raise SystemExit("--api-rounds needs --before-src (a source tree from before the walk)")
    with store.reading(args.db) as conn:
        series = conn.execute("SELECT count(*) FROM series").fetchone()[0]
    results: dict[str, Any] = {
        "benchmark": "bench_search",
        "db": str(args.db),
        "series": series,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "load_start": os.getloadavg()},
        "target_search_p95_ms": TARGET_MS,
    }
    lat, hits = in_process(args.db, args.rounds)
    results["hits"] = hits
    results["in_process_ms"] = {side: {k: summary(v) for k, v in d.items()} for side, d in lat.items()}
    if args.api_rounds:
        sources = {"before": args.before_src, "after": args.after_src}
        api = through_api(args.db, args.root, args.api_rounds, sources)
        results["api_ms"] = {side: {k: summary(v) for k, v in d.items()} for side, d in api.items()}
    results["machine"]["load_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    load = results["machine"]
    print(f"{series:,} series, load average {load['load_start'][0]:.1f} → {load['load_end'][0]:.1f}")
    for label in QUERIES:
        line = f"  {label:<17} {hits[label]:>3} hits"
        for kind in ("in_process_ms", "api_ms"):
            if kind in results:
                b, a = results[kind]["before"][label], results[kind]["after"][label]
                line += f" | {kind[:-3]} p50 {b['p50']:5.1f} → {a['p50']:5.1f}"
                line += f", p95 {b['p95']:5.1f} → {a['p95']:5.1f}"
        print(line, flush=True)
    print(f"figures: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
