"""Throttling of guesses: too many recent failures for one e-mail, or from one address, refuse for a while.

The same ledger serves panel sign-in (kind "sign_in") and extension enrolment codes (kind "enrolment").
"""

from datetime import timedelta

from sqlalchemy import func, select

from backend.extensions import db
from backend.models import LoginAttempt
from backend.models.base import utcnow

# One address may try several accounts (an office behind NAT), so it gets a larger allowance.
SIGN_IN_ADDRESS_FACTOR = 4
SIGN_IN = "sign_in"
ENROLMENT = "enrolment"


def seconds_until_allowed(kind: str, window_seconds: int, *, remote_addr: str, address_limit: int,
                          email: str = "", email_limit: int = 0) -> int:
    """0 when another try may be made now, otherwise how long to wait."""
    since = utcnow() - timedelta(seconds=window_seconds)
    checks = [(LoginAttempt.remote_addr == remote_addr, address_limit)]
    if email:
        checks.insert(0, (LoginAttempt.email == email, email_limit))
    for condition, limit in checks:
        count, oldest = db.session.execute(
            select(func.count(), func.min(LoginAttempt.created_at)).where(
                condition, LoginAttempt.kind == kind, LoginAttempt.created_at >= since
            )
        ).one()
        if count >= limit:
            return max(1, int((oldest + timedelta(seconds=window_seconds) - utcnow()).total_seconds()))
    return 0


def record_failure(email: str, remote_addr: str, reason: str, kind: str = SIGN_IN) -> None:
    db.session.add(LoginAttempt(kind=kind, email=email, remote_addr=remote_addr, details={"reason": reason}))


def clear_failures(email: str) -> None:
    db.session.execute(
        LoginAttempt.__table__.delete().where(LoginAttempt.email == email, LoginAttempt.kind == SIGN_IN)
    )


def purge_old_attempts(window_seconds: int) -> None:
    """Rows older than the window no longer count for anything."""
    cutoff = utcnow() - timedelta(seconds=window_seconds)
    db.session.execute(LoginAttempt.__table__.delete().where(LoginAttempt.created_at < cutoff))
