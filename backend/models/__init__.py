"""The data model. Each module holds one area; import from here."""

from backend.models.alerts import Alert, AlertReceipt, AlertRule, WebhookDelivery, WebhookEndpoint
from backend.models.audit import AuditLogEntry
from backend.models.auth import ApiToken, LoginAttempt, WebSession
from backend.models.behaviour import BehaviourEvent
from backend.models.chat import ChatAccount, Conversation, Message, MessageRevision
from backend.models.devices import Device
from backend.models.grants import Grant, GrantSetting, GrantUse, SigningKey
from backend.models.interventions import Intervention
from backend.models.retention import LegalHold, RetentionSetting
from backend.models.rules import RuleSetVersion
from backend.models.tenancy import ROLES, Department, Role, Tenant, User, department_members
from backend.models.vault import CustomerIdentifier, DataKey, KeyMaterial, ProtectProgress

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
    "CustomerIdentifier",
    "DataKey",
    "Department",
    "Device",
    "Grant",
    "GrantSetting",
    "GrantUse",
    "Intervention",
    "KeyMaterial",
    "LegalHold",
    "LoginAttempt",
    "Message",
    "MessageRevision",
    "ProtectProgress",
    "RetentionSetting",
    "Role",
    "RuleSetVersion",
    "SigningKey",
    "Tenant",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebSession",
    "department_members",
]
