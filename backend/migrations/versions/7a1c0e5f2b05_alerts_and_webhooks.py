"""alerts: per-tenant alert rules, alerts, webhook endpoints and deliveries

Revision ID: 7a1c0e5f2b05
Revises: 7a1c0e5f2b04
Create Date: 2026-11-23 14:45:00

New tables only: a tenant without alert rules follows the defaults, so nothing needs filling in.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b05'
down_revision = '7a1c0e5f2b04'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'alert_rule',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('event_type', sa.String(length=48), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('severity', sa.String(length=16), nullable=False),
        sa.Column('supervisors', sa.Boolean(), nullable=False),
        sa.Column('managers', sa.Boolean(), nullable=False),
        sa.Column('user_ids', sa.JSON(), nullable=False),
        sa.Column('webhooks', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant_id', 'event_type'),
    )
    op.create_index('ix_alert_rule_tenant_id', 'alert_rule', ['tenant_id'])

    op.create_table(
        'alert',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('behaviour_event_id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.Integer(), nullable=True),
        sa.Column('type', sa.String(length=48), nullable=False),
        sa.Column('severity', sa.String(length=16), nullable=False),
        sa.Column('summary', sa.String(length=400), nullable=False),
        sa.Column('facts', sa.JSON(), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['behaviour_event_id'], ['behaviour_event.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['agent_id'], ['user_account.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('behaviour_event_id'),
    )
    op.create_index('ix_alert_tenant_id', 'alert', ['tenant_id'])
    op.create_index('ix_alert_agent_id', 'alert', ['agent_id'])

    op.create_table(
        'alert_receipt',
        sa.Column('alert_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('alert_id', 'user_id'),
    )
    op.create_index('ix_alert_receipt_user_unread', 'alert_receipt', ['user_id', 'read_at'])

    op.create_table(
        'webhook_endpoint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=False),
        sa.Column('secret', sa.String(length=128), nullable=False),
        sa.Column('format', sa.String(length=16), nullable=False),
        sa.Column('locale', sa.String(length=8), nullable=False),
        sa.Column('event_types', sa.JSON(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhook_endpoint_tenant_id', 'webhook_endpoint', ['tenant_id'])

    op.create_table(
        'webhook_delivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('alert_id', sa.Integer(), nullable=False),
        sa.Column('endpoint_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=300), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['alert_id'], ['alert.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoint.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('alert_id', 'endpoint_id'),
    )
    op.create_index('ix_webhook_delivery_tenant_id', 'webhook_delivery', ['tenant_id'])
    op.create_index('ix_webhook_delivery_endpoint_id', 'webhook_delivery', ['endpoint_id'])
    op.create_index('ix_webhook_delivery_due', 'webhook_delivery', ['status', 'next_attempt_at'])


def downgrade():
    op.drop_index('ix_webhook_delivery_due', table_name='webhook_delivery')
    op.drop_index('ix_webhook_delivery_endpoint_id', table_name='webhook_delivery')
    op.drop_index('ix_webhook_delivery_tenant_id', table_name='webhook_delivery')
    op.drop_table('webhook_delivery')
    op.drop_index('ix_webhook_endpoint_tenant_id', table_name='webhook_endpoint')
    op.drop_table('webhook_endpoint')
    op.drop_index('ix_alert_receipt_user_unread', table_name='alert_receipt')
    op.drop_table('alert_receipt')
    op.drop_index('ix_alert_agent_id', table_name='alert')
    op.drop_index('ix_alert_tenant_id', table_name='alert')
    op.drop_table('alert')
    op.drop_index('ix_alert_rule_tenant_id', table_name='alert_rule')
    op.drop_table('alert_rule')
