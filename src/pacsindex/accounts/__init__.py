"""Staff accounts, sessions, API tokens and the audit log."""

from __future__ import annotations

from pacsindex.accounts.apitokens import ApiTokens, FailureLimit
from pacsindex.accounts.audit import AuditLog
from pacsindex.accounts.auth import Accounts, Session, Throttle, check_password, generate_password

__all__ = [
    "Accounts",
    "ApiTokens",
    "AuditLog",
    "check_password",
    "FailureLimit",
    "generate_password",
    "Session",
    "Throttle",
]
