"""audit trail: keyed hash chain, per-tenant sequence

Every entry so far becomes the frozen legacy chain (chain -1, hash_version 1, seq in id order): its
SHA-256 hashes stay as they are and `veil audit verify` still checks them. New entries go to one chain
per tenant (plus chain 0 for entries of no tenant), hashed with HMAC-SHA256 under a key derived from the
master key; the first entry of each new chain seals the end of the legacy chain (services/audit.py).

Revision ID: 7a1c0e5f2b06
Revises: 7a1c0e5f2b05
Create Date: 2026-11-23 15:45:00
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b06'
down_revision = '7a1c0e5f2b05'
branch_labels = None
depends_on = None

LEGACY_CHAIN = -1
UNKEYED = 1
BATCH = 1000


def upgrade():
    with op.batch_alter_table('audit_log_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('hash_version', sa.SmallInteger(), nullable=True))

    # The existing entries were one instance-wide chain in id order: number them in that order.
    bind = op.get_bind()
    entries = sa.table('audit_log_entry', sa.column('id', sa.Integer), sa.column('chain', sa.Integer),
                       sa.column('seq', sa.Integer), sa.column('hash_version', sa.SmallInteger))
    ids = [row[0] for row in bind.execute(sa.select(entries.c.id).order_by(entries.c.id))]
    update = (entries.update().where(entries.c.id == sa.bindparam('entry_id'))
              .values(chain=LEGACY_CHAIN, seq=sa.bindparam('entry_seq'), hash_version=UNKEYED))
    for start in range(0, len(ids), BATCH):
        bind.execute(update, [{'entry_id': entry_id, 'entry_seq': start + n + 1}
                              for n, entry_id in enumerate(ids[start:start + BATCH])])

    with op.batch_alter_table('audit_log_entry', schema=None) as batch_op:
        batch_op.alter_column('chain', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('hash_version', existing_type=sa.SmallInteger(), nullable=False)
        batch_op.create_unique_constraint('uq_audit_log_entry_chain_seq', ['chain', 'seq'])


def downgrade():
    # Entries keep their hashes; the old code appends after the highest id, which verifies nothing anyway.
    with op.batch_alter_table('audit_log_entry', schema=None) as batch_op:
        batch_op.drop_constraint('uq_audit_log_entry_chain_seq', type_='unique')
        batch_op.drop_column('hash_version')
        batch_op.drop_column('seq')
        batch_op.drop_column('chain')
