"""Private and restore grants: issuing (signed with the issuer's key, so it needs their password),
revoking, checking and counting uses.

The private key lets its grantee read the chat records in its scope; the restore key lets its grantee
reveal masked customer identifiers there. A grant counts only while its Ed25519 signature verifies against
the stored public key that made it, that key is vouched for by the server (`signing_keys.is_trusted`), and
its signer is the tenant's owner (or an admin while the owner allows admins to issue), and its revocation
and count of uses are as the server last wrote them (`grant_state`). Anything else is treated as absent,
and the refusal is audited once.

Who may read: everyone, owners included, needs a private grant (an owner issues one to themselves); see
docs/security.md, "Grants".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta

from blinker import Namespace
from cryptography.exceptions import InvalidSignature
from flask_babel import gettext as _
from sqlalchemy import event, func, or_, select, update
from sqlalchemy.orm import Session

from backend.errors import ApiError, not_found
from backend.extensions import db
from backend.models import (
    ChatAccount,
    Conversation,
    Department,
    Grant,
    GrantSetting,
    GrantUse,
    Role,
    SigningKey,
    User,
)
from backend.models.base import utcnow
from backend.models.grants import GRANT_KINDS, PRIVATE, RESTORE, SCOPE_FIELDS
from backend.security.password_confirmation import confirm_password
from backend.security.policy import STAFF
from backend.services import grant_state, signing_keys
from backend.services.audit import record_audit
from backend.services.grant_state import GrantState

MAX_SCOPE_IDS = 500
MAX_DURATION = timedelta(days=3 * 366)
MAX_USES = 1_000_000
# What a use was for, and the audit action it is logged under.
USE_ACTIONS = {
    "record_view": "records.view",
    "record_search": "records.search",
    "record_export": "records.export_grant",
    "live_view": "records.view",
    "report_view": "records.view",
    "reveal": "reveal",
}
_signals = Namespace()
# sent with (grant,) whenever a grant is issued or revoked: its grantee's devices and panel hear of it
grants_changed = _signals.signal("grants-changed")
_REFUSED = "veil_grant_refusals"
_REFUSED_LOST = "veil_grant_refusals_lost"
_verified: dict[str, bool] = {}  # sha256(public key, payload, signature) -> signature valid
_VERIFIED_MAX = 10_000
# Revoking and counting a use compare-and-set the state they read; a lost race reads again. Each lost race
# means another change went through, so this bound is met only under a flood of uses of one grant.
MAX_RACES = 50


# ---- who may issue ------------------------------------------------------------------------------------

def admins_may_issue(tenant_id: int) -> bool:
    row = db.session.get(GrantSetting, tenant_id)
    return bool(row and row.admins_may_issue)


def set_admins_may_issue(actor: User, allowed: bool, *, remote_addr: str = "") -> None:
    """Only the owner decides whether admins may issue and revoke grants."""
    if actor.role != Role.OWNER:
        raise ApiError(403, "owner_only", _("Only the owner decides whether admins may issue grants."))
    row = db.session.get(GrantSetting, actor.tenant_id)
    if row is None:
        row = GrantSetting(tenant_id=actor.tenant_id)
        db.session.add(row)
    row.admins_may_issue, row.changed_by_id, row.changed_at = allowed, actor.id, utcnow()
    db.session.flush()
    record_audit("grant.setting", actor=actor, target_type="tenant", target_id=actor.tenant_id,
                 details={"admins_may_issue": allowed}, remote_addr=remote_addr)


def may_issue(actor: User) -> bool:
    return actor.role == Role.OWNER or (actor.role == Role.ADMIN and admins_may_issue(actor.tenant_id))


def _check_may_issue(actor: User) -> None:
    if not may_issue(actor):
        raise ApiError(403, "not_issuer", _("Only the owner, or an admin the owner allows, issues and revokes "
                                            "grants."))


# ---- signing ------------------------------------------------------------------------------------------

def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_payload(grant: Grant) -> bytes:
    """The canonical JSON the signature covers: every field that decides what the grant allows, not its
    row id (a row copied under another id keeps its unique nonce and is refused as a duplicate)."""
    body = {
        "v": 1,
        "tenant_id": grant.tenant_id,
        "grantee_id": grant.grantee_id,
        "kind": grant.kind,
        "scope": {name: sorted(int(i) for i in (getattr(grant, name) or [])) for name in SCOPE_FIELDS},
        "starts_at": _stamp(grant.starts_at),
        "ends_at": _stamp(grant.ends_at),
        "max_uses": grant.max_uses,
        "issued_by_id": grant.issued_by_id,
        "issued_at": _stamp(grant.issued_at),
        "signing_key_id": grant.signing_key_id,
        "nonce": grant.nonce,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _signature_valid(public_key: str, payload: bytes, signature: str) -> bool:
    digest = hashlib.sha256(b"\0".join([public_key.encode(), payload, signature.encode()])).hexdigest()
    known = _verified.get(digest)
    if known is None:
        try:
            signing_keys.public_key_from_text(public_key).verify(base64.b64decode(signature, validate=True), payload)
            known = True
        except (InvalidSignature, ValueError, TypeError):
            known = False
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[digest] = known
    return known


def refusal_reason(grant: Grant, state: GrantState | None = None) -> str | None:
    """None when the grant is genuine, else why it is not. `state`: as read with the row (else read now)."""
    key = grant.signing_key_id and db.session.get(SigningKey, grant.signing_key_id)
    if not key or key.tenant_id != grant.tenant_id or key.user_id != grant.issued_by_id:
        return "unknown_key"
    if not signing_keys.is_trusted(key):
        return "untrusted_key"
    if key.retired_at is not None and grant.issued_at > key.retired_at:
        return "retired_key"
    signer = key.user
    if signer.tenant_id != grant.tenant_id or not (
            signer.role == Role.OWNER or (signer.role == Role.ADMIN and admins_may_issue(grant.tenant_id))):
        return "signer_not_allowed"
    try:
        payload = signed_payload(grant)
    except (TypeError, ValueError, AttributeError):
        return "malformed"
    if not _signature_valid(key.public_key, payload, grant.signature or ""):
        return "bad_signature"
    return grant_state.problem(grant.nonce, state or grant_state.read_state(grant.id))


def _refuse(grant: Grant, reason: str) -> None:
    """Audit a refused grant once: `refused_at` is set in the same transaction as the entry."""
    if grant.refused_at is not None:
        return
    done = db.session.execute(update(Grant).where(Grant.id == grant.id, Grant.refused_at.is_(None))
                              .values(refused_at=utcnow()).execution_options(synchronize_session=False))
    if done.rowcount:
        record_audit("grant.refused", tenant_id=grant.tenant_id, target_type="grant", target_id=grant.id,
                     details={"reason": reason, "grantee_id": grant.grantee_id, "kind": grant.kind})
        db.session().info.setdefault(_REFUSED, set()).add(grant.id)
    db.session.expire(grant, ["refused_at"])


@event.listens_for(Session, "after_commit")
def _refusals_kept(session: Session) -> None:
    session.info.pop(_REFUSED, None)


@event.listens_for(Session, "after_rollback")
def _refusals_lost(session: Session) -> None:
    # A refused read usually ends in a 403, whose handler rolls back: `log_lost_refusals` writes them again.
    lost = session.info.pop(_REFUSED, None)
    if lost:
        session.info.setdefault(_REFUSED_LOST, set()).update(lost)


def log_lost_refusals() -> None:
    """At the end of a request: refusals whose audit entry was rolled back (or never committed) are logged
    again in a transaction of their own."""
    info = db.session().info
    ids = set(info.pop(_REFUSED_LOST, set())) | set(info.pop(_REFUSED, set()))
    if not ids:
        return
    db.session.rollback()
    info.pop(_REFUSED_LOST, None)
    for grant in db.session.scalars(select(Grant).where(Grant.id.in_(ids), Grant.refused_at.is_(None))):
        reason = refusal_reason(grant)
        if reason:
            _refuse(grant, reason)
    db.session.commit()


# ---- issuing and revoking -----------------------------------------------------------------------------

def _check_password(actor: User, password: str, remote_addr: str) -> None:
    confirm_password(actor, password, remote_addr=remote_addr, failed_action="grant.password_failed",
                     refusal=_("That is not your password, so the grant could not be signed."))


def _signing_key(actor: User, password: str):
    """The actor's private key, opened with `password` (already checked against their password hash). A key
    the password does not open (the password was set behind Veil's back) is replaced by a new pair."""
    key = signing_keys.active_key(actor)
    if key is not None:
        try:
            return key, signing_keys.unlock(key, password)
        except signing_keys.WrongPassword:
            pass
    key = signing_keys.create_key(actor, password)
    return key, signing_keys.unlock(key, password)


def _ids(scope: dict, name: str) -> list[int]:
    values = scope.get(name) or []
    if not isinstance(values, list | tuple) or len(values) > MAX_SCOPE_IDS or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31 for v in values):
        raise ApiError(400, "invalid_scope", _("The scope '%(name)s' must be a list of ids.", name=name),
                       field=name)
    return sorted(set(values))


def _check_scope(tenant_id: int, scope: dict[str, list[int]]) -> None:
    tables = {"agent_ids": (User, User.role == Role.AGENT), "department_ids": (Department, True),
              "chat_account_ids": (ChatAccount, True), "conversation_ids": (Conversation, True)}
    for name, (model, condition) in tables.items():
        ids = scope[name]
        if not ids:
            continue
        found = db.session.scalar(select(func.count()).select_from(model).where(
            model.tenant_id == tenant_id, model.id.in_(ids), condition))
        if found != len(ids):
            raise ApiError(400, "invalid_scope", _("Something in the scope does not exist in this organisation."),
                           field=name)


def issue(actor: User, password: str, grantee: User, kind: str, scope: dict, starts: datetime, ends: datetime,
          max_uses: int | None = None, *, remote_addr: str = "") -> Grant:
    """Sign and store a grant. Wrong password: 403 `wrong_password` (throttled like sign-in; the caller
    commits even then, so the failure counts)."""
    _check_may_issue(actor)
    _check_password(actor, password, remote_addr)
    if grantee.tenant_id != actor.tenant_id:
        raise not_found(_("user"))
    if not grantee.is_active:
        raise ApiError(400, "inactive_user", _("That user is disabled."))
    if kind not in GRANT_KINDS:
        raise ApiError(400, "invalid_kind", _("The kind must be 'private' or 'restore'."), field="kind")
    if kind == PRIVATE and not STAFF.allows(grantee.role):
        raise ApiError(400, "invalid_grantee", _("A private key goes to a supervisor, an admin or the owner."),
                       field="grantee_id")
    if not isinstance(scope, dict):
        raise ApiError(400, "invalid_scope", _("The scope must be an object."), field="scope")
    clean = {name: _ids(scope, name) for name in SCOPE_FIELDS}
    if not any(clean.values()):
        raise ApiError(400, "empty_scope", _("Name at least one agent, department, chat account or conversation."),
                       field="scope")
    _check_scope(actor.tenant_id, clean)
    for value, name in ((starts, "starts_at"), (ends, "ends_at")):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ApiError(400, "invalid_value", _("Give '%(name)s' as a date and time.", name=name), field=name)
    now = utcnow()
    starts, ends = starts.replace(microsecond=0), ends.replace(microsecond=0)
    if ends <= starts or ends <= now:
        raise ApiError(400, "invalid_period", _("The grant must end after it starts, and in the future."),
                       field="ends_at")
    if ends - starts > MAX_DURATION:
        raise ApiError(400, "invalid_period", _("A grant may last at most three years."), field="ends_at")
    if max_uses is not None and (isinstance(max_uses, bool) or not isinstance(max_uses, int)
                                 or not 0 < max_uses <= MAX_USES):
        raise ApiError(400, "invalid_value", _("The number of uses must be between 1 and %(n)d.", n=MAX_USES),
                       field="max_uses")
    key, private = _signing_key(actor, password)
    grant = Grant(tenant_id=actor.tenant_id, grantee_id=grantee.id, kind=kind, starts_at=starts, ends_at=ends,
                  max_uses=max_uses, uses=0, issued_by_id=actor.id, issued_at=now.replace(microsecond=0),
                  signing_key_id=key.id, nonce=base64.urlsafe_b64encode(os.urandom(24)).decode("ascii"), **clean)
    grant.signature = base64.b64encode(private.sign(signed_payload(grant))).decode("ascii")
    grant.state_mac = grant_state.state_mac(grant.nonce, None, 0)
    db.session.add(grant)
    db.session.flush()
    record_audit("grant.issue", actor=actor, target_type="grant", target_id=grant.id, remote_addr=remote_addr,
                 details={"grantee_id": grantee.id, "kind": kind, "scope": clean, "starts_at": _stamp(starts),
                          "ends_at": _stamp(ends), "max_uses": max_uses})
    grants_changed.send(grant)
    return grant


def get_grant(actor: User, grant_id: int) -> Grant:
    grant = db.session.get(Grant, grant_id)
    if grant is None or grant.tenant_id != actor.tenant_id:
        raise not_found(_("grant"))
    return grant


def _busy() -> ApiError:
    return ApiError(409, "grant_busy", _("The grant is being used right now. Try again."))


def revoke(actor: User, grant: Grant, *, remote_addr: str = "") -> Grant:
    """Takes effect at once: every check reads the row, and the grantee's devices and panel are told. The
    new state's MAC vouches for the count of uses as it stands: a use racing the revocation makes it read
    again. A grant whose state was tampered with is revoked all the same."""
    _check_may_issue(actor)
    if grant.tenant_id != actor.tenant_id:
        raise not_found(_("grant"))
    for _race in range(MAX_RACES):
        state = grant_state.read_state(grant.id)
        if state.revoked_at is not None:
            revoked = False
            break
        now = utcnow().replace(microsecond=0)
        revoked = bool(db.session.execute(
            update(Grant).where(Grant.id == grant.id, Grant.revoked_at.is_(None), Grant.uses == state.uses)
            .values(revoked_at=now, revoked_by_id=actor.id,
                    state_mac=grant_state.state_mac(grant.nonce, now, state.uses))
            .execution_options(synchronize_session=False)).rowcount)
        if revoked:
            break
    else:
        raise _busy()
    db.session.refresh(grant)
    if revoked:
        record_audit("grant.revoke", actor=actor, target_type="grant", target_id=grant.id, remote_addr=remote_addr,
                     details={"grantee_id": grant.grantee_id, "kind": grant.kind})
        grants_changed.send(grant)
    return grant


def visible_grants(actor: User) -> list[Grant]:
    """Owners and admins see every grant of the tenant (admins cannot issue unless allowed); anyone else
    sees the grants they hold."""
    query = select(Grant).where(Grant.tenant_id == actor.tenant_id).order_by(Grant.id.desc())
    if actor.role not in (Role.OWNER, Role.ADMIN):
        query = query.where(Grant.grantee_id == actor.id)
    return list(db.session.scalars(query))


def status_of(grant: Grant, now: datetime | None = None) -> str:
    """active, scheduled, expired, used_up, revoked or refused (the signature does not hold)."""
    now = now or utcnow()
    if grant.revoked_at is not None:
        return "revoked"
    if refusal_reason(grant):
        return "refused"
    if grant.ends_at <= now:
        return "expired"
    if grant.max_uses is not None and grant.uses >= grant.max_uses:
        return "used_up"
    if grant.starts_at > now:
        return "scheduled"
    return "active"


# ---- checking and using -------------------------------------------------------------------------------

def _current(now: datetime):
    return (Grant.revoked_at.is_(None), Grant.starts_at <= now, Grant.ends_at > now,
            or_(Grant.max_uses.is_(None), Grant.uses < Grant.max_uses))


def valid_grants(user: User, kind: str) -> list[Grant]:
    """The user's grants of `kind` that count right now (signature checked; forged ones refused)."""
    now = utcnow()
    rows = db.session.execute(select(Grant, *GrantState.columns()).where(
        Grant.tenant_id == user.tenant_id, Grant.grantee_id == user.id, Grant.kind == kind, *_current(now))
        .order_by(Grant.id)).all()
    genuine = []
    for grant, *state in rows:
        reason = refusal_reason(grant, GrantState.of_row(state))
        if reason:
            _refuse(grant, reason)
        else:
            genuine.append(grant)
    return genuine


def covers(grant: Grant, conversation: Conversation) -> bool:
    if grant.tenant_id != conversation.tenant_id:
        return False
    if conversation.id in (grant.conversation_ids or []) or conversation.agent_id in (grant.agent_ids or []):
        return True
    if conversation.chat_account_id in (grant.chat_account_ids or []):
        return True
    departments = set(grant.department_ids or [])
    return bool(departments and departments & conversation.agent.department_ids)


def has_grant(user: User, kind: str, conversation: Conversation) -> Grant | None:
    """The first valid grant of `kind` held by `user` that covers `conversation`, or None."""
    if user.tenant_id != conversation.tenant_id:
        return None
    for grant in valid_grants(user, kind):
        if covers(grant, conversation):
            return grant
    return None


def _used_up() -> ApiError:
    return ApiError(403, "grant_used_up", _("Your key has expired, been revoked or used up. Ask the owner for a "
                                            "new one."))


def _count_use(grant: Grant, now: datetime) -> None:
    """uses + 1 with its new MAC, as a compare-and-set on the state just read and vouched for: of two uses
    at once only one moves a given count on (on PostgreSQL the other waits for its row lock, then finds the
    count changed), and the other reads again, so max_uses holds."""
    for _race in range(MAX_RACES):
        state = grant_state.read_state(grant.id)
        reason = grant_state.problem(grant.nonce, state)
        if reason:
            _refuse(grant, reason)
            raise _used_up()
        if (state.revoked_at is not None or not grant.starts_at <= now < grant.ends_at
                or (grant.max_uses is not None and state.uses >= grant.max_uses)):
            raise _used_up()
        done = db.session.execute(
            update(Grant).where(Grant.id == grant.id, Grant.uses == state.uses, Grant.state_mac == state.mac,
                                Grant.revoked_at.is_(None))
            .values(uses=state.uses + 1, state_mac=grant_state.state_mac(grant.nonce, None, state.uses + 1))
            .execution_options(synchronize_session=False))
        if done.rowcount:
            db.session.expire(grant, ["uses", "state_mac"])
            return
    raise _busy()


def use_grant(grant: Grant, what: str, target: object = None, *, actor: User | None = None,
              remote_addr: str = "", details: dict | None = None) -> GrantUse:
    """Count one use (a compare-and-set, so max_uses holds under concurrency), record it and audit it, in
    the caller's transaction. Raises 403 `grant_used_up` when the grant stopped counting since it was
    checked, or its state no longer verifies."""
    if what not in USE_ACTIONS:
        raise ValueError(f"unknown grant use {what!r}")
    now = utcnow()
    _count_use(grant, now)
    target_type, target_id = _target(target)
    user = actor or grant.grantee
    use = GrantUse(grant_id=grant.id, tenant_id=grant.tenant_id, user_id=user.id, what=what,
                   target_type=target_type, target_id=target_id, at=now)
    db.session.add(use)
    record_audit(USE_ACTIONS[what], actor=user, target_type=target_type, target_id=target_id,
                 remote_addr=remote_addr,
                 details={**(details or {}), "grant_id": grant.id, "kind": grant.kind, "what": what})
    return use


def _target(target: object) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, Conversation):
        return "conversation", str(target.id)
    if isinstance(target, tuple):
        return str(target[0])[:32], str(target[1])[:64]
    return type(target).__name__.lower()[:32], str(getattr(target, "id", target))[:64]


def use_grants(grants: list[Grant], what: str, target: object = None, *, actor: User | None = None,
               remote_addr: str = "") -> None:
    """One use of each distinct grant (a search or export read under several)."""
    seen: set[int] = set()
    for grant in grants:
        if grant.id not in seen:
            seen.add(grant.id)
            use_grant(grant, what, target, actor=actor, remote_addr=remote_addr)


def restore_grant_for(user: User, conversation: Conversation) -> Grant | None:
    return has_grant(user, RESTORE, conversation)
