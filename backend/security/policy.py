"""Who may call what: the one table of role rules for every HTTP endpoint and Socket.IO event.

Roles are checked here, before a view runs. Tenant and department scope is checked on the objects
themselves by `backend.services.visibility`, which every service uses to load what it acts on.
An endpoint or event missing from these tables is refused (deny by default), and
tests/test_access_matrix.py fails when one is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.models.tenancy import Role


@dataclass(frozen=True)
class Access:
    """`public`: no sign-in needed. `device`: an enrolled extension's token may call it. `roles`: people."""

    roles: frozenset[str] = frozenset()
    public: bool = False
    device: bool = False

    def allows(self, role: str | None) -> bool:
        return self.public or (role is not None and role in self.roles)


PUBLIC = Access(public=True)
DEVICE = Access(device=True)
ANY_USER = Access(roles=frozenset(r.value for r in Role))
STAFF = Access(roles=frozenset({Role.OWNER, Role.ADMIN, Role.SUPERVISOR}))
MANAGERS = Access(roles=frozenset({Role.OWNER, Role.ADMIN}))
# Any signed-in person, or an enrolled extension.
ANY_USER_OR_DEVICE = Access(roles=ANY_USER.roles, device=True)
# Reading message text: these roles, and only with a valid private grant covering the conversation
# (`backend.services.visibility.can_read_message_text`, which consults this same entry).
RECORD_READERS = STAFF

ROUTES: dict[str, Access] = {
    "static": PUBLIC,
    "health.healthz": PUBLIC,
    # panel pages
    "panel.login": PUBLIC,
    "panel.set_language": PUBLIC,
    # Opened by Chrome once the extension is removed: no token can be sent any more.
    "panel.device_removed": PUBLIC,
    "panel.logout": ANY_USER,
    "panel.home": ANY_USER,
    # Statistics: every role; the service counts only the caller's scope (an agent: themselves).
    "panel.statistics": ANY_USER,
    "api.statistics_overview": ANY_USER,
    "api.statistics": ANY_USER,
    "api.statistics_csv": ANY_USER,
    "panel.records": STAFF,
    "panel.records_conversation": RECORD_READERS,
    "panel.records_export": RECORD_READERS,
    "panel.live": STAFF,
    "panel.reports": STAFF,
    "panel.report_detail": STAFF,
    "panel.report_review": STAFF,
    "panel.reports_summary": STAFF,
    "panel.reports_summary_csv": STAFF,
    "panel.rules": MANAGERS,
    "panel.keys": MANAGERS,
    # grants: issuing and revoking also need the owner (or an admin the owner allows), checked in
    # backend.services.grants; anyone may list the grants they hold
    "panel.keys_issue": MANAGERS,
    "panel.keys_revoke": MANAGERS,
    "panel.keys_setting": MANAGERS,
    "api.list_grants": ANY_USER,
    "api.issue_grant": MANAGERS,
    "api.revoke_grant": MANAGERS,
    "panel.settings": MANAGERS,
    "panel.department_create": MANAGERS,
    "panel.users": MANAGERS,
    "panel.user_create": MANAGERS,
    "panel.user_edit": MANAGERS,
    # JSON API
    "api.me": ANY_USER,
    "api.list_users": MANAGERS,
    "api.create_user": MANAGERS,
    "api.get_user": MANAGERS,
    "api.update_user": MANAGERS,
    "api.list_departments": STAFF,
    "api.create_department": MANAGERS,
    "api.create_enrolment_code": ANY_USER,
    "api.enrol_device": PUBLIC,
    "api.list_devices": ANY_USER,
    "api.get_device": ANY_USER,
    "api.revoke_device": ANY_USER,
    "api.list_conversations": STAFF,
    "api.get_conversation": STAFF,
    "api.list_messages": RECORD_READERS,
    "api.live_agents": STAFF,
    "api.live_agent_conversations": STAFF,
    "api.live_conversation": STAFF,
    "api.create_intervention": RECORD_READERS,
    "api.search_messages": RECORD_READERS,
    "api.search_conversations": STAFF,
    "api.conversation_records": RECORD_READERS,
    "api.export_records": RECORD_READERS,
    "api.list_behaviour_events": STAFF,
    "api.get_behaviour_event": STAFF,
    "api.review_behaviour_event": STAFF,
    "api.behaviour_summary": STAFF,
    "api.get_rules": ANY_USER_OR_DEVICE,
    "api.get_rules_source": MANAGERS,
    "api.save_rules": MANAGERS,
    "api.rules_history": MANAGERS,
    "api.export_rules": MANAGERS,
    "api.import_rules": MANAGERS,
    "panel.rules_save": MANAGERS,
    "panel.rules_import": MANAGERS,
    "panel.rules_consoles_save": MANAGERS,
    # alerts: each reader's own (agents get none); the settings are the managers'
    "panel.alerts_page": STAFF,
    "panel.alerts_read": STAFF,
    "panel.settings_alerts": MANAGERS,
    "panel.alert_rules_save": MANAGERS,
    "panel.webhook_create": MANAGERS,
    "panel.webhook_toggle": MANAGERS,
    "panel.webhook_delete": MANAGERS,
    "panel.webhook_test": MANAGERS,
    "api.list_alerts": STAFF,
    "api.mark_alerts_read": STAFF,
    "api.get_alert_rules": MANAGERS,
    "api.save_alert_rules": MANAGERS,
    "api.list_webhooks": MANAGERS,
    "api.create_webhook": MANAGERS,
    "api.delete_webhook": MANAGERS,
    # the audit trail: the tenant's owners and admins (supervisors are among those it watches)
    "panel.audit": MANAGERS,
    "panel.audit_verify": MANAGERS,
    "api.list_audit": MANAGERS,
    # retention: the tenant's limits and legal holds
    # customers' data requests: also the owner (or an admin the owner allows), checked in
    # backend.services.customer_data, and the person's password for export and erasure
    "panel.customer_data_page": MANAGERS,
    "panel.customer_data_find": MANAGERS,
    "panel.customer_data_download": MANAGERS,
    "panel.customer_data_remove": MANAGERS,
    "api.customer_data_lookup": MANAGERS,
    "api.customer_data_export": MANAGERS,
    "api.customer_data_erase": MANAGERS,
    "panel.settings_retention": MANAGERS,
    "panel.retention_save": MANAGERS,
    "panel.hold_place": MANAGERS,
    "panel.hold_release": MANAGERS,
    "api.get_retention": MANAGERS,
    "api.save_retention": MANAGERS,
    "api.place_hold": MANAGERS,
    "api.release_hold": MANAGERS,
}

EVENTS: dict[tuple[str, str], Access] = {
    ("/agent", "connect"): DEVICE,
    ("/agent", "disconnect"): DEVICE,
    ("/agent", "heartbeat"): DEVICE,
    ("/agent", "events"): DEVICE,
    ("/agent", "pseudonyms"): DEVICE,
    ("/agent", "pending_interventions"): DEVICE,
    ("/agent", "intervention_status"): DEVICE,
    ("/agent", "resolve_chats"): DEVICE,
    ("/agent", "reveal"): DEVICE,
    ("/panel", "connect"): ANY_USER,
    ("/panel", "watch_conversation"): RECORD_READERS,
    ("/panel", "unwatch_conversation"): STAFF,
}


def route_access(endpoint: str | None) -> Access | None:
    return ROUTES.get(endpoint or "")


def event_access(namespace: str, event: str) -> Access | None:
    return EVENTS.get((namespace, event))
