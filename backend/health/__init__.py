"""`/healthz` for load balancers, monitoring and the test suite's wait for a started server."""

from flask import Blueprint, jsonify
from sqlalchemy import text

from backend.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any driver error means the same thing to a load balancer
        db.session.rollback()
        return jsonify({"status": "degraded", "db": "unreachable"}), 503
    return jsonify({"status": "ok", "db": "ok"})
