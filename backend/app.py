"""The app factory: reading it lists every part the backend has."""

from __future__ import annotations

import os

from flask import Flask, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from backend import api, errors, health, panel, realtime  # noqa: F401  (realtime registers handlers on import)
from backend.config import Config, default_instance_path
from backend.extensions import babel, csrf, db, migrate, socketio
from backend.realtime.origins import origin_checker
from backend.security import authentication
from backend.security.sessions import ServerSessionInterface

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


def create_app(overrides: dict | None = None, *, config_class: type[Config] = Config) -> Flask:
    overrides = dict(overrides or {})
    instance_path = overrides.pop("INSTANCE_PATH", None) or default_instance_path()
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_object(config_class)
    env_values = Config.from_env(app.instance_path)
    if config_class is not Config:  # a test config keeps its own key unless overridden
        env_values.pop("SECRET_KEY")
    app.config.update(env_values)
    app.config.update(overrides)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)
    app.session_interface = ServerSessionInterface()
    init_realtime(app)

    app.register_blueprint(health.bp)
    app.register_blueprint(panel.bp)
    app.register_blueprint(api.bp)
    authentication.init_app(app)
    errors.register_error_handlers(app)
    app.context_processor(template_globals)
    app.after_request(security_headers)
    if app.config["VEIL_PROXY_COUNT"]:
        # Outermost, so Socket.IO's origin check and request.remote_addr both see the client's values.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["VEIL_PROXY_COUNT"],
                                x_proto=app.config["VEIL_PROXY_COUNT"], x_host=app.config["VEIL_PROXY_COUNT"])
    return app


def security_headers(response):
    """The panel is never framed, and only loads its own scripts and styles."""
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    )
    return response


def init_realtime(app: Flask) -> None:
    """Attach Socket.IO; with VEIL_SOCKETIO_QUEUE set, rooms are shared through that queue."""
    socketio.init_app(
        app,
        message_queue=app.config["VEIL_SOCKETIO_QUEUE"],
        cors_allowed_origins=origin_checker(app.config["VEIL_SOCKETIO_ORIGINS"]),
        async_mode="threading",
    )


def select_locale() -> str:
    from flask import current_app

    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]  # the command line speaks English
    chosen = request.cookies.get("veil_lang")
    if chosen in languages:
        return chosen
    user = getattr(g, "user", None)
    if user is not None and user.locale in languages:
        return user.locale
    return request.accept_languages.best_match(languages) or "en"


def template_globals() -> dict:
    from flask_babel import get_locale

    return {"current_user": getattr(g, "user", None), "current_locale": str(get_locale())}


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL lets the panel read while the ingest writes; foreign keys are off by default in SQLite."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
