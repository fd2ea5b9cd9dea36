"""Behaviour reports over the JSON API: the filtered list, one event with its messages, the review and the
per-agent summary. The rules live in backend/services/reports.py."""

from __future__ import annotations

from flask import g, jsonify, request

from backend.api import bp
from backend.api.payload import field, json_body
from backend.extensions import db
from backend.services import reports


@bp.get("/behaviour-events")
def list_behaviour_events():
    page = reports.list_events(g.user, reports.read_filters(request.args), request.args.get("cursor"),
                               reports.read_limit(request.args))
    return jsonify({"events": [reports.event_dict(e, page.readable) for e in page.events],
                    "next_cursor": page.next_cursor})


@bp.get("/behaviour-events/summary")
def behaviour_summary():
    query = reports.read_summary_args(request.args)
    summary = reports.agent_summary(g.user, **query)
    return jsonify({"agents": summary.rows, "types": summary.types, "sort": query["sort"],
                    "order": "desc" if query["descending"] else "asc"})


@bp.get("/behaviour-events/<int:event_id>")
def get_behaviour_event(event_id: int):
    detail = reports.event_detail(g.user, reports.get_visible_event(g.user, event_id))
    db.session.commit()  # the first look at a tenant's rules seeds them
    return jsonify(detail)


@bp.post("/behaviour-events/<int:event_id>/review")
def review_behaviour_event(event_id: int):
    event = reports.get_visible_event(g.user, event_id)
    data = json_body()
    reports.review_event(
        g.user, event,
        field(data, "status", str, max_length=16),
        field(data, "note", str, default=None, max_length=reports.MAX_NOTE_CHARS),
        expected_status=field(data, "expected_status", str, default=None, max_length=16),
        remote_addr=request.remote_addr or "",
    )
    db.session.commit()
    return jsonify({"event": reports.event_dict(event, reports.readable_conversations(g.user, [event])),
                    "history": reports.review_history(event)})
