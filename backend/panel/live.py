"""The Live page: agents in scope and what they are doing, one conversation as it happens, and the
supervisor's reply box. The page script (static/src/pages/live.js) reads the JSON API (`api/live.py`)
and follows `/panel` pushes (`realtime/panel_push.py`)."""

from __future__ import annotations

from flask import g, render_template

from backend.models.interventions import MAX_TEXT_CHARS
from backend.panel import bp
from backend.services.live import agents_overview


@bp.get("/live")
def live():
    data = {"agents": agents_overview(g.user), "user_id": g.user.id, "max_text": MAX_TEXT_CHARS}
    return render_template("live.html", data=data)
