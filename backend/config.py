"""Configuration classes, read from the environment when the app is created (never at import)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

DEFAULT_PORT = 5000
DEFAULT_HOST = "127.0.0.1"
# Chat batches are small; anything larger is a client bug or an attack.
MAX_BODY_BYTES = 2 * 1024 * 1024


def default_instance_path() -> str:
    """The instance folder: `VEIL_INSTANCE_PATH`, else `instance/` in the working directory."""
    return os.path.abspath(os.environ.get("VEIL_INSTANCE_PATH") or "instance")


def load_secret_key(instance_path: str) -> str:
    """Read the session-signing secret from the instance folder, creating it (mode 0600) on first start."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # O_EXCL: two processes starting at once must not overwrite each other's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


class Config:
    """Production defaults, filled in from the environment by `from_env`."""

    SQLALCHEMY_DATABASE_URI: str = ""
    # Socket.IO handlers run in threads of their own: room for heartbeats and panel requests beside the
    # ingest slots (realtime/agent_events.py), and a wait rather than an error when it is full.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20, "pool_timeout": 30}
    SECRET_KEY: str = ""
    MAX_CONTENT_LENGTH = MAX_BODY_BYTES
    SESSION_COOKIE_NAME = "veil_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    SESSION_LIFETIME_SECONDS = 12 * 3600
    WTF_CSRF_CHECK_DEFAULT = False  # checked in security.authentication, where bearer-token calls are exempt
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the server-side session
    BABEL_DEFAULT_LOCALE = "en"
    BABEL_TRANSLATION_DIRECTORIES = "translations"
    LANGUAGES = ("en", "zh")
    VEIL_PORT = DEFAULT_PORT
    VEIL_HOST = DEFAULT_HOST
    VEIL_SOCKETIO_QUEUE: str | None = None
    # How many reverse proxies stand in front (0: none). Their X-Forwarded-* headers are trusted only then.
    VEIL_PROXY_COUNT = 0
    # Web origins allowed besides the panel's own and chrome-extension:// (see realtime/origins.py).
    VEIL_SOCKETIO_ORIGINS: list[str] = []
    LOGIN_MAX_FAILURES = 5
    LOGIN_WINDOW_SECONDS = 15 * 60
    ENROLMENT_CODE_TTL_SECONDS = 24 * 3600
    # Webhooks to loopback and private addresses are refused (a panel user could otherwise make the server
    # call into its own network); a company whose alert relay sits on its LAN sets VEIL_WEBHOOK_ALLOW_PRIVATE=1.
    VEIL_WEBHOOK_ALLOW_PRIVATE = False
    # The panel's address as people reach it (https://veil.example.com), for full links in webhook bodies.
    VEIL_PUBLIC_URL = ""
    # The master key, base64 (backend/security/master_key.py); empty: instance/master.key.
    VEIL_MASTER_KEY = ""

    @classmethod
    def from_env(cls, instance_path: str) -> dict:
        env = os.environ
        db_url = env.get("DATABASE_URL") or "sqlite:///" + os.path.join(instance_path, "veil.db")
        return {
            "SQLALCHEMY_DATABASE_URI": normalise_db_url(db_url),
            "SECRET_KEY": env.get("VEIL_SECRET_KEY") or load_secret_key(instance_path),
            "VEIL_PORT": int(env.get("VEIL_PORT", DEFAULT_PORT)),
            "VEIL_HOST": env.get("VEIL_HOST", DEFAULT_HOST),
            "VEIL_SOCKETIO_QUEUE": env.get("VEIL_SOCKETIO_QUEUE") or None,
            "SESSION_COOKIE_SECURE": env.get("VEIL_SECURE_COOKIES", "") == "1",
            "VEIL_PROXY_COUNT": int(env.get("VEIL_PROXY_COUNT", "0") or 0),
            "VEIL_SOCKETIO_ORIGINS": [o.strip() for o in env.get("VEIL_SOCKETIO_ORIGINS", "").split(",") if o.strip()],
            "VEIL_WEBHOOK_ALLOW_PRIVATE": env.get("VEIL_WEBHOOK_ALLOW_PRIVATE", "") == "1",
            "VEIL_PUBLIC_URL": env.get("VEIL_PUBLIC_URL", "").rstrip("/"),
            # Absent: the master key is read from the instance folder's master.key (security/master_key.py).
            **({"VEIL_MASTER_KEY": env["VEIL_MASTER_KEY"]} if env.get("VEIL_MASTER_KEY") else {}),
        }


class TestConfig(Config):
    """Used by the test suite: a fixed secret key, so tests need no instance file."""

    TESTING = True
    SECRET_KEY = "test-secret-key-" + "0" * 32
    # A fixed master key (bytes 0..31, base64): tests need no key file.
    VEIL_MASTER_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def normalise_db_url(url: str) -> str:
    """Accept `postgres://` and `postgresql://` as given by hosting platforms; use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
