"""`veil keys rotate`: every tenant's customer identifiers move to a new data key, while the server runs.

Per tenant: a new data key becomes the active one (new identifiers are encrypted under it at once), then
the identifiers still under older keys are re-encrypted in batches, each batch its own transaction, and
the older keys are retired. Stopped half way, a run resumes: a tenant with more than one key not yet
retired is mid-rotation, and the newest of those is the target. A finished tenant gets a new key on the
next run. Retired keys stay (wrapped) so a row a racing writer stored under one still decrypts; the next
rotation moves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, update

from backend.extensions import db
from backend.models import CustomerIdentifier, DataKey, Tenant
from backend.models.base import utcnow
from backend.services import vault
from backend.services.audit import record_audit

BATCH_SIZE = 500


@dataclass
class Rotation:
    tenant_id: int
    new_key_id: int
    retired_key_ids: list[int]
    moved: int


def unretired_keys(tenant_id: int) -> list[DataKey]:
    return list(db.session.scalars(select(DataKey).where(DataKey.tenant_id == tenant_id,
                                                         DataKey.retired_at.is_(None)).order_by(DataKey.id)))


def start_rotation(tenant_id: int) -> DataKey:
    """The key this tenant's identifiers move to: a rotation left half done is resumed, else a new key."""
    keys = unretired_keys(tenant_id)
    if len(keys) > 1:
        return keys[-1]
    target = vault.new_data_key(tenant_id)
    db.session.commit()  # from now on every writer encrypts under the new key
    return target


def remaining(tenant_id: int, target_id: int) -> int:
    return db.session.scalar(select(func.count(CustomerIdentifier.id)).where(
        CustomerIdentifier.tenant_id == tenant_id, CustomerIdentifier.data_key_id != target_id)) or 0


def move_batch(tenant_id: int, target: DataKey, batch_size: int = BATCH_SIZE) -> int:
    """Re-encrypt up to `batch_size` identifiers under `target`; commits. How many were moved."""
    rows = list(db.session.scalars(select(CustomerIdentifier).where(
        CustomerIdentifier.tenant_id == tenant_id, CustomerIdentifier.data_key_id != target.id)
        .order_by(CustomerIdentifier.id).limit(batch_size)))
    moved = 0
    for row in rows:
        value = vault.decrypt_identifier(row)
        nonce, sealed = vault.encrypt_identifier(target, row.kind, row.blind_index, value)
        # Conditional on the key it was read under: a row another rotation moved meanwhile is left alone.
        done = db.session.execute(update(CustomerIdentifier).where(
            CustomerIdentifier.id == row.id, CustomerIdentifier.data_key_id == row.data_key_id,
        ).values(nonce=nonce, ciphertext=sealed, data_key_id=target.id).execution_options(synchronize_session=False))
        moved += done.rowcount
    db.session.commit()
    db.session.expire_all()
    return moved


def rotate_tenant(tenant_id: int, *, batch_size: int = BATCH_SIZE,
                  progress: Callable[[int], None] | None = None) -> Rotation:
    target = start_rotation(tenant_id)
    moved = 0
    while True:
        count = move_batch(tenant_id, target, batch_size)
        if progress and count:
            progress(count)
        moved += count
        if count == 0 and remaining(tenant_id, target.id) == 0:
            break
    now = utcnow()
    retired = [k.id for k in unretired_keys(tenant_id) if k.id != target.id]
    if retired:
        db.session.execute(update(DataKey).where(DataKey.id.in_(retired)).values(retired_at=now)
                           .execution_options(synchronize_session=False))
    record_audit("keys.rotate", tenant_id=tenant_id, target_type="data_key", target_id=target.id,
                 details={"retired": retired, "identifiers": moved})
    db.session.commit()
    # A writer that read the old key just before the switch may have stored a row under it since.
    while move_batch(tenant_id, target, batch_size):
        pass
    return Rotation(tenant_id, target.id, retired, moved)


def total_identifiers() -> int:
    return db.session.scalar(select(func.count(CustomerIdentifier.id))) or 0


def rotate_all(*, batch_size: int = BATCH_SIZE, progress: Callable[[int], None] | None = None) -> list[Rotation]:
    """Rotate every tenant that has data keys."""
    tenant_ids = db.session.scalars(select(Tenant.id).where(
        Tenant.id.in_(select(DataKey.tenant_id))).order_by(Tenant.id)).all()
    return [rotate_tenant(tenant_id, batch_size=batch_size, progress=progress) for tenant_id in tenant_ids]
