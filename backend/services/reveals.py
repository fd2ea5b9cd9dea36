"""Revealing a masked customer identifier in the extension, under a restore grant.

The content script keeps the originals of what it masked in memory only and never sends them. To show one
it asks the server with the chat it is in and the SHA-256 of the original; the server finds the conversation
the way ingest files it (`interventions.resolve_chats`), checks that the device's agent holds a restore
grant covering it, records the use and answers yes or no. The hash is never stored as such (a phone
number's hash is easily reversed): the audit entry carries a keyed hash of it, enough to tell two reveals
of one identifier apart from two of different ones.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from flask import current_app
from flask_babel import gettext as _

from backend.errors import ApiError
from backend.extensions import db
from backend.models import Conversation, Device
from backend.models.grants import RESTORE
from backend.security.identifiers import identifier_key
from backend.services import interventions
from backend.services.audit import record_audit
from backend.services.grants import has_grant, use_grant

SPAN_HASH = re.compile(r"[0-9a-f]{64}")


class NoGrant(Exception):
    """The device's agent holds no restore grant covering the chat (or the chat was never logged)."""


def read_request(payload: object) -> tuple[dict, str]:
    """`/agent` `reveal`: {chat: {console, account, key, customer}, span_hash: 64 lowercase hex digits}."""
    if not isinstance(payload, dict) or not isinstance(payload.get("chat"), dict):
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be %(expected)s.", name="chat",
                                            expected=_("an object")), field="chat")
    span_hash = payload.get("span_hash")
    if not isinstance(span_hash, str) or not SPAN_HASH.fullmatch(span_hash):
        raise ApiError(400, "invalid_value", _("The field '%(name)s' has a value Veil does not accept.",
                                               name="span_hash"), field="span_hash")
    return payload["chat"], span_hash


def identifier_ref(span_hash: str) -> str:
    key = current_app.config["SECRET_KEY"].encode("utf-8")
    return hmac.new(key, b"veil-reveal:" + span_hash.encode("ascii"), hashlib.sha256).hexdigest()[:16]


def reveal(device: Device, payload: object, *, remote_addr: str = "") -> dict:
    """Answers {conversation_id, grant_id, ends_at}; raises NoGrant (the refusal is audited too)."""
    chat, span_hash = read_request(payload)
    found = interventions.resolve_chats(identifier_key(), device, {"chats": [chat]})[0]
    conversation = db.session.get(Conversation, found) if found is not None else None
    agent = device.agent
    grant = has_grant(agent, RESTORE, conversation) if conversation is not None else None
    ref = identifier_ref(span_hash)
    if grant is None:
        record_audit("reveal.denied", actor=agent, target_type="conversation",
                     target_id=conversation.id if conversation else "", remote_addr=remote_addr,
                     details={"device_id": device.id, "identifier_ref": ref, "known_chat": conversation is not None})
        raise NoGrant()
    use_grant(grant, "reveal", conversation, actor=agent, remote_addr=remote_addr,
              details={"device_id": device.id, "identifier_ref": ref})
    return {"conversation_id": conversation.id, "grant_id": grant.id, "ends_at": grant.ends_at.isoformat()}
