"""Creating, changing and signing in users."""

from __future__ import annotations

import re

from flask_babel import gettext as _
from sqlalchemy import func, select

from backend.errors import ApiError, forbidden
from backend.extensions import db
from backend.models import ROLES, Department, Role, Tenant, User
from backend.models.base import utcnow
from backend.security import throttle
from backend.security.passwords import MIN_PASSWORD_LENGTH, hash_password, verify_password
from backend.security.sessions import end_sessions_of, purge_expired_sessions
from backend.services import signing_keys
from backend.services.api_tokens import revoke_api_tokens
from backend.services.audit import record_audit

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ApiError(
            400, "weak_password", _("The password needs at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
        )


def departments_by_ids(tenant_id: int, ids: list[int]) -> list[Department]:
    if not ids:
        return []
    found = db.session.scalars(
        select(Department).where(Department.tenant_id == tenant_id, Department.id.in_(ids))
    ).all()
    if len(found) != len(set(ids)):
        raise ApiError(400, "unknown_department", _("One of the departments does not exist."))
    return list(found)


def check_role_change(actor: User | None, role: str, target: User | None = None) -> None:
    """Admins manage everyone but owners; only an owner creates or changes an owner or an admin."""
    if role not in ROLES:
        raise ApiError(400, "invalid_role", _("Role must be one of: %(roles)s.", roles=", ".join(ROLES)))
    if actor is None or actor.role == Role.OWNER:
        return
    touches_owner = role in (Role.OWNER, Role.ADMIN) or (target is not None and target.role in (Role.OWNER, Role.ADMIN))
    if touches_owner:
        raise forbidden()


def create_user(
    actor: User | None,
    *,
    tenant: Tenant,
    email: str,
    role: str,
    display_name: str = "",
    password: str | None = None,
    department_ids: list[int] | None = None,
) -> User:
    """`actor` is None for the command line, which runs with the machine owner's authority."""
    email = normalise_email(email)
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise ApiError(400, "invalid_email", _("That is not an e-mail address."))
    check_role_change(actor, role)
    if db.session.scalar(select(func.count()).where(User.email == email)):
        raise ApiError(409, "email_taken", _("A user with that e-mail already exists."))
    if password is not None:
        validate_password(password)
    user = User(
        tenant=tenant,
        email=email,
        role=role,
        display_name=(display_name or email.split("@")[0])[:120],
        password_hash=hash_password(password) if password else None,
    )
    user.departments = departments_by_ids(tenant.id, department_ids or [])
    db.session.add(user)
    db.session.flush()
    if password:
        signing_keys.password_changed(user, password)
    record_audit("user.create", actor=actor, tenant_id=tenant.id, target_type="user", target_id=user.id,
                 details={"email": email, "role": role})
    return user


def update_user(
    actor: User,
    user: User,
    *,
    role: str | None = None,
    display_name: str | None = None,
    is_active: bool | None = None,
    department_ids: list[int] | None = None,
    password: str | None = None,
) -> User:
    changes: dict[str, object] = {}
    if user.id == actor.id and (role not in (None, user.role) or is_active is False):
        raise ApiError(400, "self_change", _("You cannot change your own role or disable yourself."))
    check_role_change(actor, role or user.role, target=user)
    if role is not None and role != user.role:
        changes["role"] = [user.role, role]
        user.role = role
    if display_name is not None and display_name.strip() and display_name != user.display_name:
        changes["display_name"] = display_name.strip()[:120]
        user.display_name = display_name.strip()[:120]
    if department_ids is not None:
        user.departments = departments_by_ids(user.tenant_id, department_ids)
        changes["department_ids"] = sorted(department_ids)
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        changes["is_active"] = is_active
    if password:
        validate_password(password)
        user.password_hash = hash_password(password)
        changes["password"] = "changed"
        # Set by someone else, so without the old password: owners and admins get a new signing key.
        signing_keys.password_changed(user, password)
    if {"role", "is_active", "password"} & changes.keys():
        end_sessions_of(user.id)
    if changes.get("is_active") is False:
        revoke_api_tokens(actor, user)
    if changes:
        record_audit("user.update", actor=actor, target_type="user", target_id=user.id, details=changes)
    db.session.flush()
    return user


def authenticate(email: str, password: str, remote_addr: str, max_failures: int, window_seconds: int) -> User:
    """Returns the user, or raises 401/429. Every outcome is audited."""
    email = normalise_email(email)[:254]
    wait = throttle.seconds_until_allowed(
        throttle.SIGN_IN, window_seconds, remote_addr=remote_addr,
        address_limit=max_failures * throttle.SIGN_IN_ADDRESS_FACTOR, email=email, email_limit=max_failures,
    )
    if wait:
        record_audit("auth.sign_in_throttled", details={"email": email}, remote_addr=remote_addr)
        raise ApiError(
            429,
            "too_many_attempts",
            _("Too many failed sign-ins. Try again in %(minutes)d minutes.", minutes=max(1, (wait + 59) // 60)),
            retry_after=wait,
        )
    user = db.session.scalar(select(User).where(User.email == email))
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        reason = "inactive" if ok and user is not None else "bad_credentials"
        throttle.record_failure(email, remote_addr, reason)
        record_audit("auth.sign_in_failed", tenant_id=user.tenant_id if user else None,
                     details={"email": email, "reason": reason}, remote_addr=remote_addr)
        raise ApiError(401, "bad_credentials", _("Wrong e-mail or password."))
    throttle.clear_failures(email)
    throttle.purge_old_attempts(window_seconds)
    purge_expired_sessions()
    user.last_login_at = utcnow()
    record_audit("auth.sign_in", actor=user, remote_addr=remote_addr)
    return user


def users_in_tenant(tenant_id: int) -> list[User]:
    return list(db.session.scalars(select(User).where(User.tenant_id == tenant_id).order_by(User.role, User.email)))
