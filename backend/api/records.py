"""Records API: message and conversation search, one conversation with every version, export."""

from __future__ import annotations

from flask import Response, g, jsonify, request, stream_with_context

from backend.api import bp
from backend.extensions import db
from backend.services import records
from backend.services.visibility import get_visible_conversation


def page_args() -> dict:
    before, after = records.parse_page_cursors(request.args)
    return {"before": before, "after": after, "limit": records.parse_page_size(request.args.get("limit"))}


@bp.get("/messages/search")
def search_messages():
    """Query parameters: q, agent_id, department_id, chat_account_id, conversation_id, customer, from, to,
    direction; paging with `before` (older) or `after` (newer) cursors from a previous answer; limit."""
    page = records.search_messages(g.user, records.parse_filters(request.args), **page_args())
    db.session.commit()  # the grant use and its audit entry (services/grants.use_grant)
    return jsonify({"messages": [r.to_dict() for r in page.rows], "older": page.older, "newer": page.newer,
                    "text_indexed": page.text_indexed})


@bp.get("/conversations/search")
def search_conversations():
    page = records.search_conversations(g.user, records.parse_filters(request.args), **page_args())
    db.session.commit()  # the grant use and its audit entry (services/grants.use_grant)
    counts = page.extra["message_counts"]
    return jsonify({"conversations": [records.conversation_dict(c, counts.get(c.id, 0)) for c in page.rows],
                    "older": page.older, "newer": page.newer, "text_indexed": page.text_indexed})


@bp.get("/conversations/<int:conversation_id>/records")
def conversation_records(conversation_id: int):
    """A stretch of the conversation oldest first: the latest, or `before`/`after` a cursor, or around
    message `focus`."""
    conversation = get_visible_conversation(g.user, conversation_id)
    before, after = records.parse_page_cursors(request.args)
    focus = records.parse_id(request.args, "focus")
    limit = records.parse_page_size(request.args.get("limit"), records.CONVERSATION_PAGE_SIZE)
    page = records.read_conversation(g.user, conversation, before=before, after=after, focus=focus, limit=limit)
    db.session.commit()  # the grant use and its audit entry (services/grants.use_grant)
    return jsonify({"conversation": records.conversation_dict(conversation),
                    "messages": [r.to_dict() for r in page.rows], "earlier": page.earlier, "later": page.later})


@bp.get("/records/export")
def export_records():
    """The messages the search filters select, as `format=csv` or `format=jsonl`, streamed."""
    export = records.export_messages(g.user, records.parse_filters(request.args), request.args.get("format", ""),
                                     remote_addr=request.remote_addr or "")
    db.session.commit()  # the audit entry stands even if the download is cut off
    return download(export)


def download(export: records.Export) -> Response:
    response = Response(stream_with_context(export.chunks), mimetype=export.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response.headers["X-Veil-Export-Count"] = str(export.count)
    response.headers["Cache-Control"] = "no-store"
    return response
