"""The supervisor panel: server-rendered pages in Simplified Chinese and English."""

from flask import Blueprint

bp = Blueprint("panel", __name__)

from backend.panel import alerts, audit, customer_data, keys, live, records, reports, retention, routes, statistics  # noqa: E402,F401  (routes attach themselves to bp)
from backend.panel.labels import action_label, behaviour_label, role_label  # noqa: E402

bp.add_app_template_filter(role_label, "role_label")
bp.add_app_template_filter(action_label, "action_label")
bp.add_app_template_filter(behaviour_label, "behaviour_label")
