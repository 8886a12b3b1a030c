"""The operations commands: `purge`, `backup`, `restore`, `access-report`, `audit-export` and `service`.

Each one that touches patient data or the audit log is itself audited as `cli:<os user>`.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pacsindex.accounts import audit
from pacsindex.cli.options import common, os_user, print_json, settings_from
from pacsindex.errors import InvalidQuery

__all__ = ["COMMANDS", "add_parsers"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("purge", help="remove what is older than the retention ages (POPIA s14)")
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    p.add_argument("--json", action="store_true")
    common(p)

    p = sub.add_parser("backup", help="copy the index, share store and saved settings into a new folder")
    p.add_argument("dest", metavar="DEST", help="a new (or empty) folder for this backup")
    p.add_argument("--json", action="store_true")
    common(p)

    p = sub.add_parser("restore", help="check a backup and put it in place (stop the web service first)")
    p.add_argument("src", metavar="SRC", help="a folder `pacsindex backup` wrote")
    p.add_argument("--json", action="store_true")
    common(p)

    p = sub.add_parser("access-report", help="every access to one patient's records (POPIA s23)")
    p.add_argument("patient", metavar="NAME_OR_ID", help="the patient's ID, or words of the name")
    p.add_argument(
        "--out", metavar="FILE", help="write FILE.csv or FILE.pdf (by its ending); default: CSV on stdout"
    )
    common(p)

    p = sub.add_parser("audit-export", help="the audit log for a date range as CSV")
    p.add_argument("--from", dest="date_from", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", required=True, metavar="YYYY-MM-DD")
    p.add_argument("--out", metavar="FILE", help="default: stdout")
    common(p)

    p = sub.add_parser("service", help="run `pacsindex serve` as a Windows service (Task Scheduler)")
    p.add_argument("action", choices=("install", "uninstall", "xml"))
    p.add_argument(
        "--account", default="NT AUTHORITY\\NETWORK SERVICE", help="the Windows account it runs as"
    )
    p.add_argument("--python", help="python.exe to run (default: this one)")
    common(p)


def _who() -> str:
    return "cli:" + os_user()


def cmd_purge(args: argparse.Namespace) -> int:
    from pacsindex.ops.retention import purge  # here: other commands need not load it

    settings = settings_from(args)
    done = purge(settings, now=time.time(), dry_run=args.dry_run)
    if not args.dry_run:
        audit.AuditLog(settings.db).record(audit.PURGE, _who(), "cli", **done.counts, before=done.before)
    if args.json:
        print_json({"dry_run": done.dry_run, "counts": done.counts, "before": done.before})
    verb = "would remove" if done.dry_run else "removed"
    for kind, n in done.counts.items():
        print(f"{verb} {n} {kind.replace('_', ' ')} (older than {done.before[kind]})", file=sys.stderr)
    print(f"{verb} {done.total} entries in all", file=sys.stderr)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from pacsindex.ops import backup as backups

    settings = settings_from(args)
    manifest = backups.backup(settings, Path(args.dest))
    audit.AuditLog(settings.db).record(audit.BACKUP, _who(), "cli", dest=str(args.dest), made="backup")
    if args.json:
        print_json(manifest)
    counts = manifest["index"]["counts"]
    print(
        f"backup written to {args.dest}: {counts.get('series', 0)} series, {counts.get('audit', 0)} audit "
        f"entries, {len(manifest['settings'])} saved settings; keep it as safe as the index itself",
        file=sys.stderr,
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pacsindex.ops import backup as backups

    settings = settings_from(args)
    manifest = backups.restore(settings, Path(args.src))
    audit.AuditLog(settings.db).record(
        audit.BACKUP, _who(), "cli", src=str(args.src), made="restore", backup_made_at=manifest.get("made_at")
    )
    if args.json:
        print_json(manifest)
    print(f"restored the backup made {manifest.get('made_at')} to {settings.db}", file=sys.stderr)
    return 0


def cmd_access_report(args: argparse.Namespace) -> int:
    from pacsindex.ops import reports
    from pacsindex.ops.pdf import report_pdf

    settings = settings_from(args)
    query = str(args.patient).strip()
    found = reports.find_patients(settings.db, query)
    exact = [p for p in found if p["PatientID"] and p["PatientID"].casefold() == query.casefold()]
    ids = {p["PatientID"] for p in (exact or found)}
    if not found:
        raise InvalidQuery(f"no patient matches {query!r}")
    if len(ids) > 1:
        for p in found:
            print(f"{p['PatientID']}\t{p['PatientName']}\t{p['PatientBirthDate'] or ''}", file=sys.stderr)
        raise InvalidQuery("several patients match: give one of the IDs above")
    chosen = (exact or found)[0]
    report = reports.access_report(
        settings.db,
        chosen["PatientID"],
        tz=settings.tz,
        now=datetime.now(timezone.utc),
        name=chosen["PatientName"],
    )
    out = Path(args.out) if args.out else None
    fmt = "pdf" if out is not None and out.suffix.lower() == ".pdf" else "csv"
    audit.AuditLog(settings.db).record(
        audit.ACCESS_REPORT,
        _who(),
        "cli",
        PatientID=chosen["PatientID"],
        format=fmt,
        accesses=len(report.accesses),
    )
    if out is None:
        sys.stdout.write(reports.report_csv(report))
    elif fmt == "pdf":
        out.write_bytes(report_pdf(report))
    else:
        out.write_text(reports.report_csv(report), encoding="utf-8", newline="")
    print(f"{len(report.accesses)} accesses to the records of patient {chosen['PatientID']}", file=sys.stderr)
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    from pacsindex.ops import reports

    settings = settings_from(args)
    since, until = reports.date_range(args.date_from, args.date_to, settings.tz)
    audit.AuditLog(settings.db).record(
        audit.AUDIT_EXPORT, _who(), "cli", date_from=args.date_from, date_to=args.date_to
    )
    lines = reports.audit_csv(settings.db, since, until, settings.tz)
    if args.out:
        with open(args.out, "w", encoding="utf-8", newline="") as fh:
            fh.writelines(lines)
    else:
        sys.stdout.writelines(lines)
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    from pacsindex.ops import winservice

    config = args.config
    if args.action != "uninstall" and not config:
        raise InvalidQuery("give --config FILE: the settings file the service runs with")
    if args.action == "uninstall":
        winservice.run(winservice.uninstall_command())
        print("the pacsindex task is removed", file=sys.stderr)
        return 0
    xml = winservice.task_xml(str(Path(config).absolute()), python=args.python, account=args.account)
    if args.action == "xml":
        sys.stdout.write(xml)
        return 0
    settings = settings_from(args)
    target = settings.data_path / "pacsindex-task.xml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(xml, encoding="utf-16")
    print(f"task definition written to {target}", file=sys.stderr)
    winservice.run(winservice.install_command(str(target), args.account))
    print("registered: pacsindex serve starts one minute after every boot", file=sys.stderr)
    return 0


COMMANDS = {
    "purge": cmd_purge,
    "backup": cmd_backup,
    "restore": cmd_restore,
    "access-report": cmd_access_report,
    "audit-export": cmd_audit_export,
    "service": cmd_service,
}
