"""Home (today's internal-control overview) and the Statistics page. The numbers come from
backend/services/statistics.py; these views read the filters and render."""

from __future__ import annotations

from flask import g, render_template, request, url_for
from flask_babel import gettext as _

from backend.panel import bp
from backend.services import statistics as stats

# Home's cards: (figure, kind, which way is worse). "up" marks figures an internal-control reader
# wants low; None marks plain volume, shown without a good or bad colour.
HOME_CARDS = (
    ("sensitive_hits", "count", "up"),
    ("blocked_sends", "count", "up"),
    ("deleted_messages", "count", "up"),
    ("edited_messages", "count", "up"),
    ("new_devices", "count", "up"),
    ("conversations", "count", None),
    ("messages_in", "count", None),
    ("messages_out", "count", None),
    ("first_response_median_s", "duration", "up"),
    ("first_response_avg_s", "duration", "up"),
    ("within_target_pct", "percent", "down"),
)


def card_labels() -> dict[str, str]:
    return {
        "sensitive_hits": _("Sensitive hits"),
        "blocked_sends": _("Blocked sends"),
        "deleted_messages": _("Deleted messages"),
        "edited_messages": _("Edited messages"),
        "new_devices": _("Devices enrolled"),
        "conversations": _("Conversations"),
        "messages_in": _("Messages in"),
        "messages_out": _("Messages out"),
        "first_response_median_s": _("Median first response"),
        "first_response_avg_s": _("Average first response"),
        "within_target_pct": _("Answered within target"),
    }


def duration_units() -> dict[str, str]:
    """How durations read, for the `duration` filter and the page scripts alike."""
    return {
        "seconds": _("%(s)s s"),
        "minutes": _("%(m)s min %(s)s s"),
        "hours": _("%(h)s h %(m)s min"),
    }


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """3 min 20 s; an empty value as a dash."""
    if seconds is None:
        return "–"
    whole = round(seconds)
    units = duration_units()
    if whole < 60:
        return units["seconds"] % {"s": whole}
    if whole < 3600:
        return units["minutes"] % {"m": whole // 60, "s": whole % 60}
    return units["hours"] % {"h": whole // 3600, "m": whole % 3600 // 60}


def delta_strings() -> dict[str, str]:
    return {
        "yesterday by this time: %(value)s": _("yesterday by this time: %(value)s"),
        "yesterday: %(value)s": _("yesterday: %(value)s"),
        "no change": _("no change"),
        "%(n)s pts": _("%(n)s pts"),
        "no figure": _("no figure"),
        "Day %(day)s in time zone %(tz)s.": _("Day %(day)s in time zone %(tz)s."),
    }


@bp.get("/")
def home():
    tz = stats.read_time_zone(request.args.get("tz"))
    overview = stats.overview(g.user, tz=tz)
    labels = card_labels()
    cards = [{"key": key, "kind": kind, "worse": worse, "label": labels[key]} for key, kind, worse in HOME_CARDS]
    i18n = {**delta_strings(), **duration_units()}
    return render_template("home.html", overview=overview, cards=cards, i18n=i18n,
                           tz_given=bool(request.args.get("tz")),
                           overview_url=url_for("api.statistics_overview"))


def statistics_strings() -> dict[str, str]:
    return {
        "Messages in": _("Messages in"),
        "Messages out": _("Messages out"),
        "Average first response (min)": _("Average first response (min)"),
        "Average response (min)": _("Average response (min)"),
        "Hits per 100 outgoing messages": _("Hits per 100 outgoing messages"),
        "Weekdays": _("Weekdays"),
        "Weekends": _("Weekends"),
        "Messages in per day": _("Messages in per day"),
        "Messages out per day": _("Messages out per day"),
        "Hour of day": _("Hour of day"),
        "Minutes": _("Minutes"),
        "Messages": _("Messages"),
    }


@bp.get("/statistics")
def statistics():
    query = stats.read_query(request.args)
    answer = stats.statistics(g.user, query)
    choices = stats.resolve_scope(g.user)
    return render_template(
        "statistics.html", query=query, answer=answer, choices=choices, tz_given=bool(request.args.get("tz")),
        csv_url=url_for("api.statistics_csv", **query.to_args()), i18n=statistics_strings(),
        groups=stats.GROUPS, periods=stats.PERIODS,
    )
