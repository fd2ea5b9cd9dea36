"""Four weeks of ordinary chat for the demo agents, so Home and Statistics have something to show.

Made the same way every time (a seeded random): busier on weekdays and in Shanghai office hours,
replies within one to a dozen minutes, now and then a slow one, a risky reply the server's check
catches, a send the extension blocked, an edit or a deletion. Outgoing messages get the same
`server_check` as ingest gives them, so the rule hits are real ones.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from backend.extensions import db
from backend.models import BehaviourEvent, ChatAccount, Message, Tenant, User
from backend.models.behaviour import MESSAGE_DELETED, MESSAGE_EDITED, SERVER_RULE_HIT
from backend.services.conversations import find_or_create_conversation
from backend.services.ingest import server_check
from backend.services.vault import protect_checked

DAYS = 28
LOCAL = ZoneInfo("Asia/Shanghai")
# Local hours customers write in, weighted towards office hours and the evening.
HOURS = (8, 9, 9, 10, 10, 10, 11, 11, 13, 14, 14, 15, 15, 16, 16, 17, 19, 20, 21, 22)
CUSTOMER = (
    "你好，请问这款还有货吗？", "When will my order ship?", "可以便宜一点吗？", "Do you ship to Macau?",
    "我想改一下收货地址", "Can I change the colour to black?", "发票怎么开？", "Is there a warranty?",
    "好的，谢谢", "Thanks!",
)
AGENT = (
    "您好，有货的，今天下单明天发货。", "It ships tomorrow morning, tracking follows by e-mail.",
    "这个价格已经是活动价了。", "Yes, Macau takes about three days.", "可以的，请在订单页面修改地址。",
    "Of course, black is in stock.", "下单时勾选开具发票即可。", "One year, on every part.", "不客气！",
    "You're welcome!",
)
# Replies the server's check blocks or warns about with the default rules.
RISKY = ("加我微信 wxid_demo88 私下给你便宜点", "我的电话 138 0013 8000，直接打给我", "你这个傻逼",
         "Transfer to my personal account please")


def add_history(secret: bytes, tenant: Tenant, agents: list[User], now: datetime) -> None:
    rng = random.Random(5)
    for n, agent in enumerate(agents):
        account = ChatAccount(tenant_id=tenant.id, agent=agent, platform="whatsapp", handle=f"Demo Co line {n + 1}")
        db.session.add(account)
        db.session.flush()
        pace = 1.0 + n * 0.6  # the second agent answers more slowly
        for days_back in range(DAYS, -1, -1):
            day = (now.astimezone(LOCAL) - timedelta(days=days_back)).date()
            chats = rng.randint(1, 3) if day.weekday() >= 5 else rng.randint(4, 8)
            for number in range(chats):
                at = datetime.combine(day, time(rng.choice(HOURS), rng.randrange(60)), tzinfo=LOCAL).astimezone(UTC)
                if at >= now:
                    continue
                customer = f"+86 139 {n:02d}{days_back:02d} {number:04d}"
                _conversation(secret, tenant, account, customer, at, now, rng, pace)


def _conversation(secret, tenant, account, customer, at, now, rng, pace) -> None:
    conversation = find_or_create_conversation(secret, account, customer)
    for _exchange in range(rng.randint(1, 4)):
        if at >= now:
            break
        _message(tenant, conversation, "in", rng.choice(CUSTOMER), at)
        wait = rng.expovariate(1 / (150 * pace)) + 20
        if rng.random() < 0.07:
            wait += rng.randint(10, 40) * 60  # busy elsewhere
        at += timedelta(seconds=round(wait))
        if at >= now:
            break
        risky = rng.random() < 0.05
        if rng.random() < 0.03:  # the extension stopped a send; the agent rephrased
            _event(tenant, account.agent_id, conversation.id, "send_blocked", at, {"rule": "contact.handle"})
        message = _message(tenant, conversation, "out", rng.choice(RISKY if risky else AGENT), at)
        if rng.random() < 0.03:
            kind = MESSAGE_EDITED if rng.random() < 0.5 else MESSAGE_DELETED
            _event(tenant, account.agent_id, conversation.id, kind, at + timedelta(minutes=1),
                   {"message_id": message.id})
        at += timedelta(minutes=rng.randint(1, 20))


def _message(tenant, conversation, direction, text, at) -> Message:
    check = server_check(tenant, conversation, text, at, window=False) if direction == "out" else None
    stored, stored_check = protect_checked(tenant.id, text, check)  # as ingest stores it
    message = Message(tenant_id=tenant.id, conversation=conversation, direction=direction, text=stored, sent_at=at,
                      server_check=stored_check)
    db.session.add(message)
    if conversation.last_message_at is None or conversation.last_message_at < at:
        conversation.last_message_at = at
    db.session.flush()
    if check is not None and check["action"] in ("block", "warn"):
        # as ingest.record_server_rule_hit records it
        _event(tenant, conversation.agent_id, conversation.id, SERVER_RULE_HIT, at, {
            "message_id": message.id, "action": check["action"], "rules": check["rules"],
            "findings": [{k: f[k] for k in ("type", "category", "rule")} for f in check["findings"]]})
    return message


def _event(tenant, agent_id, conversation_id, kind, at, details) -> None:
    db.session.add(BehaviourEvent(tenant_id=tenant.id, agent_id=agent_id, conversation_id=conversation_id, type=kind,
                                  details=details, occurred_at=at))
