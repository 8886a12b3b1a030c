"""`GET /api/index/status` latency over a real socket: with the server idle (the baseline), then while the
same server indexes a generated archive at full speed. Target: p95 under 500 ms while indexing. Also
`POST /auth/signin` (a request that writes to the index database: a session row and an audit entry), idle
and while indexing: it shows how long the indexing run keeps web writes waiting for SQLite's write lock.

The server is `python -m pacsindex serve` in a process of its own (header-reading workers: one per CPU, as in
production); this process signs in and asks for the status one request after another, as fast as the answers
come, which is a far harder load than the page's one request every 2 seconds. Only answers given while the run
was going count for the loaded figures. Sign-ins go from a second client in a thread of their own, one every
`--signin-pause` seconds, so a slow one does not hold up the status requests. The archive (`write_sample`,
default 20,000 files) is cached under ~/.cache/pacsindex-bench/ so later runs skip writing it.

The figures are a measurement, never a pass/fail: the script exits 0 either way, prints a table and writes
the numbers to bench/out/bench_status.json.

    python -m bench.bench_status [--files 20000] [--baseline-requests 300] [--src DIR]

`--src DIR` runs the server from another source tree, to compare engines in the same session:

    mkdir /tmp/before && git archive COMMIT src | tar -x -C /tmp/before
    python -m bench.bench_status --src /tmp/before/src --no-plot --out bench/out/bench_status_before.json
    python -m bench.bench_status --before-json bench/out/bench_status_before.json

Plot: docs/img/status_latency.png (with `--before-json`, the older engine's sign-ins too).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.plots import status_plot
from pacsindex.accounts.auth import Accounts
from pacsindex.sample.archive import write_sample

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
DOCS_IMG = REPO / "docs" / "img"
CACHE = Path(os.path.expanduser("~/.cache/pacsindex-bench"))
TARGET_MS = 500.0
PASSWORD = "benchmark password"


def archive(files: int) -> Path:
    """The generated archive for this size, written once and reused."""
    root = CACHE / f"status-tree-{files}"
    done = root / ".complete"
    if not done.exists():
        print(f"writing a {files}-file sample archive under {root} (once) ...", file=sys.stderr)
        write_sample(root, patients=max(20, files // 100), files=files, seed=7)
        done.write_text("ok\n", encoding="utf-8")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(latencies_s: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in latencies_s]
    return {
        "requests": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "max_ms": round(max(ms), 2),
    }


def start_server(
    db: Path, root: Path, port: int, workdir: Path, src: Path | None = None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src or REPO / "src"), env.get("PYTHONPATH")]))
    env["PACSINDEX_ROOTS"] = str(root)
    env.pop("PACSINDEX_CONFIG", None)
    cmd = [sys.executable, "-m", "pacsindex", "serve", "--db", str(db), "--port", str(port)]
    return subprocess.Popen(cmd, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Ask the server to stop; kill it if it has not within 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(url + "/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not answer within a minute")


def timed_status(client: httpx.Client) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    r = client.get("/api/index/status", headers={"X-Background": "1"})
    elapsed = time.perf_counter() - t0
    r.raise_for_status()
    return elapsed, r.json()


def timed_signin(client: httpx.Client, failures: list[int] | None = None) -> float:
    """Seconds for one sign-in; a refused one (the index stayed locked) is timed too and its status noted."""
    t0 = time.perf_counter()
    r = client.post("/auth/signin", json={"name": "bench", "password": PASSWORD})
    elapsed = time.perf_counter() - t0
    if failures is None:
        r.raise_for_status()
    elif r.status_code != 200:
        failures.append(r.status_code)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--baseline-requests", type=int, default=300)
    parser.add_argument("--baseline-signins", type=int, default=20)
    parser.add_argument("--signin-pause", type=float, default=0.3, help="seconds between sign-ins")
    parser.add_argument("--src", type=Path, default=None, help="run the server from this source tree")
    parser.add_argument("--plot", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "bench_status.json", help="where the JSON goes")
    parser.add_argument(
        "--before-json", type=Path, default=None, help="a `--src` run's JSON: its sign-ins go in the plot too"
    )
    parser.add_argument("--plot-only", action="store_true", help="redraw the plot from --out only")
    args = parser.parse_args(argv)
    before = json.loads(args.before_json.read_text(encoding="utf-8")) if args.before_json else None
    if args.plot_only:
        status_plot(json.loads(args.out.read_text(encoding="utf-8")), DOCS_IMG, before)
        return 0

    root = archive(args.files)
    with tempfile.TemporaryDirectory(prefix="pacsindex-bench-status-") as tmp:
        workdir = Path(tmp)
        db = workdir / "index.db"
        Accounts(db).add_user("bench", PASSWORD)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(db, root, port, workdir, args.src)
        try:
            wait_until_up(url, proc)
            with (
                httpx.Client(base_url=url, timeout=60) as client,
                httpx.Client(base_url=url, timeout=60) as other,
            ):
                r = client.post("/auth/signin", json={"name": "bench", "password": PASSWORD})
                r.raise_for_status()
                csrf = {"X-CSRF-Token": r.json()["csrf_token"]}

                for _ in range(20):  # warm-up: connections, imports, caches
                    timed_status(client)
                idle = [timed_status(client)[0] for _ in range(args.baseline_requests)]
                timed_signin(other)  # warm-up
                idle_signins = [timed_signin(other) for _ in range(args.baseline_signins)]

                t0 = time.perf_counter()
                client.post("/api/index/start", headers=csrf).raise_for_status()
                loaded: list[float] = []
                loaded_signins: list[tuple[float, float]] = []  # (finished at, seconds)
                failed_signins: list[int] = []
                stop = threading.Event()

                def sign_ins() -> None:
                    while not stop.wait(args.signin_pause):
                        seconds = timed_signin(other, failed_signins)
                        loaded_signins.append((time.perf_counter(), seconds))

                last: dict[str, Any] = {}
                signer = threading.Thread(target=sign_ins, daemon=True)
                signer.start()
                try:
                    while True:
                        elapsed, last = timed_status(client)
                        if not last["running"]:
                            break
                        loaded.append(elapsed)
                    run_end = time.perf_counter()
                finally:
                    stop.set()
                    signer.join()
                run_seconds = run_end - t0
        finally:
            stop_server(proc)

    during = [seconds for end, seconds in loaded_signins if end <= run_end]
    if last.get("state") != "completed" or not loaded or not during:
        print(f"the indexing run did not complete as expected: {last}", file=sys.stderr)
        return 1
    base, load = summary(idle), summary(loaded)
    signin_base, signin_load = summary(idle_signins), summary(during)
    result = {
        "endpoint": "GET /api/index/status",
        "server_src": str(args.src or REPO / "src"),
        "files": last["files_processed"],
        "run_seconds": round(run_seconds, 2),
        "run_files_per_s": round(last["files_processed"] / run_seconds, 1),
        "baseline_idle": base,
        "while_indexing": load,
        "p95_ratio_loaded_to_idle": round(load["p95_ms"] / base["p95_ms"], 2),
        "target_p95_ms": TARGET_MS,
        "meets_target": load["p95_ms"] < TARGET_MS,
        "signin_idle": signin_base,
        "signin_while_indexing": {**signin_load, "failed": len(failed_signins)},
        "signin_p95_ratio_loaded_to_idle": round(signin_load["p95_ms"] / signin_base["p95_ms"], 2),
        "samples_ms": {
            "status idle": [round(v * 1000, 3) for v in idle],
            "status while indexing": [round(v * 1000, 3) for v in loaded],
            "sign-in idle": [round(v * 1000, 3) for v in idle_signins],
            "sign-in while indexing": [round(v * 1000, 3) for v in during],
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(
        f"GET /api/index/status over a real socket; {result['files']} files indexed in "
        f"{result['run_seconds']} s ({result['run_files_per_s']} files/s) by the same server"
    )
    print(f"{'':24}{'requests':>10}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    rows = (
        ("idle (baseline)", base),
        ("while indexing", load),
        ("sign-in idle", signin_base),
        ("sign-in while indexing", signin_load),
    )
    for label, s in rows:
        print(f"{label:24}{s['requests']:>10}{s['p50_ms']:>10.1f}{s['p95_ms']:>10.1f}{s['max_ms']:>10.1f}")
    verdict = "yes" if result["meets_target"] else "NO"
    print(
        f"p95 while indexing / idle: {result['p95_ratio_loaded_to_idle']}x; "
        f"p95 < {TARGET_MS:.0f} ms while indexing: {verdict}"
    )
    print(
        f"POST /auth/signin p95 while indexing / idle: {result['signin_p95_ratio_loaded_to_idle']}x "
        f"({len(failed_signins)} refused)"
    )
    if before is not None:
        old = before["signin_while_indexing"]["p95_ms"]
        now = signin_load["p95_ms"]
        print(f"sign-in p95 while indexing: {old:.0f} ms with {before['server_src']}, {now:.0f} ms now")
    if args.plot:
        status_plot(result, DOCS_IMG, before)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
