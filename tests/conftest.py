"""Fixtures that compose: one migrated database per backend, emptied after each test, and factories.

Every test runs against SQLite; with VEIL_TEST_POSTGRES_URL set, against PostgreSQL as well.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select, text

from backend import create_app
from backend.config import TestConfig
from backend.extensions import db
from backend.models import ChatAccount, Device, Message, Role, User
from backend.models.base import utcnow
from backend.security.identifiers import identifier_key
from backend.security.secrets import hash_token
from backend.services.api_tokens import create_api_token
from backend.services.conversations import find_or_create_conversation
from backend.services.devices import create_enrolment_code, enrol_device
from backend.services.tenants import create_department, create_tenant

TRANSLATIONS = Path(__file__).resolve().parents[1] / "backend" / "translations"
# Several checkouts may test against one PostgreSQL at once: each can name a schema of its own.
PG_SCHEMA = os.environ.get("VEIL_TEST_PG_SCHEMA", "veil_test")


def compile_catalogues() -> None:
    """The .mo files are build output; compile them if this checkout has not yet."""
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as src, mo.open("wb") as dst:
                write_mo(dst, read_po(src))


def postgres_url() -> str | None:
    return os.environ.get("VEIL_TEST_POSTGRES_URL") or None


def database_params() -> list:
    params = [pytest.param("sqlite", id="sqlite")]
    if postgres_url():
        params.append(pytest.param("postgres", id="postgres"))
    return params


def reset_postgres_schema(url: str, schema: str = PG_SCHEMA) -> str:
    """A schema of our own in the shared database, dropped and made anew; the URL that works in it."""
    from backend.config import normalise_db_url

    engine = create_engine(normalise_db_url(url))
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return normalise_db_url(url) + sep + "options=" + urllib.parse.quote(f"-csearch_path={schema}")


@pytest.fixture(scope="session", params=database_params())
def app(request, tmp_path_factory):
    compile_catalogues()
    instance = tmp_path_factory.mktemp(f"instance-{request.param}")
    if request.param == "postgres":
        url = reset_postgres_schema(postgres_url())
    else:
        url = f"sqlite:///{instance}/veil.db"
    application = create_app(
        {"INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": url, "VEIL_SOCKETIO_QUEUE": None},
        config_class=TestConfig,
    )
    with application.app_context():
        upgrade(directory=application.extensions["migrate"].directory)
    application.config["DB_KIND"] = request.param
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _empty_database(request):
    """After each test, empty every table, so tests see only what they make."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if application.config["DB_KIND"] == "postgres":
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def ctx(app):
    """An app context for tests of services. Do not send requests inside it: they would share its `g`."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass(frozen=True)
class UserRef:
    """What a test needs of a user, usable outside the app context that made it."""

    id: int
    email: str
    role: str
    tenant_id: int

    @classmethod
    def of(cls, user: User) -> UserRef:
        return cls(user.id, user.email, user.role, user.tenant_id)


def sign_in(client, user: UserRef | User) -> str:
    """Put `user` into the client's server-side session; returns a CSRF token for unsafe requests."""
    with client.session_transaction() as session:
        session["user_id"] = user.id
    page = client.get("/settings" if user.role in (Role.OWNER, Role.ADMIN) else "/")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match, "signed-in page carries a CSRF token"
    return match.group(1)


@dataclass
class Org:
    """One tenant with a person in every role and an agent's data to reach for (ids, not ORM objects)."""

    tenant_id: int
    name: str
    users: dict[str, UserRef]
    sales_id: int
    support_id: int
    agent: UserRef
    other_agent: UserRef  # an agent in a department the supervisor does not supervise
    device_id: int
    conversation_id: int
    pending_code: str
    removal_token: str  # the enrolled device's removal link token
    tokens: dict[str, str] = field(default_factory=dict)


def make_org(name: str, secret: str) -> Org:
    tenant = create_tenant(name)
    sales = create_department(None, tenant, "Sales")
    support = create_department(None, tenant, "Support")
    slug = re.sub(r"\W+", "", name.lower())

    def person(role: str, label: str, departments) -> User:
        user = User(tenant=tenant, email=f"{label}@{slug}.test", display_name=label, role=role)
        user.departments = departments
        db.session.add(user)
        return user

    users = {
        "owner": person(Role.OWNER, "owner", []),
        "admin": person(Role.ADMIN, "admin", []),
        "supervisor": person(Role.SUPERVISOR, "supervisor", [sales]),
        "agent": person(Role.AGENT, "agent", [sales]),
    }
    other_agent = person(Role.AGENT, "agent2", [support])
    db.session.flush()
    agent = users["agent"]
    device, code = create_enrolment_code(None, agent, 3600)
    device, _token, removal_token = enrol_device(code, label="laptop")
    _pending, pending_code = create_enrolment_code(None, agent, 3600)
    account = ChatAccount(tenant_id=tenant.id, agent=agent, platform="whatsapp", handle=f"{name} sales")
    db.session.add(account)
    db.session.flush()
    conversation = find_or_create_conversation(secret, account, "+86 138 0013 8000")
    db.session.add(Message(tenant_id=tenant.id, conversation=conversation, direction="in",
                           text=f"hello from a customer of {name}", sent_at=utcnow()))
    tokens = {role: create_api_token(user) for role, user in users.items()}
    db.session.commit()
    return Org(
        tenant_id=tenant.id, name=name, users={r: UserRef.of(u) for r, u in users.items()},
        sales_id=sales.id, support_id=support.id, agent=UserRef.of(agent), other_agent=UserRef.of(other_agent),
        device_id=device.id, conversation_id=conversation.id, pending_code=pending_code,
        removal_token=removal_token, tokens=tokens,
    )


# Rows `orgs` made the first time, per database kind: (when, rows per table, the two orgs).
_ORG_SNAPSHOTS: dict[str, tuple[datetime, dict[str, list[dict]], tuple[Org, Org]]] = {}
# Not copied: stored keys are made again on first use with the same values, and the audit chain's
# times are under its MAC, so they are restored as they were rather than moved with the clock.
_NOT_SNAPSHOT = {"key_material"}
_TIMES_KEPT = {"audit_log_entry"}


def _database_is_empty() -> bool:
    return all(db.session.execute(select(func.count()).select_from(t)).scalar() == 0
               for t in db.metadata.sorted_tables if t.name not in _NOT_SNAPSHOT)


def _dump_rows() -> dict[str, list[dict]]:
    return {t.name: [dict(r) for r in db.session.execute(t.select()).mappings()]
            for t in db.metadata.sorted_tables if t.name not in _NOT_SNAPSHOT}


def _restore_rows(rows: dict[str, list[dict]], shift: timedelta) -> None:
    """The rows again, with the same ids; times moved forward by `shift` (an enrolment code made at the
    start of the run is as fresh as when it was made). PostgreSQL's id sequences are moved past them."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    for table in db.metadata.sorted_tables:
        batch = rows.get(table.name)
        if not batch:
            continue
        if table.name not in _TIMES_KEPT:
            batch = [{k: (v + shift if isinstance(v, datetime) else v) for k, v in row.items()} for row in batch]
        db.session.execute(table.insert(), batch)
        if postgres and "id" in table.c:
            db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                                    f"(SELECT max(id) FROM \"{table.name}\"))"))
    db.session.commit()


@pytest.fixture
def orgs(app):
    """Two tenants, A (the actor's) and B (the other one), built the same way.

    Built through the real services the first time per database kind; after that, their rows are put back
    from a snapshot (making them costs a tenth of a second, and most of the suite's tests ask for them):
    the same ids, hashes, tokens and codes, the same audit chain, times moved on with the clock. A test
    that wrote rows before asking for `orgs` gets them made afresh.
    """
    with app.app_context():
        snapshot = _ORG_SNAPSHOTS.get(app.config["DB_KIND"])
        empty = _database_is_empty()
        if snapshot is not None and empty:
            taken_at, rows, made = snapshot
            _restore_rows(rows, utcnow() - taken_at)
            return made
        secret = identifier_key()
        made = make_org("Acme", secret), make_org("Bolt", secret)
        if snapshot is None and empty:
            _ORG_SNAPSHOTS[app.config["DB_KIND"]] = (utcnow(), _dump_rows(), made)
        return made


def device_token(app, device_id: int) -> str:
    """Give a device a known token (the real one is only ever returned once, at enrolment)."""
    token = f"test-device-token-{device_id}"
    with app.app_context():
        db.session.get(Device, device_id).token_hash = hash_token(token)
        db.session.commit()
    return token
