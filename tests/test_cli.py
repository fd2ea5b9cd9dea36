"""The `veil` command line, run as a user would run it, against a fresh instance folder."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys

import pytest

ENV_KEYS = ("DATABASE_URL", "VEIL_SOCKETIO_QUEUE", "VEIL_SECRET_KEY")


@pytest.fixture
def veil(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["VEIL_INSTANCE_PATH"] = str(tmp_path / "instance")

    def run(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "backend.cli", *args], env=env, capture_output=True,
                              text=True, input=stdin, timeout=120)
        if check:
            assert done.returncode == 0, done.stderr
        return done

    run.instance = tmp_path / "instance"
    return run


def test_help_lists_every_command(veil):
    out = veil("--help").stdout
    for command in ("init", "serve", "user", "token", "device", "demo", "build-extension"):
        assert f"  {command}" in out


def test_init_is_repeatable_and_keeps_a_private_secret(veil):
    veil("init")
    key_file = veil.instance / "secret_key"
    first = key_file.read_text()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    veil("init")  # migrating an up-to-date database changes nothing
    assert key_file.read_text() == first
    import sqlite3

    with sqlite3.connect(veil.instance / "veil.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1


def test_demo_prints_a_working_owner_login_once(veil):
    veil("init")
    out = veil("demo").stdout
    password = next(line.split(":", 1)[1].strip() for line in out.splitlines() if "password:" in line)
    assert "owner@demo.veil" in out
    again = veil("demo").stdout
    assert "exists already" in again and password not in again

    from backend import create_app
    from backend.extensions import db
    from backend.models import Conversation, User
    from backend.security.passwords import verify_password

    app = create_app({"INSTANCE_PATH": str(veil.instance),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{veil.instance}/veil.db"})
    with app.app_context():
        owner = db.session.query(User).filter_by(email="owner@demo.veil").one()
        assert verify_password(owner.password_hash, password)
        assert {u.role for u in db.session.query(User)} == {"owner", "supervisor", "agent"}
        assert db.session.query(Conversation).count() >= 3
        # customer identifiers are never stored as given
        refs = [c.customer_ref for c in db.session.query(Conversation)]
        # (a keyed SHA-256 in hex: nothing of the number survives; a "138" inside random hex proves nothing)
        assert all(re.fullmatch(r"[0-9a-f]{64}", ref) for ref in refs)


def test_user_token_and_device_code_work_together(veil):
    veil("init")
    veil("user", "add", "--email", "Boss@Acme.test", "--role", "owner", "--tenant", "Acme",
         "--password", "long enough password")
    veil("user", "add", "--email", "a1@acme.test", "--role", "agent", "--department", "Sales",
         "--password", "long enough password")  # one tenant: no --tenant needed
    refused = veil("user", "add", "--email", "a1@acme.test", "--role", "agent", "--password", "x" * 12, check=False)
    assert refused.returncode == 2 and "already exists" in refused.stderr
    token = veil("token", "create", "--email", "boss@acme.test").stdout.strip().splitlines()[-1]
    code = veil("device", "code", "--email", "a1@acme.test").stdout.strip().splitlines()[-1]
    assert len(code) == 9 and code[4] == "-"
    not_agent = veil("device", "code", "--email", "boss@acme.test", check=False)
    assert not_agent.returncode == 2

    from backend import create_app

    app = create_app({"INSTANCE_PATH": str(veil.instance),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{veil.instance}/veil.db"})
    client = app.test_client()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert veil("token", "revoke", "--email", "a1@acme.test").stdout.strip() == "revoked 0 token(s)"
    assert me["user"]["email"] == "boss@acme.test" and me["user"]["role"] == "owner"
    enrolled = client.post("/api/v1/devices/enrol", json={"code": code, "label": "Chrome"})
    assert enrolled.status_code == 201
    assert enrolled.get_json()["agent"]["email"] == "a1@acme.test"
    users = client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"}).get_json()["users"]
    agent = next(u for u in users if u["email"] == "a1@acme.test")
    assert [d["name"] for d in agent["departments"]] == ["Sales"]
    assert veil("token", "revoke", "--email", "boss@acme.test").stdout.strip() == "revoked 1 token(s)"
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_set_password(veil):
    veil("init")
    veil("demo")
    veil("user", "set-password", "--email", "owner@demo.veil", "--password", "a brand new password")
    short = veil("user", "set-password", "--email", "owner@demo.veil", "--password", "short", check=False)
    assert short.returncode == 2 and "at least" in short.stderr
    unknown = veil("user", "set-password", "--email", "ghost@demo.veil", "--password", "x" * 12, check=False)
    assert unknown.returncode == 2 and "no user" in unknown.stderr


def test_build_extension_for_a_server(veil, tmp_path):
    import json
    import zipfile

    out = tmp_path / "veil-extension"
    done = veil("build-extension", "--server", "https://veil.example.com/", "--out", str(out))
    assert json.loads((out / "config.json").read_text())["serverUrl"] == "https://veil.example.com"
    assert (out / "content" / "veil.js").stat().st_size > 10_000, "the bundled content script"
    payload = json.loads((out / "rules" / "default.json").read_text(encoding="utf-8"))
    assert {c["id"] for c in payload["consoles"]} >= {"whatsapp", "telegram_k", "telegram_a", "messenger"}
    with zipfile.ZipFile(tmp_path / "veil-extension.zip") as archive:
        names = set(archive.namelist())
    assert {"manifest.json", "config.json", "content/veil.js", "background/service_worker.js"} <= names
    assert "veil-extension.zip" in done.stdout

    insecure = veil("build-extension", "--server", "http://veil.example.com", "--out", str(tmp_path / "x"),
                    check=False)
    assert insecure.returncode != 0 and "http" in insecure.stderr.lower()
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    refused = veil("build-extension", "--server", "https://veil.example.com", "--out", str(tmp_path / "precious"),
                   check=False)
    assert refused.returncode != 0 and (tmp_path / "precious" / "notes.txt").exists()


def test_device_check_silent_reports_each_silence_once(veil):
    veil("init")
    veil("user", "add", "--email", "a1@acme.test", "--role", "agent", "--tenant", "Acme",
         "--password", "long enough password")
    code = veil("device", "code", "--email", "a1@acme.test").stdout.strip().splitlines()[-1]

    from datetime import timedelta

    from backend import create_app
    from backend.extensions import db
    from backend.models import BehaviourEvent, Device
    from backend.models.base import utcnow

    app = create_app({"INSTANCE_PATH": str(veil.instance),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{veil.instance}/veil.db"})
    device_id = app.test_client().post("/api/v1/devices/enrol", json={"code": code, "label": "desk"}
                                       ).get_json()["device"]["id"]
    assert veil("device", "check-silent").stdout.strip() == (
        "recorded 0 heartbeat_missing event(s) (silent for 10 minutes or more)")
    with app.app_context():
        db.session.get(Device, device_id).last_seen_at = utcnow() - timedelta(minutes=25)
        db.session.commit()
    out = veil("device", "check-silent").stdout
    assert f"device {device_id} (desk) of a1@acme.test: silent for 25 minutes" in out
    assert "recorded 1 heartbeat_missing event(s)" in out
    assert "recorded 0" in veil("device", "check-silent").stdout, "one report per silence"
    with app.app_context():
        [event] = db.session.query(BehaviourEvent).all()
        assert (event.type, event.device_id) == ("heartbeat_missing", device_id)
