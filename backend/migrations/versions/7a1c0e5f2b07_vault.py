"""encryption at rest: data keys, encrypted customer identifiers, blind index

Revision ID: 7a1c0e5f2b07
Revises: 7a1c0e5f2b06
Create Date: 2026-11-23 15:45:00

New tables only. Text stored before this revision is not rewritten (a migration has neither the rules
engine that finds identifiers nor, necessarily, the master key); see docs/security.md.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b07'
down_revision = '7a1c0e5f2b06'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'data_key',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('wrapped_key', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_data_key_tenant_id', 'data_key', ['tenant_id'])

    op.create_table(
        'customer_identifier',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('blind_index', sa.String(length=64), nullable=False),
        sa.Column('nonce', sa.LargeBinary(), nullable=False),
        sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
        sa.Column('data_key_id', sa.Integer(), nullable=False),
        sa.Column('masked_hint', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['data_key_id'], ['data_key.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('tenant_id', 'kind', 'blind_index', name='uq_customer_identifier_index'),
    )
    op.create_index('ix_customer_identifier_tenant_id', 'customer_identifier', ['tenant_id'])
    op.create_index('ix_customer_identifier_data_key', 'customer_identifier', ['data_key_id', 'id'])


def downgrade():
    op.drop_index('ix_customer_identifier_data_key', table_name='customer_identifier')
    op.drop_index('ix_customer_identifier_tenant_id', table_name='customer_identifier')
    op.drop_table('customer_identifier')
    op.drop_index('ix_data_key_tenant_id', table_name='data_key')
    op.drop_table('data_key')
