"""Customers' data requests over the JSON API: look a customer up, export their data, erase it. For the
owner (or an admin the owner allows to issue grants); export and erase also take the caller's password."""

from __future__ import annotations

from contextlib import contextmanager

from flask import Response, g, json, jsonify, request

from backend.api import bp
from backend.api.payload import field, json_body
from backend.errors import ApiError
from backend.extensions import db
from backend.services import customer_data


@contextmanager
def failed_passwords_kept():
    """A wrong password must count towards the throttle although the request fails: commit it, then raise."""
    try:
        yield
    except ApiError as err:
        if err.code == "wrong_password":
            db.session.commit()
        raise


@bp.post("/customer-data/lookup")
def customer_data_lookup():
    """Body: {value}: a phone number or e-mail address. What Veil holds about that customer, no text."""
    found = customer_data.look_up(g.user, json_body().get("value"), remote_addr=request.remote_addr or "")
    db.session.commit()
    return jsonify(found.summary())


@bp.post("/customer-data/export")
def customer_data_export():
    """Body: {value, password}. The customer's data as one JSON document, to hand to them."""
    data = json_body()
    with failed_passwords_kept():
        document = customer_data.export(g.user, field(data, "password", str, max_length=200), data.get("value"),
                                        remote_addr=request.remote_addr or "")
    db.session.commit()
    body = json.dumps(document, ensure_ascii=False, indent=2)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": 'attachment; filename="customer-data.json"'})


@bp.post("/customer-data/erase")
def customer_data_erase():
    """Body: {value, password, confirm: "ERASE"}. Destroys the customer's identifiers and redacts what they
    wrote; 409 `legal_hold` when a hold covers any of it."""
    data = json_body()
    customer_data.check_confirmed(data.get("confirm"))
    with failed_passwords_kept():
        result = customer_data.erase(g.user, field(data, "password", str, max_length=200), data.get("value"),
                                     remote_addr=request.remote_addr or "")
    db.session.commit()
    return jsonify(result.to_dict())
