"""`pacsindex share create|list|revoke`: share links from the command line, with the same rules as the
web page (a whole study by default, a made-up passcode on request, de-identified links flagged for
burned-in text). The token, the link and a made-up passcode are printed once; times are shown in the
practice's zone. Creating and revoking go to the audit log as `cli:<OS user>`.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pacsindex.accounts import audit
from pacsindex.cli.options import common, os_user, positive, print_json
from pacsindex.cli.options import settings_from as _settings_from
from pacsindex.config.settings import Settings
from pacsindex.errors import ConfigError, Conflict
from pacsindex.index import store

if TYPE_CHECKING:
    from pacsindex.share.links import Shares

__all__ = ["add_parsers", "cmd_share"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("share", help="share links for referring doctors (create, list, revoke)")
    actions = p.add_subparsers(dest="share_command", required=True, metavar="ACTION")
    c = actions.add_parser("create", help="make a link to a study (or some of its series) and print it once")
    c.add_argument(
        "key", metavar="KEY", help="a SeriesKey from `pacsindex search`: its whole study is shared"
    )
    c.add_argument(
        "--series", action="append", default=[], metavar="KEY", help="only these series of the study (repeat)"
    )
    c.add_argument("--only-this-series", action="store_true", help="share KEY's series only, not its study")
    c.add_argument("--hours", type=positive, help="how long the link lasts (default share_default_hours)")
    c.add_argument(
        "--generate-passcode", action="store_true", help="make up a readable passcode, printed once"
    )
    c.add_argument("--passcode", action="store_true", help="type a passcode (asked for, never an argument)")
    c.add_argument("--max-downloads", type=positive, help="zip downloads allowed (default: no limit)")
    c.add_argument("--note", help='who it is for, e.g. "Dr Naidoo, Milpark orthopaedics"')
    c.add_argument(
        "--deidentify", action="store_true", help="remove patient identifiers (PS3.15 Basic Profile)"
    )
    c.add_argument(
        "--accept-burned-in", action="store_true", help="de-identify although the pixels may carry names"
    )
    c.add_argument("--url", help="the start of the link (default: the public_url setting)")
    c.add_argument("--json", action="store_true")
    common(c)
    ls = actions.add_parser("list", help="list share links, newest first")
    ls.add_argument("--limit", type=positive, default=50)
    ls.add_argument("--json", action="store_true")
    common(ls)
    r = actions.add_parser("revoke", help="end a link now")
    r.add_argument("id", metavar="ID", type=positive)
    common(r)


def cmd_share(args: argparse.Namespace) -> int:
    from pacsindex.share.links import Shares  # here: other commands need not load the share package

    settings = _settings_from(args)
    shares = Shares.from_settings(settings)
    if args.share_command == "create":
        return _create(args, settings, shares)
    if args.share_command == "list":
        return _list(args, settings, shares)
    share = shares.revoke(args.id, f"cli:{os_user()}")
    audit.AuditLog(settings.db).record(audit.SHARE_REVOKE, f"cli:{os_user()}", "cli", share_id=share.id)
    print(f"share {share.id} revoked", file=sys.stderr)
    return 0


def _when(ts: float | None, settings: Settings) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, settings.tz).strftime("%Y-%m-%d %H:%M %Z")


def _create(args: argparse.Namespace, settings: Settings, shares: Shares) -> int:
    from pacsindex.share import service

    base = (args.url or settings.public_url).rstrip("/")
    if not base:
        raise ConfigError("set public_url (or give --url https://...) so the link points at this server")
    passcode = None
    if args.passcode:
        passcode = getpass.getpass("Passcode for the link: ")
        if getpass.getpass("Again: ") != passcode:
            raise ConfigError("the two passcodes differ")
    with store.reading(settings.db) as conn:
        chosen = service.chosen_series(
            conn,
            study_of=None if args.only_this_series else args.key,
            series_keys=args.series or ([args.key] if args.only_this_series else []),
        )
        flagged = service.burned_in(conn, chosen, settings=settings) if args.deidentify else []
    if flagged and not args.accept_burned_in:
        for f in flagged:
            print(
                f"pacsindex: {f['Modality'] or 'a series'} {f['SeriesKey']}: {f['reason']}", file=sys.stderr
            )
        raise Conflict(
            "these series may carry names burned into the pixels: check them, then --accept-burned-in"
        )
    who = f"cli:{os_user()}"
    made = shares.create(
        [s["SeriesKey"] for s in chosen],
        who,
        expires_in_s=args.hours * 3600 if args.hours else None,
        passcode=passcode,
        generate_passcode=args.generate_passcode,
        max_downloads=args.max_downloads,
        note=args.note,
        deidentify=args.deidentify,
    )
    audit.AuditLog(settings.db).record(
        audit.SHARE_CREATE,
        who,
        "cli",
        share_id=made.share.id,
        series_keys=list(made.share.series_keys),
        PatientName=chosen[0]["PatientName"],
        PatientID=chosen[0]["PatientID"],
        deidentified=made.share.deidentified,
        note=made.share.note,
    )
    url = f"{base}/share/{made.token}"
    practice = service.practice(settings.data_path)["name"]
    text = service.message(url, made.share, chosen, settings.tz, practice)
    if args.json:
        print_json(
            {
                "id": made.share.id,
                "url": url,
                "passcode": made.passcode,
                "message": text,
                "expires_at": _when(made.share.expires_at, settings),
                "series": len(chosen),
            }
        )
        return 0
    print(
        f"Link ({len(chosen)} series, valid until {_when(made.share.expires_at, settings)}), shown only now:"
    )
    print(url)
    if made.passcode:
        print(f"Passcode (send it another way than the link): {made.passcode}")
    print("\nMessage to send:\n" + text)
    return 0


def _list(args: argparse.Namespace, settings: Settings, shares: Shares) -> int:
    items = shares.recent(limit=min(args.limit, 500))
    now = shares.clock()
    rows: list[dict[str, Any]] = [
        {
            "id": s.id,
            "status": s.status(now),
            "created": _when(s.created_at, settings),
            "expires": _when(s.expires_at, settings),
            "by": s.created_by,
            "series": len(s.series_keys),
            "downloads": s.downloads if s.max_downloads is None else f"{s.downloads}/{s.max_downloads}",
            "deidentified": s.deidentified,
            "note": s.note or "",
        }
        for s in items
    ]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no share links yet", file=sys.stderr)
        return 0
    print(f"{'id':>5}  {'status':<8} {'created':<21} {'expires':<21} {'by':<12} series  downloads  for")
    for r in rows:
        note = ("(de-identified) " if r["deidentified"] else "") + r["note"]
        print(
            f"{r['id']:>5}  {r['status']:<8} {r['created']:<21} {r['expires']:<21} {r['by'][:12]:<12} "
            f"{r['series']:>6}  {r['downloads']!s:>9}  {note}"
        )
    return 0
