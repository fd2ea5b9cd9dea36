"""Grants over the JSON API: list (everyone: their own; owners and admins: the tenant's), issue, revoke."""

from __future__ import annotations

from flask import g, jsonify, request
from flask_babel import gettext as _

from backend.api import bp
from backend.api.payload import field, json_body
from backend.errors import ApiError
from backend.extensions import db
from backend.models.base import utcnow
from backend.models.grants import SCOPE_FIELDS
from backend.panel.keys import parse_when
from backend.services import grants
from backend.services.visibility import get_user_in_tenant


def grant_dict(grant) -> dict:
    return {**grant.to_dict(), "status": grants.status_of(grant, utcnow())}


@bp.get("/grants")
def list_grants():
    return jsonify({"grants": [grant_dict(row) for row in grants.visible_grants(g.user)]})


@bp.post("/grants")
def issue_grant():
    """Body: {grantee_id, kind: private|restore, scope: {agent_ids, department_ids, chat_account_ids,
    conversation_ids}, starts_at, ends_at (ISO 8601; UTC when no offset), max_uses?, password}."""
    data = json_body()
    scope = field(data, "scope", dict)
    unknown = set(scope) - set(SCOPE_FIELDS)
    if unknown:
        raise ApiError(400, "invalid_scope", _("The scope may name only %(names)s.", names=", ".join(SCOPE_FIELDS)),
                       field="scope")
    grantee = get_user_in_tenant(g.user, field(data, "grantee_id", int))
    try:
        grant = grants.issue(
            g.user, field(data, "password", str, max_length=200), grantee, field(data, "kind", str, max_length=16),
            scope, parse_when(data.get("starts_at"), "starts_at"), parse_when(data.get("ends_at"), "ends_at"),
            field(data, "max_uses", int, default=None), remote_addr=request.remote_addr or "")
    except ApiError as err:
        if err.code == "wrong_password":
            db.session.commit()  # the failed attempt counts towards the throttle
        raise
    db.session.commit()
    return jsonify({"grant": grant_dict(grant)}), 201


@bp.post("/grants/<int:grant_id>/revoke")
def revoke_grant(grant_id: int):
    grant = grants.revoke(g.user, grants.get_grant(g.user, grant_id), remote_addr=request.remote_addr or "")
    db.session.commit()
    return jsonify({"grant": grant_dict(grant)})
