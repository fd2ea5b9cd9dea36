"""The Reports pages: behaviour events with filters, one event with its messages and review, and the
per-agent summary (also as CSV). The rules are in backend/services/reports.py."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from backend.errors import ApiError
from backend.extensions import db
from backend.panel import bp
from backend.panel.labels import behaviour_label, detail_label, review_status_label
from backend.services import reports
from backend.services.spreadsheets import spreadsheet_safe

DETAIL_VALUE_CHARS = 200  # a details value in the list; the event's own page shows it whole

bp.add_app_template_filter(review_status_label, "review_status_label")
bp.add_app_template_filter(detail_label, "detail_label")


@bp.app_template_filter("report_time")
def report_time(value: datetime | str | None) -> str:
    """A time in UTC to the second, from a datetime or an ISO string."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def detail_text(value: object, limit: int = 0) -> str:
    """A details value as plain text (the template escapes it); lists of findings read as their rules."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list) and all(isinstance(v, dict) and "rule" in v for v in value):
        text = ", ".join(str(v.get("rule")) for v in value)
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if not limit or len(text) <= limit else text[:limit] + "…"


def segments(text: str | None, spans: list[dict] | None) -> list[tuple[str, dict | None]]:
    """`text` cut at the spans' code-point offsets: (piece, span) for a highlighted piece, (piece, None) else.
    The template prints every piece escaped, inside <mark> when it has a span."""
    if text is None:
        return []
    pieces: list[tuple[str, dict | None]] = []
    at = 0
    for span in spans or []:
        if span["start"] > at:
            pieces.append((text[at:span["start"]], None))
        pieces.append((text[span["start"]:span["end"]], span))
        at = span["end"]
    if at < len(text):
        pieces.append((text[at:], None))
    return pieces


def _args_without(*names: str) -> dict:
    return {k: v for k, v in request.args.to_dict(flat=False).items() if k not in names}


@bp.get("/reports", endpoint="reports")
def reports_list():
    filters = reports.read_filters(request.args)
    page = reports.list_events(g.user, filters, request.args.get("cursor"), reports.read_limit(request.args))
    events = [reports.event_dict(e, page.readable) for e in page.events]
    return render_template(
        "reports.html", events=events, next_cursor=page.next_cursor, paged=bool(request.args.get("cursor")),
        args=_args_without("cursor"), form=request.args, types=reports.BEHAVIOUR_TYPES,
        statuses=reports.REVIEW_STATUSES, agents=reports.visible_agents(g.user),
        departments=reports.visible_departments(g.user), detail_text=detail_text, value_chars=DETAIL_VALUE_CHARS,
    )


@bp.get("/reports/<int:event_id>")
def report_detail(event_id: int):
    event = reports.get_visible_event(g.user, event_id)
    detail = reports.event_detail(g.user, event)
    db.session.commit()  # the first look at a tenant's rules seeds them
    return render_template("reports_detail.html", detail=detail, event=detail["event"], segments=segments,
                           detail_text=detail_text, max_note=reports.MAX_NOTE_CHARS)


@bp.post("/reports/<int:event_id>/review")
def report_review(event_id: int):
    event = reports.get_visible_event(g.user, event_id)
    try:
        reports.review_event(g.user, event, request.form.get("status", ""), request.form.get("note"),
                             expected_status=request.form.get("expected_status") or None,
                             remote_addr=request.remote_addr or "")
    except ApiError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("panel.report_detail", event_id=event_id))
    db.session.commit()
    flash(_("Marked %(status)s.", status=review_status_label(event.status)), "ok")
    return redirect(url_for("panel.report_detail", event_id=event_id))


@bp.get("/reports/summary")
def reports_summary():
    query = reports.read_summary_args(request.args)
    summary = reports.agent_summary(g.user, **query)
    return render_template("reports_summary.html", summary=summary, query=query, form=request.args,
                           args=_args_without("sort", "order"), departments=reports.visible_departments(g.user),
                           statuses=reports.REVIEW_STATUSES)


@bp.get("/reports/summary.csv")
def reports_summary_csv():
    query = reports.read_summary_args(request.args)
    summary = reports.agent_summary(g.user, **query)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_("Agent"), _("E-mail"), _("Total"), *(review_status_label(s) for s in reports.REVIEW_STATUSES),
                     *(behaviour_label(t) for t in summary.types)])
    for row in summary.rows:
        agent = row["agent"]
        writer.writerow([spreadsheet_safe(agent["display_name"]), spreadsheet_safe(agent["email"]), row["total"],
                         *(row["by_status"][s] for s in reports.REVIEW_STATUSES),
                         *(row["by_type"].get(t, 0) for t in summary.types)])
    # A byte-order mark, so spreadsheet programs read the Chinese names as UTF-8.
    return ("\ufeff" + buffer.getvalue(), 200, {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="veil-behaviour-summary.csv"',
    })
