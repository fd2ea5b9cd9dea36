"""Alerts: which behaviour events alert whom, the alerts themselves, each reader's unread state, and the
webhook endpoints (with their deliveries) that carry alerts out of the panel.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.base import UTCDateTime, created_at_column, iso
from backend.models.behaviour import BehaviourEvent
from backend.models.tenancy import User

SEVERITIES = ("info", "warning", "critical")


class AlertRule(db.Model):
    """A tenant's choice for one behaviour type. A type with no row follows the defaults
    (`backend.services.alerts.DEFAULT_RULES`).

    Recipients in the panel: `supervisors` (the supervisors of the agent's departments), `managers`
    (owners and admins), and `user_ids` (particular staff, who still hear only about agents they can see).
    `webhooks`: whether the alert also goes to the tenant's webhook endpoints.
    """

    __tablename__ = "alert_rule"
    __table_args__ = (UniqueConstraint("tenant_id", "event_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(48))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    severity: Mapped[str] = mapped_column(String(16), default="info")
    supervisors: Mapped[bool] = mapped_column(Boolean, default=True)
    managers: Mapped[bool] = mapped_column(Boolean, default=True)
    user_ids: Mapped[list] = mapped_column(JSON, default=list)
    webhooks: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = created_at_column()
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


class Alert(db.Model):
    """One behaviour event that a rule turned into an alert. `summary` is English and never holds chat
    text; `facts` are the few safe values it was made from, so the panel can say it in the reader's language.
    """

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    behaviour_event_id: Mapped[int] = mapped_column(ForeignKey("behaviour_event.id", ondelete="CASCADE"),
                                                    unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id", ondelete="SET NULL"))
    type: Mapped[str] = mapped_column(String(48))
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(String(400), default="")
    facts: Mapped[dict] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at_column()

    agent: Mapped[User] = relationship()
    event: Mapped[BehaviourEvent] = relationship()


class AlertReceipt(db.Model):
    """An alert as one recipient has it: made unread when the alert is raised, read when they mark it."""

    __tablename__ = "alert_receipt"
    __table_args__ = (Index("ix_alert_receipt_user_unread", "user_id", "read_at"),)

    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    alert: Mapped[Alert] = relationship()


WEBHOOK_FORMATS = ("veil", "slack", "wecom", "dingtalk")


class WebhookEndpoint(db.Model):
    """Where a tenant's alerts are POSTed. The secret that signs every body (HMAC-SHA256) must be usable,
    so it is sealed rather than hashed: `sealed_secret` is AES-256-GCM under the master key's
    `webhook-secret` key, bound to the tenant, this row's id and its URL (`backend.services.webhooks.
    endpoint_secret`); a URL change must seal it again. `event_types` empty means every alerting type.
    `format` "veil" is Veil's own JSON; "slack", "wecom" and "dingtalk" are those chat bots' message bodies
    (same signature).
    """

    __tablename__ = "webhook_endpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    sealed_secret: Mapped[str] = mapped_column(String(128))  # backend.security.sealed, "v1." + base64
    format: Mapped[str] = mapped_column(String(16), default="veil")
    locale: Mapped[str] = mapped_column(String(8), default="en")
    event_types: Mapped[list] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()

    def to_dict(self) -> dict:
        return {"id": self.id, "url": self.url, "description": self.description, "format": self.format,
                "locale": self.locale, "event_types": list(self.event_types or []), "enabled": self.enabled,
                "created_by_id": self.created_by_id, "created_at": iso(self.created_at)}


DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookDelivery(db.Model):
    """One alert to one endpoint. A worker claims it by moving `next_attempt_at` forward in a conditional
    UPDATE (`backend.services.webhooks.claim`), so no two server processes send it at once."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("alert_id", "endpoint_id"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = created_at_column()
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    alert: Mapped[Alert] = relationship()
    endpoint: Mapped[WebhookEndpoint] = relationship()

    def to_dict(self) -> dict:
        return {"id": self.id, "alert_id": self.alert_id, "endpoint_id": self.endpoint_id, "status": self.status,
                "attempts": self.attempts, "next_attempt_at": iso(self.next_attempt_at),
                "last_status_code": self.last_status_code, "last_error": self.last_error,
                "created_at": iso(self.created_at), "delivered_at": iso(self.delivered_at)}
