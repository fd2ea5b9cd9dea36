"""A supervisor's day on the panel, in headless Chromium against a real `veil serve` (issue 5's "done when").

Two agents feed it: a simulated one (backend/simulation.py, the extension's protocol without a browser)
and agent1's real extension on the WhatsApp test page (e2e/console_host.py). The supervisor signs in,
watches the simulated agent's conversation update live, intervenes in agent1's chat (the reply is typed
and sent by the extension in the console page), finds a message by a Chinese phrase, confirms the
server's rule hit in the behaviour reports, and reads the statistics. Another department's supervisor
and an agent are refused the same records.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from backend.simulation import Simulation
from e2e.test_event_stream import enrol, wait_for
from e2e.test_extension_consoles import console_browser, console_host, open_console  # noqa: F401
from e2e.test_intervention import conversation_of, query, sent_to
from tests.live_server import running_server

OWNER = "owner@demo.veil"
SUPERVISOR = "supervisor@demo.veil"
AGENT = "agent1@demo.veil"
PASSWORD = "journey-password-1"
RISKY = "可以私下交易，加我微信 wx_889900 更便宜"
# The handle is stored as a token (backend/services/vault.py) and shown masked everywhere.
RISKY_SHOWN = "可以私下交易，加我微信 ********* 更便宜"


def api(server, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(f"{server.url}/api/v1{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def sim_message(device, chat: dict, text: str, direction: str) -> None:
    """One message from the simulated agent's console, sent and acknowledged before returning."""
    event_id = uuid.uuid4().hex
    device.outbox.append({"id": event_id, "type": "message", "at": int(time.time() * 1000), "console": "whatsapp",
                          "account": "Simulated sales", "conversation": chat, "message_id": f"m-{event_id}",
                          "direction": direction, "text": text})
    while device.pending():
        device.send_once()


def sign_in(driver, server, email: str) -> None:
    driver.get(f"{server.url}/login")
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".whoami"))


def click_item(driver, list_id: str, text: str) -> None:
    """Clicks the button of the list item holding `text`; the list re-renders on pushes, so find and click
    in one step, and retry until it is there."""
    script = """
      const items = [...document.querySelectorAll(`#${arguments[0]} li`)];
      const item = items.find((li) => li.textContent.includes(arguments[1]));
      const button = item && item.querySelector('button');
      if (!button) return false;
      button.click();
      return true;"""
    WebDriverWait(driver, 15, poll_frequency=0.2).until(lambda d: d.execute_script(script, list_id, text))


def live_texts(driver) -> list[str]:
    return [p.text for p in driver.find_elements(By.CSS_SELECTOR, "#live-messages .live-text")]


def test_a_supervisor_watches_intervenes_searches_reviews_and_reads_statistics(
        console_browser, console_host, plain_browser, tmp_path):  # noqa: F811
    from e2e.conftest import EXTENSION_ID

    panel = plain_browser
    with running_server(tmp_path / "server") as server:
        # agent1's real extension on the WhatsApp test page
        enrol(console_browser, server, EXTENSION_ID)
        open_console(console_browser, "whatsapp")
        agent_chat = wait_for(lambda: conversation_of(server.instance, "Hello, is the blue jacket still in stock?"),
                              20, "agent1's chat was not logged")

        # a simulated agent; the supervisor also supervises the simulation's department
        owner_token = server.cli("token", "create", "--email", OWNER)
        sim = Simulation(server.url, owner_token, agents=1, rate=1, duration=1, seed=5)
        try:
            sim.setup()
            device = sim.devices[0]
            chat = {"key": "journey-chat", "customer": "+86 139 1234 0000"}
            sim_message(device, chat, "你好，请问这件外套有黑色吗？", "in")
            users = {u["email"]: u for u in api(server, "GET", "/users", owner_token)[1]["users"]}
            supervisor = users[SUPERVISOR]
            departments = [d["id"] for d in supervisor["departments"]]
            departments.append(users[device.agent["email"]]["departments"][0]["id"])
            assert api(server, "PATCH", f"/users/{supervisor['id']}", owner_token,
                       {"department_ids": departments})[0] == 200
            server.cli("user", "set-password", "--email", SUPERVISOR, "--password", PASSWORD)
            # reading records needs a private key: the owner signs one for the simulation's department
            server.cli("user", "set-password", "--email", OWNER, "--password", PASSWORD)
            now = datetime.now(UTC)
            assert api(server, "POST", "/grants", owner_token, {
                "grantee_id": supervisor["id"], "kind": "private", "scope": {"department_ids": departments[-1:]},
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(), "password": PASSWORD})[0] == 201

            # 1. Live: the simulated agent's conversation updates without a reload
            sign_in(panel, server, SUPERVISOR)
            panel.get(f"{server.url}/live")
            click_item(panel, "live-agents", device.agent["display_name"])
            sim_conversation = query(server.instance, "SELECT conversation_id FROM message WHERE text = ?",
                                     "你好，请问这件外套有黑色吗？")[0][0]
            pseudonym = query(server.instance, "SELECT customer_pseudonym FROM conversation WHERE id = ?",
                              sim_conversation)[0][0]
            click_item(panel, "live-conversations", pseudonym)
            wait_for(lambda: "你好，请问这件外套有黑色吗？" in live_texts(panel), 15, "the conversation did not load")
            time.sleep(0.5)  # the page's watch_conversation has reached the server
            sim_message(device, chat, RISKY, "out")
            wait_for(lambda: RISKY_SHOWN in live_texts(panel), 15, "the new message did not appear live")
            assert not query(server.instance, "SELECT id FROM message WHERE text LIKE ?", "%wx_889900%")
            assert panel.current_url.endswith("/live")  # no reload

            # 2. Intervene in agent1's chat: the extension types and sends it in the console page
            agent_pseudonym = query(server.instance, "SELECT customer_pseudonym FROM conversation WHERE id = ?",
                                    agent_chat)[0][0]
            agent1 = users[AGENT]
            click_item(panel, "live-agents", agent1["display_name"])
            click_item(panel, "live-conversations", agent_pseudonym)
            reply = "您好，我是主管，今天为您加急发货。"
            box = WebDriverWait(panel, 10).until(lambda d: d.find_element(By.ID, "live-intervene-text"))
            box.send_keys(reply)
            panel.find_element(By.CSS_SELECTOR, "#live-intervene button[type=submit]").click()
            wait_for(lambda: sent_to(console_host, reply), 30, "the reply did not reach the agent's console")
            supervisor_id = supervisor["id"]
            wait_for(lambda: query(server.instance, "SELECT author_user_id FROM message WHERE text = ?", reply)
                     == [(supervisor_id,)], 20, "the reply was not logged as the supervisor's")
            wait_for(lambda: any("sent" in li.text for li in
                                 panel.find_elements(By.CSS_SELECTOR, "#live-interventions li")),
                     20, "the panel did not show the reply as sent")

            # 3. Records: found by a Chinese phrase inside the message
            panel.get(f"{server.url}/records")
            search = panel.find_element(By.NAME, "q")
            search.send_keys("私下交易")
            search.submit()
            # The submit navigates: wait for the new page, and let a <main> from the old one go stale quietly.
            WebDriverWait(panel, 10).until(lambda d: "q=" in d.current_url)
            WebDriverWait(panel, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
                lambda d: "私下交易" in d.find_element(By.TAG_NAME, "main").text)
            marks = [m.text for m in panel.find_elements(By.CSS_SELECTOR, "main mark")]
            assert "私下交易" in marks
            assert "你好，请问这件外套有黑色吗？" not in panel.find_element(By.TAG_NAME, "main").text

            # 4. Behaviour reports: the server's own check caught the risky reply; confirm it
            hit = wait_for(lambda: query(server.instance, "SELECT id FROM behaviour_event WHERE type = "
                                         "'server_rule_hit' AND conversation_id = ?", sim_conversation),
                           15, "no server rule hit")[0][0]
            panel.get(f"{server.url}/reports/{hit}")
            assert RISKY_SHOWN in panel.find_element(By.TAG_NAME, "main").text  # the message in context
            panel.find_element(By.CSS_SELECTOR, "form.review input[value=confirmed]").click()
            panel.find_element(By.CSS_SELECTOR, "form.review textarea[name=note]").send_keys("已核实：私下引流")
            panel.find_element(By.CSS_SELECTOR, "form.review button[type=submit]").click()
            wait_for(lambda: query(server.instance, "SELECT status, review_note FROM behaviour_event WHERE id = ?",
                                   hit) == [("confirmed", "已核实：私下引流")], 10, "the review was not saved")

            # 5. Statistics: the simulated agent's messages are counted
            panel.get(f"{server.url}/statistics?group_by=agent")
            tables = panel.find_element(By.TAG_NAME, "main").text
            assert device.agent["display_name"] in tables
            assert panel.execute_script("return !!document.querySelector('#chart-messages') && "
                                        "document.querySelector('#chart-messages').width > 0")

            # 6. Refused: another department's supervisor and an agent
            status, body = api(server, "POST", "/departments", owner_token, {"name": "Night shift"})
            assert status == 201
            status, _body = api(server, "POST", "/users", owner_token, {
                "email": "night@demo.veil", "role": "supervisor", "department_ids": [body["department"]["id"]]})
            assert status == 201
            night = server.cli("token", "create", "--email", "night@demo.veil")
            agent_token = server.cli("token", "create", "--email", AGENT)
            for token in (night, agent_token):
                assert api(server, "GET", f"/conversations/{sim_conversation}/messages", token)[0] == 403
                assert api(server, "GET", f"/behaviour-events/{hit}", token)[0] == 403
                assert api(server, "POST", f"/live/conversations/{sim_conversation}/interventions", token,
                           {"text": "hi"})[0] == 403
        finally:
            sim.close()
