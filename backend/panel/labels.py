"""Words the panel shows for stored values (roles, rule actions, behaviour types), marked for translation."""

from flask_babel import lazy_gettext as _l

ROLE_LABELS = {
    "owner": _l("Owner"),
    "admin": _l("Admin"),
    "supervisor": _l("Supervisor"),
    "agent": _l("Agent"),
}


def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, role))


ACTION_LABELS = {
    "block": _l("Block"),
    "warn": _l("Warn (send with a reason)"),
    "log": _l("Log only"),
}


def action_label(action: str) -> str:
    return str(ACTION_LABELS.get(action, action))


# Every behaviour event type (models/behaviour.py); an unknown one is shown as stored.
BEHAVIOUR_LABELS = {
    "send_blocked": _l("Send blocked"),
    "send_warned": _l("Sent after a warning"),
    "bulk_copy": _l("Bulk copy"),
    "contact_request": _l("Contact request"),
    "extension_disabled": _l("Extension disabled"),
    "offline_use": _l("Console used while not connected"),
    "reveal_requested": _l("Reveal requested"),
    "message_edited": _l("Message edited"),
    "message_deleted": _l("Message deleted"),
    "server_rule_hit": _l("Caught by the server's check"),
    "new_device": _l("New device for the same agent"),
    "device_revoked_by_agent": _l("Device revoked by the agent"),
    "extension_removed": _l("Extension removed"),
    "heartbeat_missing": _l("Heartbeats missing"),
    "heartbeat_resumed": _l("Heartbeats resumed"),
}


def behaviour_label(kind: str) -> str:
    return str(BEHAVIOUR_LABELS.get(kind, kind))


# Where a supervisor's review of a behaviour event stands (models/behaviour.py REVIEW_STATUSES).
REVIEW_STATUS_LABELS = {
    "new": _l("New"),
    "confirmed": _l("Confirmed"),
    "dismissed": _l("Dismissed"),
}


def review_status_label(status: str) -> str:
    return str(REVIEW_STATUS_LABELS.get(status, status))


# The keys of a behaviour event's `details` (docs/protocol.md, "Behaviour types"); others are shown as stored.
DETAIL_LABELS = {
    "console": _l("Console"),
    "account": _l("Account"),
    "text": _l("Text"),
    "previous_text": _l("Text before"),
    "rule": _l("Rule"),
    "reason": _l("Reason given"),
    "details": _l("More"),
    "message_id": _l("Message"),
    "revision_id": _l("Revision"),
    "action": _l("Action"),
    "rules": _l("Rules version"),
    "findings": _l("Findings"),
    "label": _l("Device"),
    "user_agent": _l("Browser"),
    "other_devices": _l("Other devices"),
    "last_seen_at": _l("Last seen"),
    "minutes": _l("Minutes"),
}


def detail_label(key: str) -> str:
    return str(DETAIL_LABELS.get(key, key))
