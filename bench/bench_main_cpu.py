"""The main process's own CPU time for one first index (listing, diffing, sending jobs, writing), which is
what the scan's job batching cuts; wall time on a shared machine moves too much to show it.

    python -m bench.bench_main_cpu ROOT
    PYTHONPATH=/tmp/before/src python -m bench.bench_main_cpu ROOT    # another engine, same session

Runs `run_index` in this process with default options (one worker process per CPU) into a fresh database and
prints wall time and `getrusage(RUSAGE_SELF)` user + sys: the workers are not counted, the executor's feeder
threads (pickling, pipe writes) are.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import pacsindex
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import LocalTree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_main_cpu", description=__doc__.split("\n")[0]
    )
    parser.add_argument("root", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pacsindex-main-cpu-") as tmp:
        before, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        p = run_index(Path(tmp) / "i.db", [LocalTree(str(args.root))], ScanOptions())
        wall, after = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        f"{Path(pacsindex.__file__).parent}: {p.files_processed} files, {p.series_count} series, "
        f"wall {wall:.1f} s, main process CPU {cpu:.1f} s, load {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":  # spawned workers import this module again: run only as a script
    raise SystemExit(main())
