"""The `pacsindex` command: a thin layer that parses arguments, calls the domain and prints.

Any PacsIndexError becomes one clear line on stderr and a non-zero exit code. JSON goes to stdout; progress
and human messages go to stderr, so `--json` output can be piped. The commands live by audience:
`archive` (index, series, search, problems, sample) and `staff` (serve, user, token, send-to-orthanc).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from pacsindex import __version__
from pacsindex.cli import archive, operations, share, staff
from pacsindex.errors import PacsIndexError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "index": archive.cmd_index,
    "series": archive.cmd_series,
    "search": archive.cmd_search,
    "sample": archive.cmd_sample,
    "problems": archive.cmd_problems,
    "serve": staff.cmd_serve,
    "user": staff.cmd_user,
    "send-to-orthanc": staff.cmd_send_to_orthanc,
    "token": staff.cmd_token,
    **operations.COMMANDS,  # purge, backup, restore, access-report, audit-export, service
    "share": share.cmd_share,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pacsindex",
        description="Index DICOM archives in place, search them, and share one series safely.",
    )
    parser.add_argument("--version", action="version", version=f"pacsindex {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    archive.add_parsers(sub)
    staff.add_parsers(sub)
    operations.add_parsers(sub)
    share.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(getattr(args, "verbose", 0), logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(COMMANDS[args.command](args))
    except PacsIndexError as exc:
        print(f"pacsindex: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pacsindex: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
