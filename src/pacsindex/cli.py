"""The `pacsindex` command: a thin layer that parses arguments, calls the domain and prints.

Any PacsIndexError becomes one clear line on stderr and a non-zero exit code. JSON goes to stdout; progress
and human messages go to stderr, so `--json` output can be piped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pacsindex import __version__, config, store
from pacsindex.errors import NotFound, PacsIndexError
from pacsindex.progress import Progress, StatusFile
from pacsindex.scan import ScanOptions, run_index
from pacsindex.search import search
from pacsindex.sources import FileList, Source, source_for

log = logging.getLogger("pacsindex")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="index database (default ./pacsindex.db, or PACSINDEX_DB)")
    p.add_argument("--config", help="TOML settings file (or PACSINDEX_CONFIG)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pacsindex",
        description="Index DICOM archives in place, search them, and share one series safely.",
    )
    parser.add_argument("--version", action="version", version=f"pacsindex {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="index folders and/or a file list (incremental)")
    p.add_argument("roots", nargs="*", metavar="ROOT", help="folder, mapped drive or UNC path to index")
    p.add_argument("--list", dest="file_list", metavar="FILE", help="file list from PowerShell or robocopy")
    p.add_argument("--catalog", metavar="URL", help="firebird://user@host:port/path.fdb catalog of the files")
    p.add_argument("--mapping", metavar="FILE", help="mapping.toml: the catalog's query and columns")
    p.add_argument("--limit", type=_positive, metavar="N", help="stop after N files (a sample run)")
    p.add_argument(
        "--workers", type=_non_negative, metavar="N", help="header-reading processes (0: one per CPU)"
    )
    p.add_argument(
        "--status-file", metavar="FILE", help="status JSON (default index_status.json beside the db)"
    )
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.add_argument("--json-out", metavar="FILE", help="also write every series with its files as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _common(p)

    p = sub.add_parser("series", help="list series, or show one series with its files")
    p.add_argument("key", nargs="?", metavar="KEY", help="a SeriesKey")
    p.add_argument("--json", action="store_true")
    _common(p)

    p = sub.add_parser("search", help="find series by patient name, ID, accession or description")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--limit", type=_positive, default=100, metavar="N")
    p.add_argument("--modality", metavar="CODE")
    p.add_argument("--date-from", metavar="YYYY-MM-DD")
    p.add_argument("--date-to", metavar="YYYY-MM-DD")
    p.add_argument("--medical-aid", metavar="NAME", help="only patients of this medical scheme")
    p.add_argument("--hospital", metavar="NAME", help="only studies from this hospital")
    p.add_argument("--hospital-group", metavar="NAME", help="only studies from this group (e.g. Netcare)")
    p.add_argument("--json", action="store_true")
    _common(p)

    p = sub.add_parser("problems", help="files that could not be indexed, non-DICOM files, bare images")
    p.add_argument(
        "--kind",
        choices=("error", "non_dicom", "images"),
        default="error",
        help="error: corrupt or unreadable files and folders (default); non_dicom: other files; "
        "images: folders of images without a DICOM header (raw JPEG 2000, JP2)",
    )
    p.add_argument("--limit", type=_positive, default=1000, metavar="N")
    p.add_argument("--json", action="store_true")
    _common(p)

    p = sub.add_parser("sample", help="write a synthetic DICOM archive for demos and tests")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--patients", type=_positive, default=20)
    p.add_argument("--files", type=_positive, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-v", "--verbose", action="count", default=0)

    for extend in _EXTENSIONS:
        extend(sub)
    return parser


# Later features (the web service, users, shares) register their sub-commands here.
_EXTENSIONS: list[Any] = []


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def settings_from(args: argparse.Namespace) -> config.Settings:
    settings = config.load(getattr(args, "config", None))
    return settings.with_overrides(db=getattr(args, "db", None))


def _print_json(data: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump(data, out, ensure_ascii=False, indent=2)
    out.write("\n")


# -- index ---------------------------------------------------------------------------------------------


class _Bar:
    """The live terminal progress bar (rich): files/s, and an ETA once the total is known."""

    def __init__(self, enabled: bool) -> None:
        self.progress = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>8.0f} files/s"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("errors {task.fields[errors]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task("indexing", total=None, rate=0.0, eta="--:--", errors=0)
        self.progress.start()

    def update(self, p: Progress) -> None:
        if self.progress is None:
            return
        eta = "--:--" if p.eta_s is None else f"{int(p.eta_s // 60):02d}:{int(p.eta_s % 60):02d}"
        self.progress.update(
            self.task,
            completed=p.files_processed,
            total=p.enumerated_files if p.enumeration_done else None,
            rate=p.files_per_s,
            eta=eta,
            errors=p.errors,
            description="indexing" if p.running else p.state,
        )

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def cmd_index(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.workers is not None:
        settings = settings.with_overrides(workers=args.workers)
    if args.status_file:
        settings = settings.with_overrides(status_file=args.status_file)
    sources: list[Source] = [source_for(root, settings) for root in args.roots]
    if args.file_list:
        sources.append(FileList(args.file_list))
    if args.catalog or args.mapping:
        if not (args.catalog and args.mapping):
            raise PacsIndexError("--catalog and --mapping go together")
        from pacsindex.catalog import CatalogSource

        sources.append(CatalogSource(args.catalog, args.mapping))
    if not sources:
        raise PacsIndexError("nothing to index: give one or more ROOT folders or --list FILE")
    status = StatusFile(settings.status_path, settings.tz)
    bar = _Bar(enabled=not args.no_progress and sys.stderr.isatty())
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        status.submit(p)
        bar.update(p)

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        print("\nstopping after the files in progress (Ctrl-C again to abort)...", file=sys.stderr)
        cancel.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        result = run_index(
            settings.db,
            sources,
            ScanOptions(workers=settings.workers, limit=args.limit),
            on_progress=on_progress,
            cancel=cancel,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
        status.close()
        bar.stop()
    if args.json_out:
        write_index_json(settings.db, Path(args.json_out))
    summary = {k: v for k, v in result.as_status(settings.tz).items()}
    if args.json:
        _print_json(summary)
    else:
        print(_summary_line(result), file=sys.stderr)
    return 0 if result.state in ("completed", "cancelled") else 1


def _summary_line(p: Progress) -> str:
    line = (
        f"{p.state}: {p.files_processed} files ({p.files_read} read, {p.files_unchanged} unchanged, "
        f"{p.files_removed} removed), {p.series_count} series, {p.errors} errors, {p.non_dicom} non-DICOM"
    )
    return line + (f" — {p.message}" if p.message else "")


def write_index_json(db: Path, out: Path) -> None:
    """The seed's index.json: a list of series with their fields and files, written as a stream."""
    tmp = out.with_name(out.name + ".tmp")
    with store.reading(db) as conn, open(tmp, "w", encoding="utf-8") as fh:
        fh.write("[")
        first = True
        for s in store.list_series(conn):
            detail = store.get_series(conn, s["SeriesKey"])
            assert detail is not None
            s["files"] = [f["path"] for f in store.series_files(conn, detail["series_id"])]
            fh.write("\n" if first else ",\n")
            json.dump(s, fh, ensure_ascii=False)
            first = False
        fh.write("\n]\n")
    os.replace(tmp, out)


# -- series / search -----------------------------------------------------------------------------------


_TABLE_COLUMNS = (
    "PatientName",
    "PatientID",
    "StudyDate",
    "Modality",
    "SeriesDescription",
    "file_count",
    "SeriesKey",
)


def _table(rows: list[dict[str, Any]]) -> None:
    """A table on a terminal; tab-separated lines when piped, so nothing is cut short."""
    cells = [["" if r.get(c) is None else str(r[c]) for c in _TABLE_COLUMNS] for r in rows]
    if not sys.stdout.isatty():
        print("\t".join(_TABLE_COLUMNS))
        for line in cells:
            print("\t".join(line))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_lines=False)
        for col in _TABLE_COLUMNS:
            table.add_column(col, overflow="fold")
        for line in cells:
            table.add_row(*line)
        Console().print(table)
    print(f"{len(rows)} series", file=sys.stderr)


def cmd_series(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with store.reading(settings.db) as conn:
        if args.key:
            detail = store.get_series(conn, args.key)
            if detail is None:
                raise NotFound(f"no series with SeriesKey {args.key}")
            row = {k: detail[k] for k in store.SERIES_COLUMNS}
            row["files"] = [f["path"] for f in store.series_files(conn, detail["series_id"])]
            if args.json:
                _print_json(row)
            else:
                for k, v in row.items():
                    if k != "files":
                        print(f"{k:>20}: {'' if v is None else v}")
                print("files:")
                for path in row["files"]:
                    print(f"  {path}")
            return 0
        rows = store.list_series(conn)
    if args.json:
        _print_json(rows)
    else:
        _table(rows)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with store.reading(settings.db) as conn:
        rows = search(
            conn,
            args.query,
            modality=args.modality,
            date_from=args.date_from,
            date_to=args.date_to,
            medical_aid=args.medical_aid,
            hospital=args.hospital,
            hospital_group=args.hospital_group,
            limit=args.limit,
        )
    if args.json:
        _print_json(rows)
    else:
        _table(rows)
    return 0


def cmd_problems(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    with store.reading(settings.db) as conn:
        if args.kind == "images":
            rows = store.images_without_header(conn, limit=args.limit)
        else:
            rows = store.problems(conn, args.kind, limit=args.limit)
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            print("\t".join(str(v) for v in r.values()))
        print(f"{len(rows)} {'folders' if args.kind == 'images' else 'files'}", file=sys.stderr)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from pacsindex.sample import write_sample

    summary = write_sample(args.dir, patients=args.patients, files=args.files, seed=args.seed)
    print(
        f"wrote {summary.files} DICOM files ({summary.patients} patients, {summary.studies} studies, "
        f"{summary.series} series) and {summary.other_files} other files under {summary.root}",
        file=sys.stderr,
    )
    return 0


# -- web service and staff accounts --------------------------------------------------------------------


def _add_web_commands(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the web page and JSON API to signed-in staff")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=_positive, help="TCP port (default 8080)")
    _common(p)

    p = sub.add_parser("user", help="staff accounts for the web service")
    actions = p.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    u = actions.add_parser("add", help="create an account (password prompted, or --generate)")
    u.add_argument("name", metavar="NAME")
    u.add_argument("--admin", action="store_true", help="may manage accounts and read the audit log")
    _password_options(u)
    u = actions.add_parser("passwd", help="set a new password (signs the user out everywhere)")
    u.add_argument("name", metavar="NAME")
    _password_options(u)
    u = actions.add_parser("list", help="list the accounts")
    u.add_argument("--json", action="store_true")
    _common(u)
    for action, text in (
        ("disable", "stop an account signing in (ends its sessions)"),
        ("enable", "let a disabled account sign in again"),
    ):
        u = actions.add_parser(action, help=text)
        u.add_argument("name", metavar="NAME")
        _common(u)
    u = actions.add_parser("admin", help="grant admin rights (--revoke takes them away)")
    u.add_argument("name", metavar="NAME")
    u.add_argument("--revoke", action="store_true")
    _common(u)


def _password_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--generate", action="store_true", help="generate a password and print it once")
    g.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _common(p)


_EXTENSIONS.append(_add_web_commands)


def _new_password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated) as the options ask: generated, one line of stdin, or typed twice."""
    import getpass

    from pacsindex.auth import check_password, generate_password

    if args.generate:
        return generate_password(), True
    if args.password_stdin:
        return check_password(sys.stdin.readline().rstrip("\r\n")), False
    if not sys.stdin.isatty():
        raise PacsIndexError("no terminal to ask for a password on: use --generate or --password-stdin")
    first = check_password(getpass.getpass(f"password for {args.name}: "))
    if getpass.getpass("the same again: ") != first:
        raise PacsIndexError("the two passwords differ; nothing changed")
    return first, False


def cmd_user(args: argparse.Namespace) -> int:
    from pacsindex import audit
    from pacsindex.auth import Accounts

    settings = settings_from(args)
    accounts = Accounts(settings.db)
    log_entry = audit.AuditLog(settings.db)
    who = "cli:" + _os_user()
    if args.user_command == "list":
        users = [u.public() for u in accounts.list_users()]
        if args.json:
            _print_json(users)
        else:
            for u in users:
                flags = ", ".join(f for f in ("admin", "disabled") if u["is_admin" if f == "admin" else f])
                last = u["last_signin_at"] or "never signed in"
                print(f"{u['name']}\t{flags or 'staff'}\tlast sign-in: {last}")
            print(f"{len(users)} accounts", file=sys.stderr)
        return 0
    if args.user_command in ("add", "passwd"):
        password, generated = _new_password(args)
        if args.user_command == "add":
            user = accounts.add_user(args.name, password, admin=args.admin)
            log_entry.record(audit.USER_ADD, who, "cli", name=user.name, admin=user.is_admin)
            print(f"created {'admin' if user.is_admin else 'staff'} account {user.name}", file=sys.stderr)
        else:
            accounts.set_password(args.name, password)
            log_entry.record(audit.USER_UPDATE, who, "cli", name=args.name, password="set")
            print(f"new password set for {args.name}; their sessions have ended", file=sys.stderr)
        if generated:
            print(f"password for {args.name} (shown this once): {password}")
        return 0
    changes: dict[str, bool] = {
        "disable": {"disabled": True},
        "enable": {"disabled": False},
        "admin": {"admin": not args.revoke},
    }[args.user_command]
    user = accounts.update_user(args.name, **changes)
    log_entry.record(audit.USER_UPDATE, who, "cli", name=user.name, **changes)
    role = "admin" if user.is_admin else "staff"
    print(f"{user.name}: {role}, {'disabled' if user.disabled else 'enabled'}", file=sys.stderr)
    return 0


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from pacsindex.web import create_app
        from pacsindex.web.server import serve
    except ImportError as exc:
        raise PacsIndexError(f"the web service needs: pip install 'pacsindex[web]' ({exc})") from exc

    settings = settings_from(args).with_overrides(host=args.host, port=args.port)
    if args.verbose == 0:
        logging.getLogger().setLevel(logging.INFO)  # start-up, then method + path of each request
    app = create_app(settings)
    if not app.state.pacsindex.accounts.list_users():
        print(
            "pacsindex: no staff accounts yet; create one with: "
            f"pacsindex user add NAME --admin --db {settings.db}",
            file=sys.stderr,
        )
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.secure_cookies:
        print(
            "pacsindex: warning: serving to the network over plain HTTP; put an HTTPS reverse proxy in front "
            "and set PACSINDEX_SECURE_COOKIES=1 (patient data must not cross the network unencrypted)",
            file=sys.stderr,
        )
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{shown}:{settings.port}/"
    print(f"pacsindex: serving {settings.db} at {url} (Ctrl-C stops)", file=sys.stderr)
    serve(app, settings)
    return 0


# -- send to Orthanc (the logic is in pacsindex.orthanc) ------------------------------------------------


def _add_orthanc_command(sub: Any) -> None:
    from pacsindex.orthanc import add_cli_parser

    add_cli_parser(sub, _common)


_EXTENSIONS.append(_add_orthanc_command)


def cmd_send_to_orthanc(args: argparse.Namespace) -> int:
    from pacsindex.orthanc import run_cli

    return run_cli(args, settings_from(args), who="cli:" + _os_user())


# -- API tokens for DICOMweb (the logic is in pacsindex.apitokens) ----------------------------------------


def _add_token_command(sub: Any) -> None:
    from pacsindex.apitokens import add_cli_parser

    add_cli_parser(sub, _common)


_EXTENSIONS.append(_add_token_command)


def cmd_token(args: argparse.Namespace) -> int:
    from pacsindex.apitokens import run_cli

    return run_cli(args, settings_from(args).db, who="cli:" + _os_user())


COMMANDS: dict[str, Any] = {
    "index": cmd_index,
    "series": cmd_series,
    "search": cmd_search,
    "sample": cmd_sample,
    "problems": cmd_problems,
    "serve": cmd_serve,
    "user": cmd_user,
    "send-to-orthanc": cmd_send_to_orthanc,
    "token": cmd_token,
}


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
