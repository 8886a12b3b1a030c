"""The staff-side commands: `serve` (the web service), `user` (staff accounts), `token` (API tokens for
DICOMweb clients) and `send-to-orthanc` (one series to the practice's PACS). Every change they make to
accounts or tokens, and every send, goes to the audit log as `cli:<OS user>`."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from typing import TYPE_CHECKING, Any

from pacsindex.accounts import apitokens, audit
from pacsindex.cli.options import common, local_time, os_user, positive, print_json, settings_from
from pacsindex.errors import PacsIndexError

if TYPE_CHECKING:
    from pacsindex.orthanc import client as orthanc

# Named here, not imported: the Orthanc client pulls in httpx, ~0.1 s every command would pay at start-up.
ORTHANC_PASSWORD_ENV = "PACSINDEX_ORTHANC_PASSWORD"


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the web page and JSON API to signed-in staff")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=positive, help="TCP port (default 8080)")
    common(p)

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
    common(u)
    for action, text in (
        ("disable", "stop an account signing in (ends its sessions)"),
        ("enable", "let a disabled account sign in again"),
    ):
        u = actions.add_parser(action, help=text)
        u.add_argument("name", metavar="NAME")
        common(u)
    u = actions.add_parser("admin", help="grant admin rights (--revoke takes them away)")
    u.add_argument("name", metavar="NAME")
    u.add_argument("--revoke", action="store_true")
    common(u)
    _orthanc_parser(sub)
    _token_parser(sub)


def _orthanc_parser(sub: Any) -> None:
    p = sub.add_parser(
        "send-to-orthanc", help="upload one series to the practice's Orthanc (skips what it already has)"
    )
    p.add_argument("key", metavar="KEY", help="a SeriesKey from `pacsindex search`")
    p.add_argument("--url", help="Orthanc's REST address, e.g. http://pacs:8042 (default: the saved one)")
    p.add_argument(
        "--user", help=f"Orthanc user (default: the saved one); the password from {ORTHANC_PASSWORD_ENV}"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    common(p)


def _token_parser(sub: Any) -> None:
    p = sub.add_parser("token", help="API tokens for DICOMweb clients (Orthanc, OHIF, Weasis)")
    actions = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    a = actions.add_parser("add", help="make a token and print it once")
    a.add_argument("name", metavar="NAME", help="which PACS or viewer will use it")
    common(a)
    a = actions.add_parser("list", help="list the tokens (never their values)")
    a.add_argument("--json", action="store_true")
    common(a)
    a = actions.add_parser("revoke", help="end a token for good")
    a.add_argument("id", metavar="ID", type=int)
    common(a)


def _password_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--generate", action="store_true", help="generate a password and print it once")
    g.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    common(p)


def _new_password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated) as the options ask: generated, one line of stdin, or typed twice."""
    import getpass

    from pacsindex.accounts.auth import check_password, generate_password

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
    from pacsindex.accounts.auth import Accounts

    settings = settings_from(args)
    accounts = Accounts(settings.db)
    log_entry = audit.AuditLog(settings.db)
    who = "cli:" + os_user()
    if args.user_command == "list":
        users = [u.public() for u in accounts.list_users()]
        if args.json:
            print_json(users)
        else:
            for u in users:
                flags = ", ".join(f for f in ("admin", "disabled") if u["is_admin" if f == "admin" else f])
                last = local_time(u["last_signin_at"], settings.tz, "never signed in")
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


def cmd_serve(args: argparse.Namespace) -> int:
    from pacsindex.web import create_app
    from pacsindex.web.server import check_port, serve

    settings = settings_from(args).with_overrides(host=args.host, port=args.port)
    check_port(settings.host, settings.port)  # one line and exit 2, not uvicorn's log and traceback
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


# -- send to Orthanc -----------------------------------------------------------------------------------


def cmd_send_to_orthanc(args: argparse.Namespace) -> int:
    """`pacsindex send-to-orthanc KEY`: 0 when every file is in Orthanc, 1 when some failed."""
    from pacsindex.orthanc import client as orthanc

    settings = settings_from(args)
    who = "cli:" + os_user()
    conn = orthanc.connection_for(settings.data_path, url=args.url, user=args.user, env=os.environ)
    key = str(args.key).strip().lower()
    orthanc.series_files(settings.db, key)  # NotFound before anything is sent or logged
    send_id = "cli-" + secrets.token_hex(4)
    entries = audit.AuditLog(settings.db)
    entries.record(audit.ORTHANC_SEND, who, "cli", SeriesKey=key, send=send_id, orthanc=conn.url)
    bar = _SendBar(enabled=not args.no_progress and sys.stderr.isatty())
    try:
        with orthanc.OrthancClient(conn) as client:
            result = orthanc.send_series(settings.db, key, client, on_progress=bar.update, settings=settings)
    except PacsIndexError as exc:
        entries.record(
            audit.ORTHANC_SEND,
            who,
            "cli",
            SeriesKey=key,
            send=send_id,
            state="failed",
            error=type(exc).__name__,
        )
        raise
    finally:
        bar.stop()
    counts = {"total": result.total, "sent": result.sent, "skipped": result.skipped, "failed": result.failed}
    entries.record(audit.ORTHANC_SEND, who, "cli", SeriesKey=key, send=send_id, state="completed", **counts)
    if args.json:
        print_json(result.as_dict())
    for failure in result.failures:
        print(f"failed: {failure.path}: {failure.reason}", file=sys.stderr)
    print(
        f"sent to Orthanc at {conn.url}: {result.sent} sent, {result.skipped} already there, "
        f"{result.failed} failed, of {result.total} files",
        file=sys.stderr,
    )
    return 1 if result.failed else 0


class _SendBar:
    """The terminal progress bar (rich), like `pacsindex index` shows."""

    def __init__(self, enabled: bool) -> None:
        self.progress: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn

        self.progress = Progress(
            TextColumn("[bold]sending"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TextColumn("sent {task.fields[sent]} · already there {task.fields[skipped]}"),
            TextColumn("failed {task.fields[failed]}"),
            console=Console(stderr=True),
        )
        self.task = self.progress.add_task("sending", total=None, sent=0, skipped=0, failed=0)
        self.progress.start()

    def update(self, p: orthanc.SendProgress) -> None:
        if self.progress is not None:
            self.progress.update(
                self.task, completed=p.done, total=p.total, sent=p.sent, skipped=p.skipped, failed=p.failed
            )

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


# -- API tokens for DICOMweb clients -----------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    """`pacsindex token add|list|revoke`: the token itself goes to stdout, everything else to stderr."""
    settings = settings_from(args)
    db = settings.db
    who = "cli:" + os_user()
    tokens = apitokens.ApiTokens(db)
    if args.token_command == "list":
        listed = [t.public() for t in tokens.list_tokens()]
        if args.json:
            print_json(listed)
            return 0
        for t in listed:
            state = "in force" if t["active"] else f"revoked {local_time(t['revoked_at'], settings.tz)}"
            used = local_time(t["last_used_at"], settings.tz, "never")
            print(f"{t['id']}\t{t['name']}\t{state}\tlast used: {used}")
        print(f"{len(listed)} tokens", file=sys.stderr)
        return 0
    log_entry = audit.AuditLog(db)
    if args.token_command == "add":
        token, secret = tokens.create(args.name, who)
        log_entry.record(audit.TOKEN_CREATE, who, "cli", id=token.id, name=token.name)
        print(f"token {token.id} for {token.name}, shown this once: give it to the client", file=sys.stderr)
        print(secret)
        return 0
    token = tokens.revoke(args.id)
    log_entry.record(audit.TOKEN_REVOKE, who, "cli", id=token.id, name=token.name)
    print(f"token {token.id} for {token.name} revoked", file=sys.stderr)
    return 0
