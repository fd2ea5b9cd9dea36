"""Panel sign-in: passwords, server-side sessions, CSRF, throttling, sign-out."""

from __future__ import annotations

import re

import pytest

from backend.extensions import db
from backend.models import AuditLogEntry, Role, User, WebSession
from backend.security.passwords import hash_password
from backend.services.tenants import create_tenant
from tests.conftest import UserRef

PASSWORD = "correct horse battery"


def add_user(app, email: str, role: str, tenant_id: int | None = None, password: str | None = PASSWORD) -> UserRef:
    with app.app_context():
        tenant_id = tenant_id or create_tenant("Acme").id
        user = User(tenant_id=tenant_id, email=email, display_name=email.split("@")[0], role=role,
                    password_hash=hash_password(password) if password else None)
        db.session.add(user)
        db.session.commit()
        return UserRef.of(user)


@pytest.fixture
def owner(app):
    return add_user(app, "boss@acme.test", Role.OWNER)


def audit_actions(app) -> list[str]:
    with app.app_context():
        return [e.action for e in db.session.query(AuditLogEntry).order_by(AuditLogEntry.id)]


def csrf_from(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def post_login(client, email, password, next_url=""):
    token = csrf_from(client.get("/login"))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token, "next": next_url})


def test_password_is_stored_as_argon2id(app, owner):
    with app.app_context():
        stored = db.session.get(User, owner.id).password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_sign_in_sets_a_server_side_session_cookie(app, client, owner):
    before = client.get("/login").headers.get("Set-Cookie", "")
    response = post_login(client, "BOSS@acme.test ", PASSWORD, next_url="/users")
    assert response.status_code == 302 and response.headers["Location"].endswith("/users")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    sid = cookie.split(";")[0].split("=", 1)[1]
    assert sid not in before, "the session id changes at sign-in (no fixation)"
    with app.app_context():
        assert db.session.query(WebSession).filter_by(user_id=owner.id).count() == 1
    assert client.get("/users").status_code == 200


def test_sign_in_refuses_offsite_next(client, owner):
    response = post_login(client, owner.email, PASSWORD, next_url="https://evil.example/")
    assert response.headers["Location"] == "/"
    response = post_login(client, owner.email, PASSWORD, next_url="//evil.example/")
    assert response.headers["Location"] == "/"


def test_wrong_password_is_refused_and_audited(app, client, owner):
    response = post_login(client, owner.email, "wrong password!")
    assert response.status_code == 401
    assert "Wrong e-mail or password." in response.get_data(as_text=True)
    assert client.get("/users").status_code == 302
    assert "auth.sign_in_failed" in audit_actions(app)


def test_unknown_email_gets_the_same_answer(client, owner):
    response = post_login(client, "nobody@acme.test", PASSWORD)
    assert response.status_code == 401
    assert "Wrong e-mail or password." in response.get_data(as_text=True)


def test_throttling_after_repeated_failures(client, owner, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert post_login(client, owner.email, "wrong password!").status_code == 401
    response = post_login(client, owner.email, PASSWORD)  # even the right password waits
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    # another account is not locked by this one's failures
    other = add_user(app, "other@acme.test", Role.ADMIN, owner.tenant_id)
    assert post_login(app.test_client(), other.email, PASSWORD).status_code == 302


def test_disabled_user_cannot_sign_in(app, client, owner):
    with app.app_context():
        db.session.get(User, owner.id).is_active = False
        db.session.commit()
    assert post_login(client, owner.email, PASSWORD).status_code == 401


def test_form_without_csrf_token_is_refused(client, owner):
    post_login(client, owner.email, PASSWORD)
    response = client.post("/settings/departments", data={"name": "Night"})
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True)


def test_json_with_session_needs_csrf_header(client, owner):
    post_login(client, owner.email, PASSWORD)
    response = client.post("/api/v1/departments", json={"name": "Night"})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "csrf_failed"
    token = csrf_from(client.get("/settings"))
    response = client.post("/api/v1/departments", json={"name": "Night"}, headers={"X-CSRFToken": token})
    assert response.status_code == 201


def test_sign_out_ends_the_session_on_the_server(client, owner, app):
    post_login(client, owner.email, PASSWORD)
    cookie = client.get_cookie("veil_session").value
    token = csrf_from(client.get("/settings"))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    replay = app.test_client()
    replay.set_cookie("veil_session", cookie)
    assert replay.get("/users").status_code == 302, "an old cookie is worthless after sign-out"


def test_disabling_a_user_ends_their_sessions(client, owner, app):
    admin = add_user(app, "admin@acme.test", Role.ADMIN, owner.tenant_id)
    admin_client = app.test_client()
    post_login(admin_client, admin.email, PASSWORD)
    assert admin_client.get("/users").status_code == 200
    post_login(client, owner.email, PASSWORD)
    token = csrf_from(client.get("/settings"))
    response = client.post(f"/users/{admin.id}", data={"csrf_token": token, "role": "admin",
                                                      "display_name": "A"})  # no is_active: disable
    assert response.status_code == 302
    assert admin_client.get("/users").status_code == 302


def api_token(app, user: UserRef) -> str:
    from backend.services.api_tokens import create_api_token

    with app.app_context():
        token = create_api_token(db.session.get(User, user.id))
        db.session.commit()
    return token


def test_bearer_token_works_and_a_bad_one_is_refused(app, client, owner):
    token = api_token(app, owner)
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.get_json()["user"]["email"] == owner.email
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer veil_not-a-token"})
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_token"


def test_admin_cannot_create_or_change_owners(client, owner, app):
    admin = add_user(app, "admin@acme.test", Role.ADMIN, owner.tenant_id, password=None)
    headers = {"Authorization": f"Bearer {api_token(app, admin)}"}
    response = client.post("/api/v1/users", json={"email": "o2@acme.test", "role": "owner"}, headers=headers)
    assert response.status_code == 403
    response = client.patch(f"/api/v1/users/{owner.id}", json={"is_active": False}, headers=headers)
    assert response.status_code == 403
    response = client.post("/api/v1/users", json={"email": "sup@acme.test", "role": "supervisor"}, headers=headers)
    assert response.status_code == 201


def test_sign_in_is_hash_chained_in_the_audit_trail(app, client, owner):
    from backend.services.audit import chain_key, keyed_digest, verify_audit

    post_login(client, owner.email, PASSWORD)
    with app.app_context():
        entries = db.session.query(AuditLogEntry).order_by(AuditLogEntry.chain, AuditLogEntry.seq).all()
        assert max(entries, key=lambda e: e.id).action == "auth.sign_in"
        for entry in entries:
            assert entry.entry_hash == keyed_digest(entry, chain_key())
        for before, after in zip(entries, entries[1:], strict=False):
            if before.chain == after.chain:  # one chain per tenant (tests/test_audit.py has the rest)
                assert after.prev_hash == before.entry_hash and after.seq == before.seq + 1
        assert verify_audit().ok
