"""Statistics in the JSON API: Home's overview and the Statistics answer, as JSON or CSV.

Every role may ask; the service counts only what the caller's scope covers (an agent: themselves).
"""

from __future__ import annotations

from flask import current_app, g, jsonify, request

from backend.api import bp
from backend.services import statistics as stats


def overview_from_args():
    """The overview for `day` (default today) in `tz` (default UTC), with `target_minutes`."""
    args = request.args
    return stats.overview(
        g.user,
        day=stats.read_day(args.get("day"), "day"),
        tz=stats.read_time_zone(args.get("tz")),
        target_minutes=stats.read_int(args, "target_minutes", high=stats.MAX_TARGET_MINUTES)
        or stats.DEFAULT_TARGET_MINUTES,
    )


@bp.get("/statistics/overview")
def statistics_overview():
    return jsonify(overview_from_args())


def csv_response(answer: dict):
    query = answer["query"]
    response = current_app.response_class(stats.statistics_csv(answer), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="veil-statistics-{query["from"]}-{query["to"]}.csv"')
    return response


@bp.get("/statistics")
def statistics():
    """Parameters: group_by (agent|department), period (day|week|month), from, to (YYYY-MM-DD), tz,
    department, agent, target_minutes; format=csv answers like /statistics.csv."""
    format_ = stats.read_choice(request.args, "format", ("json", "csv"))
    answer = stats.statistics(g.user, stats.read_query(request.args))
    return csv_response(answer) if format_ == "csv" else jsonify(answer)


@bp.get("/statistics.csv")
def statistics_csv():
    return csv_response(stats.statistics(g.user, stats.read_query(request.args)))
