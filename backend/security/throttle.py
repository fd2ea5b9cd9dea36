"""Login throttling: too many recent failures for one e-mail, or from one address, refuse sign-in."""

from datetime import timedelta

from sqlalchemy import func, select

from backend.extensions import db
from backend.models import LoginAttempt
from backend.models.base import utcnow

# One address may try several accounts (an office behind NAT), so it gets a larger allowance.
ADDRESS_FACTOR = 4


def seconds_until_allowed(email: str, remote_addr: str, max_failures: int, window_seconds: int) -> int:
    """0 when a sign-in may be tried now, otherwise how long to wait."""
    since = utcnow() - timedelta(seconds=window_seconds)
    checks = (
        (LoginAttempt.email == email, max_failures),
        (LoginAttempt.remote_addr == remote_addr, max_failures * ADDRESS_FACTOR),
    )
    for condition, limit in checks:
        count, oldest = db.session.execute(
            select(func.count(), func.min(LoginAttempt.created_at)).where(
                condition, LoginAttempt.created_at >= since
            )
        ).one()
        if count >= limit:
            return max(1, int((oldest + timedelta(seconds=window_seconds) - utcnow()).total_seconds()))
    return 0


def record_failure(email: str, remote_addr: str, reason: str) -> None:
    db.session.add(LoginAttempt(email=email, remote_addr=remote_addr, details={"reason": reason}))


def clear_failures(email: str) -> None:
    db.session.execute(LoginAttempt.__table__.delete().where(LoginAttempt.email == email))
