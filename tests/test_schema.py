"""The migrations build exactly the schema the models describe, so upgrades never need a wiped database."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from backend.extensions import db
from backend.models.chat import is_search_index
from tests.conftest import database_params


def test_models_and_migrations_agree(ctx):
    with db.engine.connect() as conn:
        # The records search's FTS tables and trigram indexes are made by hand in their migration.
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda name, type_, parents: not (type_ in ("table", "index") and is_search_index(name)),
        })
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"run `flask db migrate`: the models changed without a migration: {diff}"


def test_idempotent_upload_key_exists(ctx):
    """Retried uploads rely on (device_id, client_event_id) being unique for messages and behaviour events."""
    for table in ("message", "behaviour_event"):
        uniques = {tuple(sorted(c.name for c in u.columns)) for u in db.metadata.tables[table].constraints
                   if u.__class__.__name__ == "UniqueConstraint"}
        assert ("client_event_id", "device_id") in uniques


def test_upgrade_keeps_existing_data(tmp_path):
    """Data written under the first schema survives every later migration."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from backend import create_app
    from backend.config import TestConfig

    app = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/old.db"},
                     config_class=TestConfig)
    directory = app.extensions["migrate"].directory
    with app.app_context():
        upgrade(directory=directory, revision="ec8d7bf81198")  # the first schema
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO tenant (id, name, created_at) VALUES (1, 'Old Co', '2026-01-01')"))
            conn.execute(text("INSERT INTO login_attempt (email, remote_addr, created_at, details) "
                              "VALUES ('a@b.c', '1.2.3.4', '2026-01-01', '{}')"))
        upgrade(directory=directory)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM tenant")).scalar() == "Old Co"
            assert conn.execute(text("SELECT kind FROM login_attempt")).scalar() == "sign_in"
        downgrade(directory=directory, revision="ec8d7bf81198")  # and back, for a rollback of a release
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM tenant")).scalar() == "Old Co"


# ---- 7a1c0e5f2b10: webhook secrets sealed, grant states vouched for ---------------------------------------

BEFORE_INTEGRITY = "7a1c0e5f2b09"
OLD_SECRET = "whsec_" + "s" * 43


def fresh_database(kind: str, tmp_path) -> str:
    """An empty database of its own: a SQLite file, or a PostgreSQL schema beside the suite's."""
    from tests.conftest import PG_SCHEMA, postgres_url, reset_postgres_schema

    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/integrity.db"
    return reset_postgres_schema(postgres_url(), f"{PG_SCHEMA}_migrations")


def integrity_app(kind: str, tmp_path, **config):
    from backend import create_app
    from backend.config import TestConfig

    return create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": fresh_database(kind, tmp_path),
                       "VEIL_SOCKETIO_QUEUE": None, **config}, config_class=TestConfig)


def rows_before_integrity(conn) -> None:
    """A tenant with a webhook endpoint (its secret in clear), a grant used once and a revoked one."""
    from sqlalchemy import text

    at = "2026-06-01 10:00:00"
    conn.execute(text("INSERT INTO tenant (id, name, created_at) VALUES (1, 'Old Co', :at)"), {"at": at})
    conn.execute(text("INSERT INTO user_account (id, tenant_id, email, display_name, role, is_active, created_at) "
                      "VALUES (1, 1, 'o@old.test', 'o', 'owner', true, :at)"), {"at": at})
    conn.execute(text("INSERT INTO signing_key (id, tenant_id, user_id, public_key, encrypted_private_key, kdf_salt, "
                      "kdf_n, kdf_r, kdf_p, binding, created_at) VALUES (1, 1, 1, 'k', 'x', 's', 1, 1, 1, 'b', :at)"),
                 {"at": at})
    for grant_id, uses, revoked_at in ((1, 1, None), (2, 0, "2026-06-02 11:12:13")):
        conn.execute(text(
            "INSERT INTO access_grant (id, tenant_id, grantee_id, kind, agent_ids, department_ids, chat_account_ids, "
            "conversation_ids, starts_at, ends_at, uses, issued_by_id, issued_at, signing_key_id, nonce, signature, "
            "revoked_at) VALUES (:id, 1, 1, 'private', '[]', '[1]', '[]', '[]', :at, '2027-06-01 10:00:00', :uses, "
            "1, :at, 1, :nonce, 'sig', :revoked)"),
            {"id": grant_id, "at": at, "uses": uses, "nonce": f"nonce-{grant_id}", "revoked": revoked_at})
    conn.execute(text("INSERT INTO grant_use (grant_id, tenant_id, user_id, what, target_type, target_id, at) "
                      "VALUES (1, 1, 1, 'record_view', 'conversation', '1', :at)"), {"at": at})
    conn.execute(text("INSERT INTO webhook_endpoint (id, tenant_id, url, description, secret, format, locale, "
                      "event_types, enabled, created_at) VALUES (1, 1, 'https://hooks.example.com/veil', '', "
                      ":secret, 'veil', 'en', '[]', true, :at)"), {"secret": OLD_SECRET, "at": at})


@pytest.mark.parametrize("kind", database_params())
def test_integrity_migration_seals_secrets_vouches_for_grants_and_goes_back(kind, tmp_path):
    from types import SimpleNamespace

    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from backend.services import grant_state, webhooks

    app = integrity_app(kind, tmp_path)
    directory = app.extensions["migrate"].directory
    with app.app_context():
        upgrade(directory=directory, revision=BEFORE_INTEGRITY)
        with db.engine.begin() as conn:
            rows_before_integrity(conn)
        upgrade(directory=directory)
        with db.engine.connect() as conn:
            endpoint = SimpleNamespace(**conn.execute(text(
                "SELECT id, tenant_id, url, sealed_secret FROM webhook_endpoint")).mappings().one())
        assert endpoint.sealed_secret.startswith("v1.") and OLD_SECRET not in endpoint.sealed_secret
        assert webhooks.endpoint_secret(endpoint) == OLD_SECRET, "the app opens what the migration sealed"
        for grant_id, nonce in ((1, "nonce-1"), (2, "nonce-2")):
            state = grant_state.read_state(grant_id)
            assert grant_state.problem(nonce, state) is None, grant_id
        assert grant_state.read_state(2).revoked_at is not None
        db.session.remove()

        downgrade(directory=directory, revision=BEFORE_INTEGRITY)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT secret FROM webhook_endpoint")).scalar_one() == OLD_SECRET
            assert conn.execute(text("SELECT count(*) FROM access_grant")).scalar_one() == 2
            assert conn.execute(text("SELECT count(*) FROM grant_use")).scalar_one() == 1, "no use lost"
        db.engine.dispose()


def test_integrity_migration_without_the_master_key_stops_and_keeps_the_secrets(tmp_path, capfd):
    from flask_migrate import upgrade
    from sqlalchemy import text

    app = integrity_app("sqlite", tmp_path, VEIL_MASTER_KEY="")  # and no instance/master.key
    directory = app.extensions["migrate"].directory
    with app.app_context():
        upgrade(directory=directory, revision=BEFORE_INTEGRITY)
        with db.engine.begin() as conn:
            rows_before_integrity(conn)
        with pytest.raises(SystemExit):  # flask-migrate logs the migration's error and exits
            upgrade(directory=directory)
        assert "need the master key, and there is none" in capfd.readouterr().err
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT secret FROM webhook_endpoint")).scalar_one() == OLD_SECRET
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == BEFORE_INTEGRITY
        db.engine.dispose()
