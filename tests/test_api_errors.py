"""Bad input gets a clear JSON error with a 4xx status: never a 500 page or a stack trace."""

from __future__ import annotations

import pytest


@pytest.fixture
def owner_headers(orgs):
    own, _other = orgs
    return {"Authorization": f"Bearer {own.tokens['owner']}"}


def error_of(response) -> dict:
    body = response.get_json()
    assert body is not None, response.get_data(as_text=True)[:200]
    assert "Traceback" not in response.get_data(as_text=True)
    return body["error"]


@pytest.mark.parametrize(
    "raw,content_type,status,code",
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b'{"email": "\xff\xfe"}', "application/json", 400, "invalid_json"),  # broken UTF-8
        (b"[1, 2, 3]", "application/json", 400, "invalid_json"),
        (b'"just a string"', "application/json", 400, "invalid_json"),
        (b"email=a@b.c", "application/x-www-form-urlencoded", 415, "json_required"),
    ],
)
def test_unreadable_bodies(client, owner_headers, raw, content_type, status, code):
    response = client.post("/api/v1/users", data=raw, headers={**owner_headers, "Content-Type": content_type})
    assert response.status_code == status
    assert error_of(response)["code"] == code


@pytest.mark.parametrize(
    "body,code,field",
    [
        ({}, "missing_field", "email"),
        ({"email": "a@b.test"}, "missing_field", "role"),
        ({"email": 42, "role": "agent"}, "wrong_type", "email"),
        ({"email": "a@b.test", "role": ["agent"]}, "wrong_type", "role"),
        ({"email": "a@b.test", "role": "agent", "department_ids": [True]}, "wrong_type", "department_ids"),
        ({"email": "a@b.test", "role": "agent", "department_ids": "1"}, "wrong_type", "department_ids"),
        ({"email": "x" * 300 + "@b.test", "role": "agent"}, "too_long", "email"),
    ],
)
def test_field_errors_name_the_field(client, owner_headers, body, code, field):
    response = client.post("/api/v1/users", json=body, headers=owner_headers)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == code
    assert error["details"]["field"] == field
    assert field in error["message"]


@pytest.mark.parametrize(
    "body,status,code",
    [
        ({"email": "not-an-email", "role": "agent"}, 400, "invalid_email"),
        ({"email": "a@b.test", "role": "emperor"}, 400, "invalid_role"),
        ({"email": "a@b.test", "role": "agent", "password": "short"}, 400, "weak_password"),
        ({"email": "a@b.test", "role": "agent", "department_ids": [999999]}, 400, "unknown_department"),
        ({"email": "owner@acme.test", "role": "agent"}, 409, "email_taken"),
    ],
)
def test_domain_errors(client, owner_headers, body, status, code):
    response = client.post("/api/v1/users", json=body, headers=owner_headers)
    assert response.status_code == status
    assert error_of(response)["code"] == code


def test_oversized_body_is_refused(client, owner_headers, app):
    big = b'{"email": "' + b"a" * (app.config["MAX_CONTENT_LENGTH"] + 10) + b'"}'
    response = client.post("/api/v1/users", data=big, headers={**owner_headers, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_entity_too_large"


def test_unknown_ids_and_routes(client, owner_headers):
    response = client.get("/api/v1/users/987654", headers=owner_headers)
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    response = client.get("/api/v1/nothing-here", headers=owner_headers)
    assert response.status_code == 404 and error_of(response)["code"] == "not_found"
    response = client.delete("/api/v1/users", headers=owner_headers)
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"
    response = client.get("/api/v1/conversations?limit=ten", headers=owner_headers)
    assert response.status_code == 400 and error_of(response)["code"] == "wrong_type"


def test_unexpected_failure_is_a_generic_500(client, owner_headers, monkeypatch):
    from backend.services import users

    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(users, "users_in_tenant", explode)
    response = client.get("/api/v1/users", headers=owner_headers)
    assert response.status_code == 500
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert error_of(response)["code"] == "internal_error"


def test_panel_errors_are_pages_in_the_users_language(client):
    response = client.get("/no/such/page", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert response.status_code == 404
    assert "页面不存在" in response.get_data(as_text=True)


def test_enrolment_errors(client, orgs):
    own, _other = orgs
    response = client.post("/api/v1/devices/enrol", json={"code": "WRNG-CODE"})
    assert response.status_code == 400 and error_of(response)["code"] == "invalid_code"
    ok = client.post("/api/v1/devices/enrol", json={"code": own.pending_code.lower().replace("-", " ")})
    assert ok.status_code == 201, "codes survive lower case and spaces"
    assert ok.get_json()["token"]
    replay = client.post("/api/v1/devices/enrol", json={"code": own.pending_code})
    assert replay.status_code == 400 and error_of(replay)["code"] == "invalid_code", "a code is single-use"


def test_a_bad_token_does_not_break_public_routes(client):
    response = client.get("/healthz", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200 and response.get_json() == {"status": "ok", "db": "ok"}


def test_pages_cannot_be_framed_and_load_only_their_own_scripts(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_guessing_enrolment_codes_is_throttled(client, orgs):
    from backend.services.devices import ENROLMENT_MAX_FAILURES

    own, _other = orgs
    for n in range(ENROLMENT_MAX_FAILURES):
        response = client.post("/api/v1/devices/enrol", json={"code": f"AAAA-{n:04d}"})
        assert response.status_code == 400
    response = client.post("/api/v1/devices/enrol", json={"code": own.pending_code})
    assert response.status_code == 429, "even the right code waits once an address has guessed too often"
    assert error_of(response)["code"] == "too_many_attempts"
    assert error_of(response)["details"]["retry_after"] > 0
