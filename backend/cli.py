"""The `veil` command line. `veil --help` lists every command."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager

import click
from flask_migrate import upgrade

from backend.app import create_app
from backend.errors import ApiError
from backend.extensions import db, socketio

log = logging.getLogger(__name__)


def make_app():
    return create_app()


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def find_user(email: str):
    from sqlalchemy import select

    from backend.models import User
    from backend.services.users import normalise_email

    user = db.session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        fail(f"no user with e-mail {email}")
    return user


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Veil: guard customer data in web chat consoles.

    The database is DATABASE_URL (default: SQLite in the instance folder, VEIL_INSTANCE_PATH or ./instance).
    """


@main.command()
def init() -> None:
    """Create the database and the master key, or migrate the database to the latest schema (safe to run again)."""
    from backend.security.master_key import MasterKeyError, create_master_key_file, load_master_key
    from backend.services.key_material import ensure_key_material

    app = make_app()
    made = create_master_key_file(app)
    try:
        load_master_key(app)
    except MasterKeyError as err:
        fail(str(err))
    if made:
        click.echo(f"master key created: {made} (back it up apart from the database: without it the customer "
                   "identifiers in the database cannot be read)")
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        try:
            ensure_key_material(app)  # the stored keys, and a check that this is the database's master key
        except MasterKeyError as err:
            fail(str(err))
    click.echo(f"database ready: {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}")


@main.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1 or VEIL_HOST).")
@click.option("--port", type=int, default=None, help="Port (default 5000 or VEIL_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the panel, the API and Socket.IO."""
    from backend.security.master_key import MasterKeyError, load_master_key
    from backend.services.key_material import ensure_key_material

    app = make_app()
    try:
        load_master_key(app)  # refuse to start without a usable key, rather than fail on the first message
        with app.app_context():
            ensure_key_material(app)  # and with another database's key (a restore, another instance's file)
    except MasterKeyError as err:
        fail(str(err))
    host = host or app.config["VEIL_HOST"]
    port = port or app.config["VEIL_PORT"]
    click.echo(f"Veil panel: http://{host}:{port}/", err=True)
    socketio.start_background_task(watch_for_silence, app)
    socketio.start_background_task(deliver_webhooks, app)
    socketio.start_background_task(purge_on_schedule, app)
    socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True, use_reloader=False)


# How often `veil serve` looks for devices that stopped heartbeating.
SILENCE_CHECK_SECONDS = 60


def watch_for_silence(app) -> None:
    """`veil serve`'s minute loop: silent devices become `heartbeat_missing` behaviour events, and
    supervisors' replies past their time expire.

    Every server process runs one; the service claims each silence with a conditional update, so two
    processes record it once. A failed round is logged and the next one tries again.
    """
    from backend.models.base import utcnow
    from backend.services.devices import notice_silent_devices
    from backend.services.interventions import expire_all_due

    while True:
        socketio.sleep(SILENCE_CHECK_SECONDS)
        with app.app_context():
            try:
                notice_silent_devices(utcnow())
                expire_all_due(utcnow())  # supervisors' replies no device took in time
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("checking for silent devices failed")
            finally:
                db.session.remove()


# How often `veil serve` sends the webhook deliveries that are due.
WEBHOOK_CHECK_SECONDS = 5


def deliver_webhooks(app) -> None:
    """`veil serve`'s background loop: alerts to webhook endpoints, with retries (services/webhooks.py).

    Every server process runs one; each delivery is claimed with a conditional update before it is sent,
    so two processes never send it twice.
    """
    from backend.services.webhooks import deliver_due

    while True:
        socketio.sleep(WEBHOOK_CHECK_SECONDS)
        with app.app_context():
            try:
                deliver_due()
            except Exception:
                db.session.rollback()
                log.exception("delivering webhooks failed")
            finally:
                db.session.remove()


@main.group()
def user() -> None:
    """Manage users."""


@user.command("add")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["owner", "admin", "supervisor", "agent"]))
@click.option("--department", "departments", multiple=True, help="Department name; created if missing. Repeatable.")
@click.option("--tenant", "tenant_name", default=None, help="Organisation name (default: the only one).")
@click.option("--name", "display_name", default="")
@click.option("--password", default=None, help="Omit to be asked for it.")
def user_add(email, role, departments, tenant_name, display_name, password) -> None:
    """Add a user to an organisation (the organisation is created if it does not exist yet)."""
    from sqlalchemy import select

    from backend.models import Tenant
    from backend.services.tenants import create_department, create_tenant, department_named, find_tenant
    from backend.services.users import create_user

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    app = make_app()
    with app.app_context():
        try:
            if tenant_name:
                tenant = find_tenant(tenant_name) or create_tenant(tenant_name)
            else:
                tenants = db.session.scalars(select(Tenant)).all()
                if len(tenants) != 1:
                    fail("name the organisation with --tenant (there is not exactly one)")
                tenant = tenants[0]
            ids = [(department_named(tenant, d) or create_department(None, tenant, d)).id for d in departments]
            created = create_user(None, tenant=tenant, email=email, role=role, display_name=display_name,
                                  password=password, department_ids=ids)
            db.session.commit()
        except ApiError as err:
            fail(err.message)
        click.echo(f"user {created.email} ({created.role}) added to {tenant.name}")


@user.command("set-password")
@click.option("--email", required=True)
@click.option("--password", default=None, help="Omit to be asked for it.")
def user_set_password(email, password) -> None:
    """Set a user's password (for a forgotten demo login, or a locked-out owner)."""
    from backend.security.passwords import hash_password
    from backend.security.sessions import end_sessions_of
    from backend.security.throttle import clear_failures
    from backend.services import signing_keys
    from backend.services.audit import record_audit
    from backend.services.users import validate_password

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    app = make_app()
    with app.app_context():
        target = find_user(email)
        try:
            validate_password(password)
        except ApiError as err:
            fail(err.message)
        target.password_hash = hash_password(password)
        # The old password is not known here: an owner or admin gets a new signing key; grants signed
        # by the old one stay valid (its public key is kept).
        signing_keys.password_changed(target, password)
        end_sessions_of(target.id)
        clear_failures(target.email)  # the owner who was locked out may sign in at once
        record_audit("user.set_password_cli", tenant_id=target.tenant_id, target_type="user", target_id=target.id)
        db.session.commit()
        click.echo(f"password set for {target.email}")


@main.group()
def token() -> None:
    """Personal API tokens."""


@token.command("create")
@click.option("--email", required=True)
@click.option("--name", default="cli", help="What the token is for.")
def token_create(email, name) -> None:
    """Create an API token (shown once; send it as Authorization: Bearer)."""
    from backend.services.api_tokens import create_api_token

    app = make_app()
    with app.app_context():
        value = create_api_token(find_user(email), name)
        db.session.commit()
    click.echo("API token (shown once):", err=True)
    click.echo(value)


@token.command("revoke")
@click.option("--email", required=True)
def token_revoke(email) -> None:
    """Revoke every API token of a user."""
    from backend.services.api_tokens import revoke_api_tokens

    app = make_app()
    with app.app_context():
        count = revoke_api_tokens(None, find_user(email))
        db.session.commit()
    click.echo(f"revoked {count} token(s)")


@main.group()
def webhooks() -> None:
    """Alerts sent to webhook endpoints."""


@webhooks.command("deliver")
@click.option("--limit", type=click.IntRange(1, 10000), default=1000, show_default=True,
              help="At most this many deliveries in this pass.")
def webhooks_deliver(limit: int) -> None:
    """Send the webhook deliveries that are due, once (`veil serve` does this every 5 seconds)."""
    from backend.services.webhooks import deliver_due

    app = make_app()
    with app.app_context():
        summary = deliver_due(limit=limit)
    click.echo(summary.line())


@main.group()
def device() -> None:
    """Agents' browser devices."""


@device.command("code")
@click.option("--email", required=True, help="The agent's e-mail.")
def device_code(email) -> None:
    """Make a one-time enrolment code for an agent's extension (also: `veil device enroll-code`)."""
    make_enrolment_code(email)


@device.command("enroll-code")
@click.option("--email", required=True, help="The agent's e-mail.")
def device_enroll_code(email) -> None:
    """Make a one-time enrolment code for an agent's extension."""
    make_enrolment_code(email)


def make_enrolment_code(email: str) -> None:
    from backend.services.devices import create_enrolment_code

    app = make_app()
    with app.app_context():
        try:
            _device, code = create_enrolment_code(None, find_user(email), app.config["ENROLMENT_CODE_TTL_SECONDS"])
        except ApiError as err:
            fail(err.message)
        db.session.commit()
    hours = app.config["ENROLMENT_CODE_TTL_SECONDS"] // 3600
    click.echo(f"Enrolment code (single use, valid {hours} hours):", err=True)
    click.echo(code)


@device.command("check-silent")
def device_check_silent() -> None:
    """Report devices silent for 10 minutes or more (`veil serve` does this every minute)."""
    from backend.models import Device
    from backend.models.base import utcnow
    from backend.services.devices import SILENCE_THRESHOLD, notice_silent_devices

    app = make_app()
    with app.app_context():
        recorded = notice_silent_devices(utcnow())
        db.session.commit()
        for event in recorded:
            device = db.session.get(Device, event.device_id)
            click.echo(f"device {device.id} ({device.label or 'no label'}) of {device.agent.email}: "
                       f"silent for {event.details['minutes']} minutes, since {event.details['last_seen_at']}")
    minutes = int(SILENCE_THRESHOLD.total_seconds() // 60)
    click.echo(f"recorded {len(recorded)} heartbeat_missing event(s) (silent for {minutes} minutes or more)")


@main.group()
def audit() -> None:
    """The audit trail: verify its chains, print an anchor."""


def audit_tenant_id(tenant_name: str | None) -> int | None:
    from backend.services.tenants import find_tenant

    if not tenant_name:
        return None
    tenant = find_tenant(tenant_name)
    if tenant is None:
        fail(f"no organisation named {tenant_name}")
    return tenant.id


def chain_label(chain: int) -> str:
    from backend.models import Tenant
    from backend.models.audit import INSTANCE_CHAIN, LEGACY_CHAIN

    if chain == LEGACY_CHAIN:
        return "before keys (unkeyed)"
    if chain == INSTANCE_CHAIN:
        return "no organisation"
    tenant = db.session.get(Tenant, chain)
    return f"organisation {tenant.name if tenant else chain}"


@audit.command("verify")
@click.option("--tenant", "tenant_name", default=None, help="Only this organisation's chain (default: every chain).")
@click.option("--anchor", "anchors", multiple=True, metavar="SEQ:HASH",
              help="An anchor printed earlier by `veil audit anchor` (needs --tenant); the chain must still "
                   "hold it. Repeatable.")
def audit_verify(tenant_name, anchors) -> None:
    """Check that no entry was changed, removed or reordered. Exit status 1 if any was."""
    from backend.services.audit import Anchor, chains_to_verify, count_entries, verify_audit
    from backend.services.grant_state import compare_with_audit

    app = make_app()
    with app.app_context():
        tenant_id = audit_tenant_id(tenant_name)
        if anchors and tenant_id is None:
            fail("--anchor needs --tenant: an anchor belongs to one organisation's chain")
        try:
            parsed = [Anchor.parse(a) for a in anchors]
        except ApiError as err:
            fail(err.message)
        total = count_entries(chains_to_verify(tenant_id))
        with click.progressbar(length=total, label="verifying", file=sys.stderr) as bar:
            result = verify_audit(tenant_id, anchors=parsed, progress=bar.update)
        for problem in result.problems:
            click.echo(f"{problem.kind}: {chain_label(problem.chain)}, seq {problem.seq}, "
                       f"entry {problem.entry_id}: {problem.message}")
        if result.problem_count > len(result.problems):
            click.echo(f"... and {result.problem_count - len(result.problems)} more")
        # The trail also says what grants' rows must show: a row put back to an earlier copy (un-revoked,
        # fewer uses) with its grant_use rows deleted passes the check at use time, not this one.
        disagreements = compare_with_audit(tenant_id)
        for found in disagreements:
            click.echo(f"grant_rolled_back: grant {found.grant_id}: {found.message}")
        if not result.ok or disagreements:
            click.echo(f"audit trail NOT intact: {result.problem_count} problem(s) in {result.entries} entries"
                       + (f", {len(disagreements)} grant(s) behind the trail" if disagreements else ""))
            sys.exit(1)
        chains = ", ".join(f"{chain_label(c.chain)}: {c.entries}" for c in result.chains if c.entries)
        click.echo(f"audit trail intact: {result.entries} entries verified ({chains or 'no entries'})"
                   + (f", {len(parsed)} anchor(s) found" if parsed else ""))


@audit.command("anchor")
@click.option("--tenant", "tenant_name", default=None, help="This organisation's chain (default: every one).")
def audit_anchor(tenant_name) -> None:
    """Print each chain's latest SEQ:HASH, to keep somewhere else and check later with verify --anchor."""
    from sqlalchemy import select

    from backend.models import Tenant
    from backend.services.audit import latest_anchor

    app = make_app()
    with app.app_context():
        tenant_id = audit_tenant_id(tenant_name)
        ids = [tenant_id] if tenant_id is not None else list(db.session.scalars(select(Tenant.id).order_by(Tenant.id)))
        for chain in ids:
            summary = latest_anchor(chain)
            if tenant_id is not None:  # one chain: the anchor alone on stdout, for scripts
                click.echo(f"{chain_label(chain)}, {summary.entries} entries:", err=True)
                click.echo(summary.anchor or "no entries yet")
            else:
                click.echo(f"{chain_label(chain)}: {summary.anchor or 'no entries yet'}")


RULES_OPTION = click.option("--rules", "rules_dir", type=click.Path(file_okay=False, path_type=str),
                            default=None, help="A rules folder (default: shared_rules/default).")
ENGINE_OPTION = click.option("--engine", type=click.Choice(["python", "js"]), default="python",
                             help="Which engine answers (js runs the extension's engine under node).")


def load_engine_payload(rules_dir: str | None) -> dict:
    from backend.engine import RulesError, compile_rules, load_rules_folder
    from backend.engine.rules import SHARED_RULES

    try:
        return compile_rules(load_rules_folder(rules_dir or SHARED_RULES / "default"))
    except RulesError as err:
        fail(str(err))
        raise AssertionError from err  # fail() exits


def run_engine(mode: str, rules_dir: str | None, engine_name: str) -> None:
    from backend.engine import Engine
    from backend.engine.jsonl import read_lines, run

    payload = load_engine_payload(rules_dir)
    if engine_name == "js":
        sys.exit(run_js_engine(mode, payload))
    engine = Engine(payload)
    ok = True
    out = sys.stdout
    for answer, line_ok in run(engine, read_lines(sys.stdin.buffer), mode):
        ok = ok and line_ok
        out.write(json.dumps(answer, ensure_ascii=False) + "\n")
    out.flush()
    sys.exit(0 if ok else 1)


def run_js_engine(mode: str, payload: dict) -> int:
    """Pipes stdin through extension/engine/cli.mjs with the same compiled payload."""
    import subprocess
    import tempfile
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "extension" / "engine" / "cli.mjs"
    if not script.exists():
        fail(f"the JavaScript engine is not there: {script}")
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8", delete=False) as fh:
        json.dump(payload, fh, ensure_ascii=False)
    try:
        return subprocess.run(["node", str(script), mode, fh.name], stdin=sys.stdin, check=False).returncode
    finally:
        Path(fh.name).unlink(missing_ok=True)


@main.command()
@RULES_OPTION
@ENGINE_OPTION
def check(rules_dir, engine) -> None:
    """Check messages: JSON Lines {"id","text","conversation","direction"} on stdin, one verdict per line."""
    run_engine("check", rules_dir, engine)


@main.command()
@RULES_OPTION
@ENGINE_OPTION
def mask(rules_dir, engine) -> None:
    """Mask customer identifiers: JSON Lines {"id","text"} on stdin, {"id","text","spans"} out."""
    run_engine("mask", rules_dir, engine)


@main.group()
def rules() -> None:
    """Rules folders and their compiled payload."""


@rules.command("compile")
@RULES_OPTION
@click.option("--out", type=click.Path(dir_okay=False, path_type=str), default="-", help="File (default: stdout).")
def rules_compile(rules_dir, out) -> None:
    """Compile a rules folder into the payload both engines load."""
    from backend.engine.rules import payload_json

    text = payload_json(load_engine_payload(rules_dir))
    if out == "-":
        click.echo(text)
    else:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)


@main.group()
def keys() -> None:
    """Encryption keys: data keys, the master key, and protecting text stored before encryption at rest."""


@contextmanager
def keyed_app_context():
    """An app context whose master key opens this database's stored keys; else the reason, and exit 2."""
    from backend.security.master_key import MasterKeyError
    from backend.services.key_material import ensure_key_material

    app = make_app()
    with app.app_context():
        try:
            ensure_key_material(app)
        except MasterKeyError as err:
            fail(str(err))
        yield app


@keys.command("rotate")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=500, show_default=True,
              help="Identifiers re-encrypted per transaction.")
def keys_rotate(batch_size: int) -> None:
    """Move every customer identifier to a new data key and retire the old keys (safe while the server
    runs; a stopped run resumes where it was)."""
    from backend.services.key_rotation import rotate_all, total_identifiers

    with keyed_app_context():
        with click.progressbar(length=total_identifiers(), label="re-encrypting", file=sys.stderr) as bar:
            rotations = rotate_all(batch_size=batch_size, progress=bar.update)
    for r in rotations:
        click.echo(f"tenant {r.tenant_id}: {r.moved} identifier(s) now under data key {r.new_key_id}; "
                   f"retired key(s): {', '.join(map(str, r.retired_key_ids)) or 'none'}")
    if not rotations:
        click.echo("no data keys yet: nothing to rotate")


KEY_FILE = click.Path(dir_okay=False, path_type=str)


@keys.command("rotate-master")
@click.option("--new-key-file", type=KEY_FILE, default=None,
              help="The new master key (base64, mode 0600); made there if FILE does not exist. Required with "
                   "VEIL_MASTER_KEY; otherwise a new key is made and written to instance/master.key.")
@click.option("--previous-key-file", type=KEY_FILE, default=None,
              help="The old master key, to finish an interrupted rotation when VEIL_MASTER_KEY already holds the "
                   "new one (default: instance/master.key.previous, if present).")
def keys_rotate_master(new_key_file: str | None, previous_key_file: str | None) -> None:
    """Move everything the master key protects (the stored keys and every data key) to a new master key.

    STOP THE SERVER FIRST (every `veil serve`): a server still holding the old key refuses to make data keys
    or load keys afterwards and must be restarted with the new one. Without VEIL_MASTER_KEY the new key
    replaces instance/master.key and the old one is kept as instance/master.key.previous (keep a copy of it
    as long as you keep backups made with it). An interrupted run finishes when run again. Identifiers,
    searches, customer refs, the audit trail and grants stay valid: their keys do not change, only how they
    are wrapped."""
    from backend.security.master_key import MasterKeyError, fingerprint
    from backend.services.master_rotation import RotationError, plan_rotation, remaining, rotate_master

    app = make_app()
    with app.app_context():
        try:
            plan = plan_rotation(app, new_key_file=new_key_file, previous_key_file=previous_key_file)
            target = fingerprint(plan.new)
            if plan.wrote_files:
                click.echo(f"new master key written to {app.instance_path}/master.key (previous: master.key.previous)")
            click.echo(("finishing the rotation" if plan.resuming else "rotating") + f" to master key {target[:12]}…")
            with click.progressbar(length=max(remaining(target), 1), label="re-wrapping", file=sys.stderr) as bar:
                result = rotate_master(app, plan.new, plan.olds, progress=bar.update)
        except (MasterKeyError, RotationError) as err:
            fail(str(err))
    click.echo(f"{result.key_material} stored key row(s) and {result.data_keys} data key(s) now under master key "
               f"{result.fingerprint[:12]}…" if result.moved else "everything is under that master key already")
    for line in plan.afterwards:
        click.echo(f"next: {line}")


@keys.command("protect-existing")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=200, show_default=True,
              help="Rows per transaction.")
@click.option("--restart", is_flag=True, help="Go through every row again, not only those past where the last "
                                              "run got to (after a change of rules).")
def keys_protect_existing(batch_size: int, restart: bool) -> None:
    """Protect customer identifiers stored before encryption at rest: in messages (and their console ids),
    their edits and deletions, behaviour events and supervisors' replies (safe while the server runs; a
    stopped run goes on where it was; running it again changes nothing)."""
    from backend.services.protect_existing import pending, protect_existing

    with keyed_app_context():
        total = sum(pending(restart=restart).values())
        db.session.rollback()
        with ProgressBar("protecting") as bar:
            done = 0

            def advance(n: int) -> None:
                nonlocal done
                done += n
                bar(done, max(total, done))

            report = protect_existing(batch_size=batch_size, restart=restart, progress=advance)
    for name, count in report.tables.items():
        click.echo(f"{name}: {count.scanned} row(s) read, {count.changed} protected")


@main.command()
def demo() -> None:
    """Create the demo organisation "Demo Co" (once), printing the owner's login."""
    from backend.security.identifiers import identifier_key
    from backend.services.demo import DEMO_OWNER_EMAIL, create_demo

    app = make_app()
    with app.app_context():
        login = create_demo(identifier_key())
        db.session.commit()
    if login is None:
        click.echo(f"Demo Co exists already. Owner: {DEMO_OWNER_EMAIL} "
                   f"(forgot the password? veil user set-password --email {DEMO_OWNER_EMAIL})")
        return
    click.echo("Demo Co created. Sign in as the owner (the password is shown only now):")
    click.echo(f"  e-mail:   {login.email}")
    click.echo(f"  password: {login.password}")



@main.command("build-extension")
@click.option("--server", "server_url", required=True, help="The Veil server the extension talks to (https://…).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder for the unpacked extension; a .zip of it is written beside it.")
def build_extension(server_url: str, out_dir: str) -> None:
    """Build the extension preconfigured for a server: an unpacked folder and a zip to hand out."""
    import os
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = Path(out_dir).resolve()
    if out.exists() and any(out.iterdir()) and not (out / "manifest.json").exists():
        fail(f"{out} is not empty and holds no extension: choose an empty or new folder")
    if not (root / "node_modules" / "esbuild").exists():
        fail("the npm packages are not installed: run `npm ci` (or `make install`) in the repository first")
    env = {**os.environ, "VEIL_SERVER_URL": server_url, "VEIL_EXTENSION_OUT": str(out),
           "VEIL_CLI": str(Path(sys.executable).with_name("veil"))}
    click.echo(f"Building the extension for {server_url} ...", err=True)
    done = subprocess.run(["node", str(root / "extension" / "build.mjs")], cwd=root, env=env, check=False,
                          capture_output=True, text=True)
    if done.returncode != 0:
        fail((done.stderr or done.stdout).strip().splitlines()[-1] if (done.stderr or done.stdout) else "build failed")
    archive = shutil.make_archive(str(out), "zip", root_dir=out)
    click.echo(f"Unpacked: {out}")
    click.echo(f"Zip:      {archive}")


@main.command()
@click.option("--server", "server_url", required=True, help="The Veil server (http://127.0.0.1:5000).")
@click.option("--agents", type=click.IntRange(1, 5000), default=10, show_default=True,
              help="Simulated agents, one browser each.")
@click.option("--rate", type=click.FloatRange(0.001, 1000), default=1.0, show_default=True,
              help="Events per second per agent.")
@click.option("--duration", type=click.FloatRange(0.1, 86400), default=10.0, show_default=True,
              help="Seconds of streaming (then what is unanswered is resent for up to 60 s).")
@click.option("--token", envvar="VEIL_API_TOKEN", default=None,
              help="An owner's or admin's API token (or VEIL_API_TOKEN). Omitted: a temporary token is made "
                   "in this instance's database, which must be the server's.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed for the simulated conversations.")
@click.option("--keep-devices", is_flag=True, help="Leave the simulated devices enrolled afterwards.")
def simulate(server_url, agents, rate, duration, token, seed, keep_devices) -> None:
    """Simulated agents' browsers that speak the extension's protocol to a server, then a count of what was
    sent, acknowledged and stored. Exit status 1 when an acknowledged event is not stored."""
    from backend.simulation import Simulation, SimulationError

    made_token = None
    if token is None:
        made_token = token = local_api_token()
    progress = (lambda line: click.echo(f"\r{line:<70}", nl=False, err=True)) if sys.stderr.isatty() \
        else (lambda line: click.echo(line, err=True))
    sim = Simulation(server_url, token, agents, rate, duration, seed=seed, progress=progress,
                     keep_devices=keep_devices)
    try:
        sim.setup()
        report = sim.run()
    except SimulationError as err:
        fail(str(err))
    finally:
        sim.close()
        if made_token:
            revoke_local_api_token(made_token)
    click.echo("", err=True)
    for line in report.lines():
        click.echo(line)
    sys.exit(0 if report.complete else 1)


def local_api_token() -> str:
    """A short-lived API token of this instance's first owner (or admin), for `veil simulate`."""
    from sqlalchemy import select

    from backend.models import Role, User
    from backend.services.api_tokens import create_api_token

    app = make_app()
    with app.app_context():
        user = db.session.scalar(select(User).where(User.role.in_([Role.OWNER, Role.ADMIN]), User.is_active)
                                 .order_by(User.role.desc(), User.id))
        if user is None:
            fail("no owner or admin in this instance's database: pass --token")
        token = create_api_token(user, name="veil simulate")
        db.session.commit()
    return token


def revoke_local_api_token(token: str) -> None:
    from sqlalchemy import update

    from backend.models import ApiToken
    from backend.models.base import utcnow
    from backend.security.secrets import hash_token

    app = make_app()
    with app.app_context():
        db.session.execute(update(ApiToken).where(ApiToken.token_hash == hash_token(token)).values(revoked_at=utcnow()))
        db.session.commit()


# ---- retention, backup and restore ---------------------------------------------------------------------

# How often `veil serve` purges what the organisations' retention limits say has expired.
RETENTION_PURGE_SECONDS = 3600


def purge_on_schedule(app) -> None:
    """`veil serve`'s hourly retention purge (services/retention.py).

    Every server process runs one; a row that two processes both pick is deleted once (the second DELETE
    finds nothing). A failed round is logged and the next one tries again.
    """
    from backend.services.retention import purge

    # The first round a minute after start: a server restarted more often than hourly still purges.
    delay = SILENCE_CHECK_SECONDS
    while True:
        socketio.sleep(delay)
        delay = RETENTION_PURGE_SECONDS
        with app.app_context():
            try:
                report = purge()
                if any(t.total for t in report.tenants.values()):
                    log.info("retention purge: %s", report.line())
            except Exception:
                db.session.rollback()
                log.exception("retention purge failed")
            finally:
                db.session.remove()


class ProgressBar:
    """A click progress bar on stderr for services that report (done, total) and learn the total late."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=max(total, 1), label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(max(0, done - self.bar.pos))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


@main.group()
def retention() -> None:
    """Retention: delete messages and behaviour events older than each organisation's limits."""


@retention.command("purge")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=500, show_default=True,
              help="Rows per transaction.")
def retention_purge(dry_run: bool, batch_size: int) -> None:
    """Delete what has expired now (`veil serve` does this every hour); legal holds are respected."""
    from backend.models.base import utcnow
    from backend.services.retention import count_expired, purge

    app = make_app()
    with app.app_context():
        now = utcnow()
        planned = count_expired(now)
        db.session.rollback()
        if dry_run:
            for tenant_id, counts in planned.tenants.items():
                click.echo(f"organisation {tenant_id}: {counts.counts()}")
            click.echo(planned.line())
            return
        total = sum(t.total for t in planned.tenants.values())
        with ProgressBar("purging") as bar:
            bar(0, total)
            done = 0

            def advance(n: int) -> None:
                nonlocal done
                done += n
                bar(done, max(total, done))

            report = purge(now, batch_size=batch_size, progress=advance, audit_when_empty=True)
    click.echo(report.line())


def read_passphrase(path: str | None) -> bytes | None:
    """The passphrase in a file (its first line, without the line break), or None."""
    if path is None:
        return None
    with open(path, "rb") as fh:
        value = fh.read().split(b"\n", 1)[0].rstrip(b"\r")
    if not value:
        fail(f"{path} holds no passphrase")
    return value


PASSPHRASE_OPTION = click.option(
    "--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=str), default=None,
    help="Encrypt with the passphrase in this file (scrypt) instead of the instance's master key, so the "
         "backup can be restored on another machine.")


@main.command()
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="The backup file to write (must not exist).")
@PASSPHRASE_OPTION
def backup(out_path: str, passphrase_file: str | None) -> None:
    """Write a consistent, encrypted backup of the whole database (safe while the server runs)."""
    from backend.services.backup import BackupError, write_backup

    passphrase = read_passphrase(passphrase_file)
    app = make_app()
    with app.app_context():
        try:
            with ProgressBar("backing up") as bar:
                summary = write_backup(app, out_path, passphrase=passphrase, progress=bar)
        except BackupError as err:
            fail(str(err))
    click.echo(f"backup written: {summary.path} ({summary.rows} rows in {len(summary.tables)} tables, "
               f"{summary.db_kind}, schema {summary.schema_revision}, key: {summary.kdf})")
    click.echo(f"sha256: {summary.sha256}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=str))
@PASSPHRASE_OPTION
@click.option("--force", is_flag=True, help="Replace everything in a database that is not empty.")
def restore(file: str, passphrase_file: str | None, force: bool) -> None:
    """Restore a backup into an empty database (DATABASE_URL; SQLite or PostgreSQL). Stop the server first."""
    from backend.services.backup import BackupError, restore_backup

    passphrase = read_passphrase(passphrase_file)
    app = make_app()
    with app.app_context():
        try:
            with ProgressBar("restoring") as bar:
                summary = restore_backup(app, file, passphrase=passphrase, force=force, progress=bar)
        except BackupError as err:
            fail(str(err))
    click.echo(f"restored {summary.rows} rows in {len(summary.tables)} tables from a {summary.source_kind} "
               f"backup of {summary.created_at} into {summary.db_kind}")


if __name__ == "__main__":
    main()
