"""The demo tenant "Demo Co": people, departments and a few conversations to look at."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from backend.extensions import db
from backend.models import BehaviourEvent, ChatAccount, Message, Role
from backend.models.base import utcnow
from backend.models.grants import PRIVATE
from backend.services import grants
from backend.services.conversations import find_or_create_conversation
from backend.services.demo_history import add_history
from backend.services.tenants import create_department, create_tenant, find_tenant
from backend.services.users import create_user
from backend.services.vault import protect

DEMO_TENANT = "Demo Co"
DEMO_OWNER_EMAIL = "owner@demo.veil"

# (customer identifier, [(direction, text, minutes after start)])
_CONVERSATIONS = {
    "agent1@demo.veil": [
        ("+86 138 0013 8000", [
            ("in", "你好，我想问一下这款耳机还有货吗？", 0),
            ("out", "您好，有货的，今天下单明天发货。", 2),
            ("in", "好的，我的电话是 138 0013 8000，快递到了打给我", 5),
            ("out", "收到，已备注。订单号 20261123-0042。", 7),
        ]),
        ("+86 139 1234 5678", [
            ("in", "Can I pay by card?", 0),
            ("out", "Yes, we accept cards and 微信支付 on the platform.", 1),
            ("out", "加我微信 wxid_abc123 私下给你便宜点", 3),
        ]),
    ],
    "agent2@demo.veil": [
        ("maria@example.com", [
            ("in", "Hi, my order hasn't arrived. Email me at maria@example.com", 0),
            ("out", "Sorry about that! Tracking number SF1234567890 shows it is out for delivery.", 4),
        ]),
    ],
}


@dataclass
class DemoLogin:
    email: str
    password: str


def create_demo(secret: bytes) -> DemoLogin | None:
    """Creates Demo Co unless it exists; returns the owner's login (its password is shown only now)."""
    if find_tenant(DEMO_TENANT) is not None:
        return None
    tenant = create_tenant(DEMO_TENANT)
    sales = create_department(None, tenant, "Sales")
    support = create_department(None, tenant, "Support")
    password = secrets.token_urlsafe(12)
    owner = create_user(None, tenant=tenant, email=DEMO_OWNER_EMAIL, role=Role.OWNER, display_name="Olivia Owner",
                        password=password)
    # The other demo users get random passwords; the owner sets them on the users page.
    supervisor = create_user(None, tenant=tenant, email="supervisor@demo.veil", role=Role.SUPERVISOR,
                             display_name="Sam Supervisor", password=secrets.token_urlsafe(16),
                             department_ids=[sales.id, support.id])
    agents = {
        "agent1@demo.veil": create_user(None, tenant=tenant, email="agent1@demo.veil", role=Role.AGENT,
                                        display_name="李明 (Li Ming)", password=secrets.token_urlsafe(16),
                                        department_ids=[sales.id]),
        "agent2@demo.veil": create_user(None, tenant=tenant, email="agent2@demo.veil", role=Role.AGENT,
                                        display_name="Ana Souza", password=secrets.token_urlsafe(16),
                                        department_ids=[support.id]),
    }
    start = utcnow() - timedelta(hours=3)
    for n, (email, conversations) in enumerate(_CONVERSATIONS.items()):
        agent = agents[email]
        account = ChatAccount(tenant_id=tenant.id, agent=agent, platform="whatsapp", handle=f"Demo Co Sales {n + 1}")
        db.session.add(account)
        db.session.flush()
        for customer, lines in conversations:
            conversation = find_or_create_conversation(secret, account, customer)
            for direction, text, minutes in lines:
                sent_at = start + timedelta(minutes=minutes)
                db.session.add(Message(tenant_id=tenant.id, conversation=conversation, direction=direction,
                                       text=protect(tenant.id, text), sent_at=sent_at))
                conversation.last_message_at = sent_at
    db.session.add(BehaviourEvent(tenant_id=tenant.id, agent_id=agents["agent1@demo.veil"].id,
                                  type="send_blocked", details={"rule": "contact.wechat"},
                                  occurred_at=start + timedelta(minutes=3)))
    add_history(secret, tenant, list(agents.values()), utcnow())  # four weeks for Home and Statistics
    # Reading records needs a private key, the owner included: the owner signs one for themselves and one
    # for the supervisor, over both departments, for a year (docs/security.md, "Grants").
    now = utcnow()
    for grantee in (owner, supervisor):
        grants.issue(owner, password, grantee, PRIVATE, {"department_ids": [sales.id, support.id]},
                     now - timedelta(minutes=1), now + timedelta(days=365))
    db.session.flush()
    return DemoLogin(DEMO_OWNER_EMAIL, password)
