"""The survey of a first index over a slow link: how soon every series is searchable, against the time a
whole first index takes without the survey, on the same Samba share behind the latency proxy, same run.

    python -m bench.bench_survey [--trees scale,ct] [--files 100000] [--ct-series 500] [--rounds 1]
                                 [--delay-ms 1]

Two tree shapes of N files each (cached in ~/.cache/pacsindex-bench/): `scale`, the `bench_scale` tree
(year/month/patient/study/series, ~10 files a series folder: listing dominates, the survey cannot help
much), and `ct`, a CT/MR-like tree from `bench.ct_tree` (N files in --ct-series series, ~200 files a
series folder; 16x16-pixel images, a full CT header with ~100 private elements). Each is served by a real
smbd (tests/samba_server.py) through ../shared/tools/latency_proxy.py (DELAY ms each way). Each round runs
`pacsindex index URL --db fresh.db --json` twice as subprocesses, in alternating order: with the survey
(the default) and with `--no-survey`. While a run goes, this process counts the series a search can see
(`SELECT count(*) FROM series` on a read-only connection, every 0.1 s). "Every series searchable" is the
first moment that count reaches the finished index's. Target (issue 15.3): at most 1/5 of the time of the
whole first index without the survey.

Figures, never pass/fail: a table on stdout and bench/out/bench_survey.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.bench_rescan import PROXY, bench_env, tree_shape
from bench.bench_scale import CACHE, ensure_tree
from bench.ct_tree import make_ct_tree
from bench.report import machine, write_figures

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
TARGET = 0.2

sys.path.insert(0, str(REPO / "tests"))
from samba_server import PASSWORD, USER, free_port, samba_problem, start_samba, wait_for_port  # noqa: E402


def series_count(db: Path) -> int | None:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT count(*) FROM series").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # not created (or not migrated) yet


def watched_index(url: str, work: Path, env: dict[str, str], *flags: str) -> dict[str, Any]:
    db = Path(tempfile.mkdtemp(dir=work)) / "i.db"
    cmd = [
        sys.executable,
        "-m",
        "pacsindex",
        "index",
        url,
        "--db",
        str(db),
        "--json",
        "--no-progress",
        *flags,
    ]
    samples: list[tuple[float, int]] = []
    done = threading.Event()
    t0 = time.perf_counter()

    def watch() -> None:
        while not done.wait(0.1):
            count = series_count(db)
            if count is not None:
                samples.append((time.perf_counter() - t0, count))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"pacsindex index failed: {proc.stderr.strip()[-500:]}")
    summary = json.loads(proc.stdout)
    final = summary["series_count"]
    searchable = next((t for t, n in samples if n >= final), seconds)
    return {
        "seconds": seconds,
        "all_series_searchable_s": searchable,
        "series": final,
        "files_read": summary["files_read"],
        "errors": summary["errors"],
        "samples": samples[:: max(1, len(samples) // 200)],
    }


def ensure(tree: str, files: int, ct_series: int) -> Path:
    if tree == "scale":
        return ensure_tree(files)
    root = CACHE / f"ct-{files}x{ct_series}-16px"
    print(f"CT tree of {files} files in {ct_series} series under {root} (once; cached)", flush=True)
    return make_ct_tree(root, files=files, series=ct_series, rows=16, columns=16)


def one_tree(tree: str, root: Path, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Both kinds of first index of one tree over SMB, `args.rounds` rounds in alternating order."""
    load_start = os.getloadavg()
    server = start_samba(work / f"samba-{tree}", {"bench": root})
    port = free_port()
    proxy = subprocess.Popen(
        [sys.executable, str(args.proxy), "--listen", str(port), "--target", f"127.0.0.1:{server.port}",
         "--delay-ms", str(args.delay_ms)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    env = bench_env({"PACSINDEX_SMB_USER": USER, "PACSINDEX_SMB_PASSWORD": PASSWORD})
    url = server.url("bench", port=port)
    runs: list[dict[str, Any]] = []
    try:
        wait_for_port(port)
        for r in range(args.rounds):
            for kind in ("survey", "plain") if r % 2 == 0 else ("plain", "survey"):
                row: dict[str, Any] = {"round": r + 1, "kind": kind}
                row.update(watched_index(url, work, env, *(["--no-survey"] * (kind == "plain"))))
                runs.append(row)
                print(
                    f"{tree} round {r + 1} {kind:<6} every series searchable after "
                    f"{row['all_series_searchable_s']:6.1f} s, done after {row['seconds']:6.1f} s "
                    f"({row['series']} series, {row['files_read']} files read)",
                    flush=True,
                )
    finally:
        os.killpg(proxy.pid, 15)
        proxy.wait()
        server.stop()

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["kind"] == kind)

    searchable = med("survey", "all_series_searchable_s")
    plain_total = med("plain", "seconds")
    ratio = searchable / plain_total
    verdict = "met" if ratio <= TARGET else "NOT met"
    load_end = os.getloadavg()
    print(
        f"{tree} tree, {args.files} files over SMB, {args.delay_ms:g} ms each way: every series searchable "
        f"after {searchable:.1f} s with the survey; a first index without it takes {plain_total:.1f} s "
        f"(with it {med('survey', 'seconds'):.1f} s): {ratio:.3f} of it (target <= {TARGET:g}: {verdict}); "
        f"load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end",
        flush=True,
    )
    return {
        "tree": {"shape": tree, "root": str(root), "files": args.files, **tree_shape(root)},
        "load_start": load_start,
        "load_end": load_end,
        "runs": runs,
        "survey_all_series_searchable_s": searchable,
        "survey_total_s": med("survey", "seconds"),
        "plain_total_s": plain_total,
        "ratio": ratio,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_survey", description=__doc__.splitlines()[0])
    parser.add_argument("--trees", default="scale,ct", help="tree shapes, comma-separated: scale, ct")
    parser.add_argument("--files", type=int, default=100_000, help="files in each tree")
    parser.add_argument("--ct-series", type=int, default=500, help="series in the ct tree")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--delay-ms", type=float, default=1.0, help="latency proxy delay, each way")
    parser.add_argument("--proxy", type=Path, default=PROXY, help="latency_proxy.py")
    parser.add_argument("--out", type=Path, default=OUT / "bench_survey.json")
    args = parser.parse_args(argv)
    problem = samba_problem()
    if problem:
        print(f"cannot run smbd here: {problem}")
        return 1
    trees = [t.strip() for t in args.trees.split(",") if t.strip()]
    if not set(trees) <= {"scale", "ct"}:
        parser.error("--trees: scale and/or ct")
    roots = {t: ensure(t, args.files, args.ct_series) for t in trees}
    work = Path(tempfile.mkdtemp(prefix="pacsindex-survey-"))
    results = [one_tree(t, roots[t], args, work) for t in trees]
    report = {
        "benchmark": "bench_survey",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "delay_ms_each_way": args.delay_ms,
        "target_ratio": TARGET,
        "trees": results,
    }
    write_figures(args.out, report, f" ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
