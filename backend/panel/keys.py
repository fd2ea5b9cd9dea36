"""The Keys page: the tenant's private and restore grants with their status, the issue form, revoking,
and the owner's switch that lets admins issue grants."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from backend.errors import ApiError
from backend.extensions import db
from backend.models import ChatAccount, Conversation, Role, User
from backend.models.base import utcnow
from backend.models.grants import GRANT_KINDS, SCOPE_FIELDS
from backend.panel import bp
from backend.services import grants
from backend.services.visibility import get_user_in_tenant

log = logging.getLogger(__name__)
CONVERSATION_CHOICES = 200  # the latest conversations offered in the picker (the API takes any id)


def parse_when(value: object, name: str) -> datetime:
    """ISO 8601 date or date and time; without an offset it is UTC (the form says so)."""
    if not isinstance(value, str) or not value.strip() or len(value) > 40:
        raise ApiError(400, "missing_field", _("The field '%(name)s' is required.", name=name), field=name)
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, "invalid_value", _("Give '%(name)s' as a date and time.", name=name),
                       field=name) from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def kind_labels() -> dict[str, str]:
    return {"private": _("Private key (read records)"), "restore": _("Restore key (reveal identifiers)")}


def status_labels() -> dict[str, str]:
    return {"active": _("Active"), "scheduled": _("Not started"), "expired": _("Expired"),
            "used_up": _("Used up"), "revoked": _("Revoked"), "refused": _("Refused (bad signature)")}


def choices(tenant_id: int) -> dict:
    users = list(db.session.scalars(select(User).where(User.tenant_id == tenant_id, User.is_active.is_(True))
                                    .order_by(User.display_name, User.id)))
    return {
        "grantees": users,
        "agents": [u for u in users if u.role == Role.AGENT],
        "departments": list(g.user.tenant.departments),
        "chat_accounts": list(db.session.scalars(select(ChatAccount).where(ChatAccount.tenant_id == tenant_id)
                                                 .order_by(ChatAccount.platform, ChatAccount.handle))),
        "conversations": list(db.session.scalars(
            select(Conversation).where(Conversation.tenant_id == tenant_id)
            .order_by(Conversation.last_message_at.desc().nulls_last(), Conversation.id.desc())
            .limit(CONVERSATION_CHOICES))),
    }


def render_keys(form: dict | None = None, error: str | None = None, status: int = 200):
    rows = grants.visible_grants(g.user)
    now = utcnow()
    today = now.replace(second=0, microsecond=0)
    return render_template(
        "keys.html", rows=[(row, grants.status_of(row, now)) for row in rows], choices=choices(g.user.tenant_id),
        kinds=GRANT_KINDS, kind_labels=kind_labels(), status_labels=status_labels(),
        can_issue=grants.may_issue(g.user), is_owner=g.user.role == Role.OWNER,
        admins_may_issue=grants.admins_may_issue(g.user.tenant_id), form=form or {}, error=error,
        default_start=today.strftime("%Y-%m-%dT%H:%M"),
        default_end=(today + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
    ), status


@bp.get("/keys")
def keys():
    return render_keys()


def _ids(name: str) -> list[int]:
    return [int(v) for v in request.form.getlist(name) if v.isascii() and v.isdigit() and len(v) < 10]


@bp.post("/keys")
def keys_issue():
    form = request.form
    try:
        grantee_id = form.get("grantee_id", "")
        if not grantee_id.isascii() or not grantee_id.isdigit() or len(grantee_id) > 9:
            raise ApiError(400, "missing_field", _("Choose who receives the grant."), field="grantee_id")
        max_uses = form.get("max_uses", "").strip()
        if max_uses and (not max_uses.isascii() or not max_uses.isdigit() or len(max_uses) > 9):
            raise ApiError(400, "invalid_value", _("The number of uses must be a whole number."), field="max_uses")
        grant = grants.issue(
            g.user, form.get("password", ""), get_user_in_tenant(g.user, int(grantee_id)), form.get("kind", ""),
            {name: _ids(name) for name in SCOPE_FIELDS}, parse_when(form.get("starts_at"), "starts_at"),
            parse_when(form.get("ends_at"), "ends_at"), int(max_uses) if max_uses else None,
            remote_addr=request.remote_addr or "")
    except ApiError as err:
        if err.code == "wrong_password":
            db.session.commit()  # the failed attempt counts towards the throttle and stays in the audit trail
        else:
            db.session.rollback()
        kept = {k: v for k, v in form.items() if k not in ("password", "csrf_token")}
        kept.update({name: _ids(name) for name in SCOPE_FIELDS})
        return render_keys(kept, err.message, err.status)
    db.session.commit()
    flash(_("Grant issued to %(name)s.", name=grant.grantee.display_name), "ok")
    return redirect(url_for("panel.keys"))


@bp.post("/keys/<int:grant_id>/revoke")
def keys_revoke(grant_id: int):
    grant = grants.get_grant(g.user, grant_id)  # another tenant's: 404
    try:
        grants.revoke(g.user, grant, remote_addr=request.remote_addr or "")
    except ApiError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("panel.keys"))
    db.session.commit()
    flash(_("Grant revoked. It stopped working at once."), "ok")
    return redirect(url_for("panel.keys"))


@bp.post("/keys/setting")
def keys_setting():
    try:
        grants.set_admins_may_issue(g.user, request.form.get("admins_may_issue") == "on",
                                    remote_addr=request.remote_addr or "")
    except ApiError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("panel.keys"))
    db.session.commit()
    flash(_("Changes saved."), "ok")
    return redirect(url_for("panel.keys"))


@bp.teardown_app_request
def keep_grant_refusals(_error=None) -> None:
    """Any request (panel, API, socket event): a forged grant refused during it is audited even when the
    request ended in a 403 that rolled its transaction back."""
    try:
        grants.log_lost_refusals()
    except Exception:  # noqa: BLE001 - teardown must not fail the response; the next check logs it again
        db.session.rollback()
        log.exception("could not audit a refused grant")
