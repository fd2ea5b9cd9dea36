"""Records pages: search messages or conversations, read one conversation with every version, export."""

from __future__ import annotations

from flask import g, render_template, request, url_for

from backend.api.records import download
from backend.errors import ApiError
from backend.extensions import db
from backend.panel import bp
from backend.services import records as service
from backend.services.visibility import get_visible_conversation

VIEWS = ("messages", "conversations")
# Query parameters that make up a selection: kept in paging and export links.
FILTER_KEYS = ("view", "q", "agent_id", "department_id", "chat_account_id", "customer", "from", "to", "direction")


def selection_args() -> dict[str, str]:
    return {key: value for key in FILTER_KEYS if (value := request.args.get(key, "").strip())}


@bp.get("/records")
def records():
    view = request.args.get("view") if request.args.get("view") in VIEWS else VIEWS[0]
    selection = selection_args()
    page, error, status, filters, before, after = None, None, 200, None, None, None
    try:
        filters = service.parse_filters(request.args)
        before, after = service.parse_page_cursors(request.args)
        search = service.search_messages if view == "messages" else service.search_conversations
        page = search(g.user, filters, before=before, after=after)
        db.session.commit()  # the grant use and its audit entry (services/grants.use_grant)
    except ApiError as err:
        error, status = err.message, err.status
    return render_template(
        "records.html", view=view, selection=selection, choices=service.filter_choices(g.user), page=page,
        error=error, query=filters.text if filters else None, highlight=service.highlight,
        min_indexed=service.TRIGRAM, paged=bool(before or after),
        export_args={k: v for k, v in selection.items() if k != "view"},
        page_url=lambda **cursor: url_for("panel.records", **selection, **cursor),
    ), status


@bp.get("/records/conversations/<int:conversation_id>")
def records_conversation(conversation_id: int):
    conversation = get_visible_conversation(g.user, conversation_id)
    before, after = service.parse_page_cursors(request.args)
    focus = service.parse_id(request.args, "focus")
    query = service.parse_text(request.args, "q", service.MAX_QUERY_CHARS)
    page = service.read_conversation(g.user, conversation, before=before, after=after, focus=focus)
    db.session.commit()  # the grant use and its audit entry (services/grants.use_grant)
    keep = {"q": query} if query else {}
    return render_template(
        "records_conversation.html", conversation=conversation, page=page, query=query, focus=focus,
        highlight=service.highlight,
        page_url=lambda **cursor: url_for("panel.records_conversation", conversation_id=conversation.id,
                                          **keep, **cursor),
    )


@bp.get("/records/export")
def records_export():
    export = service.export_messages(g.user, service.parse_filters(request.args), request.args.get("format", ""),
                                     remote_addr=request.remote_addr or "")
    db.session.commit()  # the audit entry stands even if the download is cut off
    return download(export)
