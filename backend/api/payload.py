"""Reading JSON request bodies with errors that say which field is wrong and why."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest

from backend.errors import ApiError

_MISSING = object()


def json_body() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(415, "json_required", _("Send the body as JSON with Content-Type: application/json."))
    try:
        data = request.get_json()
    except BadRequest as exc:
        raise ApiError(400, "invalid_json", _("The body is not valid JSON in UTF-8.")) from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", _("The body must be a JSON object."))
    return data


def field(data: dict, name: str, kind: type | tuple[type, ...], *, default: Any = _MISSING, max_length: int = 0):
    """One field of a body: present (unless it has a default), of the right type, not too long."""
    value = data.get(name, _MISSING)
    if value is _MISSING or value is None:
        if default is _MISSING:
            raise ApiError(400, "missing_field", _("The field '%(name)s' is required.", name=name), field=name)
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python; an id given as true is a client bug
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        expected = " or ".join(_type_name(k) for k in kinds)
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be %(expected)s.", name=name,
                                            expected=expected), field=name)
    if max_length and isinstance(value, str | list) and len(value) > max_length:
        raise ApiError(400, "too_long", _("The field '%(name)s' is longer than %(n)d.", name=name, n=max_length),
                       field=name)
    return value


def id_list(data: dict, name: str) -> list[int] | None:
    values = field(data, name, list, default=None, max_length=100)
    if values is not None and not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be a list of ids.", name=name), field=name)
    return values


def query_int(name: str, default: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError(400, "wrong_type", _("The parameter '%(name)s' must be a number.", name=name)) from exc


def _type_name(kind: type) -> str:
    names = {str: _("a string"), int: _("a number"), bool: _("true or false"), list: _("a list"),
             dict: _("an object")}
    return names.get(kind, kind.__name__)
