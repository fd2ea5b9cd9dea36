"""Asking a signed-in person for their password again before an act that opens customer data or cannot be
undone: issuing a grant, exporting or erasing one customer's data.

A session cookie alone is not enough for these: a borrowed laptop or a stolen cookie must not reach them.
Wrong passwords go into the sign-in throttle's ledger under their own kind, so a stolen session cannot
guess its way through, and each one is audited.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _

from backend.errors import ApiError
from backend.extensions import db
from backend.models import LoginAttempt, User
from backend.security import throttle
from backend.security.passwords import verify_password

ATTEMPT_KIND = "password"  # the throttle ledger's kind for a wrong password given again while signed in


def confirm_password(actor: User, password: object, *, remote_addr: str, failed_action: str, refusal: str) -> None:
    """Raise unless `password` is `actor`'s. `failed_action` is the audit action of a wrong one and
    `refusal` the (translated) message the person reads."""
    from backend.services.audit import record_audit  # the audit service imports models that import this

    config = current_app.config
    limit, window = config["LOGIN_MAX_FAILURES"], config["LOGIN_WINDOW_SECONDS"]
    wait = throttle.seconds_until_allowed(
        ATTEMPT_KIND, window, remote_addr=remote_addr, address_limit=limit * throttle.SIGN_IN_ADDRESS_FACTOR,
        email=actor.email, email_limit=limit)
    if wait:
        raise ApiError(429, "too_many_attempts", _("Too many wrong passwords. Try again in %(minutes)d minutes.",
                                                   minutes=max(1, (wait + 59) // 60)), retry_after=wait)
    if not isinstance(password, str) or not verify_password(actor.password_hash, password):
        throttle.record_failure(actor.email, remote_addr, "wrong_password", kind=ATTEMPT_KIND)
        record_audit(failed_action, actor=actor, remote_addr=remote_addr)
        raise ApiError(403, "wrong_password", refusal, field="password")
    # Right: earlier misses no longer count against this person (as after a sign-in).
    db.session.execute(LoginAttempt.__table__.delete().where(LoginAttempt.email == actor.email,
                                                             LoginAttempt.kind == ATTEMPT_KIND))
