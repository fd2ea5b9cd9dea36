"""API routes for retention: the tenant's limits and its legal holds (owners and admins)."""

from __future__ import annotations

from flask import g, jsonify

from backend.api import bp
from backend.api.payload import field, json_body
from backend.extensions import db
from backend.models.retention import MAX_REASON_CHARS
from backend.services import retention


def retention_answer() -> dict:
    tenant_id = g.user.tenant_id
    setting = retention.settings_for(tenant_id)
    return {"messages_days": setting.messages_days, "behaviour_days": setting.behaviour_days,
            "holds": [h.to_dict() for h in retention.list_holds(tenant_id)]}


@bp.get("/retention")
def get_retention():
    return jsonify(retention_answer())


@bp.put("/retention")
def save_retention():
    """Fields left out keep their value; null means keep forever."""
    data = json_body()
    current = retention.settings_for(g.user.tenant_id)
    days = {name: retention.read_days(data[name], name) if name in data else getattr(current, name)
            for name in ("messages_days", "behaviour_days")}
    retention.save_settings(g.user, **days)
    db.session.commit()
    return jsonify(retention_answer())


@bp.post("/retention/holds")
def place_hold():
    data = json_body()
    hold = retention.place_hold(g.user, agent_id=field(data, "agent_id", int, default=None),
                                conversation_id=field(data, "conversation_id", int, default=None),
                                reason=field(data, "reason", str, default="", max_length=MAX_REASON_CHARS))
    db.session.commit()
    return jsonify(hold.to_dict()), 201


@bp.post("/retention/holds/<int:hold_id>/release")
def release_hold(hold_id: int):
    hold = retention.release_hold(g.user, retention.get_hold(g.user, hold_id))
    db.session.commit()
    return jsonify(hold.to_dict())
