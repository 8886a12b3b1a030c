"""What the page tells staff, in their words: the domain's messages are written for whoever runs the
command line (environment variables, `net use`, `pacsindex index`); in the web page the same problems point
to the Settings page instead. Applied to error answers and to the indexing status's message."""

from __future__ import annotations

import re

__all__ = ["for_staff"]

# (pattern, replacement), applied in order; the first ones name the NAS account, the last catches any
# other setting's variable name.
_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\s*Or map the share in Windows \(net use[^\n]*$"), ""),
    (re.compile(r"\s*\(in Windows, net view [^)]*\)"), ""),
    (
        re.compile(r"(check|set) PACSINDEX_SMB_USER and\s+PACSINDEX_SMB_PASSWORD \(or the NAS settings\)"),
        r"\1 the NAS user and password on the Settings page (Settings → NAS)",
    ),
    (
        re.compile(r"run `pacsindex index ROOT --db DB` on the server"),
        "ask an admin to start it on the Indexing page",
    ),
    (re.compile(r"\s*\(POST /api/index/start\)"), ""),
    (re.compile(r"\bPACSINDEX_[A-Z_]+\b"), "the server's settings"),
]


def for_staff(text: str | None) -> str | None:
    """The message without environment variables or Windows commands; None stays None."""
    if not text:
        return text
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return text.strip()
