"""key material: keys wrapped by the master key, so the master key can rotate

Revision ID: 7a1c0e5f2b11
Revises: 7a1c0e5f2b10
Create Date: 2026-12-07 14:40:00

New tables and one nullable column only. `key_material` starts empty: the first process that needs a
stored key writes it, with the value the key had until now (HKDF of the master key), so nothing made
before changes (backend/services/key_material.py). `data_key.master_fingerprint` stays NULL for the data
keys there are: `veil keys rotate-master` finds out which key opens them. `protect_progress` is
`veil keys protect-existing`'s high-water mark.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b11'
down_revision = '7a1c0e5f2b10'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'key_material',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=64), nullable=False),
        sa.Column('wrapped_key', sa.LargeBinary(), nullable=True),
        sa.Column('master_fingerprint', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('rewrapped_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('purpose', name='uq_key_material_purpose'),
    )
    op.create_table(
        'protect_progress',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('table_name', sa.String(length=64), nullable=False),
        sa.Column('last_id', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('table_name', name='uq_protect_progress_table'),
    )
    # A plain ADD COLUMN (nullable, no constraint) works on SQLite without rebuilding the table.
    op.add_column('data_key', sa.Column('master_fingerprint', sa.String(length=64), nullable=True))


def downgrade():
    # SQLite (3.35+) drops a column without constraints in place; no batch rebuild of data_key, which
    # customer_identifier references.
    op.drop_column('data_key', 'master_fingerprint')
    op.drop_table('protect_progress')
    op.drop_table('key_material')
