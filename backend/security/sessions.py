"""Server-side panel sessions: the cookie holds a random id, the data lives in `web_session`.

Signing out or disabling a user deletes the rows, so a stolen cookie stops working at once, which a
signed-cookie session cannot do.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from backend.extensions import db
from backend.models import WebSession
from backend.models.base import utcnow
from backend.security.secrets import hash_token, new_token


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, sid: str | None = None):
        def on_update(_):
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.modified = False
        self.rotate = False

    def regenerate(self) -> None:
        """Give the session a new id (after sign-in), so an id planted before it is worthless."""
        self.rotate = True
        self.modified = True


class ServerSessionInterface(SessionInterface):
    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app))
        if sid:
            row = db.session.get(WebSession, hash_token(sid))
            if row is not None and row.expires_at > utcnow():
                return ServerSession(dict(row.data or {}), sid=sid)
        return ServerSession()

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        if not session:
            if session.sid:
                delete_session(session.sid)
                db.session.commit()
                response.delete_cookie(name, domain=domain, path=path)
            return
        if not session.modified and session.sid:
            return
        if session.rotate and session.sid:
            delete_session(session.sid)
        if session.rotate or not session.sid:
            session.sid = new_token()
        lifetime = timedelta(seconds=app.config["SESSION_LIFETIME_SECONDS"])
        row = db.session.get(WebSession, hash_token(session.sid))
        if row is None:
            row = WebSession(id_hash=hash_token(session.sid))
            db.session.add(row)
        row.data = dict(session)
        row.user_id = session.get("user_id")
        row.expires_at = utcnow() + lifetime
        db.session.commit()
        response.set_cookie(
            name,
            session.sid,
            max_age=int(lifetime.total_seconds()),
            httponly=True,
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
            domain=domain,
            path=path,
        )


def delete_session(sid: str) -> None:
    db.session.execute(WebSession.__table__.delete().where(WebSession.id_hash == hash_token(sid)))


def end_sessions_of(user_id: int) -> None:
    """Sign a user out everywhere (disabled account, role change)."""
    db.session.execute(WebSession.__table__.delete().where(WebSession.user_id == user_id))


def purge_expired_sessions() -> None:
    """Expired rows are never opened again; deleting them (at each sign-in) keeps the table small."""
    db.session.execute(WebSession.__table__.delete().where(WebSession.expires_at < utcnow()))
