"""API routes: parse, authorise (policy table + visibility), call a service, commit, answer."""

from __future__ import annotations

from flask import current_app, g, jsonify, request, url_for
from flask_babel import gettext as _

from backend.api import bp
from backend.api.payload import field, id_list, json_body, query_int
from backend.errors import ApiError
from backend.extensions import db
from backend.models import Department
from backend.services import conversations, devices, rule_sets, tenants, users
from backend.services.audit import record_audit
from backend.services.visibility import (
    get_user_in_tenant,
    get_visible_conversation,
    get_visible_device,
)


@bp.get("/me")
def me():
    return jsonify({"user": g.user.to_dict(), "tenant": {"id": g.user.tenant.id, "name": g.user.tenant.name}})


@bp.get("/users")
def list_users():
    return jsonify({"users": [u.to_dict() for u in users.users_in_tenant(g.user.tenant_id)]})


@bp.post("/users")
def create_user():
    data = json_body()
    user = users.create_user(
        g.user,
        tenant=g.user.tenant,
        email=field(data, "email", str, max_length=254),
        role=field(data, "role", str, max_length=16),
        display_name=field(data, "display_name", str, default="", max_length=120),
        password=field(data, "password", str, default=None, max_length=200),
        department_ids=id_list(data, "department_ids"),
    )
    db.session.commit()
    return jsonify({"user": user.to_dict()}), 201


@bp.get("/users/<int:user_id>")
def get_user(user_id: int):
    return jsonify({"user": get_user_in_tenant(g.user, user_id).to_dict()})


@bp.patch("/users/<int:user_id>")
def update_user(user_id: int):
    target = get_user_in_tenant(g.user, user_id)
    data = json_body()
    users.update_user(
        g.user,
        target,
        role=field(data, "role", str, default=None, max_length=16),
        display_name=field(data, "display_name", str, default=None, max_length=120),
        is_active=field(data, "is_active", bool, default=None),
        department_ids=id_list(data, "department_ids"),
        password=field(data, "password", str, default=None, max_length=200),
    )
    db.session.commit()
    return jsonify({"user": target.to_dict()})


@bp.get("/departments")
def list_departments():
    return jsonify({"departments": [{"id": d.id, "name": d.name} for d in g.user.tenant.departments]})


@bp.post("/departments")
def create_department():
    data = json_body()
    department: Department = tenants.create_department(g.user, g.user.tenant, field(data, "name", str, max_length=120))
    db.session.commit()
    return jsonify({"department": {"id": department.id, "name": department.name}}), 201


@bp.post("/devices/enrolment-codes")
def create_enrolment_code():
    data = json_body() if request.content_length else {}
    agent_id = field(data, "agent_id", int, default=g.user.id)
    agent = get_user_in_tenant(g.user, agent_id)
    device, code = devices.create_enrolment_code(
        g.user, agent, current_app.config["ENROLMENT_CODE_TTL_SECONDS"]
    )
    db.session.commit()
    return jsonify({"device": device.to_dict(), "code": code,
                    "expires_at": device.enrolment_code_expires_at.isoformat()}), 201


@bp.post("/devices/enrol")
def enrol_device():
    data = json_body()
    try:
        enrolment = devices.enrol_device(
            field(data, "code", str, max_length=32),
            label=field(data, "label", str, default="", max_length=120),
            user_agent=field(data, "user_agent", str, default="", max_length=400),
            remote_addr=request.remote_addr or "",
        )
    finally:
        db.session.commit()  # a refused code still counts towards throttling
    device = enrolment.device
    agent = device.agent
    return jsonify({
        "device": device.to_dict(),
        "token": enrolment.token,
        # For chrome.runtime.setUninstallURL: Chrome opens it when the extension is removed.
        "uninstall_url": url_for("panel.device_removed", token=enrolment.removal_token, _external=True),
        "agent": {"id": agent.id, "email": agent.email, "display_name": agent.display_name},
        "tenant": {"id": agent.tenant.id, "name": agent.tenant.name},
    }), 201


@bp.get("/devices")
def list_devices():
    return jsonify({"devices": [d.to_dict() for d in devices.devices_visible_to(g.user)]})


@bp.get("/devices/<int:device_id>")
def get_device(device_id: int):
    device = get_visible_device(g.user, device_id)
    return jsonify({"device": device.to_dict(), "stored": devices.stored_counts(device)})


@bp.post("/devices/<int:device_id>/revoke")
def revoke_device(device_id: int):
    device = devices.revoke_device(g.user, get_visible_device(g.user, device_id))
    db.session.commit()
    return jsonify({"device": device.to_dict()})


@bp.get("/conversations")
def list_conversations():
    rows = conversations.list_conversations(
        g.user, before_id=query_int("before_id"), limit=query_int("limit", 50) or 50
    )
    return jsonify({"conversations": [c.to_dict() for c in rows],
                    "next_before_id": rows[-1].id if rows else None})


@bp.get("/conversations/<int:conversation_id>")
def get_conversation(conversation_id: int):
    return jsonify({"conversation": get_visible_conversation(g.user, conversation_id).to_dict()})


@bp.get("/conversations/<int:conversation_id>/messages")
def list_messages(conversation_id: int):
    conversation = get_visible_conversation(g.user, conversation_id)
    rows = conversations.list_messages(
        g.user, conversation, after_id=query_int("after_id", 0) or 0, limit=query_int("limit", 100) or 100
    )
    db.session.commit()  # the grant use and its audit entry (services/grants.use_grant)
    return jsonify({"messages": [m.to_dict() for m in rows]})


# ---- rules -----------------------------------------------------------------------------------------

def acting_tenant():
    """The tenant of the person or the extension calling."""
    return g.user.tenant if g.user is not None else g.device.agent.tenant


@bp.get("/rules")
def get_rules():
    """The compiled payload the engines load. Extensions poll it with If-None-Match."""
    row = rule_sets.current_rule_set(acting_tenant())
    db.session.commit()
    payload, text = rule_sets.compiled_payload(row)
    etag = f'"{payload["hash"]}"'
    if etag in request.if_none_match or payload["hash"] in request.if_none_match:
        response = current_app.response_class(status=304)
    else:
        response = current_app.response_class(text, mimetype="application/json")
    response.headers["ETag"] = etag
    response.headers["X-Veil-Rules-Version"] = str(row.version)
    response.headers["Cache-Control"] = "no-cache"
    return response


def rule_set_summary(row) -> dict:
    return {"version": row.version, "sha256": row.sha256, "note": row.note, "created_by_id": row.created_by_id,
            "created_at": row.created_at.isoformat(),
            "words": sum(len(w) for w in row.content["categories"].values()), "allow": len(row.content["allow"])}


@bp.get("/rules/source")
def get_rules_source():
    row = rule_sets.current_rule_set(g.user.tenant)
    db.session.commit()
    return jsonify({"rule_set": rule_set_summary(row), "rules": row.content})


@bp.put("/rules")
def save_rules():
    data = json_body()
    content = {
        "categories": field(data, "categories", dict),
        "allow": field(data, "allow", list, default=[]),
        "settings": field(data, "settings", dict, default={}),
    }
    if data.get("consoles") is not None:  # absent: the tenant's console profiles stay as they are
        content["consoles"] = field(data, "consoles", list, max_length=100)
    row = rule_sets.save_rule_set(g.user, content, field(data, "note", str, default="", max_length=400))
    db.session.commit()
    return jsonify({"rule_set": rule_set_summary(row)})


@bp.get("/rules/history")
def rules_history():
    rule_sets.current_rule_set(g.user.tenant)
    db.session.commit()
    return jsonify({"versions": [rule_set_summary(r) for r in rule_sets.history(g.user.tenant_id)]})


@bp.get("/rules/export")
def export_rules():
    row = rule_sets.current_rule_set(g.user.tenant)
    record_audit("rules.export", actor=g.user, target_type="rule_set", target_id=row.version)
    db.session.commit()
    response = current_app.response_class(rule_sets.export_zip(row), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="veil-rules-v{row.version}.zip"'
    return response


@bp.post("/rules/import")
def import_rules():
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "missing_field", _("The field '%(name)s' is required.", name="file"), field="file")
    content = rule_sets.import_zip(upload.read(rule_sets.MAX_IMPORT_BYTES + 1))
    row = rule_sets.save_rule_set(g.user, content, request.form.get("note", "imported")[:400])
    db.session.commit()
    return jsonify({"rule_set": rule_set_summary(row)}), 201
