"""Grants: the private key to read records, the restore key to reveal identifiers, signed by the owner."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from backend.errors import ApiError
from backend.extensions import db, socketio
from backend.models import (
    AuditLogEntry,
    ChatAccount,
    Conversation,
    Grant,
    GrantSetting,
    GrantUse,
    Message,
    SigningKey,
    User,
)
from backend.models.base import utcnow
from backend.security.identifiers import identifier_key
from backend.services import grant_state, grants, signing_keys
from backend.services.conversations import find_or_create_conversation
from tests.conftest import device_token, sign_in
from tests.grants_helper import OWNER_PASSWORD, grant_department, issue_grant, owner_with_key

SPAN = "ab" * 32
CUSTOMER = "+86 138 0013 8000"  # conftest's conversation


def bearer(org, role="supervisor"):
    return {"Authorization": f"Bearer {org.tokens[role]}"}


def support_conversation(app, org) -> int:
    """A conversation of the agent in Support (department B for the supervisor's Sales grant)."""
    with app.app_context():
        agent = db.session.get(User, org.other_agent.id)
        account = ChatAccount(tenant_id=org.tenant_id, agent=agent, platform="whatsapp", handle="support line")
        db.session.add(account)
        db.session.flush()
        conversation = find_or_create_conversation(identifier_key(), account, "+86 139 0000 0001")
        db.session.add(Message(tenant_id=org.tenant_id, conversation=conversation, direction="in",
                               text="support secret", sent_at=utcnow()))
        db.session.commit()
        return conversation.id


def readable(client, org, conversation_id: int, role="supervisor") -> int:
    return client.get(f"/api/v1/conversations/{conversation_id}/records", headers=bearer(org, role)).status_code


def audit_actions(app, action: str) -> list[AuditLogEntry]:
    with app.app_context():
        rows = db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == action)).all()
        db.session.expunge_all()
        return list(rows)


def reveal_payload(org) -> dict:
    return {"chat": {"console": "whatsapp", "account": f"{org.name} sales", "key": "chat-1", "customer": CUSTOMER},
            "span_hash": SPAN}


# ---- reading records --------------------------------------------------------------------------------

def test_without_a_grant_nobody_reads_records(app, client, orgs):
    own, _other = orgs
    for role in ("owner", "admin", "supervisor"):
        assert readable(client, own, own.conversation_id, role) == 403, role
        messages = client.get(f"/api/v1/conversations/{own.conversation_id}/messages", headers=bearer(own, role))
        assert messages.status_code == 403
        search = client.get("/api/v1/messages/search?q=hello", headers=bearer(own, role)).get_json()
        assert search["messages"] == [], "a text hit tells the text: not listed without a grant"
        listed = client.get("/api/v1/messages/search", headers=bearer(own, role)).get_json()["messages"]
        assert listed and all(m["text"] is None for m in listed)
    sign_in(client, own.users["supervisor"])
    page = client.get(f"/records/conversations/{own.conversation_id}")
    assert page.status_code == 403 and "hello from a customer" not in page.get_data(as_text=True)


def test_a_grant_for_department_a_reads_a_and_not_b(app, client, orgs):
    own, other = orgs
    support = support_conversation(app, own)
    grant_department(app, own, own.users["owner"].id, own.sales_id)
    assert readable(client, own, own.conversation_id, "owner") == 200
    assert readable(client, own, support, "owner") == 403
    body = client.get("/api/v1/messages/search", headers=bearer(own, "owner")).get_json()["messages"]
    texts = {m["conversation_id"]: m["text"] for m in body}
    assert texts[own.conversation_id].startswith("hello from a customer") and texts[support] is None
    # the supervisor's own Sales grant never reaches beyond their scope, nor another tenant
    grant_department(app, own, own.users["supervisor"].id, own.support_id)
    assert readable(client, own, support, "supervisor") == 403
    assert readable(client, own, other.conversation_id, "supervisor") == 404


@pytest.mark.parametrize("scope", ["agent_ids", "chat_account_ids", "conversation_ids"])
def test_every_kind_of_scope_covers_its_conversation(app, client, orgs, scope):
    own, _other = orgs
    support = support_conversation(app, own)
    with app.app_context():
        conversation = db.session.get(Conversation, own.conversation_id)
        ids = {"agent_ids": [conversation.agent_id], "chat_account_ids": [conversation.chat_account_id],
               "conversation_ids": [conversation.id]}[scope]
        issue_grant(own, own.users["owner"].id, **{scope: ids})
    assert readable(client, own, own.conversation_id, "owner") == 200
    assert readable(client, own, support, "owner") == 403


def test_an_expired_or_revoked_grant_stops_at_once(app, client, orgs):
    own, _other = orgs
    with app.app_context():
        now = utcnow()
        issue_grant(own, own.users["supervisor"].id, department_ids=[own.sales_id],
                    starts=now - timedelta(days=2), ends=now - timedelta(seconds=1))
        later = issue_grant(own, own.users["supervisor"].id, department_ids=[own.sales_id],
                            starts=now + timedelta(hours=1), ends=now + timedelta(days=1))
    assert readable(client, own, own.conversation_id) == 403, "expired, and the other not started"
    grant_id = grant_department(app, own, own.users["supervisor"].id, own.sales_id)
    assert readable(client, own, own.conversation_id) == 200
    revoked = client.post(f"/api/v1/grants/{grant_id}/revoke", headers=bearer(own, "owner"))
    assert revoked.status_code == 200 and revoked.get_json()["grant"]["status"] == "revoked"
    assert readable(client, own, own.conversation_id) == 403
    statuses = {g["id"]: g["status"] for g in client.get("/api/v1/grants", headers=bearer(own, "owner")).get_json()[
        "grants"]}
    assert statuses[grant_id] == "revoked" and statuses[later] == "scheduled" and "expired" in statuses.values()


def test_max_uses_hold_under_concurrency(app, orgs):
    own, _other = orgs
    grant_id = grant_department(app, own, own.users["supervisor"].id, own.sales_id, max_uses=3)
    results: list[str] = []
    start = threading.Barrier(8)

    def view() -> None:
        with app.app_context():
            grant = db.session.get(Grant, grant_id)
            start.wait()
            try:
                grants.use_grant(grant, "record_view", ("conversation", own.conversation_id))
                db.session.commit()
                results.append("ok")
            except ApiError as err:
                db.session.rollback()
                results.append(err.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=view) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") == 3 and results.count("grant_used_up") == 5
    with app.app_context():
        assert db.session.get(Grant, grant_id).uses == 3
        assert db.session.scalar(select(func.count()).select_from(GrantUse)) == 3
        supervisor = db.session.get(User, own.users["supervisor"].id)
        assert grants.has_grant(supervisor, "private", db.session.get(Conversation, own.conversation_id)) is None


# ---- forged rows ------------------------------------------------------------------------------------

def _copy_row(app, grant_id: int, **changes) -> int:
    """Insert a grant row with SQL, as someone holding only the database would."""
    with app.app_context():
        row = dict(db.session.execute(text("SELECT * FROM access_grant WHERE id = :id"), {"id": grant_id})
                   .mappings().one())
        row.pop("id")
        row.update(nonce=base64.b64encode(changes.pop("nonce_seed", b"forged").ljust(18, b"!")).decode(), **changes)
        columns = ", ".join(row)
        values = ", ".join(f":{name}" for name in row)
        new_id = db.session.execute(text(f"INSERT INTO access_grant ({columns}) VALUES ({values}) RETURNING id"),
                                    {k: (v if not isinstance(v, list) else __import__("json").dumps(v))
                                     for k, v in row.items()}).scalar_one()
        db.session.commit()
        return new_id


def test_a_forged_grant_row_is_refused_and_audited_once(app, client, orgs):
    own, _other = orgs
    # a genuine grant for someone else, copied for the supervisor: the signature does not cover them
    genuine = grant_department(app, own, own.users["admin"].id, own.sales_id)
    forged = _copy_row(app, genuine, grantee_id=own.users["supervisor"].id)
    assert readable(client, own, own.conversation_id) == 403
    assert readable(client, own, own.conversation_id) == 403
    refused = [e for e in audit_actions(app, "grant.refused") if e.target_id == str(forged)]
    assert len(refused) == 1 and refused[0].details["reason"] == "bad_signature"
    statuses = {g["id"]: g["status"] for g in client.get("/api/v1/grants", headers=bearer(own, "owner")).get_json()[
        "grants"]}
    assert statuses[forged] == "refused" and statuses[genuine] == "active"


def test_a_grant_signed_by_an_unknown_key_is_refused(app, client, orgs):
    own, _other = orgs
    genuine = grant_department(app, own, own.users["supervisor"].id, own.sales_id)
    with app.app_context():
        # the attacker adds a key of their own (without the server's secret) and signs with it
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        private = Ed25519PrivateKey.generate()
        public = base64.b64encode(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
        owner = db.session.get(User, own.users["owner"].id)
        key = SigningKey(tenant_id=own.tenant_id, user_id=owner.id, public_key=public, encrypted_private_key="x",
                         kdf_salt="x", kdf_n=1, kdf_r=1, kdf_p=1, binding="0" * 64, created_at=utcnow())
        db.session.add(key)
        db.session.execute(text("UPDATE access_grant SET revoked_at = :now"), {"now": utcnow()})
        db.session.commit()
        grant = db.session.get(Grant, genuine)
        forged = Grant(tenant_id=grant.tenant_id, grantee_id=grant.grantee_id, kind="private",
                       agent_ids=[], department_ids=[own.sales_id], chat_account_ids=[], conversation_ids=[],
                       starts_at=grant.starts_at, ends_at=grant.ends_at, uses=0, issued_by_id=owner.id,
                       issued_at=grant.issued_at, signing_key_id=key.id, nonce="attacker-nonce")
        forged.signature = base64.b64encode(private.sign(grants.signed_payload(forged))).decode()
        db.session.add(forged)
        db.session.commit()
        forged_id = forged.id
    assert readable(client, own, own.conversation_id) == 403
    refused = [e for e in audit_actions(app, "grant.refused") if e.target_id == str(forged_id)]
    assert len(refused) == 1 and refused[0].details["reason"] == "untrusted_key"


def test_a_changed_grant_no_longer_verifies(app, client, orgs):
    own, _other = orgs
    grant_id = grant_department(app, own, own.users["supervisor"].id, own.sales_id)
    assert readable(client, own, own.conversation_id) == 200
    with app.app_context():  # someone widens the scope in the database
        db.session.execute(text("UPDATE access_grant SET department_ids = :ids WHERE id = :id"),
                           {"ids": f"[{own.sales_id}, {own.support_id}]", "id": grant_id})
        db.session.commit()
    assert readable(client, own, own.conversation_id) == 403


# ---- revocation and uses edited in the database -----------------------------------------------------

def grant_row(app, grant_id: int) -> dict:
    with app.app_context():
        return dict(db.session.execute(text("SELECT uses, revoked_at, state_mac FROM access_grant WHERE id = :id"),
                                       {"id": grant_id}).mappings().one())


def set_row(app, grant_id: int, sql: str, **values) -> None:
    """An UPDATE or DELETE as someone holding only the database would write it."""
    with app.app_context():
        db.session.execute(text(sql), {"id": grant_id, **values})
        db.session.commit()


def refusals_of(app, grant_id: int) -> list[str]:
    return [e.details["reason"] for e in audit_actions(app, "grant.refused") if e.target_id == str(grant_id)]


def status_in_listing(client, org, grant_id: int) -> str:
    listed = client.get("/api/v1/grants", headers=bearer(org, "owner")).get_json()["grants"]
    return {g["id"]: g["status"] for g in listed}[grant_id]


def test_revoking_and_using_keep_the_state_vouched_for(app, client, orgs):
    own, _other = orgs
    grant_id = grant_department(app, own, own.users["supervisor"].id, own.sales_id, max_uses=5)
    assert readable(client, own, own.conversation_id) == 200
    assert readable(client, own, own.conversation_id) == 200
    with app.app_context():
        grant = db.session.get(Grant, grant_id)
        state = grant_state.read_state(grant_id)
        assert (state.uses, state.recorded_uses) == (2, 2) and grants.refusal_reason(grant) is None
    assert client.post(f"/api/v1/grants/{grant_id}/revoke", headers=bearer(own, "owner")).status_code == 200
    with app.app_context():
        state = grant_state.read_state(grant_id)
        assert state.revoked_at is not None and grant_state.problem(grant.nonce, state) is None
    assert status_in_listing(client, own, grant_id) == "revoked" and refusals_of(app, grant_id) == []


def test_an_unrevoked_grant_is_refused_and_audited_once(app, client, orgs):
    own, _other = orgs
    grant_id = grant_department(app, own, own.users["supervisor"].id, own.sales_id)
    assert client.post(f"/api/v1/grants/{grant_id}/revoke", headers=bearer(own, "owner")).status_code == 200
    assert readable(client, own, own.conversation_id) == 403
    set_row(app, grant_id, "UPDATE access_grant SET revoked_at = NULL, revoked_by_id = NULL WHERE id = :id")
    assert readable(client, own, own.conversation_id) == 403
    assert readable(client, own, own.conversation_id) == 403
    assert refusals_of(app, grant_id) == ["state_changed"]
    assert status_in_listing(client, own, grant_id) == "refused"
    # the owner can still revoke it again, and the new revocation is vouched for
    assert client.post(f"/api/v1/grants/{grant_id}/revoke", headers=bearer(own, "owner")).get_json()[
        "grant"]["status"] == "revoked"
    with app.app_context():
        state = grant_state.read_state(grant_id)
        assert grant_state.problem(db.session.get(Grant, grant_id).nonce, state) is None


@pytest.mark.parametrize("how,reason", [
    ("uses_only", "state_changed"),  # the count lowered, the MAC left as it was
    ("earlier_copy", "uses_rolled_back"),  # the count and MAC of an earlier copy of the row put back
])
def test_a_count_of_uses_set_back_is_refused(app, client, orgs, how, reason):
    own, _other = orgs
    grant_id = grant_department(app, own, own.users["supervisor"].id, own.sales_id, max_uses=2)
    earlier = grant_row(app, grant_id)
    assert readable(client, own, own.conversation_id) == 200
    assert readable(client, own, own.conversation_id) == 200
    assert readable(client, own, own.conversation_id) == 403, "used up"
    if how == "uses_only":
        set_row(app, grant_id, "UPDATE access_grant SET uses = 0 WHERE id = :id")
    else:
        set_row(app, grant_id, "UPDATE access_grant SET uses = :uses, state_mac = :mac WHERE id = :id",
                uses=earlier["uses"], mac=earlier["state_mac"])
    assert readable(client, own, own.conversation_id) == 403
    assert readable(client, own, own.conversation_id) == 403
    assert refusals_of(app, grant_id) == [reason]
    with app.app_context():
        assert db.session.get(Grant, grant_id).uses == 0, "no use was counted on the set-back row"
        assert db.session.scalar(select(func.count()).select_from(GrantUse)) == 2


def test_what_a_database_writer_can_still_undo_shows_against_the_audit_trail(app, client, orgs, monkeypatch):
    """An earlier copy of the row put back together with deleting its later grant_use rows passes the check
    (docs/security.md says so); the audit trail still holds the uses and the revocation."""
    own, _other = orgs
    used = grant_department(app, own, own.users["supervisor"].id, own.sales_id, max_uses=1)
    fresh = grant_row(app, used)
    assert readable(client, own, own.conversation_id) == 200
    set_row(app, used, "DELETE FROM grant_use WHERE grant_id = :id")
    set_row(app, used, "UPDATE access_grant SET uses = :uses, state_mac = :mac WHERE id = :id",
            uses=fresh["uses"], mac=fresh["state_mac"])
    revoked = grant_department(app, own, own.users["admin"].id, own.sales_id)
    before = grant_row(app, revoked)
    assert client.post(f"/api/v1/grants/{revoked}/revoke", headers=bearer(own, "owner")).status_code == 200
    set_row(app, revoked, "UPDATE access_grant SET revoked_at = NULL, revoked_by_id = NULL, state_mac = :mac "
                          "WHERE id = :id", mac=before["state_mac"])
    assert readable(client, own, own.conversation_id) == 200
    assert readable(client, own, own.conversation_id, "admin") == 200
    with app.app_context():
        found = {(d.grant_id, d.message) for d in grant_state.compare_with_audit(own.tenant_id)}
        assert found == {(used, "2 uses in the audit trail, 1 in the database"),
                         (revoked, "revoked in the audit trail, not in the database")}
        assert grant_state.compare_with_audit(own.tenant_id + 1000) == []
    # `veil audit verify` says so and fails.
    import backend.cli

    monkeypatch.setattr(backend.cli, "make_app", lambda: app)
    done = CliRunner().invoke(backend.cli.main, ["audit", "verify", "--tenant", "Acme"], catch_exceptions=False)
    assert done.exit_code == 1, done.output
    assert f"grant_rolled_back: grant {revoked}: revoked in the audit trail" in done.output
    assert "1 grant(s) behind" not in done.output and "2 grant(s) behind the trail" in done.output


def let_in_after_first_read(monkeypatch, other) -> list[int]:
    """Make a race happen: the first time this thread reads a grant's state, `other` runs to the end (in a
    thread of its own, with its own session) before the read returns. The list gets the count first read."""
    real, raced = grant_state.read_state, []

    def read_then_let_other_in(grant_id: int):
        state = real(grant_id)
        if not raced:
            raced.append(state.uses)
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        return state

    monkeypatch.setattr(grant_state, "read_state", read_then_let_other_in)
    return raced


@pytest.mark.parametrize("max_uses", [2, None])
def test_a_use_that_loses_a_race_reads_the_count_again(app, orgs, monkeypatch, max_uses):
    """Use A reads the count, use B commits the next one, then A writes: A's compare-and-set misses, A reads
    again and either counts the use after B's or finds the grant used up."""
    own, _other = orgs
    grant_id = grant_department(app, own, own.users["supervisor"].id, own.sales_id, max_uses=max_uses)
    target = ("conversation", own.conversation_id)

    def use_and_commit() -> None:
        with app.app_context():
            grants.use_grant(db.session.get(Grant, grant_id), "record_view", target)
            db.session.commit()
            db.session.remove()

    with app.app_context():
        use_and_commit()
        raced = let_in_after_first_read(monkeypatch, use_and_commit)
        grant = db.session.get(Grant, grant_id)
        if max_uses is None:
            grants.use_grant(grant, "record_view", target)
            db.session.commit()
        else:
            with pytest.raises(ApiError) as refused:
                grants.use_grant(grant, "record_view", target)
            assert refused.value.code == "grant_used_up"
            db.session.rollback()
        monkeypatch.undo()
        assert raced == [1]
        state = grant_state.read_state(grant_id)
        assert state.uses == state.recorded_uses == (3 if max_uses is None else 2)
        assert grants.refusal_reason(db.session.get(Grant, grant_id)) is None


def test_a_revocation_racing_a_use_vouches_for_the_use(app, orgs, monkeypatch):
    own, _other = orgs
    grant_id = grant_department(app, own, own.users["supervisor"].id, own.sales_id)

    def use_and_commit() -> None:
        with app.app_context():
            grants.use_grant(db.session.get(Grant, grant_id), "record_view", ("conversation", own.conversation_id))
            db.session.commit()
            db.session.remove()

    with app.app_context():
        raced = let_in_after_first_read(monkeypatch, use_and_commit)
        grants.revoke(db.session.get(User, own.users["owner"].id), db.session.get(Grant, grant_id))
        db.session.commit()
        monkeypatch.undo()
        state = grant_state.read_state(grant_id)
        assert raced == [0] and state.revoked_at is not None and state.uses == state.recorded_uses == 1
        assert grant_state.problem(db.session.get(Grant, grant_id).nonce, state) is None


# ---- issuing ----------------------------------------------------------------------------------------

def issue_body(org, **changes) -> dict:
    now = utcnow()
    body = {"grantee_id": org.users["supervisor"].id, "kind": "private",
            "scope": {"department_ids": [org.sales_id]}, "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(days=7)).isoformat(), "password": OWNER_PASSWORD}
    body.update(changes)
    return body


def test_issuing_needs_the_owners_password_and_is_throttled(app, client, orgs):
    own, _other = orgs
    with app.app_context():
        owner_with_key(own.users["owner"].id)
        db.session.commit()
    wrong = client.post("/api/v1/grants", json=issue_body(own, password="not the password"),
                        headers=bearer(own, "owner"))
    assert wrong.status_code == 403 and wrong.get_json()["error"]["code"] == "wrong_password"
    assert len(audit_actions(app, "grant.password_failed")) == 1, "the failure is kept despite the error"
    ok = client.post("/api/v1/grants", json=issue_body(own), headers=bearer(own, "owner"))
    assert ok.status_code == 201, ok.get_json()
    grant = ok.get_json()["grant"]
    assert grant["status"] == "active" and grant["scope"]["department_ids"] == [own.sales_id]
    assert readable(client, own, own.conversation_id) == 200
    issued = audit_actions(app, "grant.issue")
    assert len(issued) == 1 and issued[0].target_id == str(grant["id"])
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        client.post("/api/v1/grants", json=issue_body(own, password="guess"), headers=bearer(own, "owner"))
    throttled = client.post("/api/v1/grants", json=issue_body(own), headers=bearer(own, "owner"))
    assert throttled.status_code == 429, "even the right password waits once too many were wrong"


@pytest.mark.parametrize("changes,code", [
    ({"kind": "master"}, "invalid_kind"),
    ({"scope": {}}, "empty_scope"),
    ({"scope": {"department_ids": ["1"]}}, "invalid_scope"),
    ({"scope": {"department_ids": [999999]}}, "invalid_scope"),
    ({"scope": {"planets": [1]}}, "invalid_scope"),
    ({"ends_at": "2001-01-01T00:00:00Z"}, "invalid_period"),
    ({"ends_at": "next week"}, "invalid_value"),
    ({"max_uses": 0}, "invalid_value"),
    ({"max_uses": "3"}, "wrong_type"),
])
def test_bad_issue_requests_are_400(app, client, orgs, changes, code):
    own, _other = orgs
    with app.app_context():
        owner_with_key(own.users["owner"].id)
        db.session.commit()
    response = client.post("/api/v1/grants", json=issue_body(own, **changes), headers=bearer(own, "owner"))
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code


def test_private_keys_go_to_staff_only_and_other_tenants_are_not_found(app, client, orgs):
    own, other = orgs
    with app.app_context():
        owner_with_key(own.users["owner"].id)
        db.session.commit()
    agent = client.post("/api/v1/grants", json=issue_body(own, grantee_id=own.agent.id),
                        headers=bearer(own, "owner"))
    assert agent.status_code == 400 and agent.get_json()["error"]["code"] == "invalid_grantee"
    foreign = client.post("/api/v1/grants", json=issue_body(own, grantee_id=other.users["supervisor"].id),
                          headers=bearer(own, "owner"))
    assert foreign.status_code == 404


def test_admins_issue_only_when_the_owner_allows(app, client, orgs):
    own, _other = orgs
    with app.app_context():
        admin = db.session.get(User, own.users["admin"].id)
        admin.password_hash = __import__("backend.security.passwords", fromlist=["x"]).hash_password(OWNER_PASSWORD)
        db.session.commit()
    body = issue_body(own)
    assert client.post("/api/v1/grants", json=body, headers=bearer(own, "admin")).status_code == 403
    with app.app_context():
        db.session.add(GrantSetting(tenant_id=own.tenant_id, admins_may_issue=True))
        db.session.commit()
    issued = client.post("/api/v1/grants", json=body, headers=bearer(own, "admin"))
    assert issued.status_code == 201
    assert readable(client, own, own.conversation_id) == 200
    with app.app_context():  # the owner withdraws the permission: what admins signed stops counting
        db.session.get(GrantSetting, own.tenant_id).admins_may_issue = False
        db.session.commit()
    assert readable(client, own, own.conversation_id) == 403


def test_a_password_reset_makes_a_new_key_and_old_grants_stay_valid(app, client, orgs):
    own, _other = orgs
    grant_department(app, own, own.users["supervisor"].id, own.sales_id)
    with app.app_context():
        owner = db.session.get(User, own.users["owner"].id)
        old_key = signing_keys.active_key(owner)
        # changed knowing the old password: the same key, sealed anew
        assert signing_keys.password_changed(owner, "a brand new password", OWNER_PASSWORD).id == old_key.id
        signing_keys.unlock(old_key, "a brand new password")
        with pytest.raises(signing_keys.WrongPassword):
            signing_keys.unlock(old_key, OWNER_PASSWORD)
        # set on the users page (no old password asked): a new pair; the old one retired, kept for verifying
        from backend.services.users import update_user

        update_user(owner, owner, password="reset by the admin")
        db.session.commit()
        new_key = signing_keys.active_key(owner)
        assert new_key.id != old_key.id and db.session.get(SigningKey, old_key.id).retired_at is not None
    assert readable(client, own, own.conversation_id) == 200
    body = issue_body(own, password="reset by the admin", grantee_id=own.users["owner"].id)
    assert client.post("/api/v1/grants", json=body, headers=bearer(own, "owner")).status_code == 201
    assert readable(client, own, own.conversation_id, "owner") == 200


# ---- uses are recorded ------------------------------------------------------------------------------

def test_every_record_view_leaves_a_use_and_an_audit_entry(app, client, orgs):
    own, _other = orgs
    grant_id = grant_department(app, own, own.users["supervisor"].id, own.sales_id)
    assert readable(client, own, own.conversation_id) == 200
    sign_in(client, own.users["supervisor"])
    assert client.get(f"/records/conversations/{own.conversation_id}").status_code == 200
    assert client.get(f"/api/v1/live/conversations/{own.conversation_id}").status_code == 200
    assert client.get("/api/v1/messages/search?q=hello").get_json()["messages"]
    views = audit_actions(app, "records.view")
    assert len(views) == 3 and all(v.details["grant_id"] == grant_id for v in views)
    assert len(audit_actions(app, "records.search")) == 1
    with app.app_context():
        assert db.session.get(Grant, grant_id).uses == 4
        assert sorted(u.what for u in db.session.scalars(select(GrantUse))) == [
            "live_view", "record_search", "record_view", "record_view"]


# ---- the restore key and the extension ---------------------------------------------------------------

def agent_socket(app, org):
    return socketio.test_client(app, namespace="/agent", auth={"token": device_token(app, org.device_id)})


def test_reveal_needs_a_restore_grant_and_stops_at_revocation(app, client, orgs):
    own, _other = orgs
    device = agent_socket(app, own)
    answer = device.emit("reveal", reveal_payload(own), namespace="/agent", callback=True)
    assert answer["ok"] is False and answer["error"]["code"] == "no_grant"
    assert len(audit_actions(app, "reveal.denied")) == 1

    with app.app_context():
        grant_id = issue_grant(own, own.agent.id, "restore", agent_ids=[own.agent.id])
    panel = socketio.test_client(app, namespace="/panel", flask_test_client=app.test_client())
    agent_panel = app.test_client()
    with agent_panel.session_transaction() as session:
        session["user_id"] = own.agent.id
    panel = socketio.test_client(app, namespace="/panel", flask_test_client=agent_panel)
    answer = device.emit("reveal", reveal_payload(own), namespace="/agent", callback=True)
    assert answer["ok"] is True and answer["grant_id"] == grant_id
    reveals = audit_actions(app, "reveal")
    assert len(reveals) == 1 and reveals[0].actor_user_id == own.agent.id
    assert reveals[0].details["identifier_ref"] and SPAN not in str(reveals[0].details)

    device.get_received("/agent")
    panel.get_received("/panel")
    assert client.post(f"/api/v1/grants/{grant_id}/revoke", headers=bearer(own, "owner")).status_code == 200
    pushed = [item for item in device.get_received("/agent") if item["name"] == "grants_changed"]
    assert pushed and pushed[0]["args"][0] == {"grant_id": grant_id, "kind": "restore"}
    assert [item["name"] for item in panel.get_received("/panel")].count("grants_changed") == 1
    answer = device.emit("reveal", reveal_payload(own), namespace="/agent", callback=True)
    assert answer["ok"] is False and answer["error"]["code"] == "no_grant"


def test_a_restore_grant_reaches_only_its_chats(app, orgs):
    own, _other = orgs
    with app.app_context():
        issue_grant(own, own.agent.id, "restore", conversation_ids=[own.conversation_id])
    device = agent_socket(app, own)
    assert device.emit("reveal", reveal_payload(own), namespace="/agent", callback=True)["ok"] is True
    elsewhere = dict(reveal_payload(own), chat={"console": "whatsapp", "account": "Acme sales", "key": "chat-9",
                                                 "customer": "+86 130 0000 0009"})
    answer = device.emit("reveal", elsewhere, namespace="/agent", callback=True)
    assert answer["ok"] is False and answer["error"]["code"] == "no_grant"


@pytest.mark.parametrize("payload", [None, [], {"chat": "x", "span_hash": SPAN}, {"chat": {}, "span_hash": SPAN},
                                     {"chat": {"console": "whatsapp", "key": "k"}, "span_hash": "A" * 64},
                                     {"chat": {"console": "whatsapp", "key": "k"}, "span_hash": 5}])
def test_bad_reveal_requests_are_refused_cleanly(app, orgs, payload):
    own, _other = orgs
    answer = agent_socket(app, own).emit("reveal", payload, namespace="/agent", callback=True)
    assert answer["ok"] is False and answer["error"]["code"] in ("wrong_type", "invalid_value", "missing_field")


# ---- the Keys page ----------------------------------------------------------------------------------

def test_keys_page_issues_lists_and_revokes(app, client, orgs):
    own, _other = orgs
    with app.app_context():
        owner_with_key(own.users["owner"].id)
        db.session.commit()
    csrf = sign_in(client, own.users["owner"])
    now = utcnow()
    form = {"csrf_token": csrf, "grantee_id": str(own.users["supervisor"].id), "kind": "private",
            "department_ids": [str(own.sales_id)], "starts_at": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"), "max_uses": "", "password": "wrong"}
    refused = client.post("/keys", data=form)
    assert refused.status_code == 403 and "not your password" in refused.get_data(as_text=True)
    assert client.post("/keys", data=dict(form, password=OWNER_PASSWORD)).status_code == 302
    page = client.get("/keys").get_data(as_text=True)
    assert "supervisor" in page and "Active" in page and "Revoke" in page
    with app.app_context():
        grant_id = db.session.scalar(select(Grant.id))
    assert client.post(f"/keys/{grant_id}/revoke", data={"csrf_token": csrf}).status_code == 302
    assert "Revoked" in client.get("/keys").get_data(as_text=True)
    assert readable(client, own, own.conversation_id) == 403
