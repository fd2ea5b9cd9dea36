"""retention: per-tenant retention settings and legal holds

Revision ID: 7a1c0e5f2b09
Revises: 7a1c0e5f2b08
Create Date: 2026-11-23 15:45:00

New tables only: a tenant without a retention setting keeps everything, as before.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b09'
down_revision = '7a1c0e5f2b08'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'retention_setting',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('messages_days', sa.Integer(), nullable=True),
        sa.Column('behaviour_days', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('tenant_id'),
    )
    op.create_table(
        'legal_hold',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=True),
        sa.Column('conversation_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('released_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint('(agent_id IS NULL) <> (conversation_id IS NULL)', name='ck_legal_hold_one_subject'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['agent_id'], ['user_account.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['released_by_id'], ['user_account.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_legal_hold_tenant_released', 'legal_hold', ['tenant_id', 'released_at'])
    op.create_index('ix_legal_hold_agent_id', 'legal_hold', ['agent_id'])
    op.create_index('ix_legal_hold_conversation_id', 'legal_hold', ['conversation_id'])


def downgrade():
    op.drop_index('ix_legal_hold_conversation_id', table_name='legal_hold')
    op.drop_index('ix_legal_hold_agent_id', table_name='legal_hold')
    op.drop_index('ix_legal_hold_tenant_released', table_name='legal_hold')
    op.drop_table('legal_hold')
    op.drop_table('retention_setting')
