"""Quick re-scans: an unchanged tree re-scanned by a quick pass (the default) against a bare scandir+stat walk
and against a full pass (`--full`, what every re-scan did before), locally and over SMB behind a 1 ms delay.

    python -m bench.bench_rescan [--local-files 100000] [--smb-files 10000] [--rounds 3] [--delay-ms 1]

Both trees' folders are given a time years ago first (`age_folders`): an archive's studies were written long
ago, and a quick pass lists through a patient whose folders changed in the last `quick_recent_hours`.

Local: the `bench_scale` tree of N files (cached in ~/.cache/pacsindex-bench/), indexed once, then round by
round, in alternating order: a bare walk (`os.scandir` of every folder and a stat of every entry, in a
process of its own, as `pacsindex index` is), a quick pass and a full pass, each `pacsindex index ROOT --db
DB --json` as a subprocess. Target: the quick pass within 2x of the bare walk.

SMB: the same kind of tree served by a real smbd (tests/samba_server.py) through
../shared/tools/latency_proxy.py (DELAY ms each way). The first index is timed too (the baseline of the
survey bench, bench_survey; `--first-delay-ms 0` makes it quicker through the same proxy port). Then
quick and full passes with no change: folders listed (each listing is a
round trip or more) and seconds. Targets: >= 10x fewer listings and >= 5x faster. Last, a study is added
deep in the tree (a copy of a series folder under a new study folder of an existing patient) and the next
quick pass must read exactly its files; the study is removed again afterwards.

Figures, never pass/fail: a table on stdout and bench/out/bench_rescan.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_scale import ensure_tree
from bench.report import machine, write_figures

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
# ../shared/tools/latency_proxy.py from the main checkout; a worktree sits one level deeper.
PROXY = next(
    (p / "shared" / "tools" / "latency_proxy.py" for p in REPO.parents if (p / "shared" / "tools").is_dir()),
    REPO.parent / "shared" / "tools" / "latency_proxy.py",
)

sys.path.insert(0, str(REPO / "tests"))
from samba_server import PASSWORD, USER, free_port, samba_problem, start_samba, wait_for_port  # noqa: E402

BARE_WALK = """
import os, sys
entries, stack = 0, [sys.argv[1]]
while stack:
    with os.scandir(stack.pop()) as it:
        for e in it:
            e.stat(follow_symlinks=False)
            entries += 1
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
print(entries)
"""


YEARS_AGO = 1577836800  # 2020-01-01


def age_folders(root: Path) -> int:
    """Give every folder of the tree a modification time years ago, as an archive's folders have (a study
    is written once; its folders' times stop moving). Files keep theirs. A fresh tree has every folder
    "changed just now", which a quick pass rightly lists as a study still arriving. Returns the folders."""
    folders = 0
    for folder, _dirs, _files in os.walk(root, topdown=False):
        os.utime(folder, (YEARS_AGO, YEARS_AGO))
        folders += 1
    return folders


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: modules load from cached bytecode
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    return env


def index(target: str, db: Path, env: dict[str, str], *flags: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pacsindex", "index", target, "--db", str(db), "--json", "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, *flags], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"pacsindex index failed: {proc.stderr.strip()[-500:]}")
    s = json.loads(proc.stdout)
    keys = ("files_processed", "files_read", "files_removed", "folders_listed", "folders_kept", "errors")
    return {"seconds": seconds, **{k: s.get(k) for k in keys}}


def bare_walk(root: Path, env: dict[str, str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", BARE_WALK, str(root)], env=env, capture_output=True, text=True
    )
    return {"seconds": time.perf_counter() - t0, "entries": int(out.stdout)}


def med(rows: list[dict[str, Any]], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in rows)


def local(n: int, rounds: int, work: Path, env: dict[str, str]) -> dict[str, Any]:
    root = ensure_tree(n)
    age_folders(root)
    db = work / f"local-{n}.db"
    first = index(str(root), db, env)
    print(f"local {n} files: first index {first['seconds']:.1f} s", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "quick": [], "full": []}
    for r in range(rounds):
        order = ["bare", "quick", "full"] if r % 2 == 0 else ["full", "quick", "bare"]
        for kind in order:
            row = (
                bare_walk(root, env)
                if kind == "bare"
                else index(str(root), db, env, *(["--full"] * (kind == "full")))
            )
            runs[kind].append(row)
            print(
                f"  round {r + 1} {kind:<5} {row['seconds']:6.2f} s  {row.get('folders_listed', '')}",
                flush=True,
            )
    bare, quick, full = med(runs["bare"]), med(runs["quick"]), med(runs["full"])
    return {
        "files": n,
        "first": first,
        "runs": runs,
        "bare_s": bare,
        "quick_s": quick,
        "full_s": full,
        "quick_to_bare": quick / bare,
        "full_to_bare": full / bare,
        "full_to_quick": full / quick,
    }


def add_study(root: Path) -> tuple[Path, int]:
    """A new study under an existing patient, deep in the tree: a copy of one series folder."""
    series = next(
        p for p in sorted(root.rglob("*")) if p.is_dir() and not any(c.is_dir() for c in p.iterdir())
    )
    patient = series.parent.parent
    study = patient / "20991231_BENCHADDED"
    shutil.copytree(series, study / series.name)
    return study, sum(1 for p in study.rglob("*") if p.is_file())


def start_proxy(proxy_script: Path, port: int, target: int, delay_ms: float) -> subprocess.Popen[bytes]:
    proxy = subprocess.Popen(
        [sys.executable, str(proxy_script), "--listen", str(port), "--target", f"127.0.0.1:{target}",
         "--delay-ms", str(delay_ms)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    wait_for_port(port)
    return proxy


def stop_proxy(proxy: subprocess.Popen[bytes]) -> None:
    os.killpg(proxy.pid, 15)
    proxy.wait()


def smb(
    n: int, rounds: int, delay_ms: float, work: Path, proxy_script: Path, first_delay_ms: float
) -> dict[str, Any]:
    root = ensure_tree(n)
    age_folders(root)
    server = start_samba(work / "samba", {"bench": root})
    port = free_port()
    # The first index may go through the same proxy port with less delay (the re-scans are what is measured;
    # the index's paths name the proxy's port, so the proxy restarts on that port with the real delay).
    proxy = start_proxy(proxy_script, port, server.port, first_delay_ms)
    env = bench_env({"PACSINDEX_SMB_USER": USER, "PACSINDEX_SMB_PASSWORD": PASSWORD})
    url = server.url("bench", port=port)
    db = work / f"smb-{n}.db"
    added: Path | None = None
    try:
        first = index(url, db, env)
        print(
            f"SMB {n} files, first index at {first_delay_ms:g} ms each way: {first['seconds']:.1f} s",
            flush=True,
        )
        if first_delay_ms != delay_ms:
            stop_proxy(proxy)
            proxy = start_proxy(proxy_script, port, server.port, delay_ms)
        print(f"re-scans at {delay_ms:g} ms each way", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {"quick": [], "full": []}
        for r in range(rounds):
            for kind in ["quick", "full"] if r % 2 == 0 else ["full", "quick"]:
                row = index(url, db, env, *(["--full"] * (kind == "full")))
                runs[kind].append(row)
                print(
                    f"  round {r + 1} {kind:<5} {row['seconds']:6.2f} s  {row['folders_listed']} listings",
                    flush=True,
                )
        added, new_files = add_study(root)
        found = index(url, db, env)
        print(
            f"  a study of {new_files} files added: the next quick pass read {found['files_read']}",
            flush=True,
        )
    finally:
        if added is not None:
            shutil.rmtree(added)
        stop_proxy(proxy)
        server.stop()
    quick, full = med(runs["quick"]), med(runs["full"])
    listings_quick, listings_full = med(runs["quick"], "folders_listed"), med(runs["full"], "folders_listed")
    return {
        "files": n,
        "delay_ms_each_way": delay_ms,
        "first_index_delay_ms_each_way": first_delay_ms,
        "first": first,
        "runs": runs,
        "quick_s": quick,
        "full_s": full,
        "speedup": full / quick,
        "listings_quick": listings_quick,
        "listings_full": listings_full,
        "fewer_listings": listings_full / max(1, listings_quick),
        "added_study_files": new_files,
        "added_study_read": found["files_read"],
        "added_study_found": found["files_read"] == new_files,
    }


def tree_shape(root: Path) -> dict[str, int]:
    leaves = inner = 0
    for _folder, dirs, _files in os.walk(root):
        if dirs:
            inner += 1
        else:
            leaves += 1
    return {"leaf_folders": leaves, "folders_with_subfolders": inner}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_rescan", description=__doc__.splitlines()[0])
    parser.add_argument("--local-files", type=int, default=100000, help="0: skip the local part")
    parser.add_argument("--smb-files", type=int, default=10000, help="0: skip the SMB part")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay-ms", type=float, default=1.0, help="latency proxy delay, each way")
    parser.add_argument(
        "--first-delay-ms",
        type=float,
        default=None,
        help="delay of the first SMB index (default: --delay-ms)",
    )
    parser.add_argument("--proxy", type=Path, default=PROXY, help="latency_proxy.py")
    parser.add_argument("--out", type=Path, default=OUT / "bench_rescan.json")
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    report: dict[str, Any] = {
        "benchmark": "bench_rescan",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(load_start=load_start),
    }
    work = Path(tempfile.mkdtemp(prefix="pacsindex-rescan-"))
    try:
        if args.local_files:
            row = report["local"] = local(args.local_files, args.rounds, work, bench_env())
            row["shape"] = tree_shape(ensure_tree(args.local_files))
            print(
                f"local {row['files']} files: quick {row['quick_s']:.2f} s = {row['quick_to_bare']:.2f}x "
                f"the bare walk ({row['bare_s']:.2f} s; target <= 2x); full {row['full_s']:.2f} s = "
                f"{row['full_to_quick']:.1f}x the quick pass",
                flush=True,
            )
        if args.smb_files:
            problem = samba_problem()
            if problem:
                print(f"SMB part skipped: {problem}")
            else:
                row = report["smb"] = smb(
                    args.smb_files,
                    args.rounds,
                    args.delay_ms,
                    work,
                    args.proxy,
                    args.delay_ms if args.first_delay_ms is None else args.first_delay_ms,
                )
                row["shape"] = tree_shape(ensure_tree(args.smb_files))
                print(
                    f"SMB {row['files']} files: quick {row['quick_s']:.2f} s, full {row['full_s']:.2f} s: "
                    f"{row['speedup']:.1f}x faster (target >= 5x), {row['fewer_listings']:.1f}x fewer "
                    f"listings ({row['listings_quick']:.0f} vs {row['listings_full']:.0f}; target >= 10x); "
                    f"the tree has {row['shape']['leaf_folders']} leaf folders and "
                    f"{row['shape']['folders_with_subfolders']} with subfolders; added study found: "
                    f"{row['added_study_found']}",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["machine"]["load_end"] = os.getloadavg()
    print(f"load average {load_start[0]:.1f} at the start, {report['machine']['load_end'][0]:.1f} at the end")
    write_figures(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
