"""With VEIL_SOCKETIO_QUEUE pointing at Redis, several server processes share their Socket.IO rooms.

Two real `veil serve` processes share one database and one Redis; an extension connected to the first
hears what the second process emits into its room.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request

import pytest
import socketio as socketio_client
from flask_socketio import SocketIO

from tests.live_server import running_server

REDIS_URL = os.environ.get("VEIL_TEST_REDIS_URL")

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="set VEIL_TEST_REDIS_URL to test the Redis message queue")


def enrol(server) -> tuple[str, int]:
    code = server.cli("device", "code", "--email", "agent1@demo.veil")
    request = urllib.request.Request(f"{server.url}/api/v1/devices/enrol", data=json.dumps({"code": code}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    return body["token"], body["agent"]["id"]


def test_two_processes_share_rooms_through_redis(tmp_path):
    queue = {"VEIL_SOCKETIO_QUEUE": REDIS_URL}
    with running_server(tmp_path / "a", queue) as first:
        with running_server(tmp_path / "b", queue, demo=False, instance=first.instance) as second:
            token, agent_id = enrol(second)  # enrolled through the second process, connected to the first
            heard = threading.Event()
            payloads = []
            client = socketio_client.Client(reconnection=False)

            @client.on("probe", namespace="/agent")
            def on_probe(data):
                payloads.append(data)
                heard.set()

            client.connect(first.url, namespaces=["/agent"], auth={"token": token}, transports=["websocket"],
                           wait_timeout=10)
            try:
                ack = client.call("heartbeat", {"sent_at": "2026-11-23T00:00:00Z"}, namespace="/agent", timeout=10)
                assert ack["ok"] is True
                # what any other process does to reach a room: a write-only client of the same queue
                SocketIO(message_queue=REDIS_URL).emit("probe", {"n": 1}, namespace="/agent", to=f"agent:{agent_id}")
                assert heard.wait(10), "the emit did not arrive through Redis"
                assert payloads == [{"n": 1}]
            finally:
                client.disconnect()
