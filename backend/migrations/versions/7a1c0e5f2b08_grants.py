"""grants: owner signing keys, private and restore grants, their uses

Revision ID: 7a1c0e5f2b08
Revises: 7a1c0e5f2b07
Create Date: 2026-11-23 15:45:00

New tables only. Signing keys appear as owners set their passwords (or issue their first grant).
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b08'
down_revision = '7a1c0e5f2b07'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'signing_key',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('public_key', sa.String(length=64), nullable=False),
        sa.Column('encrypted_private_key', sa.Text(), nullable=False),
        sa.Column('kdf_salt', sa.String(length=64), nullable=False),
        sa.Column('kdf_n', sa.Integer(), nullable=False),
        sa.Column('kdf_r', sa.Integer(), nullable=False),
        sa.Column('kdf_p', sa.Integer(), nullable=False),
        sa.Column('binding', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_signing_key_tenant_id', 'signing_key', ['tenant_id'])
    op.create_index('ix_signing_key_user_id', 'signing_key', ['user_id'])

    op.create_table(
        'access_grant',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('grantee_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('agent_ids', sa.JSON(), nullable=False),
        sa.Column('department_ids', sa.JSON(), nullable=False),
        sa.Column('chat_account_ids', sa.JSON(), nullable=False),
        sa.Column('conversation_ids', sa.JSON(), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('max_uses', sa.Integer(), nullable=True),
        sa.Column('uses', sa.Integer(), nullable=False),
        sa.Column('issued_by_id', sa.Integer(), nullable=False),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('signing_key_id', sa.Integer(), nullable=False),
        sa.Column('nonce', sa.String(length=64), nullable=False),
        sa.Column('signature', sa.String(length=128), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_by_id', sa.Integer(), nullable=True),
        sa.Column('refused_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['grantee_id'], ['user_account.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['issued_by_id'], ['user_account.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['signing_key_id'], ['signing_key.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['revoked_by_id'], ['user_account.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('nonce'),
    )
    op.create_index('ix_access_grant_grantee', 'access_grant', ['tenant_id', 'grantee_id', 'kind'])

    op.create_table(
        'grant_use',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('grant_id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('what', sa.String(length=32), nullable=False),
        sa.Column('target_type', sa.String(length=32), nullable=False),
        sa.Column('target_id', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['grant_id'], ['access_grant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_grant_use_grant_id', 'grant_use', ['grant_id'])
    op.create_index('ix_grant_use_tenant_id', 'grant_use', ['tenant_id'])

    op.create_table(
        'grant_setting',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('admins_may_issue', sa.Boolean(), nullable=False),
        sa.Column('changed_by_id', sa.Integer(), nullable=True),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['changed_by_id'], ['user_account.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('tenant_id'),
    )


def downgrade():
    op.drop_table('grant_setting')
    op.drop_index('ix_grant_use_tenant_id', table_name='grant_use')
    op.drop_index('ix_grant_use_grant_id', table_name='grant_use')
    op.drop_table('grant_use')
    op.drop_index('ix_access_grant_grantee', table_name='access_grant')
    op.drop_table('access_grant')
    op.drop_index('ix_signing_key_user_id', table_name='signing_key')
    op.drop_index('ix_signing_key_tenant_id', table_name='signing_key')
    op.drop_table('signing_key')
