"""Audit trail API: the caller's tenant's entries, newest first, with the Audit page's filters."""

from __future__ import annotations

from flask import g, jsonify, request

from backend.api import bp
from backend.services import audit
from backend.services.records import parse_id, parse_page_size


@bp.get("/audit")
def list_audit():
    """Query parameters: action (a prefix), actor (a user id), target (`type` or `type:id`), from, to
    (dates or ISO times, UTC), before (the `next_before` of the previous page), limit (up to 200)."""
    filters = audit.parse_audit_filters(request.args)
    limit = parse_page_size(request.args.get("limit"), audit.PAGE_SIZE)
    rows, next_before = audit.list_audit(g.user, filters, before=parse_id(request.args, "before"), limit=limit)
    return jsonify({"entries": [audit.entry_dict(entry, user) for entry, user in rows], "next_before": next_before,
                    "anchor": audit.latest_anchor(g.user.tenant_id).anchor or None})
