"""`veil simulate`: simulated agents' browsers that speak the extension's real protocol to a Veil server.

Each simulated device is enrolled over HTTP like the extension (an enrolment code made with an admin's API
token, then `POST /api/v1/devices/enrol`), connects to `/agent` with its device token, and streams event
protocol v1 batches: customers' messages carrying phone numbers and e-mails, agents' replies (some with
sensitive words or contact details), edits, deletions and behaviour reports. Like the extension's outbox it
sends one batch at a time, keeps every event until the server has answered for it, resends what was not
answered, and waits out `rate_limited`. At the end it asks the server how much of each device's stream it
stored (`GET /api/v1/devices/<id>`) and compares that with what it sent and what was acknowledged.

Tests and benchmarks use `Simulation` directly; `on_sent` lets a benchmark time an event from the moment
it leaves the device.
"""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import socketio

DEPARTMENT = "Simulation"
EMAIL_DOMAIN = "simulate.veil.example.com"
BATCH_MAX = 100  # the protocol's limit per batch
ACK_TIMEOUT = 15.0

CUSTOMER_LINES = [
    "你好，我想问一下这个产品还有货吗？",
    "我的电话是 138 {n4} {n4b}，方便的话打给我",
    "Hi, is the blue one still available? Call me on +65 9{n3} {n4}",
    "my email is {name}@example.com, please send the invoice",
    "订单号 2026{n4}{n4b} 什么时候发货",
    "价格能便宜一点吗",
    "收到了，谢谢！",
    "WhatsApp me at +91 98{n3}{n3b} {n4}",
]
AGENT_LINES = [
    "您好，有货的，今天下单明天发货。",
    "Sure, I will check the stock for you.",
    "订单已经发出，快递单号 SF{n4}{n4b}{n3}",
    "这款现在活动价 299 元",
    "Thanks for waiting! Anything else I can help with?",
]
# Replies that the server's own check must catch: contact details and private-deal words.
AGENT_RISKY_LINES = [
    "加我微信 vx{n4}a 私下聊，更便宜",
    "私下交易可以打折，转账到我卡上",
    "call me directly 139 {n4} {n4b}, pay me directly",
]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(n3=f"{rng.randrange(1000):03d}", n3b=f"{rng.randrange(1000):03d}",
                           n4=f"{rng.randrange(10000):04d}", n4b=f"{rng.randrange(10000):04d}",
                           name=f"buyer{rng.randrange(100000)}")


class SimulationError(Exception):
    """Setting up the simulation failed (the server refused the token, could not enrol…)."""


@dataclass
class Totals:
    sent: int = 0  # distinct events handed to the connection at least once
    resent: int = 0  # sends of an event that had been sent before (no answer, dropped link)
    acked: int = 0
    errors: Counter = field(default_factory=Counter)  # per error code, events the server refused
    batch_refusals: Counter = field(default_factory=Counter)  # whole batches refused (rate_limited…)
    ack_seconds: list = field(default_factory=list)  # per batch, send to acknowledgement
    by_type: Counter = field(default_factory=Counter)

    def add(self, other: Totals) -> None:
        self.sent += other.sent
        self.resent += other.resent
        self.acked += other.acked
        self.errors.update(other.errors)
        self.batch_refusals.update(other.batch_refusals)
        self.ack_seconds.extend(other.ack_seconds)
        self.by_type.update(other.by_type)


class Api:
    """The few HTTP calls the simulation makes, with an API token or a device token."""

    def __init__(self, server: str, token: str):
        self.server = server.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            try:
                detail = json.loads(err.read()).get("error", {}).get("message", "")
            except ValueError:
                detail = ""
            raise SimulationError(f"{method} {path}: HTTP {err.code} {detail}".strip()) from None
        except urllib.error.URLError as err:
            raise SimulationError(f"cannot reach {self.server}: {err.reason}") from None


class SimulatedDevice:
    """One agent's browser: a connection to /agent and an outbox of events not yet answered for."""

    def __init__(self, server: str, index: int, agent: dict, device_id: int, token: str, rng: random.Random,
                 on_sent: Callable[[dict, float], None] | None = None):
        self.server = server
        self.index = index
        self.agent = agent
        self.device_id = device_id
        self.token = token
        self.rng = rng
        self.on_sent = on_sent
        self.totals = Totals()
        self.outbox: list[dict] = []  # in order; an event leaves when acked or refused
        self.sent_ids: set[str] = set()
        self.messages: list[tuple[dict, str]] = []  # (conversation, message_id) of outgoing messages, for edits
        self.chats = [{"key": f"sim-{index}-{n}", "customer": f"+86 1{rng.randrange(30, 90)}{rng.randrange(10**8):08d}"}
                      for n in range(5)]
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=True, reconnection_delay=1, reconnection_delay_max=10,
                                      logger=False, engineio_logger=False)

    def connect(self) -> None:
        self.client.connect(self.server, namespaces=["/agent"], auth={"token": self.token},
                            transports=["websocket"], wait_timeout=30)

    def close(self) -> None:
        try:
            self.client.disconnect()
        except Exception:  # noqa: BLE001 - closing a link that already dropped is fine
            pass

    # -- making events -------------------------------------------------------------------------------

    def _base(self, kind: str) -> dict:
        return {"id": uuid.uuid4().hex, "type": kind, "at": int(time.time() * 1000), "console": "whatsapp",
                "account": f"Simulated sales {self.index}"}

    def make_event(self) -> dict:
        roll = self.rng.random()
        chat = self.rng.choice(self.chats)
        if roll < 0.03 and self.messages:
            # Each message is changed at most once, so every change is new to the server and stored.
            conversation, message_id = self.messages.pop(self.rng.randrange(len(self.messages)))
            event = self._base("message_deleted" if self.rng.random() < 0.5 else "message_edited")
            event.update(conversation=conversation, message_id=message_id)
            if event["type"] == "message_edited":
                event["text"] = _fill(self.rng.choice(AGENT_LINES), self.rng) + "（已修改）"
            return event
        if roll < 0.05:
            event = self._base("behaviour")
            event.update(kind="send_blocked", conversation=chat, text=_fill(AGENT_RISKY_LINES[0], self.rng),
                         rule="contact:wechat")
            return event
        event = self._base("message")
        incoming = roll < 0.5
        if incoming:
            text = _fill(self.rng.choice(CUSTOMER_LINES), self.rng)
        else:
            lines = AGENT_RISKY_LINES if self.rng.random() < 0.08 else AGENT_LINES
            text = _fill(self.rng.choice(lines), self.rng)
        event.update(conversation=chat, message_id=f"m-{event['id']}", direction="in" if incoming else "out",
                     text=text)
        if not incoming:
            self.messages.append((chat, event["message_id"]))
            del self.messages[:-50]
        return event

    def queue(self, count: int) -> None:
        with self.lock:
            for _ in range(count):
                event = self.make_event()
                self.outbox.append(event)
                self.totals.by_type[event["type"]] += 1

    # -- sending -------------------------------------------------------------------------------------

    def send_once(self) -> float:
        """Send the oldest batch and process the answer; returns seconds to wait before the next send."""
        with self.lock:
            batch = self.outbox[:BATCH_MAX]
        if not batch:
            return 0.05
        if not self.client.connected:
            return 0.5
        now = time.monotonic()
        for event in batch:
            if event["id"] in self.sent_ids:
                self.totals.resent += 1
            else:
                self.sent_ids.add(event["id"])
                self.totals.sent += 1
            if self.on_sent:
                self.on_sent(event, time.time())
        try:
            answer = self.client.call("events", {"v": 1, "events": batch}, namespace="/agent", timeout=ACK_TIMEOUT)
        except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError,
                socketio.exceptions.ConnectionError):
            return 1.0  # the same batch goes again, like the extension's outbox
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = (answer or {}).get("error", {}) if isinstance(answer, dict) else {}
            code = error.get("code", "no_answer")
            self.totals.batch_refusals[code] += 1
            retry_after = (error.get("details") or {}).get("retry_after")
            return float(retry_after) if isinstance(retry_after, int | float) else 1.0
        self.totals.ack_seconds.append(time.monotonic() - now)
        done = set(answer.get("acked") or [])
        self.totals.acked += len(done)
        for item in answer.get("errors") or []:
            self.totals.errors[item.get("error", "unknown")] += 1
            if item.get("id"):
                done.add(item["id"])
        with self.lock:
            self.outbox = [e for e in self.outbox if e["id"] not in done]
        return 0.0

    def pending(self) -> int:
        with self.lock:
            return len(self.outbox)


@dataclass
class Report:
    agents: int
    duration: float
    totals: Totals
    stored: dict
    elapsed: float

    def lines(self) -> list[str]:
        t = self.totals
        acks = sorted(t.ack_seconds)

        def pct(p: float) -> str:
            return f"{acks[min(len(acks) - 1, int(p * len(acks)))] * 1000:.1f} ms" if acks else "-"

        rate = t.acked / self.elapsed if self.elapsed else 0.0
        stored = self.stored.get("events", 0)
        lines = [
            f"agents: {self.agents}, ran {self.elapsed:.1f} s",
            f"sent: {t.sent} events ({', '.join(f'{k} {v}' for k, v in sorted(t.by_type.items()))}),"
            f" {t.resent} sent again",
            f"acknowledged: {t.acked} ({rate:.0f} events/s), refused: {sum(t.errors.values())}"
            + (f" {dict(t.errors)}" if t.errors else ""),
            f"batch acknowledgement: p50 {pct(0.5)}, p99 {pct(0.99)}"
            + (f"; batches refused: {dict(t.batch_refusals)}" if t.batch_refusals else ""),
            f"stored: {stored} events ({self.stored.get('messages', 0)} messages,"
            f" {self.stored.get('revisions', 0)} revisions, {self.stored.get('behaviour_events', 0)} behaviour"
            f" events, including the server's own rule hits)",
        ]
        if self.complete:
            lines.append("check: OK, every event sent was acknowledged and stored once")
        else:
            lines.append(f"check: FAILED, sent {t.sent}, acknowledged {t.acked}, stored {stored}")
        return lines

    @property
    def complete(self) -> bool:
        return self.totals.sent == self.totals.acked == self.stored.get("events", 0)


class Simulation:
    def __init__(self, server: str, token: str, agents: int, rate: float, duration: float, *, seed: int = 1,
                 on_sent: Callable[[dict, float], None] | None = None, progress: Callable[[str], None] | None = None,
                 keep_devices: bool = False):
        if agents < 1 or rate <= 0 or duration <= 0:
            raise SimulationError("agents, rate and duration must be positive")
        self.api = Api(server, token)
        self.server = self.api.server
        self.agents = agents
        self.rate = rate
        self.duration = duration
        self.rng = random.Random(seed)
        self.on_sent = on_sent
        self.progress = progress or (lambda _line: None)
        self.keep_devices = keep_devices
        self.devices: list[SimulatedDevice] = []
        self.stop = threading.Event()

    # -- setting up ----------------------------------------------------------------------------------

    def _department_id(self) -> int:
        departments = self.api.call("GET", "/api/v1/departments")["departments"]
        found = next((d["id"] for d in departments if d["name"] == DEPARTMENT), None)
        if found is not None:
            return found
        return self.api.call("POST", "/api/v1/departments", {"name": DEPARTMENT})["department"]["id"]

    def _agents(self) -> list[dict]:
        me = self.api.call("GET", "/api/v1/me")
        if (me.get("user") or me).get("role") not in ("owner", "admin"):
            raise SimulationError("the API token must belong to an owner or an admin")
        department_id = self._department_id()
        existing = {u["email"]: u for u in self.api.call("GET", "/api/v1/users")["users"]}
        agents = []
        for n in range(1, self.agents + 1):
            email = f"sim-agent-{n:04d}@{EMAIL_DOMAIN}"
            user = existing.get(email) or self.api.call("POST", "/api/v1/users", {
                "email": email, "role": "agent", "display_name": f"Simulated agent {n}",
                "department_ids": [department_id]})["user"]
            agents.append(user)
        return agents

    def _enrol(self, index: int, agent: dict) -> SimulatedDevice:
        code = self.api.call("POST", "/api/v1/devices/enrolment-codes", {"agent_id": agent["id"]})["code"]
        enrolled = self.api.call("POST", "/api/v1/devices/enrol",
                                 {"code": code, "label": f"veil simulate #{index + 1}",
                                  "user_agent": "veil-simulate"})
        device = SimulatedDevice(self.server, index, agent, enrolled["device"]["id"], enrolled["token"],
                                 random.Random(self.rng.random()), self.on_sent)
        device.connect()
        return device

    def setup(self) -> None:
        agents = self._agents()
        self.progress(f"enrolling and connecting {len(agents)} devices ...")
        with ThreadPoolExecutor(max_workers=min(16, len(agents))) as pool:
            self.devices = list(pool.map(lambda pair: self._enrol(*pair), enumerate(agents)))

    # -- running -------------------------------------------------------------------------------------

    def _run_device(self, device: SimulatedDevice, deadline: float) -> None:
        interval = 1.0 / self.rate
        next_event = time.monotonic() + device.rng.random() * interval
        wait = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now < deadline and now >= next_event:
                due = int((now - next_event) / interval) + 1
                device.queue(due)
                next_event += due * interval
            elif now >= deadline and device.pending() == 0:
                return
            if wait > 0:
                self.stop.wait(min(wait, max(0.01, next_event - now) if now < deadline else wait))
            wait = device.send_once()
            if wait == 0.05 and now < deadline:
                self.stop.wait(max(0.0, min(next_event - time.monotonic(), 0.25)))
                wait = 0.0

    def run(self) -> Report:
        started = time.monotonic()
        deadline = started + self.duration
        drain_limit = deadline + 60  # time to resend what was not answered before giving up
        threads = [threading.Thread(target=self._run_device, args=(d, deadline), daemon=True) for d in self.devices]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            time.sleep(1.0)
            totals = self.totals()
            self.progress(f"{time.monotonic() - started:5.0f} s  sent {totals.sent}  acked {totals.acked}"
                          f"  waiting {sum(d.pending() for d in self.devices)}")
            if time.monotonic() > drain_limit:
                self.stop.set()
        for thread in threads:
            thread.join(timeout=5)
        elapsed = time.monotonic() - started
        return Report(self.agents, self.duration, self.totals(), self.stored(), elapsed)

    def totals(self) -> Totals:
        totals = Totals()
        for device in self.devices:
            totals.add(device.totals)
        return totals

    def stored(self) -> dict:
        stored: Counter = Counter()
        with ThreadPoolExecutor(max_workers=min(16, len(self.devices) or 1)) as pool:
            for answer in pool.map(lambda d: self.api.call("GET", f"/api/v1/devices/{d.device_id}"), self.devices):
                stored.update(answer.get("stored", {}))
        return dict(stored)

    def close(self) -> None:
        """Disconnects every device and revokes it (unless kept), many at a time: a Socket.IO client takes
        a few seconds to say goodbye, and a thousand of them one after another took most of an hour."""
        self.stop.set()

        def close_one(device: SimulatedDevice) -> None:
            device.close()
            if not self.keep_devices:
                try:
                    self.api.call("POST", f"/api/v1/devices/{device.device_id}/revoke", {})
                except SimulationError:
                    pass

        if self.devices:
            with ThreadPoolExecutor(max_workers=min(64, len(self.devices))) as pool:
                list(pool.map(close_one, self.devices))
