"""device signals: the removal link's token hash, and when removal and silence were reported

Revision ID: 13eb78feb450
Revises: 66a35db83bdf
Create Date: 2026-11-23 13:17:25.840340

Devices enrolled before this revision have no removal link until they are enrolled again; missing
heartbeats still report them.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '13eb78feb450'
down_revision = '66a35db83bdf'
branch_labels = None
depends_on = None

REMOVAL_UNIQUE = 'uq_device_removal_token_hash'


def upgrade():
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.add_column(sa.Column('removal_token_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('removal_reported_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('silence_reported_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(REMOVAL_UNIQUE, ['removal_token_hash'])


def downgrade():
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_constraint(REMOVAL_UNIQUE, type_='unique')
        batch_op.drop_column('silence_reported_at')
        batch_op.drop_column('removal_reported_at')
        batch_op.drop_column('removal_token_hash')
