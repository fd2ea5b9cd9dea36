"""The migrations build exactly the schema the models describe, so upgrades never need a wiped database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from backend.extensions import db
from backend.models.chat import is_search_index


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
