"""Organisations, their departments and the people who use Veil."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.base import UTCDateTime, created_at_column


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"


ROLES = tuple(r.value for r in Role)

# An agent works in one department (or more); a supervisor sees the departments they belong to.
department_members = Table(
    "department_member",
    db.metadata,
    Column("department_id", Integer, ForeignKey("department.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True),
)


class Tenant(db.Model):
    __tablename__ = "tenant"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = created_at_column()

    departments: Mapped[list[Department]] = relationship(back_populates="tenant", order_by="Department.name")


class Department(db.Model):
    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = created_at_column()

    tenant: Mapped[Tenant] = relationship(back_populates="departments")
    members: Mapped[list[User]] = relationship(secondary=department_members, back_populates="departments")


class User(db.Model):
    # "user" is reserved in PostgreSQL
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    # Sign-in is by e-mail alone, so it is unique across tenants; stored lower-cased.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = created_at_column()
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    tenant: Mapped[Tenant] = relationship()
    departments: Mapped[list[Department]] = relationship(
        secondary=department_members, back_populates="members", order_by="Department.name"
    )

    @property
    def department_ids(self) -> set[int]:
        return {d.id for d in self.departments}

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "email": self.email,
            "display_name": self.display_name,
            "role": self.role,
            "is_active": self.is_active,
            "tenant_id": self.tenant_id,
            "departments": [{"id": d.id, "name": d.name} for d in self.departments],
        }
