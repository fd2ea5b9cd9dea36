"""Panel page for retention (/settings/retention): how long messages and behaviour events are kept, and the
legal holds that keep an agent's or a conversation's data out of the purge. Owners and admins."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from backend.errors import ApiError
from backend.extensions import db
from backend.models import Conversation
from backend.models.retention import MAX_DAYS, MAX_REASON_CHARS, MIN_DAYS
from backend.panel import bp
from backend.services import retention


def retention_page(status: int = 200, *, error: str | None = None, form=None):
    tenant_id = g.user.tenant_id
    holds = retention.list_holds(tenant_id)
    conversation_ids = {h.conversation_id for h in holds if h.conversation_id}
    pseudonyms = {c.id: c.customer_pseudonym for c in db.session.query(Conversation)
                  .filter(Conversation.id.in_(conversation_ids))} if conversation_ids else {}
    expiring = retention.count_expired(tenant_ids=[tenant_id]).tenants.get(tenant_id)
    return render_template("settings_retention.html", setting=retention.settings_for(tenant_id), holds=holds,
                           pseudonyms=pseudonyms, agents=retention.agents_of(tenant_id), expiring=expiring,
                           min_days=MIN_DAYS, max_days=MAX_DAYS, max_reason=MAX_REASON_CHARS, error=error,
                           form=form or {}), status


@bp.get("/settings/retention")
def settings_retention():
    return retention_page()


@bp.post("/settings/retention")
def retention_save():
    try:
        retention.save_settings(g.user,
                                messages_days=retention.read_days(request.form.get("messages_days"), "messages_days",
                                                                 form=True),
                                behaviour_days=retention.read_days(request.form.get("behaviour_days"),
                                                                   "behaviour_days", form=True))
    except ApiError as err:
        db.session.rollback()
        return retention_page(err.status, error=err.message, form=request.form)
    db.session.commit()
    flash(_("Retention saved. The purge runs every hour."), "ok")
    return redirect(url_for("panel.settings_retention"))


def form_id(name: str) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be a number.", name=name), field=name)
    return int(raw)


@bp.post("/settings/retention/holds")
def hold_place():
    try:
        retention.place_hold(g.user, agent_id=form_id("agent_id"), conversation_id=form_id("conversation_id"),
                             reason=request.form.get("reason", ""))
    except ApiError as err:
        db.session.rollback()
        if err.status == 404:
            raise
        return retention_page(err.status, error=err.message, form=request.form)
    db.session.commit()
    flash(_("Legal hold placed."), "ok")
    return redirect(url_for("panel.settings_retention", _anchor="holds"))


@bp.post("/settings/retention/holds/<int:hold_id>/release")
def hold_release(hold_id: int):
    retention.release_hold(g.user, retention.get_hold(g.user, hold_id))
    db.session.commit()
    flash(_("Legal hold released."), "ok")
    return redirect(url_for("panel.settings_retention", _anchor="holds"))
