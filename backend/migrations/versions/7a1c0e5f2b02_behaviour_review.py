"""behaviour reports: a status a supervisor moves through, with a note

Revision ID: 7a1c0e5f2b02
Revises: 7a1c0e5f2b01
Create Date: 2026-11-23 14:45:00

Events recorded before this revision become "new" (the server default), so they all wait for review.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b02'
down_revision = '7a1c0e5f2b01'
branch_labels = None
depends_on = None

REVIEWER_FK = 'fk_behaviour_event_reviewed_by_id'
STATUS_INDEX = 'ix_behaviour_event_tenant_status_occurred'
AGENT_INDEX = 'ix_behaviour_event_agent_occurred'


def upgrade():
    with op.batch_alter_table('behaviour_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=16), server_default='new', nullable=False))
        batch_op.add_column(sa.Column('review_note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(REVIEWER_FK, 'user_account', ['reviewed_by_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index(STATUS_INDEX, ['tenant_id', 'status', 'occurred_at'], unique=False)
        batch_op.create_index(AGENT_INDEX, ['agent_id', 'occurred_at'], unique=False)


def downgrade():
    with op.batch_alter_table('behaviour_event', schema=None) as batch_op:
        batch_op.drop_index(AGENT_INDEX)
        batch_op.drop_index(STATUS_INDEX)
        batch_op.drop_constraint(REVIEWER_FK, type_='foreignkey')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by_id')
        batch_op.drop_column('review_note')
        batch_op.drop_column('status')
