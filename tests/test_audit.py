"""The audit trail: keyed per-tenant chains, `veil audit verify` and `anchor`, the Audit page and API."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from backend.extensions import db
from backend.models import AuditLogEntry, Tenant, User
from backend.models.audit import INSTANCE_CHAIN, KEYED, LEGACY_CHAIN, UNKEYED
from backend.models.base import utcnow
from backend.services import audit
from backend.services.audit import Anchor, record_audit, verify_audit
from tests.conftest import sign_in

# ---- helpers -------------------------------------------------------------------------------------------


def write_entries(tenant_id: int | None, n: int, prefix: str = "test") -> list[int]:
    """n entries in a tenant's chain (committed); their ids in order."""
    ids = [record_audit(f"{prefix}.{i}", tenant_id=tenant_id, target_type="thing", target_id=i,
                        details={"n": i, "note": f"entry {i}"}).id for i in range(n)]
    db.session.commit()
    return ids


def entry(entry_id: int) -> AuditLogEntry:
    db.session.expire_all()
    return db.session.get(AuditLogEntry, entry_id)


def problems(result) -> list[tuple[str, int | None, int | None]]:
    return [(p.kind, p.entry_id, p.seq) for p in result.problems]


def set_columns(entry_id: int, **values) -> None:
    """What a database writer does: an UPDATE straight on the table, past the application."""
    db.session.execute(update(AuditLogEntry).where(AuditLogEntry.id == entry_id).values(**values)
                       .execution_options(synchronize_session=False))
    db.session.commit()


@pytest.fixture
def tenant_id(ctx):
    tenant = Tenant(name="Chained Co")
    db.session.add(tenant)
    db.session.commit()
    return tenant.id


# ---- the chain -------------------------------------------------------------------------------------------


def test_entries_form_one_gapless_keyed_chain_per_tenant(ctx, tenant_id):
    other = Tenant(name="Other Co")
    db.session.add(other)
    db.session.commit()
    mine = write_entries(tenant_id, 4)
    theirs = write_entries(other.id, 2)
    nobody = write_entries(None, 2)
    rows = [entry(i) for i in mine]
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    assert {r.chain for r in rows} == {tenant_id} and {r.hash_version for r in rows} == {KEYED}
    assert [r.prev_hash for r in rows[1:]] == [r.entry_hash for r in rows[:-1]]
    assert [entry(i).seq for i in theirs] == [1, 2] and entry(nobody[0]).chain == INSTANCE_CHAIN
    # each chain starts from a keyed value of its own, never a shared genesis
    assert len({entry(mine[0]).prev_hash, entry(theirs[0]).prev_hash, entry(nobody[0]).prev_hash}) == 3
    result = verify_audit()
    assert result.ok and result.entries == 8, problems(result)
    mine_only = verify_audit(tenant_id)
    assert mine_only.ok and mine_only.entries == 4


def test_hash_is_an_hmac_under_the_master_key(ctx, tenant_id):
    [first] = write_entries(tenant_id, 1)
    row = entry(first)
    body = audit.canonical({**audit.content(row), "chain": row.chain, "seq": row.seq, "hash_version": KEYED})
    assert row.entry_hash == hmac.new(audit.chain_key(), body, hashlib.sha256).hexdigest()
    assert row.entry_hash != hashlib.sha256(body).hexdigest()


def test_changed_details_are_flagged_at_that_entry(ctx, tenant_id):
    ids = write_entries(tenant_id, 5)
    set_columns(ids[2], details={"n": 2, "note": "nothing to see"})
    result = verify_audit()
    assert problems(result) == [("changed", ids[2], 3)]
    assert not verify_audit(tenant_id).ok


@pytest.mark.parametrize("forged_with", ["sha256", "wrong key"])
def test_a_chain_recomputed_without_the_key_is_still_flagged(ctx, tenant_id, forged_with):
    """The thief edits entry 2 and rebuilds every hash after it, as the unkeyed chain allowed."""
    ids = write_entries(tenant_id, 4)
    set_columns(ids[1], action="auth.sign_in", details={})
    previous = entry(ids[0]).entry_hash
    for entry_id in ids[1:]:
        row = entry(entry_id)
        row.prev_hash = previous
        body = audit.canonical({**audit.content(row), "chain": row.chain, "seq": row.seq, "hash_version": KEYED})
        row.entry_hash = (hashlib.sha256(body).hexdigest() if forged_with == "sha256"
                          else hmac.new(b"k" * 32, body, hashlib.sha256).hexdigest())
        previous = row.entry_hash
        set_columns(entry_id, prev_hash=row.prev_hash, entry_hash=row.entry_hash)
    result = verify_audit()
    assert [(p.kind, p.entry_id) for p in result.problems] == [("changed", i) for i in ids[1:]]


def test_a_removed_middle_entry_is_flagged_where_it_was(ctx, tenant_id):
    ids = write_entries(tenant_id, 5)
    db.session.execute(delete(AuditLogEntry).where(AuditLogEntry.id == ids[2]))
    db.session.commit()
    result = verify_audit(tenant_id)
    assert problems(result) == [("removed", ids[3], 4)]
    assert "3" in result.problems[0].message


def test_a_removed_middle_entry_with_the_rest_renumbered_is_flagged(ctx, tenant_id):
    ids = write_entries(tenant_id, 4)
    db.session.execute(delete(AuditLogEntry).where(AuditLogEntry.id == ids[1]))
    db.session.commit()
    set_columns(ids[2], seq=2)
    set_columns(ids[3], seq=3)
    kinds = {(p.kind, p.entry_id) for p in verify_audit().problems}
    assert ("removed", ids[2]) in kinds and ("changed", ids[2]) in kinds and ("changed", ids[3]) in kinds


def test_removing_the_last_entries_is_caught_by_an_anchor(ctx, tenant_id):
    ids = write_entries(tenant_id, 4)
    anchor = audit.latest_anchor(tenant_id)
    assert anchor.anchor == f"4:{entry(ids[3]).entry_hash}" and anchor.entries == 4
    assert verify_audit(tenant_id, anchors=[Anchor.parse(anchor.anchor)]).ok
    db.session.execute(delete(AuditLogEntry).where(AuditLogEntry.id.in_(ids[2:])))
    db.session.commit()
    assert verify_audit(tenant_id).ok  # a shorter chain is a valid chain: that is what anchors are for
    result = verify_audit(tenant_id, anchors=[Anchor.parse(anchor.anchor)])
    assert problems(result) == [("removed", None, 4)]
    assert "2" in result.problems[0].message  # where the chain now ends


def test_a_rewritten_tail_does_not_match_the_anchor(ctx, tenant_id):
    ids = write_entries(tenant_id, 3)
    anchor = Anchor.parse(audit.latest_anchor(tenant_id).anchor)
    db.session.execute(delete(AuditLogEntry).where(AuditLogEntry.id == ids[2]))
    db.session.commit()
    write_entries(tenant_id, 1, prefix="rewritten")  # seq 3 again, a different entry
    result = verify_audit(tenant_id, anchors=[anchor])
    assert [p.kind for p in result.problems] == ["changed"] and result.problems[0].seq == 3


def test_swapped_content_is_flagged_at_both_entries(ctx, tenant_id):
    ids = write_entries(tenant_id, 4)
    a, b = entry(ids[1]), entry(ids[2])
    first = {"action": a.action, "target_id": a.target_id, "details": a.details}
    second = {"action": b.action, "target_id": b.target_id, "details": b.details}
    set_columns(ids[1], **second)
    set_columns(ids[2], **first)
    assert problems(verify_audit()) == [("changed", ids[1], 2), ("changed", ids[2], 3)]


def test_swapped_places_are_flagged_as_reordered(ctx, tenant_id):
    ids = write_entries(tenant_id, 4)
    set_columns(ids[1], seq=-2)  # (chain, seq) is unique: swap through a free number
    set_columns(ids[2], seq=2)
    set_columns(ids[1], seq=3)
    kinds = {(p.kind, p.entry_id) for p in verify_audit().problems}
    assert ("reordered", ids[1]) in kinds and ("reordered", ids[2]) in kinds
    assert ("changed", ids[1]) in kinds and ("changed", ids[2]) in kinds  # seq is under the hash


def test_an_entry_moved_to_another_tenant_is_flagged(ctx, tenant_id):
    other = Tenant(name="Elsewhere")
    db.session.add(other)
    db.session.commit()
    ids = write_entries(tenant_id, 2)
    set_columns(ids[1], tenant_id=other.id)
    assert problems(verify_audit()) == [("changed", ids[1], 2)]


# ---- entries from before the keyed chain -------------------------------------------------------------------


def add_legacy_entries(tenant_id: int, n: int) -> list[int]:
    """Entries as the code before migration 7a1c0e5f2b06 wrote them: one SHA-256 chain, numbered by it."""
    previous, ids = audit.GENESIS_HASH, []
    for i in range(n):
        row = AuditLogEntry(tenant_id=tenant_id if i % 2 == 0 else None, action=f"legacy.{i}", target_type="",
                            target_id="", details={"i": i}, remote_addr="", created_at=utcnow(),
                            chain=LEGACY_CHAIN, seq=i + 1, hash_version=UNKEYED, prev_hash=previous)
        row.entry_hash = audit.entry_digest(row)
        previous = row.entry_hash
        db.session.add(row)
        db.session.flush()
        ids.append(row.id)
    db.session.commit()
    return ids


def test_entries_from_before_the_switch_still_verify(ctx, tenant_id):
    legacy = add_legacy_entries(tenant_id, 3)
    keyed = write_entries(tenant_id, 2)
    assert entry(keyed[0]).seq == 1
    assert entry(keyed[0]).prev_hash == audit.chain_start(tenant_id, audit.chain_key(), entry(legacy[-1]).entry_hash)
    result = verify_audit()
    assert result.ok and result.entries == 5, problems(result)
    assert verify_audit(tenant_id).ok
    set_columns(legacy[0], details={"i": "edited"})
    assert problems(verify_audit()) == [("changed", legacy[0], 1)]


def test_rebuilding_the_unkeyed_chain_breaks_the_start_of_the_keyed_ones(ctx, tenant_id):
    legacy = add_legacy_entries(tenant_id, 3)
    keyed = write_entries(tenant_id, 2)
    previous = audit.GENESIS_HASH
    for entry_id in legacy:  # rewrite entry 1 and recompute the whole unkeyed chain: it verifies on its own
        row = entry(entry_id)
        row.details = {"i": "rewritten"}
        row.prev_hash = previous
        row.entry_hash = audit.entry_digest(row)
        previous = row.entry_hash
        set_columns(entry_id, details=row.details, prev_hash=row.prev_hash, entry_hash=row.entry_hash)
    result = verify_audit(tenant_id)
    assert problems(result) == [("changed", keyed[0], 1)]


def test_an_unkeyed_entry_appended_after_the_switch_is_flagged(ctx, tenant_id):
    legacy = add_legacy_entries(tenant_id, 2)
    write_entries(tenant_id, 1)
    tail = entry(legacy[-1])
    forged = AuditLogEntry(tenant_id=tenant_id, action="auth.sign_in", target_type="", target_id="", details={},
                           remote_addr="", created_at=utcnow(), chain=LEGACY_CHAIN, seq=3, hash_version=UNKEYED,
                           prev_hash=tail.entry_hash)
    forged.entry_hash = audit.entry_digest(forged)
    db.session.add(forged)
    db.session.commit()
    assert [p.kind for p in verify_audit(tenant_id).problems] == ["changed"]


def test_the_migration_numbers_existing_entries_as_the_legacy_chain(tmp_path):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from backend import create_app
    from backend.config import TestConfig

    app = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/old.db"},
                     config_class=TestConfig)
    directory = app.extensions["migrate"].directory
    with app.app_context():
        upgrade(directory=directory, revision="7a1c0e5f2b05")
        previous = audit.GENESIS_HASH
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO tenant (id, name, created_at) VALUES (1, 'Old Co', '2026-01-01')"))
            for i in range(3):
                created = utcnow()
                row = AuditLogEntry(tenant_id=1, actor_user_id=None, action=f"old.{i}", target_type="",
                                    target_id="", details={}, remote_addr="", created_at=created,
                                    prev_hash=previous)
                digest = audit.entry_digest(row)
                conn.execute(text("INSERT INTO audit_log_entry (tenant_id, action, target_type, target_id, details, "
                                  "remote_addr, created_at, prev_hash, entry_hash) VALUES (1, :a, '', '', '{}', '', "
                                  ":c, :p, :h)"), {"a": row.action, "c": created.replace(tzinfo=None), "p": previous,
                                                   "h": digest})
                previous = digest
        upgrade(directory=directory, revision="7a1c0e5f2b06")
        rows = db.session.execute(text("SELECT chain, seq, hash_version FROM audit_log_entry ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(LEGACY_CHAIN, 1, UNKEYED), (LEGACY_CHAIN, 2, UNKEYED),
                                             (LEGACY_CHAIN, 3, UNKEYED)]
        assert verify_audit().ok
        record_audit("new.entry", tenant_id=1)
        db.session.commit()
        result = verify_audit(1)
        assert result.ok and result.entries == 4, problems(result)
        db.session.remove()
        downgrade(directory=directory, revision="7a1c0e5f2b05")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_log_entry")).scalar() == 4
        db.engine.dispose()


def test_anchor_parsing_refuses_malformed_values(ctx):
    good = Anchor.parse(" 12:" + "A" * 64)
    assert good == Anchor(12, "a" * 64)
    for bad in ("", "12", "x:" + "a" * 64, "12:" + "a" * 63, "12:" + "g" * 64, "-1:" + "a" * 64):
        with pytest.raises(Exception) as caught:
            Anchor.parse(bad)
        assert getattr(caught.value, "code", None) == "invalid_anchor"


# ---- veil audit ------------------------------------------------------------------------------------------


@pytest.fixture
def cli(app, monkeypatch):
    import backend.cli

    monkeypatch.setattr(backend.cli, "make_app", lambda: app)
    runner = CliRunner()

    def run(*args):
        return runner.invoke(backend.cli.main, ["audit", *args], catch_exceptions=False)

    return run


def test_cli_verify_exit_status_and_messages(app, cli, orgs):
    own, _other = orgs
    done = cli("verify")
    assert done.exit_code == 0, done.output
    assert re.search(r"audit trail intact: \d+ entries verified", done.output)
    assert "organisation Acme" in done.output and "organisation Bolt" in done.output
    with app.app_context():
        ids = list(db.session.scalars(select(AuditLogEntry.id).where(AuditLogEntry.chain == own.tenant_id)
                                      .order_by(AuditLogEntry.seq)))
        target = entry(ids[1])
        set_columns(target.id, details={"forged": True})
    done = cli("verify")
    assert done.exit_code == 1
    assert f"changed: organisation Acme, seq 2, entry {ids[1]}: " in done.output
    assert "audit trail NOT intact: 1 problem(s)" in done.output
    assert cli("verify", "--tenant", "Bolt").exit_code == 0
    assert cli("verify", "--tenant", "Acme").exit_code == 1
    missing = cli("verify", "--tenant", "Nobody")
    assert missing.exit_code == 2 and "no organisation named Nobody" in missing.output


def test_cli_anchor_then_verify_with_it(app, cli, orgs):
    own, _other = orgs
    printed = cli("anchor", "--tenant", "Acme")
    assert printed.exit_code == 0
    anchor = printed.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+:[0-9a-f]{64}", anchor)
    everyone = cli("anchor")
    assert f"organisation Acme: {anchor}" in everyone.output and "organisation Bolt: " in everyone.output
    assert cli("verify", "--tenant", "Acme", "--anchor", anchor).exit_code == 0
    assert cli("verify", "--anchor", anchor).exit_code == 2  # which chain? --tenant is needed
    assert cli("verify", "--tenant", "Acme", "--anchor", "nonsense").exit_code == 2
    with app.app_context():
        last = db.session.scalar(select(AuditLogEntry.id).where(AuditLogEntry.chain == own.tenant_id)
                                 .order_by(AuditLogEntry.seq.desc()).limit(1))
        db.session.execute(delete(AuditLogEntry).where(AuditLogEntry.id == last))
        db.session.commit()
    assert cli("verify", "--tenant", "Acme").exit_code == 0
    cut = cli("verify", "--tenant", "Acme", "--anchor", anchor)
    assert cut.exit_code == 1 and "removed: organisation Acme" in cut.output


# ---- what is logged ---------------------------------------------------------------------------------------


def test_sign_ins_land_in_the_right_chain(app, client, orgs):
    from backend.security.passwords import hash_password

    own, _other = orgs
    with app.app_context():
        db.session.get(User, own.users["admin"].id).password_hash = hash_password("a long password 1")
        db.session.commit()

    def login(email, password):
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
        return client.post("/login", data={"email": email, "password": password, "csrf_token": token}).status_code

    assert login(own.users["admin"].email, "wrong one!!") == 401
    assert login("ghost@nowhere.test", "wrong one!!") == 401
    assert login(own.users["admin"].email, "a long password 1") == 302
    with app.app_context():
        rows = db.session.execute(select(AuditLogEntry.action, AuditLogEntry.chain)
                                  .where(AuditLogEntry.action.like("auth.%")).order_by(AuditLogEntry.id)).all()
        assert [tuple(r) for r in rows] == [("auth.sign_in_failed", own.tenant_id),
                                            ("auth.sign_in_failed", INSTANCE_CHAIN),
                                            ("auth.sign_in", own.tenant_id)]
        assert verify_audit().ok


def test_record_views_appear_in_the_trail(app, client, orgs):
    from backend.security.passwords import hash_password
    from backend.services import grants

    own, _other = orgs
    with app.app_context():
        owner = db.session.get(User, own.users["owner"].id)
        owner.password_hash = hash_password("owner password 1")
        supervisor = db.session.get(User, own.users["supervisor"].id)
        grants.issue(owner, "owner password 1", supervisor, grants.PRIVATE, {"agent_ids": [own.agent.id]},
                     utcnow() - timedelta(minutes=1), utcnow() + timedelta(days=1))
        db.session.commit()
    sign_in(client, own.users["supervisor"])
    assert client.get(f"/records/conversations/{own.conversation_id}").status_code == 200
    assert client.get(f"/api/v1/conversations/{own.conversation_id}/records").status_code == 200
    assert client.get(f"/records?view=messages&agent_id={own.agent.id}").status_code == 200
    with app.app_context():
        rows = db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action.like("records.%"))
                                  .order_by(AuditLogEntry.id)).all()
        views = [r for r in rows if r.action == "records.view"]
        assert len(views) == 2  # one per request, not one per message
        assert {(r.actor_user_id, r.target_type, r.target_id) for r in views} == \
            {(own.users["supervisor"].id, "conversation", str(own.conversation_id))}
        assert any(r.action == "records.search" for r in rows)
        assert verify_audit(own.tenant_id).ok


# ---- the Audit page and API ---------------------------------------------------------------------------------


def test_audit_page_shows_own_tenant_only_and_refuses_supervisors(app, client, orgs):
    own, other = orgs
    with app.app_context():
        record_audit("secret.of_bolt", tenant_id=other.tenant_id, details={"x": "bolt-only"})
        record_audit("visible.acme", tenant_id=own.tenant_id, details={"x": "<b>acme</b>"})
        db.session.commit()
    sign_in(client, own.users["supervisor"])
    assert client.get("/audit").status_code == 403
    assert client.get("/api/v1/audit").status_code == 403
    sign_in(client, own.users["admin"])
    page = client.get("/audit").get_data(as_text=True)
    assert "visible.acme" in page and "secret.of_bolt" not in page and "bolt-only" not in page
    assert "&lt;b&gt;acme&lt;/b&gt;" in page and "<b>acme</b>" not in page
    with app.app_context():
        anchor = audit.latest_anchor(own.tenant_id).anchor
    assert anchor in page and 'href="/audit"' in page  # the anchor, and the nav item
    data = client.get("/api/v1/audit").get_json()
    assert {e["action"] for e in data["entries"]} >= {"visible.acme", "tenant.create"}
    assert "secret.of_bolt" not in {e["action"] for e in data["entries"]} and data["anchor"] == anchor


def test_audit_filters_and_paging(app, client, orgs):
    own, _other = orgs
    with app.app_context():
        admin = db.session.get(User, own.users["admin"].id)
        for i in range(3):
            record_audit("grant.issue", actor=admin, target_type="grant", target_id=i)
        record_audit("rules.save", actor=admin, target_type="rule_set", target_id=7)
        old = record_audit("auth.sign_in", actor=admin)
        old.created_at = utcnow() - timedelta(days=40)  # (only here: the hash no longer matches)
        db.session.commit()
    sign_in(client, own.users["owner"])

    def actions(**params):
        response = client.get("/api/v1/audit", query_string=params)
        assert response.status_code == 200, response.get_json()
        return [e["action"] for e in response.get_json()["entries"]]

    assert actions(action="grant.") == ["grant.issue"] * 3
    assert actions(action="grant", target="grant:1") == ["grant.issue"]
    assert actions(target="rule_set") == ["rules.save"]
    assert set(actions(actor=own.users["admin"].id)) == {"grant.issue", "rules.save", "auth.sign_in"}
    since = (utcnow() - timedelta(days=1)).date().isoformat()
    assert "auth.sign_in" not in actions(actor=own.users["admin"].id, **{"from": since})
    assert actions(action="%") == []  # a prefix, not a pattern
    first = client.get("/api/v1/audit", query_string={"action": "grant.", "limit": 2}).get_json()
    assert len(first["entries"]) == 2 and first["next_before"] == first["entries"][-1]["id"]
    rest = client.get("/api/v1/audit", query_string={"action": "grant.", "limit": 2,
                                                      "before": first["next_before"]}).get_json()
    assert len(rest["entries"]) == 1 and rest["next_before"] is None
    assert rest["entries"][0]["id"] < first["entries"][-1]["id"]
    for bad in ({"actor": "x"}, {"from": "yesterday"}, {"limit": "0"}, {"action": "a" * 65}):
        response = client.get("/api/v1/audit", query_string=bad)
        assert response.status_code == 400 and response.get_json()["error"]
    assert client.get("/audit", query_string={"from": "soon"}).status_code == 400
    page = client.get("/audit", query_string={"action": "grant.", "actor": own.users["admin"].id})
    assert page.status_code == 200 and "rules.save" not in page.get_data(as_text=True)


def test_verify_button_reports_intact_then_tampered(app, client, orgs):
    own, _other = orgs
    token = sign_in(client, own.users["owner"])
    page = client.post("/audit/verify", data={"csrf_token": token})
    assert page.status_code == 200 and "The trail is intact" in page.get_data(as_text=True)
    with app.app_context():
        run = db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == "audit.verify")).one()
        assert run.details["ok"] is True and run.tenant_id == own.tenant_id
        victim = db.session.scalar(select(AuditLogEntry.id).where(AuditLogEntry.chain == own.tenant_id,
                                                                   AuditLogEntry.seq == 2))
        set_columns(victim, action="nothing.happened")
    text = client.post("/audit/verify", data={"csrf_token": token}).get_data(as_text=True)
    assert "NOT intact" in text and f"(id {victim})" in text
    bad = client.post("/audit/verify", data={"csrf_token": token, "anchor": "not an anchor"})
    assert bad.status_code == 400 and "SEQ:HASH" in bad.get_data(as_text=True)
