"""Errors a person can act on: JSON for the API, a page for the panel, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from backend.extensions import db

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by services and views; becomes a 4xx answer with a stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str, **details):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", _("No %(what)s with that id.", what=what))


def forbidden() -> ApiError:
    return ApiError(403, "forbidden", _("Your role does not allow this."))


# Human messages for plain HTTP errors (werkzeug's English texts mention things users cannot act on).
def _http_message(status: int) -> str:
    return {
        400: _("The request could not be read. Send valid JSON encoded as UTF-8."),
        401: _("Sign in first."),
        403: _("Your role does not allow this."),
        404: _("Nothing here. Check the address."),
        405: _("This address does not accept that method."),
        413: _("The request is too large."),
        415: _("Send the body as application/json."),
        429: _("Too many requests. Slow down and try again."),
    }.get(status, _("The request could not be handled."))


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz" or (
        request.accept_mimetypes.best == "application/json"
    )


def error_response(status: int, code: str, message: str, details: dict | None = None):
    if wants_json():
        body = {"error": {"code": code, "message": message}}
        if details:
            body["error"]["details"] = details
        return jsonify(body), status
    return render_template("error.html", status=status, message=message), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def handle_api_error(err: ApiError):
        db.session.rollback()
        return error_response(err.status, err.code, err.message, err.details)

    @app.errorhandler(CSRFError)
    def handle_csrf(err: CSRFError):
        db.session.rollback()
        return error_response(
            400, "csrf_failed", _("The form expired or came from another site. Reload the page and try again.")
        )

    @app.errorhandler(HTTPException)
    def handle_http(err: HTTPException):
        db.session.rollback()
        status = err.code or 500
        if status >= 500:
            return handle_unexpected(err)
        return error_response(status, (err.name or "error").lower().replace(" ", "_"), _http_message(status))

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        db.session.rollback()
        if not isinstance(err, InternalServerError):
            log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", _("Something went wrong on the server. It was logged."))
