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
