"""interventions: replies a supervisor writes in the panel for an agent's console

Revision ID: 7a1c0e5f2b03
Revises: 7a1c0e5f2b02
Create Date: 2026-11-23 14:45:00
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b03'
down_revision = '7a1c0e5f2b02'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'intervention',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('device_id', sa.Integer(), nullable=True),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('error', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['agent_id'], ['user_account.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['device_id'], ['device.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['message_id'], ['message.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('message_id'),
    )
    with op.batch_alter_table('intervention', schema=None) as batch_op:
        batch_op.create_index('ix_intervention_agent_status', ['agent_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_intervention_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intervention_tenant_id'), ['tenant_id'], unique=False)


def downgrade():
    with op.batch_alter_table('intervention', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_intervention_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_intervention_conversation_id'))
        batch_op.drop_index('ix_intervention_agent_status')
    op.drop_table('intervention')
