"""A customer's rights over their data: find everything Veil holds about one customer, named by a phone
number or an e-mail address (or another identifier the masker knows), then export it as JSON (the right
of access) or erase it (the right to erasure).

Finding decrypts nothing: the identifiers come from the vault's blind index (`vault.find_identifiers`),
the messages that name them from the tokens stored in their place (found through the records search
indexes), and the customer's own conversations from their keyed `customer_ref` (the console's id for the
chat is usually the customer's number) or from an incoming message that carries one of the identifiers.

Erasing destroys the customer's identifiers (the encrypted rows go, so every token naming them reads
"***" everywhere, in every message and event, and the server's findings lose their masked hints),
replaces the text of what the customer wrote with ERASED, and cuts the customer's conversations loose
from them (a new random ref and pseudonym, so the customer chatting again starts an unlinked
conversation). What staff wrote stays (agents' messages, drafts in behaviour events, supervisors'
replies), without the customer's identifiers: it is the company's record of its staff, and statistics stay
true. Anything under an active legal hold is refused as a whole: the hold is the company's legal reason to
keep it.

Only the people who hold the keys to customer data may do this (the owner, or an admin while the owner
lets admins issue grants: `grants.may_issue`), with their password; every step is audited, never with
the identifier itself in the trail.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers
from flask_babel import gettext as _
from sqlalchemy import Text, cast, func, or_, select, update

from backend.errors import ApiError
from backend.extensions import db
from backend.models import (
    BehaviourEvent,
    Conversation,
    CustomerIdentifier,
    Message,
    MessageRevision,
    Tenant,
    User,
)
from backend.models.base import iso, utcnow
from backend.models.retention import LegalHold
from backend.security.identifiers import customer_pseudonym, customer_ref, identifier_key
from backend.security.password_confirmation import confirm_password
from backend.services import vault
from backend.services.audit import record_audit
from backend.services.grants import may_issue
from backend.services.records import contains, text_condition

MAX_VALUE_CHARS = 200
CONFIRM_WORD = "ERASE"  # typed to confirm an erasure: a click alone must not destroy data
EXPORT_FORMAT = "veil-customer-data/1"
# What the customer's own messages read once they are erased (kept as rows: statistics stay true).
ERASED = "[erased]"
# A customer with more than this is exported in parts by narrower requests; far beyond any real chat history.
MAX_MESSAGES = 100_000
# Identifier kinds a request may name a customer by (a link or a wallet names no one).
PERSON_KINDS = ("phone", "email", "handle", "id_card", "bank_card")


@dataclass
class CustomerData:
    """What Veil holds about one customer, as ids (nothing decrypted)."""

    tenant_id: int
    kinds: list[str]
    # The identifiers the request named, and those the customer wrote into their own conversations.
    identifier_ids: list[int]
    conversation_ids: list[int]
    # Messages in other conversations that carry one of the identifiers (an agent passing a number on).
    mention_ids: list[int]
    behaviour_event_ids: list[int]
    holds: list[LegalHold] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.identifier_ids or self.conversation_ids)

    def summary(self) -> dict:
        conversations = db.session.scalars(select(Conversation).where(Conversation.id.in_(self.conversation_ids))
                                           .order_by(Conversation.id)).all() if self.conversation_ids else []
        messages = _count_messages(self.conversation_ids)
        return {
            "kinds": self.kinds,
            "identifiers": len(self.identifier_ids),
            "conversations": [{"id": c.id, "customer_pseudonym": c.customer_pseudonym,
                               "platform": c.chat_account.platform, "agent_id": c.agent_id,
                               "agent": c.agent.display_name, "started_at": iso(c.started_at),
                               "last_message_at": iso(c.last_message_at)} for c in conversations],
            "messages": messages,
            "mentions": len(self.mention_ids),
            "behaviour_events": len(self.behaviour_event_ids),
            "holds": [{"id": h.id, "agent_id": h.agent_id, "conversation_id": h.conversation_id,
                       "reason": h.reason} for h in self.holds],
        }


# ---- who, and which customer -----------------------------------------------------------------------------

def check_may_handle(actor: User) -> None:
    if not may_issue(actor):
        raise ApiError(403, "not_key_holder", _("Only the owner, or an admin the owner allows to issue grants, "
                                                 "handles customers' data requests."))


def check_password(actor: User, password: object, remote_addr: str) -> None:
    """Wrong: 403 `wrong_password` (throttled; the caller commits even then, so the failure counts)."""
    confirm_password(actor, password, remote_addr=remote_addr, failed_action="customer_data.password_failed",
                     refusal=_("That is not your password."))


def check_confirmed(typed: object) -> None:
    if not isinstance(typed, str) or typed.strip() != CONFIRM_WORD:
        raise ApiError(400, "confirm_required", _("Erasing cannot be undone: type %(word)s to confirm.",
                                                  word=CONFIRM_WORD), field="confirm")


def parse_value(value: object) -> str:
    if not isinstance(value, str):
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be %(expected)s.", name="value",
                                            expected=_("text")), field="value")
    value = value.strip()
    if not value:
        raise ApiError(400, "missing_field", _("Enter the customer's phone number or e-mail address."),
                       field="value")
    if len(value) > MAX_VALUE_CHARS or not value.isprintable():
        raise ApiError(400, "invalid_value", _("Enter one phone number or e-mail address (at most %(n)d "
                                               "characters).", n=MAX_VALUE_CHARS), field="value")
    return value


def _phone_forms(engine, national: str) -> set[str]:
    """The ways a console may have keyed this number (international digits for each country the tenant
    expects, the national number, with its trunk 0): `customer_ref` normalises each to digits."""
    forms = {national, "0" + national}
    for region in engine.settings["contacts"]["countries"]:
        try:
            number = phonenumbers.parse(national, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            forms.add(f"{number.country_code}{number.national_number}")
    return forms


def _named_identifiers(tenant_id: int, engine, value: str, spans: list[vault.Span]) -> list[int]:
    """The identifier rows `value` names, by blind index. A number written with its country code but no
    "+" (8613900001111, as consoles key chats) is also tried as an international one."""
    wanted = set()
    for span in spans:
        written = value[span.start:span.end]
        forms = {vault.normalise(engine, span.kind, written)}
        if span.kind == "phone" and not written.lstrip().startswith(("+", "00")):
            forms.add(vault.national_number(engine, "+" + written.lstrip()))
        wanted |= {(span.kind, vault.blind_index(tenant_id, span.kind, form)) for form in forms if form}
    ids: set[int] = set()
    for kind, index in wanted:
        ids.update(db.session.scalars(select(CustomerIdentifier.id).where(
            CustomerIdentifier.tenant_id == tenant_id, CustomerIdentifier.kind == kind,
            CustomerIdentifier.blind_index == index)))
    return sorted(ids)


def _customer_refs(tenant_id: int, engine, value: str, spans: list[vault.Span]) -> set[str]:
    key = identifier_key()
    forms = {unicodedata.normalize("NFKC", value).strip()}
    for span in spans:
        written = value[span.start:span.end]
        forms.add(written)
        normalised = vault.normalise(engine, span.kind, written)
        forms |= _phone_forms(engine, normalised) if span.kind == "phone" else {normalised}
    return {customer_ref(key, tenant_id, form) for form in forms if form}


def _messages_with_tokens(tenant_id: int, tokens: list[str]) -> set[int]:
    """Messages (by any of their versions) that carry one of `tokens`, through the records search index."""
    found: set[int] = set()
    for token in tokens:
        found |= set(db.session.scalars(select(Message.id).where(Message.tenant_id == tenant_id,
                                                                 text_condition(token))))
    return found


def _events_with_tokens(tenant_id: int, tokens: list[str]) -> set[int]:
    """Behaviour events whose details carry one of `tokens`. JSON may store the delimiters as they are or
    as \\ue000 escapes, so both are looked for."""
    details = cast(BehaviourEvent.details, Text)
    conditions = []
    for token in tokens:
        escaped = token.replace(vault.TOKEN_START, "\\ue000").replace(vault.TOKEN_END, "\\ue001")
        conditions += [contains(details, token), contains(details, escaped)]
    if not conditions:
        return set()
    return set(db.session.scalars(select(BehaviourEvent.id).where(BehaviourEvent.tenant_id == tenant_id,
                                                                  or_(*conditions))))


def _active_holds(tenant_id: int, conversation_ids: list[int], agent_ids: set[int]) -> list[LegalHold]:
    if not conversation_ids and not agent_ids:
        return []
    return list(db.session.scalars(select(LegalHold).where(
        LegalHold.tenant_id == tenant_id, LegalHold.released_at.is_(None),
        or_(LegalHold.conversation_id.in_(conversation_ids), LegalHold.agent_id.in_(agent_ids)))
        .order_by(LegalHold.id)))


def _count_messages(conversation_ids: list[int]) -> int:
    if not conversation_ids:
        return 0
    return db.session.scalar(select(func.count(Message.id)).where(Message.conversation_id.in_(conversation_ids))) or 0


def find_customer(actor: User, value: object) -> CustomerData:
    """Everything Veil holds about the customer `value` names, as ids. 400 when `value` names no one."""
    value = parse_value(value)
    check_may_handle(actor)
    tenant_id = actor.tenant_id
    engine = vault.engine_for(tenant_id)
    spans = [s for s in vault.find_spans(engine, vault.defuse(value)) if s.kind in PERSON_KINDS]
    if not spans:
        raise ApiError(400, "not_an_identifier", _("That is not a phone number or e-mail address Veil recognises. "
                                                   "Write it as the customer gave it, e.g. +86 138 0013 8000."),
                       field="value")
    named = _named_identifiers(tenant_id, engine, value, spans)
    by_ref = set(db.session.scalars(select(Conversation.id).where(
        Conversation.tenant_id == tenant_id,
        Conversation.customer_ref.in_(_customer_refs(tenant_id, engine, value, spans)))))
    naming = _messages_with_tokens(tenant_id, [vault.token(i) for i in named])
    # A conversation is the customer's when its key is theirs, or when they wrote an identifier into it.
    written_in = set(db.session.scalars(select(Message.conversation_id).where(
        Message.id.in_(naming), Message.direction == "in"))) if naming else set()
    conversation_ids = sorted(by_ref | written_in)
    # The identifiers the customer wrote in their own conversations are theirs too (an e-mail address,
    # an ID card number given while chatting). One step only: a friend's number they passed on does not
    # make the friend's conversations theirs.
    written = set(named)
    for text in db.session.scalars(select(Message.text).where(Message.conversation_id.in_(conversation_ids),
                                                              Message.direction == "in")):
        written.update(vault.identifiers_in(text))
    for text in db.session.scalars(select(MessageRevision.text).join(Message).where(
            Message.conversation_id.in_(conversation_ids), Message.direction == "in")):
        written.update(vault.identifiers_in(text))
    identifier_ids = sorted(db.session.scalars(select(CustomerIdentifier.id).where(
        CustomerIdentifier.tenant_id == tenant_id, CustomerIdentifier.id.in_(written)))) if written else []
    tokens = [vault.token(i) for i in identifier_ids]
    naming |= _messages_with_tokens(tenant_id, [vault.token(i) for i in set(identifier_ids) - set(named)])
    mention_ids = sorted(db.session.scalars(select(Message.id).where(
        Message.id.in_(naming), Message.conversation_id.not_in(conversation_ids)))) if naming else []
    events = set(db.session.scalars(select(BehaviourEvent.id).where(
        BehaviourEvent.tenant_id == tenant_id, BehaviourEvent.conversation_id.in_(conversation_ids))))
    events |= _events_with_tokens(tenant_id, tokens)
    agents = set(db.session.scalars(select(Conversation.agent_id).where(Conversation.id.in_(conversation_ids))))
    if mention_ids:
        agents |= set(db.session.scalars(select(Conversation.agent_id).join(Message).where(
            Message.id.in_(mention_ids))))
    mention_conversations = set(db.session.scalars(select(Message.conversation_id).where(
        Message.id.in_(mention_ids)))) if mention_ids else set()
    holds = _active_holds(tenant_id, conversation_ids + sorted(mention_conversations), agents)
    return CustomerData(tenant_id, sorted({s.kind for s in spans}), identifier_ids, conversation_ids,
                        mention_ids, sorted(events), holds)


def look_up(actor: User, value: object, *, remote_addr: str = "") -> CustomerData:
    """`find_customer`, audited (how much was found, never the value)."""
    found = find_customer(actor, value)
    record_audit("customer_data.lookup", actor=actor, remote_addr=remote_addr,
                 details={"kinds": found.kinds, "identifiers": len(found.identifier_ids),
                          "conversations": found.conversation_ids, "mentions": len(found.mention_ids)})
    return found


# ---- access: the export ------------------------------------------------------------------------------------

class _Texts:
    """Stored text for the export: the customer's own identifiers in clear, anyone else's masked."""

    def __init__(self, tenant_id: int, own_ids: list[int]):
        rows = db.session.scalars(select(CustomerIdentifier).where(CustomerIdentifier.tenant_id == tenant_id,
                                                                   CustomerIdentifier.id.in_(own_ids))).all()
        self.clear = {row.id: vault.decrypt_identifier(row) for row in rows}
        self.rows = rows

    def __call__(self, text: str | None) -> str | None:
        ids = vault.identifiers_in(text)
        if not ids:
            return text
        others = [i for i in ids if i not in self.clear]
        hints = dict(db.session.execute(select(CustomerIdentifier.id, CustomerIdentifier.masked_hint)
                                        .where(CustomerIdentifier.id.in_(others))).all()) if others else {}
        return vault.TOKEN.sub(lambda m: self.clear.get(int(m.group(1))) or hints.get(int(m.group(1)), vault.GONE),
                               text)

    def details(self, value):
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.details(v) for v in value]
        if isinstance(value, dict):
            return {k: self.details(v) for k, v in value.items()}
        return value


def _message(message: Message, texts: _Texts) -> dict:
    return {"id": message.id, "direction": message.direction, "sent_at": iso(message.sent_at),
            "written_by": "customer" if message.direction == "in" else "company",
            "text": texts(message.text), "edited_at": iso(message.edited_at), "deleted_at": iso(message.deleted_at),
            "versions": [{"kind": r.kind, "at": iso(r.occurred_at), "text": texts(r.text)} for r in message.revisions]}


def _conversation(conversation: Conversation) -> dict:
    return {"id": conversation.id, "customer_pseudonym": conversation.customer_pseudonym,
            "platform": conversation.chat_account.platform, "chat_account": conversation.chat_account.handle,
            "started_at": iso(conversation.started_at), "last_message_at": iso(conversation.last_message_at)}


def _check_size(data: CustomerData) -> None:
    if _count_messages(data.conversation_ids) + len(data.mention_ids) > MAX_MESSAGES:
        raise ApiError(413, "too_much", _("This customer has more than %(n)d messages: ask for help exporting them.",
                                          n=MAX_MESSAGES))


def export(actor: User, password: object, value: object, *, remote_addr: str = "") -> dict:
    """Everything Veil holds about the customer, their own identifiers in clear, as one JSON object."""
    value = parse_value(value)
    check_may_handle(actor)
    check_password(actor, password, remote_addr)
    data = find_customer(actor, value)
    _check_size(data)
    texts = _Texts(data.tenant_id, data.identifier_ids)
    conversations = []
    for conversation in db.session.scalars(select(Conversation).where(Conversation.id.in_(data.conversation_ids))
                                           .order_by(Conversation.id)):
        messages = db.session.scalars(select(Message).where(Message.conversation_id == conversation.id)
                                      .order_by(Message.sent_at, Message.id))
        conversations.append({**_conversation(conversation), "messages": [_message(m, texts) for m in messages]})
    mentions = []
    for message in db.session.scalars(select(Message).where(Message.id.in_(data.mention_ids))
                                      .order_by(Message.sent_at, Message.id)):
        mentions.append({"conversation": _conversation(message.conversation), "message": _message(message, texts)})
    events = [{"id": e.id, "type": e.type, "conversation_id": e.conversation_id, "occurred_at": iso(e.occurred_at),
               "details": texts.details(e.details or {})}
              for e in db.session.scalars(select(BehaviourEvent).where(BehaviourEvent.id.in_(data.behaviour_event_ids))
                                          .order_by(BehaviourEvent.occurred_at, BehaviourEvent.id))]
    tenant = db.session.get(Tenant, data.tenant_id)
    record_audit("customer_data.export", actor=actor, remote_addr=remote_addr,
                 details={"kinds": data.kinds, "identifiers": len(data.identifier_ids),
                          "conversations": data.conversation_ids, "mentions": len(data.mention_ids),
                          "behaviour_events": len(events)})
    return {
        "format": EXPORT_FORMAT,
        "exported_at": iso(utcnow()),
        "controller": tenant.name,
        "identifiers": [{"kind": row.kind, "value": texts.clear[row.id], "first_seen": iso(row.created_at)}
                        for row in sorted(texts.rows, key=lambda r: r.id)],
        "conversations": conversations,
        "mentions": mentions,
        "behaviour_events": events,
        "note": "Messages the customer wrote have written_by 'customer'. Other people's identifiers are masked.",
    }


# ---- erasure ---------------------------------------------------------------------------------------------

@dataclass
class Erasure:
    identifiers: int
    conversations: int
    messages_redacted: int
    versions_redacted: int
    findings_cleared: int
    at: datetime

    def to_dict(self) -> dict:
        return {"identifiers": self.identifiers, "conversations": self.conversations,
                "messages_redacted": self.messages_redacted, "versions_redacted": self.versions_redacted,
                "findings_cleared": self.findings_cleared, "erased_at": iso(self.at)}


def _forget_hints(data: CustomerData) -> int:
    """The server's findings on staff messages that name the customer show each identifier's masked hint
    (138****5678): once the identifier is erased they show GONE. How many messages changed."""
    tokens = {vault.token(i) for i in data.identifier_ids}
    changed = 0
    scope = or_(Message.conversation_id.in_(data.conversation_ids), Message.id.in_(data.mention_ids))
    for model, owner in ((Message, Message.id), (MessageRevision, MessageRevision.message_id)):
        query = select(model).where(model.server_check.is_not(None), owner.in_(select(Message.id).where(scope)))
        for row in db.session.scalars(query):
            if not any(t in (row.text or "") for t in tokens):
                continue
            check = dict(row.server_check)
            check["findings"] = [{**f, "text": vault.GONE} if f.get("type") in ("contact", "identifier") else f
                                 for f in check.get("findings") or []]
            if check != row.server_check:
                row.server_check = check
                changed += 1
    return changed


def erased_message(result: Erasure) -> str:
    return _("Erased: %(identifiers)d identifiers destroyed, %(messages)d messages the customer wrote redacted in "
             "%(conversations)d conversations.", identifiers=result.identifiers, messages=result.messages_redacted,
             conversations=result.conversations)


def erase(actor: User, password: object, value: object, *, remote_addr: str = "") -> Erasure:
    """Destroy the customer's identifiers and redact what they wrote. 409 `legal_hold` when a hold covers
    any of it; nothing is changed then. Callers commit."""
    value = parse_value(value)
    check_may_handle(actor)
    check_password(actor, password, remote_addr)
    data = find_customer(actor, value)
    if data.holds:
        raise ApiError(409, "legal_hold", _("A legal hold covers this customer's data (%(holds)s). Release it "
                                            "first if the erasure must go ahead.",
                                            holds=", ".join(f"#{h.id} {h.reason}" for h in data.holds)),
                       details={"holds": [h.id for h in data.holds]})
    if not data.found:
        raise ApiError(404, "not_found", _("Veil holds nothing about this customer."))
    now = utcnow()
    conversation_ids = data.conversation_ids
    incoming = select(Message.id).where(Message.conversation_id.in_(conversation_ids), Message.direction == "in")
    versions = db.session.execute(update(MessageRevision).where(MessageRevision.message_id.in_(incoming))
                                  .values(text=ERASED, server_check=None)
                                  .execution_options(synchronize_session=False)).rowcount
    messages = db.session.execute(update(Message).where(Message.conversation_id.in_(conversation_ids),
                                                        Message.direction == "in")
                                  .values(text=ERASED, server_check=None)
                                  .execution_options(synchronize_session=False)).rowcount
    findings = _forget_hints(data)
    # Unlinked: the customer chatting again starts a new conversation under a new pseudonym.
    for conversation in db.session.scalars(select(Conversation).where(Conversation.id.in_(conversation_ids))):
        ref = secrets.token_hex(32)
        conversation.customer_ref, conversation.customer_pseudonym = ref, customer_pseudonym(ref)
    identifiers = db.session.execute(CustomerIdentifier.__table__.delete().where(
        CustomerIdentifier.tenant_id == data.tenant_id, CustomerIdentifier.id.in_(data.identifier_ids))).rowcount
    db.session.flush()
    db.session.expire_all()
    result = Erasure(identifiers, len(conversation_ids), messages, versions, findings, now)
    record_audit("customer_data.erase", actor=actor, remote_addr=remote_addr,
                 details={"kinds": data.kinds, "conversations": conversation_ids, "mentions": len(data.mention_ids),
                          **result.to_dict()})
    return result
