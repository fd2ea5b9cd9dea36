"""Panel pages for alerts: the reader's list (/alerts), the settings (/settings/alerts), and the top bar's
counter, which every page renders for its first paint (then backend/static/src/alerts.js keeps it live)."""

from __future__ import annotations

import logging

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import SQLAlchemyError

from backend.errors import ApiError
from backend.extensions import db
from backend.models.alerts import SEVERITIES, WEBHOOK_FORMATS
from backend.panel import bp
from backend.security.policy import STAFF
from backend.services import alerts, webhooks
from backend.services.alerts import ALERT_TYPES

log = logging.getLogger(__name__)
PAGE_SIZE = 100
DELIVERY_LABELS = {"pending": _l("Waiting"), "delivered": _l("Delivered"), "failed": _l("Failed")}
FORMAT_LABELS = {"veil": _l("Veil JSON (for your own relay or e-mail gateway)"), "slack": _l("Slack incoming webhook"),
                 "wecom": _l("WeCom group bot"), "dingtalk": _l("DingTalk group bot")}


@bp.app_context_processor
def alert_badge() -> dict:
    """For base.html: the signed-in reader's unread count, and the words the live toasts need."""

    def unread() -> int:
        user = getattr(g, "user", None)
        if user is None or not STAFF.allows(user.role):
            return 0
        try:
            return alerts.unread_count(user)
        except SQLAlchemyError:
            # The counter must not turn a page (or the error page of a failed query) into a second failure.
            log.exception("counting unread alerts failed")
            return 0

    def labels() -> dict:
        return {"types": {kind: alerts.type_label(kind) for kind in ALERT_TYPES},
                "severities": {s: alerts.severity_label(s) for s in SEVERITIES}}

    return {"alert_unread": unread, "alert_labels": labels}


@bp.get("/alerts")
def alerts_page():
    unread_only = request.args.get("unread") == "1"
    rows = alerts.list_alerts(g.user, unread_only=unread_only, limit=PAGE_SIZE)
    items = [(alerts.alert_dict(r), r.alert.occurred_at) for r in rows]
    return render_template("alerts.html", alert_rows=items, unread_only=unread_only,
                           unread=alerts.unread_count(g.user),
                           severity_labels={s: alerts.severity_label(s) for s in SEVERITIES})


@bp.post("/alerts/read")
def alerts_read():
    raw = request.form.get("alert_id", "")
    try:
        if raw:
            if not raw.isdigit():
                raise ApiError(400, "wrong_type", _("The field '%(name)s' must be a number.", name="alert_id"))
            alerts.mark_read(g.user, [int(raw)])
        else:
            alerts.mark_read(g.user, None)
    except ApiError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("panel.alerts_page"))
    db.session.commit()
    return redirect(url_for("panel.alerts_page", unread=request.form.get("unread") or None))


def settings_page(status: int = 200, *, new_secret: str | None = None, new_endpoint=None, error: str | None = None,
                  form=None):
    endpoints = alerts.list_endpoints(g.user)
    return render_template(
        "settings_alerts.html",
        rules=alerts.rules_for_tenant(g.user.tenant_id),
        staff=alerts.staff_of(g.user.tenant_id),
        severities=SEVERITIES,
        formats=WEBHOOK_FORMATS,
        endpoints=[(e, alerts.recent_deliveries(e)) for e in endpoints],
        new_secret=new_secret,
        new_endpoint=new_endpoint,
        error=error,
        form=form or {},
        chosen_types=form.getlist("event_types") if form else [],
        alert_types=ALERT_TYPES,
        current_locale_code=str(get_locale()),
        severity_labels={s: alerts.severity_label(s) for s in SEVERITIES},
        delivery_labels=DELIVERY_LABELS,
        format_labels=FORMAT_LABELS,
    ), status


@bp.get("/settings/alerts")
def settings_alerts():
    return settings_page()


def rules_from_form(form) -> list[dict]:
    """One row per type: checkboxes `enabled__T`, `supervisors__T`, `managers__T`, `webhooks__T`, a
    `severity__T` select and a `users__T` multi-select."""
    rules = []
    for kind in ALERT_TYPES:
        if f"present__{kind}" not in form:
            continue  # a form that does not show this type leaves it alone
        user_ids = [int(v) for v in form.getlist(f"users__{kind}") if v.isdigit()]
        rules.append({"type": kind, "enabled": form.get(f"enabled__{kind}") == "on",
                      "severity": form.get(f"severity__{kind}", "info"),
                      "supervisors": form.get(f"supervisors__{kind}") == "on",
                      "managers": form.get(f"managers__{kind}") == "on",
                      "webhooks": form.get(f"webhooks__{kind}") == "on", "user_ids": user_ids})
    return rules


@bp.post("/settings/alerts/rules")
def alert_rules_save():
    try:
        alerts.save_rules(g.user, [alerts.read_rule(r, g.user.tenant_id) for r in rules_from_form(request.form)])
    except ApiError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("panel.settings_alerts"))
    db.session.commit()
    flash(_("Alert rules saved."), "ok")
    return redirect(url_for("panel.settings_alerts"))


@bp.post("/settings/alerts/webhooks")
def webhook_create():
    form = request.form
    try:
        endpoint, secret = alerts.create_endpoint(
            g.user, form.get("url", ""), description=form.get("description", ""),
            event_types=form.getlist("event_types"), body_format=form.get("format", "veil"),
            locale=form.get("locale", "en"))
    except ApiError as err:
        db.session.rollback()
        return settings_page(err.status, error=err.message, form=form)
    db.session.commit()
    # Rendered, not redirected: the secret is shown this once and never stored in a session or a flash.
    return settings_page(new_secret=secret, new_endpoint=endpoint)


@bp.post("/settings/alerts/webhooks/<int:endpoint_id>/enabled")
def webhook_toggle(endpoint_id: int):
    endpoint = alerts.get_endpoint(g.user, endpoint_id)
    alerts.set_endpoint_enabled(g.user, endpoint, request.form.get("enabled") == "on")
    db.session.commit()
    flash(_("Webhook enabled.") if endpoint.enabled else _("Webhook disabled."), "ok")
    return redirect(url_for("panel.settings_alerts", _anchor="webhooks"))


@bp.post("/settings/alerts/webhooks/<int:endpoint_id>/delete")
def webhook_delete(endpoint_id: int):
    alerts.delete_endpoint(g.user, alerts.get_endpoint(g.user, endpoint_id))
    db.session.commit()
    flash(_("Webhook deleted."), "ok")
    return redirect(url_for("panel.settings_alerts", _anchor="webhooks"))


@bp.post("/settings/alerts/webhooks/<int:endpoint_id>/test")
def webhook_test(endpoint_id: int):
    endpoint = alerts.get_endpoint(g.user, endpoint_id)
    ok, outcome = webhooks.send_test(g.user, endpoint)
    db.session.commit()
    if ok:
        flash(_("Test delivered (%(outcome)s).", outcome=outcome), "ok")
    else:
        flash(_("Test failed: %(outcome)s", outcome=outcome), "error")
    return redirect(url_for("panel.settings_alerts", _anchor="webhooks"))
