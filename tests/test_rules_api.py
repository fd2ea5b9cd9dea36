"""Rule sets: versioned per tenant, served compiled with an ETag, edited on the panel, imported and exported."""

from __future__ import annotations

import io
import re
import zipfile

from backend.extensions import db
from backend.models import AuditLogEntry
from tests.conftest import device_token, sign_in


def bearer(org, role="owner"):
    return {"Authorization": f"Bearer {org.tokens[role]}"}


def test_rules_start_from_the_defaults_and_are_served_with_an_etag(client, orgs):
    own, _other = orgs
    response = client.get("/api/v1/rules", headers=bearer(own, "agent"))
    assert response.status_code == 200
    payload = response.get_json()
    assert response.headers["ETag"] == f'"{payload["hash"]}"'
    assert response.headers["X-Veil-Rules-Version"] == "1"
    assert any(word == "私下交易" for _skeleton, _category, word in payload["words"])
    again = client.get("/api/v1/rules", headers={**bearer(own, "agent"), "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_an_extension_fetches_rules_with_its_device_token(app, client, orgs):
    own, _other = orgs
    token = device_token(app, own.device_id)
    response = client.get("/api/v1/rules", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.get_json()["format"] == 1
    # a device token opens nothing else
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    assert client.get("/api/v1/rules/source", headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_saving_makes_a_new_version_the_engines_use(app, client, orgs):
    own, other = orgs
    first = client.get("/api/v1/rules", headers=bearer(own)).headers["ETag"]
    body = {"categories": {"private_deal": ["私下交易", "走私单"], "abuse": ["idiot"]}, "allow": [],
            "settings": {"actions": {"abuse": "warn"}}, "note": "tighter"}
    response = client.put("/api/v1/rules", json=body, headers=bearer(own))
    assert response.status_code == 200 and response.get_json()["rule_set"]["version"] == 2
    served = client.get("/api/v1/rules", headers={**bearer(own), "If-None-Match": first})
    assert served.status_code == 200 and served.headers["X-Veil-Rules-Version"] == "2"
    assert served.get_json()["settings"]["actions"] == {"abuse": "warn", "private_deal": "block"}
    # saving the same content again changes nothing
    assert client.put("/api/v1/rules", json=body, headers=bearer(own)).get_json()["rule_set"]["version"] == 2
    # the other tenant is untouched
    assert client.get("/api/v1/rules", headers=bearer(other)).headers["X-Veil-Rules-Version"] == "1"
    history = client.get("/api/v1/rules/history", headers=bearer(own)).get_json()["versions"]
    assert [v["version"] for v in history] == [2, 1] and history[0]["note"] == "tighter"
    with app.app_context():
        entry = db.session.query(AuditLogEntry).filter_by(action="rules.save").one()
        changes = entry.details["changes"]
        assert changes["private_deal"]["added"] == 1 and changes["private_deal"]["removed"] > 0
        assert "compliance" in changes and changes["settings"] == "changed"


def test_bad_rules_are_refused_with_a_reason(client, orgs):
    own, _other = orgs
    cases = [
        ({"categories": {"Bad Name": ["x"]}}, "invalid_category"),
        ({"categories": {"x": "not a list"}}, "invalid_rules"),
        ({"categories": {"x": ["a"]}, "settings": {"actions": {"x": "explode"}}}, "invalid_action"),
        ({"categories": {"x": ["a"]}, "settings": {"contacts": {"countries": ["ZZ"]}}}, "invalid_rules"),
        ({"categories": {"x": ["a" * 300]}}, "invalid_rules"),
    ]
    for body, code in cases:
        response = client.put("/api/v1/rules", json=body, headers=bearer(own))
        assert response.status_code == 400, body
        assert response.get_json()["error"]["code"] == code


def test_export_and_import_round_trip(client, orgs):
    own, _other = orgs
    exported = client.get("/api/v1/rules/export", headers=bearer(own))
    assert exported.status_code == 200 and exported.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(exported.data))
    assert "sensitive/private_deal.txt" in archive.namelist() and "settings.toml" in archive.namelist()
    # edit the archive as a person would: a BOM and Windows line ends are fine
    edited = io.BytesIO()
    with zipfile.ZipFile(edited, "w") as out:
        for name in archive.namelist():
            data = archive.read(name)
            if name == "sensitive/abuse.txt":
                data = "\ufeff# abuse\r\nidiot\r\n蠢货\r\n".encode()
            out.writestr(name, data)
        out.writestr("../../etc/evil.txt", "ignored")
    response = client.post("/api/v1/rules/import", headers=bearer(own),
                           data={"file": (io.BytesIO(edited.getvalue()), "rules.zip")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    source = client.get("/api/v1/rules/source", headers=bearer(own)).get_json()["rules"]
    assert source["categories"]["abuse"] == ["idiot", "蠢货"]
    assert source["settings"]["actions"]["abuse"] == "warn", "settings survive the round trip"
    bad = client.post("/api/v1/rules/import", headers=bearer(own),
                      data={"file": (io.BytesIO(b"not a zip"), "rules.zip")}, content_type="multipart/form-data")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_archive"


def test_panel_rules_page_edits_words_and_actions(client, orgs):
    own, _other = orgs
    csrf = sign_in(client, own.users["admin"])
    page = client.get("/rules").get_data(as_text=True)
    assert "private_deal" in page and "私下交易" in page
    form = {name: value for name, value in re.findall(r'<textarea name="([^"]+)"[^>]*>([^<]*)</textarea>', page)}
    form.update({"csrf_token": csrf, "action__abuse": "log", "contacts_enabled": "on", "contacts_action": "warn",
                 "mask_style": "full", "note": "abuse is only logged now"})
    form["words__abuse"] += "\n<script>alert(1)</script>"
    for name in re.findall(r'<select name="(action__[^"]+)"', page):
        form.setdefault(name, "block")
    response = client.post("/rules", data=form)
    assert response.status_code == 302
    page = client.get("/rules").get_data(as_text=True)
    assert "v2" in page and "abuse is only logged now" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page, "words are escaped"
    payload = client.get("/api/v1/rules", headers=bearer(own)).get_json()
    assert payload["settings"]["actions"]["abuse"] == "log"
    assert payload["settings"]["contacts"]["action"] == "warn" and payload["settings"]["mask"]["style"] == "full"


def test_console_profiles_travel_with_the_rules_and_an_admin_can_change_them(client, orgs):
    own, _other = orgs
    payload = client.get("/api/v1/rules", headers=bearer(own, "agent")).get_json()
    shipped = {c["id"]: c for c in payload["consoles"]}
    assert {"whatsapp", "telegram_k", "telegram_a", "messenger", "generic"} <= set(shipped)

    # an in-house console: the generic profile with the company's address
    source = client.get("/api/v1/rules/source", headers=bearer(own)).get_json()["rules"]
    generic = {**shipped["generic"], "matches": ["https://crm.example.com/chat/*"]}
    consoles = [generic if c["id"] == "generic" else c for c in shipped.values()]
    response = client.put("/api/v1/rules", json={**source, "consoles": consoles, "note": "our CRM"},
                          headers=bearer(own, "admin"))
    assert response.status_code == 200, response.get_json()
    served = client.get("/api/v1/rules", headers=bearer(own, "agent")).get_json()
    assert served["hash"] != payload["hash"], "a profile change is a new version the extension fetches"
    assert {c["id"]: c for c in served["consoles"]}["generic"]["matches"] == ["https://crm.example.com/chat/*"]

    # saving words only keeps the profiles
    words_only = {k: v for k, v in source.items() if k != "consoles"}
    words_only["allow"] = [*source["allow"], "客服热线 400-000-0000"]
    assert client.put("/api/v1/rules", json=words_only, headers=bearer(own)).status_code == 200
    kept = client.get("/api/v1/rules", headers=bearer(own, "agent")).get_json()
    assert {c["id"]: c for c in kept["consoles"]}["generic"]["matches"] == ["https://crm.example.com/chat/*"]

    # exported and imported with the rest
    archive = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/rules/export", headers=bearer(own)).data))
    assert "consoles/generic.json" in archive.namelist()
    assert "crm.example.com" in archive.read("consoles/generic.json").decode()

    # a broken profile is refused with the field named, and changes nothing
    broken = [{**generic, "messages": {**generic["messages"], "row": ""}}]
    refused = client.put("/api/v1/rules", json={**source, "consoles": broken}, headers=bearer(own))
    assert refused.status_code == 400 and "messages.row" in refused.get_json()["error"]["message"]
    twice = client.put("/api/v1/rules", json={**source, "consoles": [generic, generic]}, headers=bearer(own))
    assert twice.status_code == 400
    assert client.put("/api/v1/rules", json={**source, "consoles": "nope"}, headers=bearer(own)).status_code == 400


def test_panel_edits_adds_and_removes_console_profiles(client, orgs):
    import html
    import json

    own, _other = orgs
    csrf = sign_in(client, own.users["admin"])
    page = client.get("/rules").get_data(as_text=True)
    boxes = {name: html.unescape(text) for name, text in
             re.findall(r'<textarea name="(console__[^"]+)"[^>]*>([^<]*)</textarea>', page)}
    assert set(boxes) >= {"console__whatsapp", "console__generic"}
    generic = json.loads(boxes["console__generic"])
    generic["matches"] = ["https://crm.example.com/*"]
    ours = {**generic, "id": "our_crm", "name": "Our CRM <b>", "matches": ["https://desk.example.com/*"]}
    form = {**boxes, "csrf_token": csrf, "console__generic": json.dumps(generic), "delete__messenger": "on",
            "new_console": json.dumps(ours), "note": "CRM profiles"}
    assert client.post("/rules/consoles", data=form).status_code == 302
    served = {c["id"]: c for c in client.get("/api/v1/rules", headers=bearer(own, "agent")).get_json()["consoles"]}
    assert served["generic"]["matches"] == ["https://crm.example.com/*"]
    assert served["our_crm"]["matches"] == ["https://desk.example.com/*"]
    assert "messenger" not in served
    page = client.get("/rules").get_data(as_text=True)
    assert "Our CRM <b>" not in page and "Our CRM &lt;b&gt;" in page, "profile names are escaped"

    # a broken box changes nothing and says why
    version = client.get("/api/v1/rules", headers=bearer(own, "agent")).headers["X-Veil-Rules-Version"]
    broken = {**form, "console__generic": "{not json", "new_console": "", "delete__messenger": ""}
    response = client.post("/rules/consoles", data=broken, follow_redirects=True)
    assert "not valid JSON" in response.get_data(as_text=True)
    assert client.get("/api/v1/rules", headers=bearer(own, "agent")).headers["X-Veil-Rules-Version"] == version
