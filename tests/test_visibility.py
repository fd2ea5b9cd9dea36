"""Scope inside a tenant: supervisors see their departments' agents, agents see only themselves."""

from __future__ import annotations

import pytest

from backend.extensions import db
from backend.models import ChatAccount, Message, User
from backend.models.base import utcnow
from backend.security.identifiers import identifier_key
from backend.services.conversations import find_or_create_conversation
from backend.services.devices import create_enrolment_code
from tests.grants_helper import staff_read


@pytest.fixture
def orgs(orgs, app):
    """conftest's tenants, whose staff hold private keys: reading records needs one (tests/test_grants.py)."""
    for org in orgs:
        staff_read(app, org)
    return orgs


def bearer(org, role):
    return {"Authorization": f"Bearer {org.tokens[role]}"}


def add_other_agent_data(app, org) -> tuple[int, int]:
    """A device and a conversation for the agent in Support, which the supervisor does not supervise."""
    with app.app_context():
        agent = db.session.get(User, org.other_agent.id)
        device, _code = create_enrolment_code(None, agent, 3600)
        account = ChatAccount(tenant_id=org.tenant_id, agent=agent, platform="telegram", handle="support line")
        db.session.add(account)
        db.session.flush()
        conversation = find_or_create_conversation(identifier_key(), account, "someone@example.com")
        db.session.add(Message(tenant_id=org.tenant_id, conversation=conversation, direction="in",
                               text="support question", sent_at=utcnow()))
        db.session.commit()
        return device.id, conversation.id


def ids(response, key):
    assert response.status_code == 200, response.get_data(as_text=True)[:200]
    return {row["id"] for row in response.get_json()[key]}


def test_supervisor_sees_only_their_departments(app, client, orgs):
    own, other = orgs
    support_device, support_conversation = add_other_agent_data(app, own)
    headers = bearer(own, "supervisor")
    assert ids(client.get("/api/v1/conversations", headers=headers), "conversations") == {own.conversation_id}
    assert ids(client.get("/api/v1/devices", headers=headers), "devices") >= {own.device_id}
    assert support_device not in ids(client.get("/api/v1/devices", headers=headers), "devices")
    assert client.get(f"/api/v1/conversations/{support_conversation}", headers=headers).status_code == 403
    assert client.get(f"/api/v1/conversations/{support_conversation}/messages", headers=headers).status_code == 403
    assert client.get(f"/api/v1/devices/{support_device}", headers=headers).status_code == 403
    # the same request across tenants is "not found", so ids cannot be probed
    assert client.get(f"/api/v1/conversations/{other.conversation_id}", headers=headers).status_code == 404


def test_owner_and_admin_see_the_whole_tenant_only(app, client, orgs):
    own, other = orgs
    _device, support_conversation = add_other_agent_data(app, own)
    for role in ("owner", "admin"):
        seen = ids(client.get("/api/v1/conversations", headers=bearer(own, role)), "conversations")
        assert seen == {own.conversation_id, support_conversation}
        assert other.conversation_id not in seen
        users = ids(client.get("/api/v1/users", headers=bearer(own, role)), "users")
        assert own.agent.id in users and other.agent.id not in users


def test_agent_sees_only_their_own_devices(app, client, orgs):
    own, _other = orgs
    support_device, _conversation = add_other_agent_data(app, own)
    headers = bearer(own, "agent")
    assert ids(client.get("/api/v1/devices", headers=headers), "devices") >= {own.device_id}
    assert support_device not in ids(client.get("/api/v1/devices", headers=headers), "devices")
    assert client.get(f"/api/v1/devices/{support_device}", headers=headers).status_code == 403
    response = client.post("/api/v1/devices/enrolment-codes", json={"agent_id": own.other_agent.id}, headers=headers)
    assert response.status_code == 403, "an agent cannot enrol a device for a colleague"


def test_messages_read_in_order_with_paging(app, client, orgs):
    own, _other = orgs
    headers = bearer(own, "supervisor")
    url = f"/api/v1/conversations/{own.conversation_id}/messages"
    first = client.get(url, headers=headers).get_json()["messages"]
    assert [m["text"] for m in first] == ["hello from a customer of Acme"]
    assert client.get(f"{url}?after_id={first[-1]['id']}", headers=headers).get_json()["messages"] == []


def test_panel_pages_show_only_visible_rows(app, client, orgs):
    from tests.conftest import sign_in

    own, other = orgs
    add_other_agent_data(app, own)
    sign_in(client, own.users["supervisor"])
    page = client.get("/records").get_data(as_text=True)
    assert "Acme sales" in page and "support line" not in page and "Bolt" not in page
