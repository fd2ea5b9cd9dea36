"""Retention: each tenant's limits for messages and behaviour events, legal holds, and the purge.

The purge (`purge`) deletes what is older than a tenant's limit, except what an active legal hold covers:
everything of a held agent (their conversations' messages, their behaviour events) and everything of a held
conversation. It runs every hour in `veil serve` (`backend/cli.py:purge_on_schedule`) and on demand as
`veil retention purge`.

Unlike other services, `purge` commits: it deletes in batches of bounded transactions, so a purge of
millions of rows never holds the database's write lock for long. Rows go with plain DELETE statements, never
a table rebuild, so SQLite's search-index triggers (records search migration) drop their entries with
them; revisions are deleted before their message for the same reason. Whatever else points at a purged
row follows its foreign key: alerts (and their receipts and webhook deliveries) are deleted with their
behaviour event, an intervention keeps its row but loses its `message_id` (SET NULL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import delete, func, not_, or_, select

from backend.errors import ApiError, not_found
from backend.extensions import db
from backend.models import Alert, BehaviourEvent, Conversation, Message, MessageRevision, Role, User
from backend.models.base import utcnow
from backend.models.retention import MAX_DAYS, MAX_REASON_CHARS, MIN_DAYS, LegalHold, RetentionSetting
from backend.services.audit import record_audit
from backend.services.visibility import get_user_in_tenant, get_visible_conversation

BATCH_SIZE = 500


# ---- settings ------------------------------------------------------------------------------------------

def settings_for(tenant_id: int) -> RetentionSetting:
    """The tenant's setting, or an unsaved one that keeps everything."""
    return db.session.get(RetentionSetting, tenant_id) or RetentionSetting(tenant_id=tenant_id)


def read_days(value: object, name: str, *, form: bool = False) -> int | None:
    """A number of days from JSON (or, with `form`, a form's text): None (keep forever), or MIN_DAYS..MAX_DAYS."""
    if value is None or (form and value == ""):
        return None
    if form and isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise ApiError(400, "wrong_type", _("The field '%(name)s' must be a number.", name=name), field=name)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be a number.", name=name), field=name)
    if not MIN_DAYS <= value <= MAX_DAYS:
        raise ApiError(400, "out_of_range", _("Keep data between %(low)d and %(high)d days, or leave it empty to "
                                              "keep it forever.", low=MIN_DAYS, high=MAX_DAYS), field=name)
    return value


def save_settings(actor: User, *, messages_days: int | None, behaviour_days: int | None) -> RetentionSetting:
    """Set both limits (already read by `read_days`); audited with the values before and after."""
    setting = db.session.get(RetentionSetting, actor.tenant_id)
    if setting is None:
        setting = RetentionSetting(tenant_id=actor.tenant_id)
        db.session.add(setting)
    before = {"messages_days": setting.messages_days, "behaviour_days": setting.behaviour_days}
    after = {"messages_days": messages_days, "behaviour_days": behaviour_days}
    if before != after:
        setting.messages_days = messages_days
        setting.behaviour_days = behaviour_days
        setting.updated_at = utcnow()
        setting.updated_by_id = actor.id
        record_audit("retention.settings_changed", actor=actor, target_type="tenant", target_id=actor.tenant_id,
                     details={"before": before, "after": after})
    db.session.flush()
    return setting


# ---- legal holds ---------------------------------------------------------------------------------------

def list_holds(tenant_id: int, *, include_released: bool = True) -> list[LegalHold]:
    query = select(LegalHold).where(LegalHold.tenant_id == tenant_id)
    if not include_released:
        query = query.where(LegalHold.released_at.is_(None))
    return list(db.session.scalars(query.order_by(LegalHold.released_at.is_not(None), LegalHold.id.desc())))


def place_hold(actor: User, *, agent_id: int | None = None, conversation_id: int | None = None,
               reason: str) -> LegalHold:
    """Hold an agent's or a conversation's data (exactly one of them) out of every purge."""
    if (agent_id is None) == (conversation_id is None):
        raise ApiError(400, "invalid_hold", _("Hold either an agent or a conversation."), field="agent_id")
    reason = (reason or "").strip()
    if not reason:
        raise ApiError(400, "missing_field", _("Give the reason for the hold."), field="reason")
    if len(reason) > MAX_REASON_CHARS:
        raise ApiError(400, "too_long", _("The field '%(name)s' is longer than %(n)d.", name="reason",
                                          n=MAX_REASON_CHARS), field="reason")
    for value, what in ((agent_id, _("user")), (conversation_id, _("conversation"))):
        if value is not None and not 0 < value < 2**31:  # beyond an id column's range: nothing to look up
            raise not_found(what)
    if agent_id is not None:
        agent = get_user_in_tenant(actor, agent_id)
        if agent.role != Role.AGENT:
            raise ApiError(400, "invalid_hold", _("Only an agent's data can be held."), field="agent_id")
    else:
        get_visible_conversation(actor, conversation_id)
    hold = LegalHold(tenant_id=actor.tenant_id, agent_id=agent_id, conversation_id=conversation_id,
                     reason=reason, created_by_id=actor.id, created_at=utcnow())
    db.session.add(hold)
    db.session.flush()
    record_audit("retention.hold_placed", actor=actor, target_type="legal_hold", target_id=hold.id,
                 details={"agent_id": agent_id, "conversation_id": conversation_id, "reason": reason})
    return hold


def get_hold(actor: User, hold_id: int) -> LegalHold:
    hold = db.session.get(LegalHold, hold_id)
    if hold is None or hold.tenant_id != actor.tenant_id:
        raise not_found(_("legal hold"))
    return hold


def release_hold(actor: User, hold: LegalHold) -> LegalHold:
    """End a hold (the row stays, as the record of it). Releasing a released hold changes nothing."""
    if hold.released_at is None:
        hold.released_at = utcnow()
        hold.released_by_id = actor.id
        record_audit("retention.hold_released", actor=actor, target_type="legal_hold", target_id=hold.id,
                     details={"agent_id": hold.agent_id, "conversation_id": hold.conversation_id})
    db.session.flush()
    return hold


# ---- the purge -----------------------------------------------------------------------------------------

@dataclass
class TenantPurge:
    tenant_id: int
    messages: int = 0
    revisions: int = 0
    behaviour_events: int = 0
    alerts: int = 0

    @property
    def total(self) -> int:
        return self.messages + self.behaviour_events

    def counts(self) -> dict:
        return {"messages": self.messages, "revisions": self.revisions, "behaviour_events": self.behaviour_events,
                "alerts": self.alerts}


@dataclass
class PurgeReport:
    dry_run: bool
    started_at: datetime
    tenants: dict[int, TenantPurge] = field(default_factory=dict)

    def totals(self) -> dict:
        keys = ("messages", "revisions", "behaviour_events", "alerts")
        return {k: sum(getattr(t, k) for t in self.tenants.values()) for k in keys}

    def line(self) -> str:
        t = self.totals()
        verb = "would delete" if self.dry_run else "deleted"
        return (f"{verb} {t['messages']} message(s) with {t['revisions']} revision(s), "
                f"{t['behaviour_events']} behaviour event(s) with {t['alerts']} alert(s)")


def _held(tenant_id: int, column):
    return select(column).where(LegalHold.tenant_id == tenant_id, LegalHold.released_at.is_(None),
                                column.is_not(None))


def _expired_messages(tenant_id: int, cutoff: datetime):
    """Messages older than the cutoff that no active hold covers (agent or conversation)."""
    return (
        select(Message.id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.tenant_id == tenant_id, Message.sent_at < cutoff,
               Conversation.agent_id.not_in(_held(tenant_id, LegalHold.agent_id)),
               Message.conversation_id.not_in(_held(tenant_id, LegalHold.conversation_id)))
    )


def _expired_behaviour(tenant_id: int, cutoff: datetime):
    return (
        select(BehaviourEvent.id)
        .where(BehaviourEvent.tenant_id == tenant_id, BehaviourEvent.occurred_at < cutoff,
               BehaviourEvent.agent_id.not_in(_held(tenant_id, LegalHold.agent_id)),
               or_(BehaviourEvent.conversation_id.is_(None),
                   not_(BehaviourEvent.conversation_id.in_(_held(tenant_id, LegalHold.conversation_id)))))
    )


def _count(query) -> int:
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _plan(now: datetime, tenant_ids: list[int] | None) -> list[tuple[int, datetime | None, datetime | None]]:
    """(tenant, message cutoff, behaviour cutoff) for every tenant with a limit."""
    query = select(RetentionSetting).where(or_(RetentionSetting.messages_days.is_not(None),
                                               RetentionSetting.behaviour_days.is_not(None)))
    if tenant_ids is not None:
        query = query.where(RetentionSetting.tenant_id.in_(tenant_ids))
    plan = []
    for s in db.session.scalars(query.order_by(RetentionSetting.tenant_id)):
        plan.append((s.tenant_id,
                     now - timedelta(days=s.messages_days) if s.messages_days else None,
                     now - timedelta(days=s.behaviour_days) if s.behaviour_days else None))
    return plan


def count_expired(now: datetime | None = None, *, tenant_ids: list[int] | None = None) -> PurgeReport:
    """What a purge at `now` would delete (nothing is changed)."""
    now = now or utcnow()
    report = PurgeReport(dry_run=True, started_at=now)
    for tenant_id, message_cutoff, behaviour_cutoff in _plan(now, tenant_ids):
        counts = TenantPurge(tenant_id)
        if message_cutoff:
            ids = _expired_messages(tenant_id, message_cutoff)
            counts.messages = _count(ids)
            counts.revisions = _count(select(MessageRevision.id).where(MessageRevision.message_id.in_(ids)))
        if behaviour_cutoff:
            ids = _expired_behaviour(tenant_id, behaviour_cutoff)
            counts.behaviour_events = _count(ids)
            counts.alerts = _count(select(Alert.id).where(Alert.behaviour_event_id.in_(ids)))
        report.tenants[tenant_id] = counts
    return report


def purge(now: datetime | None = None, *, dry_run: bool = False, tenant_ids: list[int] | None = None,
          batch_size: int = BATCH_SIZE, progress: Callable[[int], None] | None = None,
          audit_when_empty: bool = False) -> PurgeReport:
    """Delete what every tenant's limits (or those of `tenant_ids`) say has expired at `now`.

    Each batch is its own transaction (committed here). `progress(n)` hears each batch's rows (messages
    plus behaviour events). Each tenant that lost rows gets one `retention.purged` audit entry with the
    counts, in its own trail; `audit_when_empty` writes it even when nothing expired (a run by hand).
    A dry run deletes nothing and writes no audit entry.
    """
    now = now or utcnow()
    if dry_run:
        report = count_expired(now, tenant_ids=tenant_ids)
        db.session.rollback()  # only reads: end the transaction, so no snapshot is held open
        return report
    report = PurgeReport(dry_run=False, started_at=now)
    plan = _plan(now, tenant_ids)
    db.session.rollback()
    for tenant_id, message_cutoff, behaviour_cutoff in plan:
        counts = report.tenants[tenant_id] = TenantPurge(tenant_id)
        if message_cutoff:
            while batch := list(db.session.scalars(
                    _expired_messages(tenant_id, message_cutoff).order_by(Message.id).limit(batch_size))):
                counts.revisions += db.session.execute(
                    delete(MessageRevision).where(MessageRevision.message_id.in_(batch))).rowcount
                counts.messages += db.session.execute(delete(Message).where(Message.id.in_(batch))).rowcount
                db.session.commit()
                if progress:
                    progress(len(batch))
        if behaviour_cutoff:
            while batch := list(db.session.scalars(
                    _expired_behaviour(tenant_id, behaviour_cutoff).order_by(BehaviourEvent.id).limit(batch_size))):
                counts.alerts += _count(select(Alert.id).where(Alert.behaviour_event_id.in_(batch)))
                counts.behaviour_events += db.session.execute(
                    delete(BehaviourEvent).where(BehaviourEvent.id.in_(batch))).rowcount
                db.session.commit()
                if progress:
                    progress(len(batch))
        if counts.total or audit_when_empty:
            record_audit("retention.purged", tenant_id=tenant_id, target_type="tenant", target_id=tenant_id,
                         details={**counts.counts(),
                                  "messages_before": message_cutoff.isoformat() if message_cutoff else None,
                                  "behaviour_before": behaviour_cutoff.isoformat() if behaviour_cutoff else None})
            db.session.commit()
    return report


def agents_of(tenant_id: int) -> list[User]:
    """The agents a hold can name, for the settings page's choice."""
    return list(db.session.scalars(select(User).where(User.tenant_id == tenant_id, User.role == Role.AGENT)
                                   .order_by(User.display_name, User.id)))

