"""Run a command's module with one hook that notes when its first file result appears, for bench_startup.

    python -m bench.first_result OUT.json pacsindex index ROOT --db DB --json
    python -m bench.first_result OUT.json seed LIST OUT

For pacsindex the first result is the first commit of the index that holds a file (the moment a search
can find it); for the seed design, the first header its threads have read (it writes nothing a user can
see before the end). The hook is a wrapper around one method, installed before the command's own imports
run, so the imports are timed as a user's run pays them. Times are `time.time()` (the parent compares them
with its own clock at the moment it started this process).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def main(argv: list[str]) -> int:
    out, what, args = argv[0], argv[1], argv[2:]
    first: list[float] = []

    def note() -> None:
        if not first:
            first.append(time.time())

    if what == "pacsindex":
        from pacsindex.index.writer import Writer

        commit = Writer.commit

        def hooked_commit(self: Writer) -> None:
            had_files = self.pending > 0
            commit(self)
            if had_files:
                note()

        Writer.commit = hooked_commit  # type: ignore[method-assign]
        from pacsindex.cli import main as cli_main

        rc = cli_main(args)
    else:
        from bench import seed_design

        read = seed_design._read_header

        def hooked_read(path: str) -> dict[str, str]:
            record = read(path)
            note()
            return record

        seed_design._read_header = hooked_read
        rc = seed_design.main(args)
    report: dict[str, Any] = {"first_result": first[0] if first else None, "end": time.time()}
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(report, fh)
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
