"""Webhooks: alerts POSTed as signed JSON to the tenant's endpoints, retried with backoff.

Each delivery is claimed before it is sent, with a conditional UPDATE that moves its `next_attempt_at`
past the send's time limit and counts the attempt: of two workers (two `veil serve` processes, or one and
`veil webhooks deliver`) exactly one wins, and a worker that dies mid-send leaves a delivery that is
tried again once the claim runs out. The claim is committed before sending, so this module commits: it is
a worker, called by the CLI and `veil serve`'s loop, not by views.

The body is signed with the endpoint's secret: `X-Veil-Signature: sha256=<hex HMAC-SHA256 of the raw
body>`; `X-Veil-Timestamp` (Unix seconds) repeats the body's `sent_at` and `X-Veil-Delivery` its
`delivery` (docs/protocol.md, "Webhooks", shows how to check them). The secret is stored sealed
(`backend.security.sealed`), bound to its tenant, endpoint and URL: one that does not open (copied from
another row, or the URL changed in the database) fails the delivery for good instead of signing for
whoever wrote the database.

Addresses: only http and https, no credentials in the URL, no redirects followed, 5 s to answer, and,
unless VEIL_WEBHOOK_ALLOW_PRIVATE is set, no loopback, private, link-local or otherwise non-public address;
the name is resolved when sending and the connection goes to the address that was checked, so a name
that changes its answer between the check and the connection cannot reach an internal host.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import random
import secrets
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update

from backend.errors import ApiError
from backend.extensions import db
from backend.models import Tenant, User, WebhookDelivery, WebhookEndpoint
from backend.models.base import iso, utcnow
from backend.security import sealed
from backend.security.master_key import derive_key
from backend.services import alerts
from backend.services.audit import record_audit

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
# The wait after the nth failed attempt (the last one repeats); each is stretched or shrunk by up to
# JITTER, so endpoints that failed together do not all come back at the same second.
BACKOFF_SECONDS = (30, 120, 600, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
JITTER = 0.2
TIMEOUT_SECONDS = 5
# A claimed delivery is left alone this long: longer than a send can take (connect + answer).
CLAIM_SECONDS = 60
MAX_URL_LENGTH = 2000
# What is read of an endpoint's answer (it is not used, but reading lets the connection close cleanly).
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "Veil-Webhooks/1"
SECRET_PURPOSE = "webhook-secret"  # the master key's key that seals endpoint secrets
SECRET_REFUSED = ("the stored signing secret does not open (changed or copied in the database, or another "
                  "master key): nothing was sent; delete the webhook and add it again")


class DeliveryError(Exception):
    """A send that got no HTTP answer: refused address, DNS, connection, TLS, timeout."""


# ---- addresses -------------------------------------------------------------------------------------------

def _bad_url(message: str) -> ApiError:
    return ApiError(400, "invalid_url", message, field="url")


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses (an IP literal is its own)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_url(url: object, *, allow_private: bool) -> str:
    """An endpoint URL fit to be called, or 400 `invalid_url` saying why not."""
    if not isinstance(url, str) or not url.strip():
        raise _bad_url(_("Give the endpoint's address (https://…)."))
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise _bad_url(_("The address is longer than %(n)d characters.", n=MAX_URL_LENGTH))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _bad_url(_("That is not a valid address.")) from exc
    if parts.scheme not in ("http", "https"):
        raise _bad_url(_("Only http:// and https:// addresses can receive webhooks."))
    if not parts.hostname:
        raise _bad_url(_("That is not a valid address."))
    if parts.username is not None or parts.password is not None:
        raise _bad_url(_("Put no user name or password in the address; the signature authenticates Veil."))
    if not allow_private:
        try:
            addresses = resolve(parts.hostname, port or (443 if parts.scheme == "https" else 80))
        except (OSError, UnicodeError) as exc:
            raise _bad_url(_("The host name could not be resolved.")) from exc
        if not addresses or not all(is_public_address(a) for a in addresses):
            raise _bad_url(_("That address is on a private or local network; webhooks go to public addresses "
                             "only."))
    return url


# ---- the secret -------------------------------------------------------------------------------------------

def secret_binding(endpoint: WebhookEndpoint) -> dict:
    """Where a sealed secret belongs: its tenant, its row and the URL it signs for (migration 7a1c0e5f2b10
    seals existing secrets with the same fields)."""
    return {"tenant_id": endpoint.tenant_id, "endpoint_id": endpoint.id, "url": endpoint.url}


def seal_secret(endpoint: WebhookEndpoint, secret: str) -> None:
    """Store `secret` sealed; the endpoint must have its id (flushed) and its URL."""
    endpoint.sealed_secret = sealed.seal(derive_key(current_app, SECRET_PURPOSE), secret, secret_binding(endpoint))


def endpoint_secret(endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret, or sealed.SealError when the stored value does not belong here."""
    return sealed.unseal(derive_key(current_app, SECRET_PURPOSE), endpoint.sealed_secret, secret_binding(endpoint))


# ---- sending ---------------------------------------------------------------------------------------------

def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, delivery: str, at: datetime, event_type: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Veil-Signature": sign(secret, body),
        "X-Veil-Timestamp": str(int(at.timestamp())),
        "X-Veil-Delivery": delivery,
        "X-Veil-Event": event_type,
    }


def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool) -> int:
    """POSTs once and answers the HTTP status (redirects are not followed). DeliveryError without one."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    try:
        addresses = resolve(parts.hostname or "", port)
    except (OSError, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve {parts.hostname}: {exc}") from exc
    allowed = [a for a in addresses if allow_private or is_public_address(a)]
    if not allowed:
        raise DeliveryError(f"refused: {parts.hostname} resolves to a private or local address")
    if https:
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=TIMEOUT_SECONDS)
    address = allowed[0]
    # Connect to the address just checked, not to a second lookup's answer; TLS still checks the name.
    connection._create_connection = (  # type: ignore[attr-defined]
        lambda _addr, timeout=TIMEOUT_SECONDS, source_address=None:
        socket.create_connection((address, port), timeout, source_address))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        answer.read(MAX_ANSWER_BYTES)
        return answer.status
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from exc
    finally:
        connection.close()


Sender = Callable[..., int]


# ---- bodies ----------------------------------------------------------------------------------------------

def public_url(path: str) -> str:
    """A panel link for people reading the alert elsewhere: absolute when VEIL_PUBLIC_URL is set."""
    base = (current_app.config.get("VEIL_PUBLIC_URL") or "").rstrip("/")
    return base + path


def veil_body(alert, tenant: Tenant, agent: User, delivery: str, at: datetime, *, test: bool = False) -> dict:
    return {
        "id": alert.id, "delivery": delivery, "type": alert.type, "severity": alert.severity,
        "tenant": {"id": tenant.id, "name": tenant.name},
        "agent": {"id": agent.id, "name": agent.display_name},
        "summary": alert.summary, "conversation_id": alert.conversation_id, "event_id": alert.behaviour_event_id,
        "occurred_at": iso(alert.occurred_at), "sent_at": iso(at), "test": test,
        "links": {"report": public_url(alerts.report_path(alert.behaviour_event_id)), "alerts": public_url("/alerts")},
    }


def chat_text(endpoint: WebhookEndpoint, body: dict, facts: dict) -> str:
    """One line for a chat bot, in the endpoint's language; starts with "[Veil]" (a DingTalk keyword)."""
    with force_locale(endpoint.locale or "en"):
        label = _("Test") if body["test"] else alerts.type_label(body["type"])
        summary = alerts.render_summary(facts)
        text = f"[Veil] {alerts.severity_label(body['severity'])} · {label} · {body['agent']['name']}"
    return text + (f": {summary}" if summary else "") + f"\n{body['links']['report']}"


def encode(endpoint: WebhookEndpoint, body: dict, facts: dict) -> bytes:
    """The exact bytes that are signed and sent."""
    if endpoint.format == "slack":
        body = {"text": chat_text(endpoint, body, facts)}
    elif endpoint.format in ("wecom", "dingtalk"):
        body = {"msgtype": "text", "text": {"content": chat_text(endpoint, body, facts)}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


# ---- the worker ------------------------------------------------------------------------------------------

@dataclass
class PassSummary:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    claimed_elsewhere: int = 0

    def line(self) -> str:
        return (f"delivered {self.delivered}, to retry {self.retrying}, failed for good {self.failed}, "
                f"left to another worker {self.claimed_elsewhere}")


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """The wait after `attempts` failed attempts."""
    base = BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1]
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return timedelta(seconds=base * factor)


def due(now: datetime, limit: int) -> list[int]:
    return list(db.session.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)))


def claim(delivery_id: int, now: datetime) -> bool:
    """Takes one due delivery for this worker, counting the attempt. Exactly one of several racing
    workers gets True: the UPDATE's condition no longer holds for the others once it commits."""
    return bool(db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
               WebhookDelivery.next_attempt_at <= now)
        .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS), attempts=WebhookDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount)


def attempt(delivery: WebhookDelivery, now: datetime, send: Sender, allow_private: bool,
            rng: random.Random | None = None) -> str:
    """Sends a claimed delivery once and records the outcome: "delivered", "retrying" or "failed"."""
    endpoint, alert = delivery.endpoint, delivery.alert
    status: int | None = None
    final = not endpoint.enabled  # no later attempt can succeed
    if not endpoint.enabled:
        error = "endpoint disabled"
    else:
        try:
            secret = endpoint_secret(endpoint)
        except sealed.SealError:
            log.warning("webhook %s: the stored secret does not open; delivery %s failed", endpoint.id, delivery.id)
            secret, error, final = None, SECRET_REFUSED, True
        if secret is not None:
            body = veil_body(alert, db.session.get(Tenant, alert.tenant_id), alert.agent, str(delivery.id), now)
            raw = encode(endpoint, body, alert.facts or {})
            try:
                status = send(endpoint.url, raw, signed_headers(secret, raw, str(delivery.id), now, alert.type),
                              allow_private=allow_private)
                error = "" if 200 <= status < 300 else f"HTTP {status}"
            except DeliveryError as exc:
                error = str(exc)[:300]
    delivery.last_status_code = status
    delivery.last_error = error
    if not error:
        delivery.status, delivery.delivered_at = "delivered", now
        return "delivered"
    if delivery.attempts >= MAX_ATTEMPTS or final:
        delivery.status = "failed"
        return "failed"
    delivery.next_attempt_at = now + retry_delay(delivery.attempts, rng)
    return "retrying"


def deliver_due(now: datetime | None = None, *, limit: int = 100, send: Sender = post,
                rng: random.Random | None = None) -> PassSummary:
    """One pass over the deliveries due at `now`: claim, commit, send, record, commit, one by one."""
    now = now or utcnow()
    allow_private = alerts.allow_private_addresses()
    summary = PassSummary()
    for delivery_id in due(now, limit):
        db.session.rollback()  # end the read, so the claim is this worker's own short transaction
        if not claim(delivery_id, now):
            db.session.rollback()
            summary.claimed_elsewhere += 1
            continue
        db.session.commit()
        delivery = db.session.get(WebhookDelivery, delivery_id)
        try:
            outcome = attempt(delivery, now, send, allow_private, rng)
        except Exception:
            # A bug, not the endpoint: the claim runs out and the delivery is tried again later.
            db.session.rollback()
            log.exception("webhook delivery %s failed", delivery_id)
            continue
        db.session.commit()
        if outcome == "delivered":
            summary.delivered += 1
        elif outcome == "retrying":
            summary.retrying += 1
        else:
            summary.failed += 1
    return summary


def send_test(actor: User, endpoint: WebhookEndpoint, send: Sender = post) -> tuple[bool, str]:
    """A made-up alert to the endpoint, at once, signed like the real ones; answers (ok, what happened)."""
    now = utcnow()
    delivery = f"test-{secrets.token_hex(8)}"
    sample = SimpleNamespace(id=0, type="server_rule_hit", severity="info", summary="This is a test from Veil.",
                             conversation_id=None, behaviour_event_id=0, occurred_at=now)
    body = veil_body(sample, actor.tenant, actor, delivery, now, test=True)
    raw = encode(endpoint, body, {})
    try:
        secret = endpoint_secret(endpoint)
        status = send(endpoint.url, raw, signed_headers(secret, raw, delivery, now, "test"),
                      allow_private=alerts.allow_private_addresses())
        ok, outcome = 200 <= status < 300, f"HTTP {status}"
    except sealed.SealError:
        ok, outcome = False, _("The webhook's stored signing secret does not open: it was changed in the "
                               "database. Nothing was sent; delete the webhook and add it again.")
    except DeliveryError as exc:
        ok, outcome = False, str(exc)[:300]
    record_audit("webhook.test", actor=actor, target_type="webhook", target_id=endpoint.id,
                 details={"url": endpoint.url, "outcome": outcome})
    return ok, outcome

