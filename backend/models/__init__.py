"""The data model. Each module holds one area; import from here."""

from backend.models.alerts import Alert, AlertReceipt, AlertRule, WebhookDelivery, WebhookEndpoint
from backend.models.audit import AuditLogEntry
from backend.models.auth import ApiToken, LoginAttempt, WebSession
from backend.models.behaviour import BehaviourEvent
from backend.models.chat import ChatAccount, Conversation, Message, MessageRevision
from backend.models.devices import Device
from backend.models.interventions import Intervention
from backend.models.rules import RuleSetVersion
from backend.models.tenancy import ROLES, Department, Role, Tenant, User, department_members

__all__ = [
    "ROLES",
    "Alert",
    "AlertReceipt",
    "AlertRule",
    "ApiToken",
    "AuditLogEntry",
    "BehaviourEvent",
    "ChatAccount",
    "Conversation",
    "Department",
    "Device",
    "Intervention",
    "LoginAttempt",
    "Message",
    "MessageRevision",
    "Role",
    "RuleSetVersion",
    "Tenant",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebSession",
    "department_members",
]
