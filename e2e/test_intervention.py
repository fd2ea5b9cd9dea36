"""A supervisor's reply, written through the panel's API, is typed and sent by the agent's extension in the
right chat of the WhatsApp test page, and logged as the supervisor's message.

The real extension in headless Chromium, enrolled for agent1 of the demo tenant, at https://web.whatsapp.com/
(console_host.py). The page's recorder (POST /e2e/sent) sees what the console really sent.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.request

from selenium.webdriver.common.by import By

from e2e.test_event_stream import enrol, wait_for
from e2e.test_extension_consoles import console_browser, console_host, open_console  # noqa: F401
from tests.live_server import running_server

SUPERVISOR = "supervisor@demo.veil"
FIRST_CHAT = "8613812345678@c.us"  # Li Wei, the chat the page opens with
SECOND_CHAT = "8613987654321@c.us"


def query(instance, sql: str, *args) -> list:
    with sqlite3.connect(f"file:{instance / 'veil.db'}?mode=ro", uri=True, timeout=10) as db:
        return list(db.execute(sql, args))


def conversation_of(instance, text: str) -> int | None:
    rows = query(instance, "SELECT conversation_id FROM message WHERE text = ?", text)
    return rows[0][0] if rows else None


def post_intervention(server, token: str, conversation_id: int, text: str) -> dict:
    request = urllib.request.Request(
        f"{server.url}/api/v1/live/conversations/{conversation_id}/interventions",
        data=json.dumps({"text": text}).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.load(response)["intervention"]


def sent_to(host, text: str) -> list[str]:
    """The chats the console sent `text` in, as its recorder saw them."""
    with host.lock:
        return [item["body"].get("conversation") for item in host.sent if item["body"].get("text") == text]


def test_a_supervisor_reply_is_sent_in_its_chat_and_logged_as_theirs(console_browser, console_host, tmp_path):  # noqa: F811
    from e2e.conftest import EXTENSION_ID

    driver = console_browser
    with running_server(tmp_path / "server") as server:
        enrol(driver, server, EXTENSION_ID)
        open_console(driver, "whatsapp")
        # both chats logged, so the server knows them; then back to the first one
        driver.execute_script("window.consoleSim.open(arguments[0])", SECOND_CHAT)
        driver.execute_script("window.consoleSim.open(arguments[0])", FIRST_CHAT)
        first = wait_for(lambda: conversation_of(server.instance, "Hello, is the blue jacket still in stock?"), 20,
                         "the first chat was not logged")
        second = wait_for(lambda: conversation_of(server.instance, "Of course, today."), 20,
                          "the second chat was not logged")
        assert first != second
        token = server.cli("token", "create", "--email", SUPERVISOR)
        supervisor_id = query(server.instance, "SELECT id FROM user_account WHERE email = ?", SUPERVISOR)[0][0]

        # 1. the open chat: typed into the composer and sent by the console itself. The ID-card number in it
        # (not a contact, so the extension lets it out) is stored as a token (backend/services/vault.py) and
        # goes to the console in clear.
        reply = "您好，我是主管，马上为您安排发货。有问题请报身份证 11010519491231002X。"
        row = post_intervention(server, token, first, reply)
        wait_for(lambda: sent_to(console_host, reply), 20, "the reply was not sent by the console")
        assert sent_to(console_host, reply) == [FIRST_CHAT]

        def logged(text):
            return query(server.instance, "SELECT m.conversation_id, m.direction, m.author_user_id, i.status "
                         "FROM message m JOIN intervention i ON i.message_id = m.id WHERE m.text LIKE ?",
                         text.split("有问题")[0] + "%")
        assert wait_for(lambda: logged(reply), 20, "the reply was not logged as the supervisor's") == [
            (first, "out", supervisor_id, "sent")]
        assert not query(server.instance, "SELECT id FROM message WHERE text LIKE '%19491231%' "
                         "UNION SELECT id FROM intervention WHERE text LIKE '%19491231%'")
        assert query(server.instance, "SELECT status, device_id IS NOT NULL, delivered_at IS NOT NULL "
                     "FROM intervention WHERE id = ?", row["id"]) == [("sent", 1, 1)]

        # 2. a chat that is not open: never typed into the open one; the agent is told; sent once opened
        later = "王女士您好，发票今天发出。"
        post_intervention(server, token, second, later)
        wait_for(lambda: driver.execute_script("return !!document.querySelector('veil-intervention')"), 20,
                 "the agent was not told a reply waits")
        assert sent_to(console_host, later) == []
        assert driver.execute_script("return window.consoleSim.draft") == ""
        driver.find_element(By.CSS_SELECTOR, f'[data-sim-open="{SECOND_CHAT}"]').click()
        wait_for(lambda: sent_to(console_host, later), 20, "the waiting reply was not sent once its chat opened")
        assert sent_to(console_host, later) == [SECOND_CHAT]
        assert wait_for(lambda: logged(later), 20, "the second reply was not logged") == [
            (second, "out", supervisor_id, "sent")]
        assert not driver.execute_script("return !!document.querySelector('veil-intervention')")
