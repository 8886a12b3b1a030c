"""The archive commands: `index`, `series`, `search`, `problems` and `sample`."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pacsindex.cli.options import common, non_negative, positive, print_json, settings_from
from pacsindex.errors import ConfigError, NotFound, OutputError, PacsIndexError
from pacsindex.index import store
from pacsindex.index.sa.samatch import load_tables
from pacsindex.index.search import search
from pacsindex.ingest.progress import Progress, StatusFile
from pacsindex.ingest.scan import ScanOptions, run_index
from pacsindex.sources.files import FileList, Source, source_for


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("index", help="index folders and/or a file list (incremental)")
    p.add_argument("roots", nargs="*", metavar="ROOT", help="folder, mapped drive or UNC path to index")
    p.add_argument("--list", dest="file_list", metavar="FILE", help="file list from PowerShell or robocopy")
    p.add_argument("--catalog", metavar="URL", help="firebird://user@host:port/path.fdb catalog of the files")
    p.add_argument("--mapping", metavar="FILE", help="mapping.toml: the catalog's query and columns")
    p.add_argument("--limit", type=positive, metavar="N", help="stop after N files (a sample run)")
    p.add_argument(
        "--full",
        action="store_true",
        help="list every folder, also patients' folders quiet since the last run (catches files rewritten "
        "in place and late additions to old studies; `pacsindex serve` does this nightly)",
    )
    p.add_argument(
        "--no-survey",
        dest="survey",
        action="store_false",
        help="read each new folder whole as it is found (by default a first index reads one file of each"
        " new folder first, so every series is searchable early)",
    )
    p.add_argument(
        "--workers", type=non_negative, metavar="N", help="header-reading processes (0: one per CPU)"
    )
    p.add_argument(
        "--status-file", metavar="FILE", help="status JSON (default index_status.json beside the db)"
    )
    p.add_argument(
        "--retry-errors",
        action="store_true",
        help="read every file stored as an error again (transient ones are retried anyway)",
    )
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.add_argument("--json-out", metavar="FILE", help="also write every series with its files as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--watch",
        type=interval,
        metavar="INTERVAL",
        help="index again every INTERVAL (e.g. 15m, 30s, 1h) until Ctrl-C, without the web service",
    )
    common(p)

    p = sub.add_parser("series", help="list series, or show one series with its files")
    p.add_argument("key", nargs="?", metavar="KEY", help="a SeriesKey")
    p.add_argument("--json", action="store_true")
    common(p)

    p = sub.add_parser("search", help="find series by patient name, ID, accession or description")
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--limit", type=positive, default=100, metavar="N")
    p.add_argument("--modality", metavar="CODE")
    p.add_argument("--date-from", metavar="YYYY-MM-DD")
    p.add_argument("--date-to", metavar="YYYY-MM-DD")
    p.add_argument(
        "--medical-aid", metavar="NAME", help="only patients of this medical scheme (a name or alias: GEMS)"
    )
    p.add_argument("--hospital", metavar="NAME", help="only studies from this hospital")
    p.add_argument("--hospital-group", metavar="NAME", help="only studies from this group (e.g. Netcare)")
    p.add_argument("--json", action="store_true")
    common(p)

    p = sub.add_parser("problems", help="files that could not be indexed, non-DICOM files, bare images")
    p.add_argument(
        "--kind",
        choices=("error", "non_dicom", "note", "images"),
        default="error",
        help="error: corrupt or unreadable files and folders (default); non_dicom: other files; "
        "note: files read but odd (what pydicom would warn about); "
        "images: folders of images without a DICOM header (raw JPEG 2000, JP2)",
    )
    p.add_argument("--limit", type=positive, default=1000, metavar="N")
    p.add_argument("--json", action="store_true")
    common(p)

    p = sub.add_parser("sample", help="write a synthetic DICOM archive for demos and tests")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--patients", type=positive, default=20)
    p.add_argument("--files", type=positive, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-v", "--verbose", action="count", default=0)


def interval(text: str) -> float:
    """`--watch` intervals: 90s, 15m, 1h, or plain minutes."""
    units = {"s": 1, "m": 60, "h": 3600}
    value, unit = (text[:-1], text[-1].lower()) if text[-1:].lower() in units else (text, "m")
    try:
        seconds = float(value) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an interval such as 30s, 15m or 1h") from None
    if not 1 <= seconds <= 7 * 86400:
        raise argparse.ArgumentTypeError("the interval must be between 1 second and a week")
    return seconds


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
            raise ConfigError("--catalog and --mapping go together: give both")
        from pacsindex.sources.catalog.reader import CatalogSource

        sources.append(CatalogSource(args.catalog, args.mapping, os.environ))
    if not sources:
        raise ConfigError("nothing to index: give one or more ROOT folders or --list FILE")
    if args.json_out:
        check_writable(Path(args.json_out))  # before the run, not after an hour of it
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
    result: Progress | None = None
    try:
        while True:
            try:
                result = run_index(
                    settings.db,
                    sources,
                    ScanOptions(
                        workers=settings.workers,
                        limit=args.limit,
                        retry_errors=args.retry_errors,
                        full=args.full,
                        survey=args.survey,
                        recent_s=settings.quick_recent_hours * 3600,
                    ),
                    on_progress=on_progress,
                    cancel=cancel,
                    tables=load_tables(settings.extra),
                )
            except PacsIndexError as exc:
                if args.watch is None:
                    raise
                print(f"pacsindex: this run failed: {exc}", file=sys.stderr)  # the next may succeed
            else:
                if args.watch is None or cancel.is_set():
                    break
                print(_summary_line(result), file=sys.stderr)
            print(f"next run in {args.watch:g} s (Ctrl-C stops)", file=sys.stderr, flush=True)
            if cancel.wait(args.watch):  # Ctrl-C while waiting: stop cleanly
                break
    finally:
        signal.signal(signal.SIGINT, previous)
        status.close()
        bar.stop()
    if result is None:  # --watch, stopped before any run succeeded
        return 1
    if args.json_out:
        try:
            write_index_json(settings.db, Path(args.json_out))
        except OSError as exc:
            raise OutputError(f"cannot write --json-out {args.json_out}: {exc.strerror or exc}") from exc
    summary = {k: v for k, v in result.as_status(settings.tz).items()}
    if args.json:
        print_json(summary)
    else:
        print(_summary_line(result), file=sys.stderr)
    return 0 if result.state in ("completed", "cancelled") else 1


def _summary_line(p: Progress) -> str:
    line = (
        f"{p.state}: {p.files_processed} files ({p.files_read} read, {p.files_unchanged} unchanged, "
        f"{p.files_removed} removed), {p.series_count} series, {p.errors} errors, {p.non_dicom} non-DICOM"
    )
    return line + (f" — {p.message}" if p.message else "")


def check_writable(out: Path) -> None:
    """OutputError now if `out` cannot be written (its folder missing or read-only, or it is a folder)."""
    probe = out.with_name(out.name + ".tmp")
    try:
        if out.is_dir():
            raise IsADirectoryError(21, "it is a folder")
        with open(probe, "w", encoding="utf-8"):
            pass
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write --json-out {out}: {exc.strerror or exc}") from exc


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
    from pacsindex.dicom import person_name, shown_date

    shown = {"PatientName": person_name, "StudyDate": shown_date}  # as reception says them; --json keeps them
    cells = [["" if r.get(c) is None else shown.get(c, str)(r[c]) for c in _TABLE_COLUMNS] for r in rows]
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
                print_json(row)
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
        print_json(rows)
    else:
        _table(rows)
    return 0


def _canonical(what: str, text: str | None, settings: Any) -> str | None:
    """A search filter's name as the index stores it: any alias or spelling of a medical scheme ("GEMS"),
    hospital ("CHBAH") or hospital group is taken for its name (and the name said on stderr); a name the
    tables do not know is searched as given, with the closest names suggested."""
    if not text:
        return text
    from pacsindex.index.sa.samatch import load_tables

    tables = load_tables(settings.extra)
    found: str | None
    if what == "medical aid":
        aid = tables.medical_aid_named(text)
        found, close = (aid.name if aid else None), tables.medical_aid_suggestions(text)
    else:
        place = tables.hospital_named(text)
        found = (place.group if what == "hospital group" else place.name) if place else None
        close = tables.hospital_suggestions(text, groups=what == "hospital group")
    if found is not None:
        if found != text:
            print(f"{what} {text!r}: {found}", file=sys.stderr)
        return found
    if close:
        names = " or ".join(map(repr, close))
        print(f"no {what} is called {text!r}; did you mean {names}?", file=sys.stderr)
    return text


def cmd_search(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    medical_aid = _canonical("medical aid", args.medical_aid, settings)
    hospital = _canonical("hospital", args.hospital, settings)
    hospital_group = _canonical("hospital group", args.hospital_group, settings)
    with store.reading(settings.db) as conn:
        rows = search(
            conn,
            args.query,
            modality=args.modality,
            date_from=args.date_from,
            date_to=args.date_to,
            medical_aid=medical_aid,
            hospital=hospital,
            hospital_group=hospital_group,
            limit=args.limit,
        )
    if args.json:
        print_json(rows)
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
        print_json(rows)
    else:
        for r in rows:
            print("\t".join(str(v) for v in r.values()))
        print(f"{len(rows)} {'folders' if args.kind == 'images' else 'files'}", file=sys.stderr)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from pacsindex.sample.archive import write_sample

    try:
        summary = write_sample(args.dir, patients=args.patients, files=args.files, seed=args.seed)
    except OSError as exc:
        raise OutputError(f"cannot write the sample archive in {args.dir}: {exc.strerror or exc}") from exc
    print(
        f"wrote {summary.files} DICOM files ({summary.patients} patients, {summary.studies} studies, "
        f"{summary.series} series) and {summary.other_files} other files under {summary.root}",
        file=sys.stderr,
    )
    return 0


# -- web service and staff accounts --------------------------------------------------------------------
