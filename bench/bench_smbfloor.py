"""SMB near the wire: a first index over SMB against the floor of the same machine, Samba's own `smbclient`
(C) listing the same tree and fetching every file, directly and behind the latency proxy.

    python -m bench.bench_smbfloor [--files 10000] [--rounds 2] [--delays 0,1]

The tree is the `bench_scale` tree of N files (16x16 pixels: a whole file is about its header, so fetching
every file is what reading every header costs), served by a real smbd (tests/samba_server.py), for each
delay either directly (0) or through ../shared/tools/latency_proxy.py (DELAY ms each way). Per round, in
alternating order: `smbclient -c "recurse ON; ls"` (the listing floor), `smbclient -c "recurse ON; prompt
OFF; mget *"` into a scratch folder (listing and reading floor), the same with SMB3 encryption
(`--client-protection=encrypt`: pacsindex encrypts whenever the NAS offers it, and smbd offers it), and
`pacsindex index URL --db fresh.db`.
Issue 15.4 asks for the ratio of pacsindex's files/s to the floor's at 0 and 1 ms each way.

Figures, never pass/fail: a table on stdout and bench/out/bench_smbfloor.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_rescan import PROXY, bench_env, index
from bench.bench_scale import ensure_tree
from bench.report import machine, write_figures

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"

sys.path.insert(0, str(REPO / "tests"))
from samba_server import PASSWORD, USER, free_port, samba_problem, start_samba, wait_for_port  # noqa: E402


def smbclient(port: int, commands: str, cwd: Path, *flags: str) -> float:
    cmd = [
        "smbclient",
        "//127.0.0.1/bench",
        "-p",
        str(port),
        "-U",
        f"{USER}%{PASSWORD}",
        *flags,
        "-c",
        commands,
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"smbclient failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return seconds


def one_delay(
    root: Path, files: int, smbd_port: int, delay_ms: float, rounds: int, work: Path
) -> dict[str, Any]:
    proxy = None
    port = smbd_port
    if delay_ms > 0:
        port = free_port()
        proxy = subprocess.Popen(
            [sys.executable, str(PROXY), "--listen", str(port), "--target", f"127.0.0.1:{smbd_port}",
             "--delay-ms", str(delay_ms)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    env = bench_env({"PACSINDEX_SMB_USER": USER, "PACSINDEX_SMB_PASSWORD": PASSWORD})
    url = f"smb://127.0.0.1:{port}/bench"
    runs: dict[str, list[float]] = {"list": [], "fetch": [], "fetch_encrypted": [], "pacsindex": []}
    try:
        wait_for_port(port)
        for r in range(rounds):
            kinds = ["list", "fetch", "fetch_encrypted", "pacsindex"]
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                scratch = Path(tempfile.mkdtemp(dir=work))
                if kind == "list":
                    seconds = smbclient(port, "recurse ON; ls", scratch)
                elif kind == "fetch":
                    seconds = smbclient(port, "recurse ON; prompt OFF; mget *", scratch)
                elif (
                    kind == "fetch_encrypted"
                ):  # SMB3 encryption, as pacsindex uses whenever the NAS offers it
                    seconds = smbclient(
                        port, "recurse ON; prompt OFF; mget *", scratch, "--client-protection=encrypt"
                    )
                else:
                    seconds = index(url, scratch / "i.db", env)["seconds"]
                shutil.rmtree(scratch, ignore_errors=True)
                runs[kind].append(seconds)
                print(f"  {delay_ms:g} ms, round {r + 1}: {kind:<9} {seconds:6.2f} s", flush=True)
    finally:
        if proxy is not None:
            os.killpg(proxy.pid, 15)
            proxy.wait()
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "delay_ms_each_way": delay_ms,
        "runs": runs,
        "median_s": med,
        "floor_files_per_s": files / med["fetch"],
        "pacsindex_files_per_s": files / med["pacsindex"],
        "ratio": med["fetch"] / med["pacsindex"],  # pacsindex files/s as a share of the floor's
        "floor_encrypted_files_per_s": files / med["fetch_encrypted"],
        "ratio_encrypted": med["fetch_encrypted"] / med["pacsindex"],  # both encrypted, as pacsindex runs
        "listing_share_of_floor": med["list"] / med["fetch"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_smbfloor", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--delays", default="0,1", help="ms each way; 0 connects to smbd directly")
    parser.add_argument("--out", type=Path, default=OUT / "bench_smbfloor.json")
    args = parser.parse_args(argv)
    problem = samba_problem() or (None if shutil.which("smbclient") else "smbclient not installed")
    if problem:
        print(f"cannot run: {problem}")
        return 1
    load_start = os.getloadavg()
    root = ensure_tree(args.files)
    files = sum(1 for p in root.rglob("*") if p.is_file())
    work = Path(tempfile.mkdtemp(prefix="pacsindex-smbfloor-"))
    server = start_samba(work / "samba", {"bench": root})
    rows = []
    try:
        for delay in (float(d) for d in args.delays.split(",")):
            rows.append(one_delay(root, files, server.port, delay, args.rounds, work))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    load_end = os.getloadavg()
    print(f"\n{files} files; smbclient (floor) against pacsindex, medians of {args.rounds} rounds")
    print(
        f"{'ms each way':>11} {'list s':>7} {'fetch s':>8} {'pacsindex s':>12} {'floor f/s':>10}"
        f" {'ours f/s':>9} {'ratio':>6} {'enc fetch s':>12} {'enc ratio':>10}"
    )
    for row in rows:
        m = row["median_s"]
        print(
            f"{row['delay_ms_each_way']:>11g} {m['list']:7.2f} {m['fetch']:8.2f} {m['pacsindex']:12.2f} "
            f"{row['floor_files_per_s']:10.0f} {row['pacsindex_files_per_s']:9.0f} {row['ratio']:6.2f}"
            f" {m['fetch_encrypted']:12.2f} {row['ratio_encrypted']:10.2f}"
        )
    print(
        f"load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end ({os.cpu_count()} CPUs)"
    )
    report = {
        "benchmark": "bench_smbfloor",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(load_start=load_start, load_end=load_end),
        "tree": {"root": str(root), "files": files},
        "delays": rows,
    }
    write_figures(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
