"""The JSON API under /api/v1, for scripts (bearer tokens), the panel's pages and the extension."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from backend.api import alerts, audit, customer_data, grants, live, records, reports, retention, routes, statistics  # noqa: E402,F401  (routes attach themselves to bp)
