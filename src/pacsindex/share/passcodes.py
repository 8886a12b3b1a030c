"""Share passcodes: the rules for one a staff member types, readable ones pacsindex makes up, and checking
one against its argon2 hash. The lockout around the check (five tries, then 15 minutes) is `links.py`'s,
because it lives in the share's row.

A made-up passcode is 8 characters from an alphabet without look-alikes (no 0/O, 1/l/I, 5/S, 2/Z), shown
as two groups of four (`k7wq-m3hx`): about 39 bits, read aloud over the phone without spelling out
"zero or oh", and typed with or without the hyphen or spaces, in any case.
"""

from __future__ import annotations

import logging
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from pacsindex.errors import InvalidQuery

__all__ = ["ALPHABET", "MAX_PASSCODE", "MIN_PASSCODE", "checked", "generate", "normalised", "verify"]

log = logging.getLogger(__name__)

MIN_PASSCODE = 6
MAX_PASSCODE = 128
ALPHABET = "346789abcdefghjkmnpqrtuvwxy"  # no 0 o 1 l i 2 z 5 s: nothing read two ways
GENERATED_LENGTH = 8


def generate() -> str:
    """A readable passcode, e.g. `k7wq-m3hx`."""
    chars = "".join(secrets.choice(ALPHABET) for _ in range(GENERATED_LENGTH))
    return f"{chars[:4]}-{chars[4:]}"


def normalised(passcode: str) -> str:
    """What is hashed and compared: a made-up passcode's hyphen and spaces and its case do not matter. A
    typed passcode is kept as typed, except that made-up ones are recognised by their shape."""
    compact = passcode.replace("-", "").replace(" ", "").lower()
    if len(compact) == GENERATED_LENGTH and all(c in ALPHABET for c in compact):
        return compact
    return passcode


def checked(passcode: str | None) -> str | None:
    """A passcode a staff member typed, normalised, or None for none; InvalidQuery when it is unusable."""
    if passcode is None or passcode == "":
        return None
    if not MIN_PASSCODE <= len(passcode) <= MAX_PASSCODE or "\x00" in passcode:
        raise InvalidQuery(f"a passcode is {MIN_PASSCODE} to {MAX_PASSCODE} characters")
    return normalised(passcode)


def verify(hasher: PasswordHasher, digest: str | None, passcode: str) -> bool:
    """Whether `passcode` matches the stored hash; False for anything that cannot be checked."""
    if not isinstance(passcode, str) or len(passcode) > MAX_PASSCODE or digest is None:
        return False
    try:
        return bool(hasher.verify(digest, normalised(passcode)))
    except VerifyMismatchError:
        return False
    except (VerificationError, InvalidHashError):
        log.warning("a share's stored passcode hash cannot be checked; make a new link")
        return False
