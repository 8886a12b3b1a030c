"""`pacsindex index` against the seed design on one CT tree: files per second of each and their ratio.

Both run as subprocesses of this one process, alternating round by round (seed first in even rounds,
pacsindex first in odd ones, so neither always follows the other), on the same tree of CT files from
`bench.ct_tree`. Each timing is `time.perf_counter()` around the whole subprocess, so both pay interpreter
start-up and both write their result (the seed its JSON, pacsindex a fresh SQLite database each round).
One untimed read of every file first puts the tree in the page cache for both.

The figures are a measurement, never a pass/fail: the script exits 0 whether or not pacsindex reaches the
target (at least 8x the seed's files/s), prints a table and writes the numbers to bench/out/bench_index.json.

    python -m bench.bench_index [--files 4000] [--rounds 3] [--workdir DIR] [--src DIR] [--out FILE]

`--src DIR` runs pacsindex from another source tree, to compare engines in the same session:

    mkdir /tmp/before && git archive COMMIT src | tar -x -C /tmp/before
    python -m bench.bench_index --src /tmp/before/src --out bench/out/bench_index_before.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pydicom

from bench.ct_tree import header_layout, iter_files, make_ct_tree
from bench.report import machine

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
TARGET_RATIO = 8.0
SERIES_PER_FILES = 100  # the requirement's tree: about 100 slices per series


@dataclass(frozen=True)
class Run:
    """One timed subprocess."""

    round_no: int
    design: str  # "seed" or "pacsindex"
    seconds: float
    files: int
    files_per_s: float
    series: int | None
    ok: bool
    note: str = ""


def _subprocess_env(src: Path | None = None) -> dict[str, str]:
    # The repo root makes `bench` importable; src/ makes an uninstalled pacsindex importable too (and
    # PYTHONPATH comes before the editable install, so `--src` really picks the other tree).
    env = dict(os.environ)
    # Installed Python code runs from cached bytecode; a shell with PYTHONDONTWRITEBYTECODE=1 would make
    # every run compile pacsindex's modules again (~0.1 s), a cost no installed copy pays.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    paths = [str(src or REPO / "src"), str(REPO)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _warm_page_cache(paths: list[Path]) -> int:
    """Read every file once, as `cat` would, so both designs start from a warm page cache."""
    total = 0
    for path in paths:
        with path.open("rb", buffering=0) as fh:
            while chunk := fh.read(1 << 20):
                total += len(chunk)
    return total


def _pacsindex_problem(env: dict[str, str], cwd: Path) -> str | None:
    """None if `python -m pacsindex` can start here; else the reason, in one line."""
    probe = subprocess.run(
        [sys.executable, "-c", "import pacsindex.cli"], env=env, cwd=cwd, capture_output=True, text=True
    )
    if probe.returncode == 0:
        return None
    lines = [line for line in probe.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {probe.returncode}"


def _tail(text: str, lines: int = 5) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _run_seed(round_no: int, file_list: Path, files: int, workdir: Path, env: dict[str, str]) -> Run:
    out = workdir / f"seed-{round_no}.json"
    cmd = [sys.executable, "-m", "bench.seed_design", str(file_list), str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return Run(round_no, "seed", seconds, files, files / seconds, None, False, _tail(proc.stderr))
    series = json.loads(out.read_text(encoding="utf-8"))
    seen = sum(len(s["files"]) for s in series)
    out.unlink()
    note = "" if seen == files else f"{seen} of {files} files in the output"
    return Run(round_no, "seed", seconds, files, files / seconds, len(series), seen == files, note)


def _parse_summary(stdout: str) -> dict[str, Any] | None:
    """pacsindex --json prints one JSON object; accept it alone or after other output lines."""
    lines = stdout.strip().splitlines()
    # The object starts on the last line that opens with "{" from which the rest parses.
    for start in reversed(range(len(lines))):
        if not lines[start].lstrip().startswith("{"):
            continue
        try:
            data = json.loads("\n".join(lines[start:]))
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return None


def _error_count(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, list | dict):
        return len(value)
    return 0


def _run_pacsindex(round_no: int, root: Path, files: int, workdir: Path, env: dict[str, str]) -> Run:
    with tempfile.TemporaryDirectory(prefix=f"db-{round_no}-", dir=workdir) as db_dir:
        db = Path(db_dir) / "index.db"
        cmd = [sys.executable, "-m", "pacsindex", "index", str(root), "--db", str(db), "--json"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=db_dir, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    rate = files / seconds
    if proc.returncode != 0:
        note = f"exit code {proc.returncode}: {_tail(proc.stderr or proc.stdout)}"
        return Run(round_no, "pacsindex", seconds, files, rate, None, False, note)
    summary = _parse_summary(proc.stdout)
    if summary is None:
        return Run(round_no, "pacsindex", seconds, files, rate, None, False, "no JSON summary on stdout")
    processed = summary.get("files_processed")
    errors = _error_count(summary.get("errors"))
    problems = []
    # The tree also holds the generator's .complete marker, which an indexer may count as a non-DICOM file.
    if not isinstance(processed, int) or processed < files:
        problems.append(f"files_processed={processed!r}, expected {files}")
    if errors:
        problems.append(f"{errors} errors")
    series = summary.get("series_count")
    return Run(
        round_no,
        "pacsindex",
        seconds,
        files,
        rate,
        series if isinstance(series, int) else None,
        not problems,
        "; ".join(problems),
    )


def _tree_figures(root: Path, paths: list[Path], sample: int = 200) -> dict[str, Any]:
    step = max(1, len(paths) // sample)
    layouts = [header_layout(p) for p in paths[::step]]
    disk = sum(p.stat().st_blocks * 512 for p in paths)
    return {
        "root": str(root),
        "files": len(paths),
        "bytes_apparent": sum(p.stat().st_size for p in paths),
        "bytes_on_disk": disk,
        "avg_header_bytes": round(statistics.fmean(lay.pixel_data_start for lay in layouts)),
        "avg_group_0020_end": round(statistics.fmean(lay.group_0020_end for lay in layouts)),
        "header_sample": len(layouts),
    }


def _median_rate(runs: list[Run], design: str) -> float | None:
    rates = [r.files_per_s for r in runs if r.design == design and r.ok]
    return statistics.median(rates) if rates else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_index", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="tree location (default ~/.cache/pacsindex-bench/ct-FILES)"
    )
    parser.add_argument("--series", type=int, default=None, help="default: files / 100")
    parser.add_argument("--private-tags", type=int, default=100)
    parser.add_argument("--src", type=Path, default=None, help="run pacsindex from this source tree")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "bench_index.json", help="where the JSON goes")
    args = parser.parse_args(argv)
    files = args.files
    series = args.series or max(1, files // SERIES_PER_FILES)
    root = args.workdir or Path.home() / ".cache" / "pacsindex-bench" / f"ct-{files}"

    print(f"tree: {files} CT files in {series} series under {root}", flush=True)
    t0 = time.perf_counter()
    make_ct_tree(root, files=files, series=series, private_tags=args.private_tags)
    paths = list(iter_files(root))
    print(f"tree ready in {time.perf_counter() - t0:.1f} s; warming the page cache", flush=True)
    warm_bytes = _warm_page_cache(paths)
    tree = _tree_figures(root, paths)
    print(
        f"  {len(paths)} files, {warm_bytes / 2**20:.0f} MiB; on average the header is "
        f"{tree['avg_header_bytes']} bytes up to pixel data and group 0020 ends at byte "
        f"{tree['avg_group_0020_end']}",
        flush=True,
    )

    env = _subprocess_env(args.src)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="pacsindex-bench-") as tmp:
        workdir = Path(tmp)
        file_list = workdir / "files.txt"
        file_list.write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
        problem = _pacsindex_problem(env, workdir)
        if problem:
            print(f"\n!! pacsindex is not importable ({problem}); measuring the seed only.\n", flush=True)
        for round_no in range(1, args.rounds + 1):
            order = ["seed", "pacsindex"] if round_no % 2 else ["pacsindex", "seed"]
            for design in order:
                if design == "seed":
                    run = _run_seed(round_no, file_list, len(paths), workdir, env)
                elif problem is None:
                    run = _run_pacsindex(round_no, root, len(paths), workdir, env)
                else:
                    continue
                runs.append(run)
                status = "" if run.ok else f"  FAILED: {run.note}"
                print(
                    f"round {round_no}  {design:<9}  {run.seconds:7.2f} s  {run.files_per_s:8.0f} files/s"
                    f"  series={run.series}{status}",
                    flush=True,
                )

    seed_rate = _median_rate(runs, "seed")
    pacs_rate = _median_rate(runs, "pacsindex")
    ratio = pacs_rate / seed_rate if seed_rate and pacs_rate else None
    series_seen = {r.design: r.series for r in runs if r.ok}
    series_match = (
        series_seen.get("seed") == series_seen.get("pacsindex") == series if len(series_seen) == 2 else None
    )
    target_met = ratio is not None and ratio >= TARGET_RATIO and bool(series_match)

    print()
    print(f"{'design':<10} {'median files/s':>15} {'series':>7}")
    for design, rate in (("seed", seed_rate), ("pacsindex", pacs_rate)):
        shown = f"{rate:15.0f}" if rate else f"{'n/a':>15}"
        print(f"{design:<10} {shown} {series_seen.get(design, 'n/a')!s:>7}")
    if ratio is None:
        print(f"ratio pacsindex/seed: n/a (target >= {TARGET_RATIO:g}x NOT MEASURED)")
    else:
        verdict = "MET" if target_met else "NOT MET"
        print(f"ratio pacsindex/seed: {ratio:.2f}x (target >= {TARGET_RATIO:g}x: {verdict})")
    if series_match is False:
        print(f"!! series counts differ: expected {series}, got {series_seen}")

    report = {
        "benchmark": "bench_index",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(pydicom=pydicom.__version__),
        "tree": {**tree, "series": series, "private_tags": args.private_tags},
        "rounds": args.rounds,
        "pacsindex_src": str(args.src or REPO / "src"),
        "pacsindex_problem": problem,
        "runs": [asdict(r) for r in runs],
        "seed_files_per_s_median": seed_rate,
        "pacsindex_files_per_s_median": pacs_rate,
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "target_met": target_met,
        "series_expected": series,
        "series_match": series_match,
    }
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
