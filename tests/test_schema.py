"""The migrations build exactly the schema the models describe, so upgrades never need a wiped database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from backend.extensions import db


def test_models_and_migrations_agree(ctx):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"run `flask db migrate`: the models changed without a migration: {diff}"


def test_idempotent_upload_key_exists(ctx):
    """Retried uploads rely on (device_id, client_event_id) being unique for messages and behaviour events."""
    for table in ("message", "behaviour_event"):
        uniques = {tuple(sorted(c.name for c in u.columns)) for u in db.metadata.tables[table].constraints
                   if u.__class__.__name__ == "UniqueConstraint"}
        assert ("client_event_id", "device_id") in uniques
