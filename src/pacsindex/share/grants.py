"""Signed values a recipient's browser holds for a share link: a grant (this browser gave the passcode)
and a download ticket (Download was pressed: fetch and resume this zip without using another download).
Each is `<share id>.[<log id>.]<until>.<HMAC-SHA256>` over the share, its token hash and the expiry, with
a key held in memory only: they never outlive the process, and nothing in shares.db can forge one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

from pacsindex.share.store import Share

__all__ = ["Signer"]


class Signer:
    def __init__(self, clock: Callable[[], float], grant_s: float, ticket_s: float) -> None:
        self.clock = clock
        self.grant_s = grant_s
        self.ticket_s = ticket_s
        self._key = secrets.token_bytes(32)

    def _mac(self, share: Share, until: int, what: str) -> str:
        message = f"{what}.{share.id}.{until}.{share.token_hash}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def grant(self, share: Share) -> str:
        """Valid for `grant_s`, never past the link's own expiry."""
        until = int(min(self.clock() + self.grant_s, share.expires_at))
        return f"{share.id}.{until}.{self._mac(share, until, 'grant')}"

    def granted(self, share: Share, value: str | None) -> bool:
        if not value or len(value) > 200:
            return False
        parts = value.split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            return False
        if int(parts[0]) != share.id or int(parts[1]) <= self.clock():
            return False
        return hmac.compare_digest(parts[2], self._mac(share, int(parts[1]), "grant"))

    def ticket(self, share: Share, log_id: int) -> str:
        """For the download reserved in access-log row `log_id`: valid for `ticket_s`, never past the
        link's expiry."""
        until = int(min(self.clock() + self.ticket_s, share.expires_at))
        return f"{share.id}.{log_id}.{until}.{self._mac(share, until, f'ticket{log_id}')}"

    def ticket_valid(self, share: Share, ticket: object) -> bool:
        parts = ticket.split(".") if isinstance(ticket, str) and len(ticket) < 200 else []
        return (
            len(parts) == 4
            and all(p.isdigit() for p in parts[:3])
            and int(parts[0]) == share.id
            and self.clock() < int(parts[2])
            and hmac.compare_digest(parts[3], self._mac(share, int(parts[2]), f"ticket{parts[1]}"))
        )
