"""Load and soak (issue 14, point 6): 20 staff searching and opening series (each also polling the status
every 2 s, as the page does), 4 share downloads and 2 DICOMweb series retrievals running back to back,
while indexing runs write the index the whole time (each cycle touches files so the next run re-reads and
rewrites them). Everything goes to one `pacsindex serve` process on 127.0.0.1 over real sockets, from a
bounded asyncio client (one task per simulated user, nothing unbounded).

Reported: errors (any answer that is not 2xx, any exception), p50/p95 of search, series, status, downloads
and retrievals; the idle p95 of search and status measured in the same run before the load starts, and the
ratio; the server's resident memory sampled every 5 s (first minute vs last minute: flat or not). JSON in
bench/out/load.json.

    python -m bench.bench_load --seconds 600      # the 10-minute soak make bench runs
    python -m bench.bench_load --seconds 120      # a quick one
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.bench_status import (
    CACHE,
    OUT_DIR,
    free_port,
    percentile,
    start_server,
    stop_server,
    wait_until_up,
)
from pacsindex.accounts.apitokens import ApiTokens
from pacsindex.accounts.auth import Accounts
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sample.archive import write_sample
from pacsindex.sources.files import LocalTree

PASSWORD = "benchmark password"
# Shorter than uvicorn's 5 s keep-alive, so a client never reuses a connection the server is closing (a
# browser retries that race silently; httpx would report it as an error that is not the server's).
LIMITS = httpx.Limits(keepalive_expiry=2.0)
STATUS_TARGET_MS, SEARCH_TARGET_MS = 500.0, 300.0


def archive(files: int) -> Path:
    root = CACHE / f"load-tree-{files}"
    done = root / ".complete"
    if not done.exists():
        print(f"writing a {files}-file sample archive under {root} (once) ...", file=sys.stderr)
        write_sample(root, patients=max(20, files // 100), files=files, seed=14)
        done.write_text("ok\n", encoding="utf-8")
    return root


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_samples: list[str] = []
        self.bytes: dict[str, int] = defaultdict(int)

    async def timed(self, kind: str, call: Any) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            r: httpx.Response = await call
        except httpx.HTTPError as exc:
            self._error(kind, f"{type(exc).__name__}: {exc}")
            return None
        self.latency[kind].append(time.perf_counter() - t0)
        if not 200 <= r.status_code < 300:
            self._error(kind, f"HTTP {r.status_code}: {r.text[:120]}")
            return None
        return r

    def _error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(f"{kind}: {what}")

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind, values in sorted(self.latency.items()):
            ms = [v * 1000 for v in values]
            out[kind] = {
                "requests": len(ms),
                "p50_ms": round(statistics.median(ms), 1),
                "p95_ms": round(percentile(ms, 95), 1),
                "max_ms": round(max(ms), 1),
                "errors": self.errors.get(kind, 0),
            }
        return out


async def sign_in(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    """Sign in as a person would: asked to wait a moment (everyone at once from one address), wait."""
    for _ in range(30):
        r = await client.post("/auth/signin", json={"name": name, "password": PASSWORD})
        if r.status_code != 429:
            break
        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
    r.raise_for_status()
    return {"X-CSRF-Token": r.json()["csrf_token"]}


async def staff(url: str, name: str, words: list[str], stop: float, stats: Stats, think: float) -> None:
    rnd = random.Random(name)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=LIMITS) as c:
        await sign_in(c, name)

        async def poll() -> None:
            while time.monotonic() < stop:
                await stats.timed("status", c.get("/api/index/status", headers={"X-Background": "1"}))
                await asyncio.sleep(2.0)  # the page's poll interval

        poller = asyncio.create_task(poll())
        while time.monotonic() < stop:
            r = await stats.timed("search", c.get("/api/search", params={"q": rnd.choice(words)}))
            found = r.json() if r is not None else []
            await asyncio.sleep(rnd.uniform(0.5, 1.5) * think)
            if found:
                key = rnd.choice(found)["SeriesKey"]
                await stats.timed("series", c.get(f"/api/series/{key}"))
            await asyncio.sleep(rnd.uniform(0.5, 1.5) * think)
        await poller


async def downloader(url: str, token: str, stop: float, stats: Stats) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=LIMITS) as c:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                async with c.stream("GET", f"/share/{token}/download") as r:
                    async for chunk in r.aiter_raw():
                        stats.bytes["download"] += len(chunk)
                    if r.status_code == 429:  # the share stream cap: wait as told, not an error
                        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                        continue
                    if r.status_code != 200:
                        stats._error("download", f"HTTP {r.status_code}")
                        continue
            except httpx.HTTPError as exc:
                stats._error("download", f"{type(exc).__name__}: {exc}")
                continue
            stats.latency["download"].append(time.perf_counter() - t0)


async def retriever(url: str, token: str, targets: list[tuple[str, str]], stop: float, stats: Stats) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "multipart/related; type=application/dicom"}
    rnd = random.Random(token)
    async with httpx.AsyncClient(base_url=url, timeout=120, headers=headers, limits=LIMITS) as c:
        while time.monotonic() < stop:
            study, series = rnd.choice(targets)
            t0 = time.perf_counter()
            try:
                async with c.stream("GET", f"/dicom-web/studies/{study}/series/{series}") as r:
                    async for chunk in r.aiter_raw():
                        stats.bytes["retrieve"] += len(chunk)
                    if r.status_code != 200:
                        stats._error("retrieve", f"HTTP {r.status_code}")
                        continue
            except httpx.HTTPError as exc:
                stats._error("retrieve", f"{type(exc).__name__}: {exc}")
                continue
            stats.latency["retrieve"].append(time.perf_counter() - t0)


async def indexer(url: str, root: Path, stop: float, stats: Stats, runs: list[dict[str, Any]]) -> None:
    """Keeps an indexing run writing: touch some files, start a run, wait for it, again."""
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    rnd = random.Random(5)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=LIMITS) as c:
        csrf = await sign_in(c, "admin")
        while time.monotonic() < stop:
            now = time.time()
            for path in rnd.sample(files, min(len(files), 1500)):
                os.utime(path, (now, now))  # changed: the next run reads and rewrites it
            await stats.timed("index_start", c.post("/api/index/start", headers=csrf))
            while time.monotonic() < stop:
                r = await c.get("/api/index/status", headers={"X-Background": "1"})
                if r.status_code == 200 and r.json().get("state") != "running":
                    runs.append({k: r.json().get(k) for k in ("state", "files_read", "files_per_s")})
                    break
                await asyncio.sleep(0.5)


async def memory(pid: int, stop: float, samples: list[tuple[float, int]]) -> None:
    proc = psutil.Process(pid)
    started = time.monotonic()
    while time.monotonic() < stop:
        samples.append((round(time.monotonic() - started, 1), proc.memory_info().rss))
        await asyncio.sleep(5)


async def idle_baseline(url: str, words: list[str], n: int = 40) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=LIMITS) as c:
        await sign_in(c, "staff00")
        search, status = [], []
        for i in range(n):
            t0 = time.perf_counter()
            (await c.get("/api/search", params={"q": words[i % len(words)]})).raise_for_status()
            search.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            (await c.get("/api/index/status", headers={"X-Background": "1"})).raise_for_status()
            status.append((time.perf_counter() - t0) * 1000)
    return {
        "search_p95_ms": round(percentile(search, 95), 1),
        "status_p95_ms": round(percentile(status, 95), 1),
    }


async def load(
    url: str, pid: int, root: Path, setup: dict[str, Any], seconds: float, think: float
) -> dict[str, Any]:
    words = setup["words"]
    baseline = await idle_baseline(url, words)
    stats, runs, mem = Stats(), [], []
    stop = time.monotonic() + seconds
    tasks = [staff(url, f"staff{i:02d}", words, stop, stats, think) for i in range(20)]
    tasks += [downloader(url, tok, stop, stats) for tok in setup["shares"]]
    tasks += [retriever(url, setup["api_token"], setup["targets"], stop, stats) for _ in range(2)]
    tasks += [indexer(url, root, stop, stats, runs), memory(pid, stop, mem)]
    await asyncio.gather(*tasks)
    return {"baseline": baseline, "stats": stats, "runs": runs, "memory": mem}


def prepare(db: Path, root: Path) -> dict[str, Any]:
    run_index(db, [LocalTree(str(root))], ScanOptions(workers=2))
    accounts = Accounts(db)
    accounts.add_user("admin", PASSWORD, admin=True)
    for i in range(20):
        accounts.add_user(f"staff{i:02d}", PASSWORD)
    _, api_token = ApiTokens(db).create("load bench", "admin")
    conn = sqlite3.connect(db)
    try:
        names = [r[0] for r in conn.execute("SELECT DISTINCT PatientName FROM patients LIMIT 200")]
        targets = conn.execute(
            """SELECT st.StudyInstanceUID, se.SeriesInstanceUID FROM series se
               JOIN studies st ON st.id = se.study_id
               WHERE se.SeriesInstanceUID IS NOT NULL ORDER BY se.id LIMIT 50"""
        ).fetchall()
    finally:
        conn.close()
    words = sorted({w[:4] for n in names if n for w in n.replace("^", " ").split() if len(w) >= 3})
    return {"words": words or ["a"], "targets": [tuple(t) for t in targets], "api_token": api_token}


def make_shares(url: str, n: int) -> list[str]:
    with httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/auth/signin", json={"name": "admin", "password": PASSWORD})
        csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
        found = c.get("/api/search", params={"q": ""}).json()
        tokens = []
        for i in range(n):
            made = c.post("/api/shares", json={"SeriesKey": found[i % len(found)]["SeriesKey"]}, headers=csrf)
            made.raise_for_status()
            tokens.append(made.json()["token"])
    return tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=600.0, help="how long the load lasts (600: the soak)"
    )
    parser.add_argument("--files", type=int, default=5000, help="files in the archive being indexed")
    parser.add_argument("--think", type=float, default=1.0, help="staff think time scale (1: 0.5-1.5 s)")
    args = parser.parse_args(argv)
    root = archive(args.files)
    with tempfile.TemporaryDirectory(prefix="pacsindex-bench-load-") as tmp:
        workdir = Path(tmp)
        db = workdir / "index.db"
        print(f"indexing {args.files} files and making 21 accounts ...", file=sys.stderr)
        setup = prepare(db, root)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(db, root, port, workdir)
        try:
            wait_until_up(url, proc)
            setup["shares"] = make_shares(url, 4)
            print(f"load for {args.seconds:g} s ...", file=sys.stderr)
            result = asyncio.run(load(url, proc.pid, root, setup, args.seconds, args.think))
        finally:
            stop_server(proc)
    stats: Stats = result["stats"]
    summary = stats.summary()
    mem = result["memory"]
    minute = max(1, min(12, len(mem) // 4))
    first = statistics.median(m for _, m in mem[:minute]) / 2**20 if mem else 0.0
    last = statistics.median(m for _, m in mem[-minute:]) / 2**20 if mem else 0.0
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "seconds": args.seconds,
        "files": args.files,
        "errors": sum(stats.errors.values()),
        "error_samples": stats.error_samples,
        "latency": summary,
        "idle": result["baseline"],
        "ratio_search_p95": round(
            summary.get("search", {}).get("p95_ms", 0) / max(0.1, result["baseline"]["search_p95_ms"]), 2
        ),
        "ratio_status_p95": round(
            summary.get("status", {}).get("p95_ms", 0) / max(0.1, result["baseline"]["status_p95_ms"]), 2
        ),
        "index_runs": len(result["runs"]),
        "bytes": dict(stats.bytes),
        "rss_mib_first_minute": round(first, 1),
        "rss_mib_last_minute": round(last, 1),
        "rss_samples": mem,
        "targets": {
            "no_errors": sum(stats.errors.values()) == 0,
            "status_p95_under_500ms": summary.get("status", {}).get("p95_ms", 1e9) < STATUS_TARGET_MS,
            "search_p95_under_300ms": summary.get("search", {}).get("p95_ms", 1e9) < SEARCH_TARGET_MS,
            "memory_flat_within_10pct": last <= first * 1.10 if mem else False,
        },
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "load.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nload for {args.seconds:g} s, {args.files} files, load average {os.getloadavg()[0]:.1f}")
    print(f"{'kind':<12}{'requests':>10}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'errors':>8}")
    for kind, s in summary.items():
        print(
            f"{kind:<12}{s['requests']:>10}{s['p50_ms']:>10}{s['p95_ms']:>10}{s['max_ms']:>10}{s['errors']:>8}"
        )
    print(
        f"idle p95: search {report['idle']['search_p95_ms']} ms, status {report['idle']['status_p95_ms']} ms;"
        f" under load / idle: search {report['ratio_search_p95']}x, status {report['ratio_status_p95']}x"
    )
    print(
        f"indexing runs during the load: {len(result['runs'])}; server RSS {first:.1f} MiB (first minute)"
        f" -> {last:.1f} MiB (last minute)"
    )
    print("targets:", json.dumps(report["targets"]))
    for sample in stats.error_samples:
        print("  error:", sample)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
