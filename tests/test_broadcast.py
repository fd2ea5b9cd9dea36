"""Pushes after commit (backend/realtime/broadcast.py): they run once the data is committed and the
committing session has given its connection back, and never after a rollback."""

from __future__ import annotations

from flask_migrate import upgrade
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend import create_app
from backend.config import TestConfig
from backend.extensions import db
from backend.models import Tenant
from backend.realtime.broadcast import after_commit


def test_a_push_can_read_what_was_committed_with_a_one_connection_pool(tmp_path):
    # One connection in the pool and a short wait: a push run while the committing session still held
    # its connection would time out instead of reading.
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/one.db",
                      "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0, "pool_timeout": 1}},
                     config_class=TestConfig)
    seen: list = []
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        db.session.add(Tenant(name="Pushed Co"))

        def push() -> None:
            with Session(db.engine) as own:
                seen.append(own.scalar(select(Tenant.name).where(Tenant.name == "Pushed Co")))

        after_commit(push)
        db.session.commit()
        assert seen == ["Pushed Co"]

        db.session.add(Tenant(name="Never Co"))
        after_commit(lambda: seen.append("pushed after a rollback"))
        db.session.rollback()
        db.session.commit()  # a later, empty commit does not run what the rollback dropped
        assert seen == ["Pushed Co"]
        assert db.session.scalar(select(func.count()).select_from(Tenant)) == 1
        db.engine.dispose()
