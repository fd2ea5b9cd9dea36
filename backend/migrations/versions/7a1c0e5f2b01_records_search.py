"""records search: full-text index over message text (SQLite FTS5 trigram, PostgreSQL pg_trgm)

Revision ID: 7a1c0e5f2b01
Revises: 13eb78feb450
Create Date: 2026-11-23 14:45:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b01'
down_revision = '13eb78feb450'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
