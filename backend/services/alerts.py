"""Alerts: behaviour events that a tenant's rules say someone must hear about at once.

A `behaviour_recorded` signal (sent inside the transaction that stored the event) becomes, when the rule
for its type is on, an `Alert`, an unread `AlertReceipt` for each recipient, and a pending
`WebhookDelivery` for each matching endpoint, all in that same transaction; once it commits, each
recipient's panel hears `alert` and `alert_count` in its `user:<id>` room. Webhooks are sent later by
`backend.services.webhooks`.

Who hears: owners and admins about the whole tenant, supervisors only about agents of their departments,
agents never. The recipients are fixed when the alert is raised; reading them back applies the reader's
current scope again, so a supervisor moved out of a department stops seeing its alerts.

Also here: the settings (rules per type, webhook endpoints), with their audit entries.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import false, func, or_, select, update
from sqlalchemy.orm import selectinload

from backend.errors import ApiError, not_found
from backend.extensions import db, socketio
from backend.models import (
    Alert,
    AlertReceipt,
    AlertRule,
    BehaviourEvent,
    Role,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    department_members,
)
from backend.models.alerts import SEVERITIES, WEBHOOK_FORMATS
from backend.models.base import iso, utcnow
from backend.models.behaviour import (
    DEVICE_REVOKED_BY_AGENT,
    EXTENSION_REMOVED,
    HEARTBEAT_MISSING,
    HEARTBEAT_RESUMED,
    MESSAGE_DELETED,
    MESSAGE_EDITED,
    NEW_DEVICE,
    REPORTED_KINDS,
    SERVER_RULE_HIT,
)
from backend.realtime.broadcast import after_commit
from backend.security.policy import STAFF
from backend.services.audit import record_audit
from backend.services.signals import behaviour_recorded
from backend.services.visibility import can_see_agent, visible_agent_ids_query

# Every behaviour type a rule can be set for (backend/models/behaviour.py).
ALERT_TYPES = (SERVER_RULE_HIT, *REPORTED_KINDS, MESSAGE_EDITED, MESSAGE_DELETED, NEW_DEVICE,
               DEVICE_REVOKED_BY_AGENT, EXTENSION_REMOVED, HEARTBEAT_MISSING, HEARTBEAT_RESUMED)

# What a tenant that has saved nothing gets: these alert supervisors and managers (and webhooks); the rest
# stay quiet. The severity of each is the default one.
DEFAULT_RULES = {
    SERVER_RULE_HIT: "warning",
    "send_blocked": "warning",
    MESSAGE_DELETED: "info",
    EXTENSION_REMOVED: "critical",
    NEW_DEVICE: "warning",
    HEARTBEAT_MISSING: "warning",
}

SEVERITY_LABELS = {"info": _l("Info"), "warning": _l("Warning"), "critical": _l("Critical")}
# How many particular users one rule may name.
MAX_RULE_USERS = 50
NAMESPACE = "/panel"


def severity_label(severity: str) -> str:
    return str(SEVERITY_LABELS.get(severity, severity))


def type_label(kind: str) -> str:
    from backend.panel.labels import behaviour_label  # the panel owns the words; imported late (no cycle)

    return behaviour_label(kind)


# ---- rules -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RuleSetting:
    """One type's rule as it applies now: the tenant's saved row, or the default."""

    type: str
    enabled: bool
    severity: str
    supervisors: bool
    managers: bool
    user_ids: tuple[int, ...]
    webhooks: bool

    def to_dict(self) -> dict:
        return {**asdict(self), "user_ids": list(self.user_ids)}


def default_rule(kind: str) -> RuleSetting:
    return RuleSetting(type=kind, enabled=kind in DEFAULT_RULES, severity=DEFAULT_RULES.get(kind, "info"),
                       supervisors=True, managers=True, user_ids=(), webhooks=True)


def _setting(row: AlertRule) -> RuleSetting:
    return RuleSetting(type=row.event_type, enabled=row.enabled, severity=row.severity,
                       supervisors=row.supervisors, managers=row.managers,
                       user_ids=tuple(row.user_ids or ()), webhooks=row.webhooks)


def rules_for_tenant(tenant_id: int) -> dict[str, RuleSetting]:
    """Every alert type's rule for a tenant, in ALERT_TYPES order."""
    rows = {r.event_type: r for r in db.session.scalars(select(AlertRule).where(AlertRule.tenant_id == tenant_id))}
    return {kind: _setting(rows[kind]) if kind in rows else default_rule(kind) for kind in ALERT_TYPES}


def rule_for(tenant_id: int, kind: str) -> RuleSetting:
    row = db.session.scalar(select(AlertRule).where(AlertRule.tenant_id == tenant_id, AlertRule.event_type == kind))
    return _setting(row) if row else default_rule(kind)


def _bad_rule(message: str, **details) -> ApiError:
    return ApiError(400, "invalid_alert_rule", message, **details)


def read_rule(data: object, tenant_id: int) -> RuleSetting:
    """One rule as a client sent it, checked: a known type, a known severity, staff of the tenant."""
    if not isinstance(data, dict):
        raise _bad_rule(_("Each rule must be a JSON object."))
    kind = data.get("type")
    if kind not in ALERT_TYPES:
        raise _bad_rule(_("Unknown behaviour type: %(name)s", name=str(kind)[:48]), field="type")
    current = rule_for(tenant_id, kind)

    def flag(name: str) -> bool:
        value = data.get(name, getattr(current, name))
        if not isinstance(value, bool):
            raise _bad_rule(_("The field '%(name)s' must be true or false.", name=name), field=name)
        return value

    severity = data.get("severity", current.severity)
    if severity not in SEVERITIES:
        raise _bad_rule(_("Severity must be info, warning or critical."), field="severity")
    user_ids = data.get("user_ids", list(current.user_ids))
    if (not isinstance(user_ids, list) or len(user_ids) > MAX_RULE_USERS
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in user_ids)):
        raise _bad_rule(_("The field '%(name)s' must be a list of ids.", name="user_ids"), field="user_ids")
    user_ids = sorted(set(user_ids))
    if user_ids:
        staff = set(db.session.scalars(select(User.id).where(
            User.id.in_(user_ids), User.tenant_id == tenant_id, User.role.in_(STAFF.roles))))
        if staff != set(user_ids):
            raise _bad_rule(_("Alerts go only to owners, admins and supervisors of your organisation."),
                            field="user_ids")
    return RuleSetting(type=kind, enabled=flag("enabled"), severity=severity, supervisors=flag("supervisors"),
                       managers=flag("managers"), user_ids=tuple(user_ids), webhooks=flag("webhooks"))


def save_rules(actor: User, settings: list[RuleSetting]) -> dict[str, RuleSetting]:
    """Store the given types' rules (others keep theirs); audits what changed."""
    saved = db.session.scalars(select(AlertRule).where(AlertRule.tenant_id == actor.tenant_id))
    rows = {r.event_type: r for r in saved}
    changed = {}
    for setting in settings:
        before = _setting(rows[setting.type]) if setting.type in rows else default_rule(setting.type)
        if setting == before and setting.type in rows:
            continue
        row = rows.get(setting.type)
        if row is None:
            row = rows[setting.type] = AlertRule(tenant_id=actor.tenant_id, event_type=setting.type)
            db.session.add(row)
        row.enabled, row.severity = setting.enabled, setting.severity
        row.supervisors, row.managers, row.webhooks = setting.supervisors, setting.managers, setting.webhooks
        row.user_ids = list(setting.user_ids)
        row.updated_at, row.updated_by_id = utcnow(), actor.id
        if setting != before:
            changed[setting.type] = setting.to_dict()
    db.session.flush()
    if changed:
        record_audit("alerts.rules_save", actor=actor, target_type="alert_rule", details={"rules": changed})
    return rules_for_tenant(actor.tenant_id)


# ---- raising an alert --------------------------------------------------------------------------------

def _short(value: object, limit: int = 64) -> str | None:
    return value.strip()[:limit] if isinstance(value, str) and value.strip() else None


def alert_facts(event: BehaviourEvent) -> dict:
    """The few values an alert may repeat. Never chat text: the extension's `text`, an edit's texts and the
    server check's matched text stay on the event and the message."""
    details = event.details if isinstance(event.details, dict) else {}
    facts: dict = {}
    if event.type == SERVER_RULE_HIT:
        facts["action"] = _short(details.get("action"), 16)
        categories = {f.get("category") for f in details.get("findings") or [] if isinstance(f, dict)}
        facts["categories"] = sorted(c[:64] for c in categories if isinstance(c, str) and c)[:5]
    elif event.type in (*REPORTED_KINDS, MESSAGE_EDITED, MESSAGE_DELETED):
        facts["console"] = _short(details.get("console"), 32)
        if event.type in REPORTED_KINDS:
            facts["rule"] = _short(details.get("rule"))
    else:  # what the server noticed about a device
        facts["device"] = _short(details.get("label"))
        if isinstance(details.get("minutes"), int):
            facts["minutes"] = details["minutes"]
    return {k: v for k, v in facts.items() if v not in (None, [], "")}


def render_summary(facts: dict) -> str:
    """The facts, in the current locale."""
    from backend.panel.labels import action_label

    parts = []
    if "action" in facts:
        parts.append(_("Action: %(action)s", action=action_label(facts["action"])))
    if facts.get("categories"):
        parts.append(_("Categories: %(list)s", list=", ".join(facts["categories"])))
    if "rule" in facts:
        parts.append(_("Rule: %(rule)s", rule=facts["rule"]))
    if "console" in facts:
        parts.append(_("Console: %(console)s", console=facts["console"]))
    if "device" in facts:
        parts.append(_("Device: %(device)s", device=facts["device"]))
    if "minutes" in facts:
        parts.append(_("Silent for %(n)d minutes", n=facts["minutes"]))
    return "; ".join(parts)


def recipients_for(rule: RuleSetting, agent: User) -> list[User]:
    """Active staff the rule names who may see this agent."""
    agent_departments = select(department_members.c.department_id).where(department_members.c.user_id == agent.id)
    named = []
    if rule.managers:
        named.append(User.role.in_([Role.OWNER, Role.ADMIN]))
    if rule.supervisors:
        named.append((User.role == Role.SUPERVISOR) & User.id.in_(
            select(department_members.c.user_id).where(department_members.c.department_id.in_(agent_departments))))
    if rule.user_ids:
        named.append(User.id.in_(rule.user_ids))
    if not named:
        return []
    users = db.session.scalars(select(User).where(
        User.tenant_id == agent.tenant_id, User.is_active.is_(True), User.role.in_(STAFF.roles), or_(*named),
    ).order_by(User.id))
    return [u for u in users if u.id != agent.id and can_see_agent(u, agent)]


def endpoints_for(tenant_id: int, kind: str) -> list[WebhookEndpoint]:
    rows = db.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.enabled.is_(True)).order_by(WebhookEndpoint.id))
    return [e for e in rows if not e.event_types or kind in e.event_types]


def report_path(event_id: int) -> str:
    """Where the panel shows one behaviour event."""
    return f"/reports/{event_id}"


def raise_alert(event: BehaviourEvent) -> Alert | None:
    """The event's alert, if its type's rule is on: receipts for the recipients and webhook deliveries,
    then (after the commit) a push to each recipient. None when the rule is off."""
    rule = rule_for(event.tenant_id, event.type)
    if not rule.enabled:
        return None
    facts = alert_facts(event)
    with force_locale("en"):
        summary = render_summary(facts)[:400]
    alert = Alert(tenant_id=event.tenant_id, behaviour_event_id=event.id, agent_id=event.agent_id,
                  conversation_id=event.conversation_id, type=event.type, severity=rule.severity, summary=summary,
                  facts=facts, occurred_at=event.occurred_at)
    db.session.add(alert)
    db.session.flush()
    agent = db.session.get(User, event.agent_id)
    recipients = recipients_for(rule, agent)
    for user in recipients:
        db.session.add(AlertReceipt(alert_id=alert.id, user_id=user.id))
    if rule.webhooks:
        for endpoint in endpoints_for(event.tenant_id, event.type):
            db.session.add(WebhookDelivery(tenant_id=event.tenant_id, alert_id=alert.id, endpoint_id=endpoint.id,
                                           status="pending", attempts=0, next_attempt_at=utcnow(), last_error=""))
    db.session.flush()
    push = push_payload(alert, agent)
    # Counted now, inside the transaction that adds the receipt, so the number includes this alert.
    counts = {user.id: unread_count(user) for user in recipients}
    after_commit(lambda: emit_alerts(push, counts))
    return alert


@behaviour_recorded.connect
def on_behaviour_recorded(sender, *, event_id: int, **_kwargs) -> None:
    event = db.session.get(BehaviourEvent, event_id)
    if event is not None:
        raise_alert(event)


def push_payload(alert: Alert, agent: User) -> dict:
    return {"id": alert.id, "type": alert.type, "severity": alert.severity, "summary": alert.summary,
            "agent": {"id": agent.id, "name": agent.display_name}, "conversation_id": alert.conversation_id,
            "at": iso(alert.occurred_at), "url": report_path(alert.behaviour_event_id)}


def emit_alerts(payload: dict, counts: dict[int, int]) -> None:
    """After the commit: `alert` and the new `alert_count` to each recipient's own room."""
    for user_id, unread in counts.items():
        socketio.emit("alert", payload, to=f"user:{user_id}", namespace=NAMESPACE)
        socketio.emit("alert_count", {"unread": unread}, to=f"user:{user_id}", namespace=NAMESPACE)


# ---- reading them --------------------------------------------------------------------------------------

def _receipts(user: User):
    """The user's receipts for alerts about agents they can see now (staff only; agents have none)."""
    query = (select(AlertReceipt).join(Alert, Alert.id == AlertReceipt.alert_id)
             .where(AlertReceipt.user_id == user.id, Alert.tenant_id == user.tenant_id))
    if not STAFF.allows(user.role):
        return query.where(false())
    return query.where(Alert.agent_id.in_(visible_agent_ids_query(user)))


def unread_count(user: User) -> int:
    inner = _receipts(user).where(AlertReceipt.read_at.is_(None)).subquery()
    return db.session.scalar(select(func.count()).select_from(inner)) or 0


def list_alerts(user: User, *, unread_only: bool = False, before_id: int | None = None,
                limit: int = 50) -> list[AlertReceipt]:
    """The user's alerts, newest first (pages by `before_id`)."""
    query = _receipts(user)
    if unread_only:
        query = query.where(AlertReceipt.read_at.is_(None))
    if before_id:
        query = query.where(Alert.id < before_id)
    limit = max(1, min(limit, 200))
    query = query.options(selectinload(AlertReceipt.alert).selectinload(Alert.agent))
    return list(db.session.scalars(query.order_by(Alert.id.desc()).limit(limit)))


def alert_dict(receipt: AlertReceipt) -> dict:
    """An alert as its reader gets it, in the current locale."""
    alert = receipt.alert
    return {"id": alert.id, "type": alert.type, "label": type_label(alert.type), "severity": alert.severity,
            "summary": render_summary(alert.facts or {}), "agent": {"id": alert.agent_id,
                                                                   "name": alert.agent.display_name},
            "conversation_id": alert.conversation_id, "event_id": alert.behaviour_event_id,
            "occurred_at": iso(alert.occurred_at), "created_at": iso(alert.created_at),
            "read": receipt.read_at is not None, "url": report_path(alert.behaviour_event_id)}


def mark_read(user: User, alert_ids: list[int] | None) -> int:
    """Marks the given alerts (all, for None) read for this user; answers the unread count left.
    An id that is not one of the user's alerts is "not found", so ids cannot be probed."""
    query = _receipts(user).where(AlertReceipt.read_at.is_(None))
    if alert_ids is not None:
        wanted = set(alert_ids)
        mine = set(db.session.scalars(
            _receipts(user).where(AlertReceipt.alert_id.in_(wanted)).with_only_columns(AlertReceipt.alert_id)))
        if mine != wanted:
            raise not_found(_("alert"))
        query = query.where(AlertReceipt.alert_id.in_(wanted))
    ids = list(db.session.scalars(query.with_only_columns(AlertReceipt.alert_id)))
    if ids:
        db.session.execute(update(AlertReceipt).where(AlertReceipt.user_id == user.id, AlertReceipt.alert_id.in_(ids),
                                                      AlertReceipt.read_at.is_(None)).values(read_at=utcnow()))
    left = unread_count(user)
    # Other tabs of the same user follow the counter.
    after_commit(lambda: socketio.emit("alert_count", {"unread": left}, to=f"user:{user.id}", namespace=NAMESPACE))
    return left


# ---- webhook endpoints ---------------------------------------------------------------------------------

def allow_private_addresses() -> bool:
    """VEIL_WEBHOOK_ALLOW_PRIVATE: let endpoints be on loopback or private networks (tests, a relay on the
    same host). Off by default, so a manager cannot make the server probe its own network."""
    return bool(current_app.config.get("VEIL_WEBHOOK_ALLOW_PRIVATE", False))


def list_endpoints(actor: User) -> list[WebhookEndpoint]:
    return list(db.session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == actor.tenant_id)
                                   .order_by(WebhookEndpoint.id)))


def get_endpoint(actor: User, endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.tenant_id != actor.tenant_id:
        raise not_found(_("webhook"))
    return endpoint


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_endpoint(actor: User, url: str, *, description: str = "", event_types: list | None = None,
                    body_format: str = "veil", locale: str = "en") -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (shown to the manager once)."""
    from backend.services.webhooks import check_url, seal_secret

    url = check_url(url, allow_private=allow_private_addresses())
    event_types = event_types or []
    for kind in event_types:
        if kind not in ALERT_TYPES:
            raise ApiError(400, "invalid_event_type", _("Unknown behaviour type: %(name)s", name=str(kind)[:48]),
                           field="event_types")
    event_types = sorted(set(event_types))
    if body_format not in WEBHOOK_FORMATS:
        raise ApiError(400, "invalid_format", _("The format must be one of: %(list)s",
                                                list=", ".join(WEBHOOK_FORMATS)), field="format")
    if locale not in current_app.config["LANGUAGES"]:
        locale = current_app.config["BABEL_DEFAULT_LOCALE"]
    secret = new_webhook_secret()
    endpoint = WebhookEndpoint(tenant_id=actor.tenant_id, url=url, description=description.strip()[:200],
                               sealed_secret="", format=body_format, locale=locale, event_types=event_types,
                               enabled=True, created_by_id=actor.id)
    db.session.add(endpoint)
    db.session.flush()
    seal_secret(endpoint, secret)  # sealed to the row's id, which the flush has just given it
    record_audit("webhook.create", actor=actor, target_type="webhook", target_id=endpoint.id,
                 details={"url": url, "format": body_format, "event_types": event_types})
    return endpoint, secret


def set_endpoint_enabled(actor: User, endpoint: WebhookEndpoint, enabled: bool) -> WebhookEndpoint:
    if endpoint.enabled != enabled:
        endpoint.enabled = enabled
        record_audit("webhook.enable" if enabled else "webhook.disable", actor=actor, target_type="webhook",
                     target_id=endpoint.id, details={"url": endpoint.url})
    return endpoint


def delete_endpoint(actor: User, endpoint: WebhookEndpoint) -> None:
    record_audit("webhook.delete", actor=actor, target_type="webhook", target_id=endpoint.id,
                 details={"url": endpoint.url})
    db.session.delete(endpoint)
    db.session.flush()


def recent_deliveries(endpoint: WebhookEndpoint, limit: int = 10) -> list[WebhookDelivery]:
    return list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
                                   .order_by(WebhookDelivery.id.desc()).limit(limit)))


def staff_of(tenant_id: int) -> list[User]:
    """Who a rule may name."""
    return list(db.session.scalars(select(User).where(User.tenant_id == tenant_id, User.role.in_(STAFF.roles))
                                   .order_by(User.display_name, User.id)))
