"""Panel page for customers' data requests (/customer-data): find what Veil holds about one customer by
phone number or e-mail address, download it for them, or erase it. Owners, and admins the owner allows to
issue grants; exporting and erasing ask for the person's password again."""

from __future__ import annotations

from flask import Response, flash, g, json, redirect, render_template, request, url_for

from backend.errors import ApiError
from backend.extensions import db
from backend.panel import bp
from backend.services import customer_data
from backend.services.grants import may_issue


def page(status: int = 200, *, value: str = "", found: dict | None = None, error: str | None = None,
         erased: dict | None = None):
    return render_template("customer_data.html", value=value, found=found, error=error, erased=erased,
                           allowed=may_issue(g.user), confirm_word=customer_data.CONFIRM_WORD,
                           max_value=customer_data.MAX_VALUE_CHARS), status


def failed(err: ApiError, value: str):
    """The page again with the error; a wrong password still counts towards the throttle."""
    if err.code == "wrong_password":
        db.session.commit()
    else:
        db.session.rollback()
    found = None
    if err.code in ("wrong_password", "too_many_attempts", "legal_hold", "confirm_required", "too_much"):
        try:  # what was found, again: the person sees what they were acting on
            found = customer_data.find_customer(g.user, value).summary()
        except ApiError:
            found = None
    return page(err.status, value=value, found=found, error=err.message)


def form_value() -> str:
    return request.form.get("value", "")[:customer_data.MAX_VALUE_CHARS * 2]


@bp.get("/customer-data")
def customer_data_page():
    return page()


@bp.post("/customer-data")
def customer_data_find():
    value = form_value()
    try:
        found = customer_data.look_up(g.user, value, remote_addr=request.remote_addr or "")
    except ApiError as err:
        return failed(err, value)
    db.session.commit()
    return page(value=value, found=found.summary())


@bp.post("/customer-data/export")
def customer_data_download():
    value = form_value()
    try:
        document = customer_data.export(g.user, request.form.get("password", ""), value,
                                        remote_addr=request.remote_addr or "")
    except ApiError as err:
        return failed(err, value)
    db.session.commit()
    return Response(json.dumps(document, ensure_ascii=False, indent=2), mimetype="application/json",
                    headers={"Content-Disposition": 'attachment; filename="customer-data.json"'})


@bp.post("/customer-data/erase")
def customer_data_remove():
    value = form_value()
    try:
        customer_data.check_confirmed(request.form.get("confirm", ""))
        result = customer_data.erase(g.user, request.form.get("password", ""), value,
                                     remote_addr=request.remote_addr or "")
    except ApiError as err:
        return failed(err, value)
    db.session.commit()
    flash(customer_data.erased_message(result), "ok")
    return redirect(url_for("panel.customer_data_page"))
