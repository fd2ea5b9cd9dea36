"""audit trail: keyed hash chain, per-tenant sequence

Revision ID: 7a1c0e5f2b06
Revises: 7a1c0e5f2b05
Create Date: 2026-11-23 15:45:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b06'
down_revision = '7a1c0e5f2b05'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
