"""Panel pages. Views parse the form, call a service, commit and render; they hold no rules."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from backend.engine.rules import ACTIONS
from backend.errors import ApiError
from backend.extensions import db
from backend.models import ROLES
from backend.panel import bp
from backend.services import rule_sets
from backend.services import users as user_service
from backend.services.audit import record_audit
from backend.services.devices import report_extension_removed
from backend.services.tenants import create_department
from backend.services.visibility import get_user_in_tenant

LANGUAGE_COOKIE = "veil_lang"


def safe_next(target: str | None) -> str:
    """Only same-site paths, so the login form cannot be used to bounce people to another site."""
    if not target:
        return url_for("panel.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("panel.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    email = request.form.get("email", "")
    try:
        user = user_service.authenticate(
            email,
            request.form.get("password", ""),
            request.remote_addr or "",
            current_app.config["LOGIN_MAX_FAILURES"],
            current_app.config["LOGIN_WINDOW_SECONDS"],
        )
    except ApiError as err:
        db.session.commit()  # keep the failure ledger and audit entry
        return render_template("login.html", error=err.message, email=email,
                               next=request.form.get("next", "")), err.status
    db.session.commit()
    session.clear()
    session.regenerate()
    session["user_id"] = user.id
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    record_audit("auth.sign_out", actor=g.user, remote_addr=request.remote_addr or "")
    db.session.commit()
    session.clear()
    return redirect(url_for("panel.login"))


@bp.get("/lang/<code>")
def set_language(code: str):
    response = redirect(safe_next(request.args.get("next")))
    if code in current_app.config["LANGUAGES"]:
        response.set_cookie(LANGUAGE_COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response


@bp.get("/devices/removed/<token>")
def device_removed(token: str):
    """The removal link a device's extension gave Chrome (setUninstallURL): Chrome opens it in a tab
    when the extension is removed. Public, since the extension and its token are gone by then."""
    device = report_extension_removed(token)
    db.session.commit()
    return render_template("device_removed.html", known=device is not None), 200 if device else 404


@bp.get("/rules")
def rules():
    row = rule_sets.current_rule_set(g.user.tenant)
    db.session.commit()
    compiled, _text = rule_sets.compiled_payload(row)
    versions = rule_sets.history(g.user.tenant_id)
    names = {u.id: u.display_name for u in user_service.users_in_tenant(g.user.tenant_id)}
    consoles = [(profile, json.dumps(profile, ensure_ascii=False, indent=2)) for profile in compiled["consoles"]]
    return render_template("rules.html", row=row, settings=compiled["settings"], versions=versions, names=names,
                           actions=ACTIONS, consoles=consoles)


def rules_from_form(form, current: dict) -> dict:
    """The rules page posts every category's words and action, the allow list and the main settings."""
    categories: dict[str, list[str]] = {}
    actions: dict[str, str] = {}
    for key in form:
        if key.startswith("words__"):
            name = key.removeprefix("words__")
            categories[name] = rule_sets.words_from_text(form[key], name)
            actions[name] = form.get(f"action__{name}", "block")
    new_name = form.get("new_category", "").strip().lower()
    if new_name:
        categories[new_name] = rule_sets.words_from_text(form.get("new_words", ""), new_name)
        actions[new_name] = form.get("new_action", "block")
    settings = dict(current.get("settings") or {})
    settings["actions"] = actions
    contacts = dict(settings.get("contacts") or {})
    contacts["enabled"] = form.get("contacts_enabled") == "on"
    contacts["action"] = form.get("contacts_action", "block")
    settings["contacts"] = contacts
    settings["mask"] = dict(settings.get("mask") or {}, style=form.get("mask_style", "last4"))
    return {"categories": categories, "allow": rule_sets.words_from_text(form.get("allow", ""), "allow"),
            "settings": settings}


@bp.post("/rules")
def rules_save():
    current = rule_sets.current_rule_set(g.user.tenant)
    try:
        row = rule_sets.save_rule_set(g.user, rules_from_form(request.form, current.content),
                                      request.form.get("note", ""))
    except ApiError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("panel.rules"))
    db.session.commit()
    if row.id == current.id:
        flash(_("Nothing changed."), "ok")
    else:
        flash(_("Rules saved as version %(n)d. Extensions pick it up within a minute.", n=row.version), "ok")
    return redirect(url_for("panel.rules"))


def consoles_from_form(form, current: list[dict]) -> list[dict]:
    """Each profile is edited as JSON in its own box; a new one can be pasted; a ticked box removes one."""
    consoles = []
    for profile in current:
        name = profile["id"]
        if form.get(f"delete__{name}") == "on":
            continue
        consoles.append(parse_profile(form.get(f"console__{name}", ""), name))
    new = form.get("new_console", "").strip()
    if new:
        consoles.append(parse_profile(new, _("the new profile")))
    return consoles


def parse_profile(text: str, name: str) -> dict:
    try:
        profile = json.loads(text)
    except ValueError as exc:
        raise ApiError(400, "invalid_console", _("Console profile %(id)s is not valid JSON: %(error)s",
                                                 id=name, error=str(exc))) from exc
    if not isinstance(profile, dict):
        raise ApiError(400, "invalid_console", _("Console profile %(id)s must be a JSON object.", id=name))
    return profile


@bp.post("/rules/consoles")
def rules_consoles_save():
    current = rule_sets.current_rule_set(g.user.tenant)
    compiled, _text = rule_sets.compiled_payload(current)
    try:
        content = {**current.content, "consoles": consoles_from_form(request.form, compiled["consoles"])}
        row = rule_sets.save_rule_set(g.user, content, request.form.get("note") or _("Console profiles changed"))
    except ApiError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("panel.rules", _anchor="consoles"))
    db.session.commit()
    if row.id == current.id:
        flash(_("Nothing changed."), "ok")
    else:
        flash(_("Console profiles saved as version %(n)d. Extensions pick it up within a minute.", n=row.version),
              "ok")
    return redirect(url_for("panel.rules", _anchor="consoles"))


@bp.post("/rules/import")
def rules_import():
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ApiError(400, "missing_field", _("Choose a .zip file to import."))
        content = rule_sets.import_zip(upload.read(rule_sets.MAX_IMPORT_BYTES + 1))
        row = rule_sets.save_rule_set(g.user, content, request.form.get("note") or _("Imported from a file"))
    except ApiError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("panel.rules"))
    db.session.commit()
    flash(_("Rules imported as version %(n)d.", n=row.version), "ok")
    return redirect(url_for("panel.rules"))


@bp.get("/settings")
def settings():
    return render_template("settings.html", departments=g.user.tenant.departments)


@bp.post("/settings/departments")
def department_create():
    try:
        create_department(g.user, g.user.tenant, request.form.get("name", ""))
    except ApiError as err:
        flash(err.message, "error")
        return redirect(url_for("panel.settings"))
    db.session.commit()
    flash(_("Department created."), "ok")
    return redirect(url_for("panel.settings"))


@bp.get("/users")
def users():
    return render_template("users.html", users=user_service.users_in_tenant(g.user.tenant_id))


def _form_department_ids() -> list[int]:
    return [int(v) for v in request.form.getlist("department_ids") if v.isdigit()]


@bp.route("/users/new", methods=["GET", "POST"])
def user_create():
    if request.method == "POST":
        try:
            user_service.create_user(
                g.user,
                tenant=g.user.tenant,
                email=request.form.get("email", ""),
                role=request.form.get("role", ""),
                display_name=request.form.get("display_name", ""),
                password=request.form.get("password") or None,
                department_ids=_form_department_ids(),
            )
        except ApiError as err:
            return render_template("user_form.html", user=None, roles=ROLES, error=err.message,
                                   form=request.form), err.status
        db.session.commit()
        flash(_("User created."), "ok")
        return redirect(url_for("panel.users"))
    return render_template("user_form.html", user=None, roles=ROLES, form={})


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id: int):
    target = get_user_in_tenant(g.user, user_id)
    if request.method == "POST":
        try:
            user_service.update_user(
                g.user,
                target,
                role=request.form.get("role") or None,
                display_name=request.form.get("display_name"),
                is_active=request.form.get("is_active") == "on",
                department_ids=_form_department_ids(),
                password=request.form.get("password") or None,
            )
        except ApiError as err:
            db.session.rollback()
            return render_template("user_form.html", user=target, roles=ROLES, error=err.message,
                                   form=request.form), err.status
        db.session.commit()
        flash(_("Changes saved."), "ok")
        return redirect(url_for("panel.users"))
    return render_template("user_form.html", user=target, roles=ROLES, form={})
