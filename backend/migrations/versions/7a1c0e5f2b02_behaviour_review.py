"""behaviour reports: a status a supervisor moves through, with a note

Revision ID: 7a1c0e5f2b02
Revises: 7a1c0e5f2b01
Create Date: 2026-11-23 14:45:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b02'
down_revision = '7a1c0e5f2b01'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
