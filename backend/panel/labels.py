"""Words the panel shows for stored values (roles), marked for translation."""

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
