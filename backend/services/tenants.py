"""Organisations and their departments."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from backend.errors import ApiError
from backend.extensions import db
from backend.models import Department, Tenant, User
from backend.services.audit import record_audit


def create_tenant(name: str) -> Tenant:
    name = name.strip()
    if not name:
        raise ApiError(400, "invalid_name", _("A name is required."))
    if db.session.scalar(select(Tenant).where(Tenant.name == name)):
        raise ApiError(409, "tenant_exists", _("An organisation with that name already exists."))
    tenant = Tenant(name=name)
    db.session.add(tenant)
    db.session.flush()
    record_audit("tenant.create", tenant_id=tenant.id, target_type="tenant", target_id=tenant.id)
    return tenant


def find_tenant(name: str) -> Tenant | None:
    return db.session.scalar(select(Tenant).where(Tenant.name == name.strip()))


def create_department(actor: User | None, tenant: Tenant, name: str) -> Department:
    name = name.strip()[:120]
    if not name:
        raise ApiError(400, "invalid_name", _("A name is required."))
    existing = db.session.scalar(select(Department).where(Department.tenant_id == tenant.id, Department.name == name))
    if existing:
        raise ApiError(409, "department_exists", _("A department with that name already exists."))
    department = Department(tenant=tenant, name=name)
    db.session.add(department)
    db.session.flush()
    record_audit("department.create", actor=actor, tenant_id=tenant.id, target_type="department",
                 target_id=department.id, details={"name": name})
    return department


def department_named(tenant: Tenant, name: str) -> Department | None:
    return db.session.scalar(select(Department).where(Department.tenant_id == tenant.id, Department.name == name))
