"""The Audit page (owners and admins): the tenant's trail newest first with filters, the chain's anchor,
and a verification run on demand."""

from __future__ import annotations

import json

from flask import g, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from backend.errors import ApiError
from backend.extensions import db
from backend.panel import bp
from backend.services import audit as service
from backend.services.records import parse_id
from backend.services.users import users_in_tenant

FILTER_KEYS = ("action", "actor", "target", "from", "to")
# Offered in the action filter; any other prefix may be typed.
ACTION_PREFIXES = ("auth.", "user.", "device.", "department.", "records.", "live.", "rules.", "grant.", "reveal.",
                   "alerts.", "webhook.", "intervention.", "backup.", "erasure.", "retention.", "audit.")
PROBLEM_LABELS = {"changed": _l("Changed"), "removed": _l("Removed"), "reordered": _l("Reordered"),
                  "forked": _l("Forked")}


def details_text(details: dict) -> str:
    return json.dumps(details, ensure_ascii=False, sort_keys=True) if details else ""


def render_audit(verification: service.Verification | None = None, anchor_given: str = "", status: int = 200):
    selection = {key: value for key in FILTER_KEYS if (value := request.args.get(key, "").strip())}
    rows, next_before, error = [], None, None
    try:
        filters = service.parse_audit_filters(request.args)
        rows, next_before = service.list_audit(g.user, filters, before=parse_id(request.args, "before"))
    except ApiError as err:
        error, status = err.message, err.status
    return render_template(
        "audit.html", rows=rows, selection=selection, error=error, details_text=details_text,
        users=users_in_tenant(g.user.tenant_id), prefixes=ACTION_PREFIXES, problem_labels=PROBLEM_LABELS,
        anchor=service.latest_anchor(g.user.tenant_id), verification=verification, anchor_given=anchor_given,
        next_url=url_for("panel.audit", **selection, before=next_before) if next_before else None,
        first_url=url_for("panel.audit", **selection) if request.args.get("before") else None,
    ), status


@bp.get("/audit")
def audit():
    return render_audit()


@bp.post("/audit/verify")
def audit_verify():
    anchor_given = request.form.get("anchor", "").strip()[:200]
    try:
        anchors = [service.Anchor.parse(anchor_given)] if anchor_given else []
    except ApiError as err:
        return render_audit(service.Verification(problems=[service.Problem("changed", 0, None, None, err.message)],
                                                 problem_count=1), anchor_given, 400)
    result = service.verify_audit(g.user.tenant_id, anchors=anchors)
    service.record_audit("audit.verify", actor=g.user, remote_addr=request.remote_addr or "",
                         details={"ok": result.ok, "entries": result.entries, "problems": result.problem_count,
                                  "anchor": anchor_given or None})
    db.session.commit()
    return render_audit(result, anchor_given)
