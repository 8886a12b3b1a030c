"""What a log line may say about a request: `redact_path` replaces a share link's token, whatever spelling
the request used, and `RedactTokens` does the same (and drops query strings) in uvicorn's own log lines.

A share link's path holds its token, so the token must never reach a log. Clients, proxies and attackers
spell the same path many ways: `//share/T`, `/share//T`, `/Share/T`, `/api/../share/T`, `/%73hare/T`,
`/share%2FT`. The check is made on the normalised path (percent-decoded until stable, backslashes as
slashes, repeated slashes as one, `.` and `..` resolved, any letter case), so every spelling that names a
share link is redacted, even one the router would answer with 404.
"""

from __future__ import annotations

import logging
import posixpath
import re
from urllib.parse import unquote

__all__ = ["RedactTokens", "install", "redact_path", "redact_text"]

REDACTED = "/share/…"
_NOT_TOKENS = {"create"}  # /share/create is a staff route, not a link
_PATH_IN_TEXT = re.compile(r"(?<![\w.:/])/[^\s\"'<>]*")
_LOGGERS = ("uvicorn.access", "uvicorn.error")


def _normalised(path: str) -> str:
    for _ in range(4):  # %2573 -> %73 -> s: decode until nothing changes (bounded)
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    path = re.sub(r"/+", "/", path.replace("\\", "/"))
    return posixpath.normpath(path) if path.startswith("/") else path


def redact_path(path: str) -> str:
    """`path` fit for a log: a share link's path (any spelling) becomes `/share/…` plus what follows the
    token; any other path is returned as it is."""
    clean = _normalised(path.split("?", 1)[0])
    parts = clean.split("/")
    if len(parts) >= 3 and parts[0] == "" and parts[1].casefold() == "share":
        if parts[2].casefold() in _NOT_TOKENS and len(parts) == 3:
            return clean
        rest = "/".join(parts[3:])
        return REDACTED + ("/" + rest if rest else "")
    return path


def redact_text(text: str) -> str:
    """Every request target in `text` redacted; query strings (what was searched for) replaced by `?…`."""

    def one(match: re.Match[str]) -> str:
        target = match.group(0)
        path, query_mark, _ = target.partition("?")
        return redact_path(path) + ("?…" if query_mark else "")

    return _PATH_IN_TEXT.sub(one, text)


class RedactTokens(logging.Filter):
    """Redacts share tokens and query strings in a record's message and arguments (uvicorn's access log is
    off in pacsindex, but a deployment may turn it on, and an error line may quote a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_text(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_text(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        return True


def install() -> None:
    """Add the filter to uvicorn's loggers (once)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
