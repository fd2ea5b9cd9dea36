"""An agent reveals one masked customer identifier with a restore key, and cannot without one.

The real extension in headless Chromium, enrolled for agent1 of the demo tenant, on the WhatsApp test page
(console_host.py). The owner issues and revokes the restore key through the API with their password. The
agent clicks the masked phone number in the contact pane (a real mouse click at its place on screen), and
clicks the popover's button the same way.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

from selenium.webdriver.common.actions.action_builder import ActionBuilder

from e2e.test_event_stream import enrol, wait_for
from e2e.test_extension_consoles import console_browser, console_host, open_console  # noqa: F401
from e2e.test_intervention import conversation_of, query
from tests.live_server import running_server

OWNER = "owner@demo.veil"
AGENT = "agent1@demo.veil"
OWNER_PASSWORD = "reveal-journey-owner-password"
PHONE = "+86 138 1234 5678"  # Li Wei's, in the contact pane of the chat the page opens with
CONTACT_PHONE = "#contact-info a[href^='tel:'] span"


def api(server, token: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(f"{server.url}/api/v1{path}", data=json.dumps(body or {}).encode(),
                                     method="POST", headers={"Authorization": f"Bearer {token}",
                                                             "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def shown_phone(driver) -> str:
    return driver.execute_script("return document.querySelector(arguments[0])?.textContent ?? ''", CONTACT_PHONE)


def trusted_click(driver, x: float, y: float) -> None:
    """A real mouse click (WebDriver actions) at a point of the viewport."""
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(x), int(y)).click()
    actions.perform()


def click_masked_phone(driver) -> None:
    """A real click on the middle of the masked number, then on the popover's button. The popover is a
    closed shadow root: its button is found where content/reveal.js puts the box (12px under the click,
    moved left to fit in the window)."""
    x, y, width = driver.execute_script("""
        const r = document.querySelector(arguments[0]).getBoundingClientRect();
        return [r.left + r.width / 2, r.top + r.height / 2, window.innerWidth];""", CONTACT_PHONE)
    trusted_click(driver, x, y)
    wait_for(lambda: driver.execute_script("return !!document.querySelector('veil-reveal')"), 10,
             "no popover offered to reveal the number")
    left, top = max(4, min(x, width - 300)), max(4, y + 12)
    trusted_click(driver, left + 24, top + 18)


def test_an_agent_reveals_with_a_restore_key_and_not_without(console_browser, console_host, tmp_path):  # noqa: F811
    from e2e.conftest import EXTENSION_ID

    driver = console_browser
    with running_server(tmp_path / "server") as server:
        server.cli("user", "set-password", "--email", OWNER, "--password", OWNER_PASSWORD)
        owner_token = server.cli("token", "create", "--email", OWNER)
        agent_id = query(server.instance, "SELECT id FROM user_account WHERE email = ?", AGENT)[0][0]
        enrol(driver, server, EXTENSION_ID)
        open_console(driver, "whatsapp")
        wait_for(lambda: conversation_of(server.instance, "Hello, is the blue jacket still in stock?"), 20,
                 "the open chat was not logged")
        masked = shown_phone(driver)
        assert masked and masked != PHONE and "*" in masked

        # 1. without a restore key: asked, refused, still masked
        click_masked_phone(driver)
        wait_for(lambda: query(server.instance, "SELECT id FROM audit_log_entry WHERE action = 'reveal.denied'"), 10,
                 "the refused reveal was not asked of the server")
        assert shown_phone(driver) == masked

        # 2. with one: the original is shown in the page, and the use is recorded
        now = datetime.now(UTC)
        status, body = api(server, owner_token, "/grants", {
            "grantee_id": agent_id, "kind": "restore", "scope": {"agent_ids": [agent_id]},
            "starts_at": (now - timedelta(minutes=1)).isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat(),
            "password": OWNER_PASSWORD})
        assert status == 201, body
        grant_id = body["grant"]["id"]
        click_masked_phone(driver)
        assert wait_for(lambda: shown_phone(driver) == PHONE, 10, "the number was not revealed")
        assert query(server.instance, "SELECT count(*) FROM audit_log_entry WHERE action = 'reveal'") == [(1,)]
        assert query(server.instance, "SELECT uses FROM access_grant WHERE id = ?", grant_id) == [(1,)]

        # 3. revoked: the open page hides it again at once, and a new reveal is refused
        status, _body = api(server, owner_token, f"/grants/{grant_id}/revoke")
        assert status == 200
        wait_for(lambda: shown_phone(driver) == masked, 10, "the revealed number stayed after revocation")
        click_masked_phone(driver)
        wait_for(lambda: query(server.instance, "SELECT count(*) FROM audit_log_entry "
                                                "WHERE action = 'reveal.denied'") == [(2,)], 10,
                 "the reveal after revocation was not refused")
        assert shown_phone(driver) == masked
