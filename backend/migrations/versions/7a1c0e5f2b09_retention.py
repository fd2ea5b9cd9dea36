"""retention: per-tenant retention settings and legal holds

Revision ID: 7a1c0e5f2b09
Revises: 7a1c0e5f2b08
Create Date: 2026-11-23 15:45:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b09'
down_revision = '7a1c0e5f2b08'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
