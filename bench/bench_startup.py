"""Small runs: wall time and time to the first file result of `pacsindex index` on 1 CT file, one CD export
(~500 files) and 4,000 CT files, against the seed design in the same run.

    python -m bench.bench_startup [--sizes 1,500,4000] [--rounds 3] [--src DIR] [--before DIR] [--out FILE]

Each run is a subprocess started through `bench.first_result`, which notes when the first result appears:
for pacsindex the first commit holding a file (a search finds it from then on), for the seed the first
header read (it shows nothing before its JSON at the end). Designs alternate round by round, on trees from
`bench.ct_tree` (cached in ~/.cache/pacsindex-bench/ct-N; the tree's `.complete` marker is one non-DICOM
file more for pacsindex), after one untimed read of every file. Two floors are measured in the same run:
a bare `python -c pass` and `python -c "import pydicom"` (what every seed run pays before reading).
`--before SRC` also runs pacsindex from another source tree in the same rounds (`git archive COMMIT src |
tar -x -C /tmp/before`).

Targets (issue 15.1): 4,000 files at least 15x the seed's wall time, one file in under 0.25 s. Figures,
never pass/fail: a table on stdout and bench/out/bench_startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_index import _subprocess_env, _warm_page_cache
from bench.ct_tree import iter_files, make_ct_tree
from bench.report import machine, write_figures

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
CACHE = Path.home() / ".cache" / "pacsindex-bench"
TARGET_RATIO = 15.0
TARGET_ONE_FILE_S = 0.25


def _children_cpu() -> float:
    """CPU seconds of every finished child process (worker processes included): on a loaded machine the
    wall time mostly says how much of a core a run got, the CPU time how much work it did."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(cmd: list[str], env: dict[str, str], cwd: Path, first_out: Path | None) -> dict[str, Any]:
    start_wall = time.time()
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    row: dict[str, Any] = {"seconds": seconds, "cpu_s": _children_cpu() - cpu0, "ok": proc.returncode == 0}
    if proc.returncode != 0:
        row["note"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
    if first_out is not None and first_out.exists():
        first = json.loads(first_out.read_text())["first_result"]
        row["first_result_s"] = None if first is None else first - start_wall
        first_out.unlink()
    return row


def run_design(design: str, root: Path, paths: list[Path], work: Path, env: dict[str, str]) -> dict[str, Any]:
    first_out = work / "first.json"
    if design == "seed":
        listing = work / "files.txt"
        listing.write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
        args = ["seed", str(listing), str(work / "seed.json")]
    else:
        db = Path(tempfile.mkdtemp(dir=work)) / "index.db"
        args = ["pacsindex", "index", str(root), "--db", str(db), "--json", "--no-progress"]
    row = timed([sys.executable, "-m", "bench.first_result", str(first_out), *args], env, work, first_out)
    return {"design": design, **row}


def floors(env: dict[str, str], work: Path) -> dict[str, float]:
    out = {}
    for label, code in (("python -c pass", "pass"), ("import pydicom", "import pydicom")):
        out[label] = timed([sys.executable, "-c", code], env, work, None)["seconds"]
    return out


def median(rows: list[dict[str, Any]], key: str) -> float | None:
    xs = [r[key] for r in rows if r.get("ok") and r.get(key) is not None]
    return statistics.median(xs) if xs else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_startup", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", default="1,500,4000", help="tree sizes in CT files")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--src", type=Path, default=None, help="run pacsindex from this source tree")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="also run pacsindex from this source tree (e.g. an older commit)",
    )
    parser.add_argument("--out", type=Path, default=OUT / "bench_startup.json")
    args = parser.parse_args(argv)
    env = _subprocess_env(args.src)
    before_env = _subprocess_env(args.before) if args.before else None
    load_start = os.getloadavg()
    sizes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pacsindex-startup-") as tmp:
        work = Path(tmp)
        base_rows = [floors(env, work) for _ in range(args.rounds)]
        base = {k: statistics.median(r[k] for r in base_rows) for k in base_rows[0]}
        print("floors: " + ", ".join(f"{k} {v:.3f} s" for k, v in base.items()), flush=True)
        for n in (int(s) for s in args.sizes.split(",")):
            root = make_ct_tree(CACHE / f"ct-{n}", files=n, series=max(1, n // 100))
            paths = list(iter_files(root))
            _warm_page_cache(paths)
            rows: list[dict[str, Any]] = []
            for round_no in range(1, args.rounds + 1):
                designs = ["seed", "pacsindex", *(["before"] if before_env else [])]
                order = designs if round_no % 2 else designs[::-1]
                for design in order:
                    design_env = before_env if design == "before" else env
                    assert design_env is not None
                    row = {"round": round_no, **run_design(design, root, paths, work, design_env)}
                    rows.append(row)
                    first = row.get("first_result_s")
                    print(
                        f"{n:>6} files  round {round_no}  {design:<9} {row['seconds']:6.3f} s"
                        f"  first result {first if first is None else round(first, 3)} s"
                        + ("" if row["ok"] else f"  FAILED {row.get('note')}"),
                        flush=True,
                    )
            seed = [r for r in rows if r["design"] == "seed"]
            ours = [r for r in rows if r["design"] == "pacsindex"]
            before = [r for r in rows if r["design"] == "before"]
            seed_s, ours_s = median(seed, "seconds"), median(ours, "seconds")
            sizes.append(
                {
                    "files": n,
                    "runs": rows,
                    "seed_s": seed_s,
                    "seed_first_s": median(seed, "first_result_s"),
                    "pacsindex_s": ours_s,
                    "pacsindex_first_s": median(ours, "first_result_s"),
                    "ratio": seed_s / ours_s if seed_s and ours_s else None,
                    "seed_cpu_s": median(seed, "cpu_s"),
                    "pacsindex_cpu_s": median(ours, "cpu_s"),
                    "before_s": median(before, "seconds"),
                    "before_cpu_s": median(before, "cpu_s"),
                }
            )
    load_end = os.getloadavg()
    print(
        f"\n{'files':>6} {'seed s':>8} {'seed 1st':>9} {'seed CPU':>9} {'pacsindex s':>12} {'pacs 1st':>9}"
        f" {'pacs CPU':>9} {'ratio':>7} {'CPU ratio':>10}"
    )
    for s in sizes:
        cells = [s["seed_s"], s["seed_first_s"], s["seed_cpu_s"], s["pacsindex_s"], s["pacsindex_first_s"]]
        shown = [f"{v:.3f}" if v is not None else "n/a" for v in [*cells, s["pacsindex_cpu_s"]]]
        ratio = f"{s['ratio']:.1f}x" if s["ratio"] else "n/a"
        cpu = s["seed_cpu_s"] / s["pacsindex_cpu_s"] if s["seed_cpu_s"] and s["pacsindex_cpu_s"] else None
        s["cpu_ratio"] = cpu
        print(
            f"{s['files']:>6} {shown[0]:>8} {shown[1]:>9} {shown[2]:>9} {shown[3]:>12} {shown[4]:>9}"
            f" {shown[5]:>9} {ratio:>7} {f'{cpu:.1f}x' if cpu else 'n/a':>10}"
        )
    if before_env:
        for s in sizes:
            if s["before_s"] and s["pacsindex_s"]:
                print(
                    f"{s['files']:>6} files: --before {s['before_s']:.3f} s wall, "
                    f"{s['before_cpu_s']:.3f} s CPU; now {s['pacsindex_s'] / s['before_s']:.2f}x its wall, "
                    f"{s['pacsindex_cpu_s'] / s['before_cpu_s']:.2f}x its CPU"
                )
    big = max(sizes, key=lambda s: s["files"])
    one = min(sizes, key=lambda s: s["files"])
    if big["ratio"]:
        verdict = "met" if big["ratio"] >= TARGET_RATIO else "NOT met"
        print(f"{big['files']} files: {big['ratio']:.1f}x the seed (target >= {TARGET_RATIO:g}x: {verdict})")
    if one["pacsindex_s"]:
        verdict = "met" if one["pacsindex_s"] < TARGET_ONE_FILE_S else "NOT met"
        print(
            f"{one['files']} file(s): {one['pacsindex_s']:.3f} s (target < {TARGET_ONE_FILE_S} s: {verdict})"
        )
    print(
        f"load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end ({os.cpu_count()} CPUs)"
    )
    report = {
        "benchmark": "bench_startup",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(load_start=load_start, load_end=load_end),
        "floors_s": base,
        "sizes": sizes,
        "target_ratio": TARGET_RATIO,
        "target_one_file_s": TARGET_ONE_FILE_S,
    }
    write_figures(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
