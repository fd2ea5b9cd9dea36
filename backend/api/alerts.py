"""API routes for alerts (the reader's own, staff) and their settings (rules and webhooks, managers)."""

from __future__ import annotations

from flask import g, jsonify, request
from flask_babel import gettext as _

from backend.api import bp
from backend.api.payload import field, id_list, json_body, query_int
from backend.errors import ApiError
from backend.extensions import db
from backend.services import alerts
from backend.services.alerts import ALERT_TYPES


@bp.get("/alerts")
def list_alerts():
    rows = alerts.list_alerts(g.user, unread_only=request.args.get("unread") in ("1", "true"),
                              before_id=query_int("before_id"), limit=query_int("limit", 50) or 50)
    return jsonify({"alerts": [alerts.alert_dict(r) for r in rows], "unread": alerts.unread_count(g.user),
                    "next_before_id": rows[-1].alert_id if rows else None})


@bp.post("/alerts/read")
def mark_alerts_read():
    data = json_body()
    ids = id_list(data, "ids")
    everything = field(data, "all", bool, default=False)
    if ids is None and not everything:
        raise ApiError(400, "missing_field", _("Send the alerts' ids, or \"all\": true."), field="ids")
    unread = alerts.mark_read(g.user, None if everything else ids)
    db.session.commit()
    return jsonify({"unread": unread})


def rules_answer() -> dict:
    return {"rules": [{**rule.to_dict(), "label": alerts.type_label(kind)}
                      for kind, rule in alerts.rules_for_tenant(g.user.tenant_id).items()],
            "types": list(ALERT_TYPES)}


@bp.get("/alert-rules")
def get_alert_rules():
    return jsonify(rules_answer())


@bp.put("/alert-rules")
def save_alert_rules():
    data = json_body()
    given = field(data, "rules", list, max_length=len(ALERT_TYPES))
    settings = [alerts.read_rule(item, g.user.tenant_id) for item in given]
    if len({s.type for s in settings}) != len(settings):
        raise ApiError(400, "invalid_alert_rule", _("Each behaviour type may appear once."), field="rules")
    alerts.save_rules(g.user, settings)
    db.session.commit()
    return jsonify(rules_answer())


def webhook_dict(endpoint) -> dict:
    return {**endpoint.to_dict(), "recent_deliveries": [d.to_dict() for d in alerts.recent_deliveries(endpoint)]}


@bp.get("/webhooks")
def list_webhooks():
    return jsonify({"webhooks": [webhook_dict(e) for e in alerts.list_endpoints(g.user)]})


@bp.post("/webhooks")
def create_webhook():
    data = json_body()
    event_types = field(data, "event_types", list, default=[], max_length=len(ALERT_TYPES))
    endpoint, secret = alerts.create_endpoint(
        g.user,
        field(data, "url", str, max_length=2000),
        description=field(data, "description", str, default="", max_length=200),
        event_types=event_types,
        body_format=field(data, "format", str, default="veil", max_length=16),
        locale=field(data, "locale", str, default="en", max_length=8),
    )
    db.session.commit()
    # The secret is shown this once; it signs every delivery (X-Veil-Signature).
    return jsonify({"webhook": webhook_dict(endpoint), "secret": secret}), 201


@bp.delete("/webhooks/<int:endpoint_id>")
def delete_webhook(endpoint_id: int):
    alerts.delete_endpoint(g.user, alerts.get_endpoint(g.user, endpoint_id))
    db.session.commit()
    return jsonify({"deleted": endpoint_id})
