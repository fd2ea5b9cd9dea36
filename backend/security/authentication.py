"""Finds the user behind a request (bearer token or panel session) and applies the policy table."""

from __future__ import annotations

from flask import Flask, current_app, g, redirect, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from backend.errors import ApiError, wants_json
from backend.extensions import csrf, db
from backend.models import ApiToken, Device, User
from backend.models.base import utcnow
from backend.security.policy import route_access
from backend.security.secrets import hash_token


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def user_for_api_token(token: str) -> User | None:
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None or not row.user.is_active:
        return None
    row.last_used_at = utcnow()
    return row.user


def device_for_bearer(token: str) -> Device | None:
    from backend.services.devices import device_for_token

    return device_for_token(token)


def user_for_session() -> User | None:
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return None
    user = db.session.get(User, user_id)
    return user if user is not None and user.is_active else None


def load_request_user() -> None:
    g.user = None
    g.device = None
    g.via_token = False
    g.bad_token = False
    token = bearer_token()
    if token is not None:
        # A bearer token is a person's API token or an enrolled extension's device token.
        g.user = user_for_api_token(token)
        if g.user is None:
            g.device = device_for_bearer(token)
        g.via_token = True
        g.bad_token = g.user is None and g.device is None
    else:
        g.user = user_for_session()


def enforce_policy() -> object | None:
    access = route_access(request.endpoint)
    if request.endpoint is None:
        return None  # no route matched: let the 404/405 handler answer
    if access is None:
        current_app.logger.error("endpoint %s is missing from the policy table", request.endpoint)
        raise ApiError(403, "forbidden", _("Your role does not allow this."))
    if access.public:
        return None
    if g.bad_token:
        raise ApiError(401, "invalid_token", _("The API token is unknown or revoked."))
    if g.device is not None:
        if access.device:
            return None
        raise ApiError(403, "forbidden", _("Your role does not allow this."))
    if g.user is None:
        if wants_json():
            raise ApiError(401, "sign_in_required", _("Sign in first, or send an API token."))
        return redirect(url_for("panel.login", next=request.full_path.rstrip("?")))
    if not access.allows(g.user.role):
        raise ApiError(403, "forbidden", _("Your role does not allow this."))
    return None


def check_csrf() -> None:
    # Bearer tokens are not sent by browsers on their own, so token calls need no CSRF token.
    if request.method in ("GET", "HEAD", "OPTIONS") or g.via_token or request.endpoint == "static":
        return
    if request.endpoint == "api.enrol_device":
        return  # no cookie is involved: the one-time code is the credential
    csrf.protect()


def init_app(app: Flask) -> None:
    @app.before_request
    def authenticate_and_authorise():
        load_request_user()
        answer = enforce_policy()
        if answer is None:
            check_csrf()
        return answer
