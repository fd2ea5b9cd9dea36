"""Every chat event reaches the backend once, also across a server restart in the middle of the stream.

An enrolled extension in a WhatsApp Web test page (at web.whatsapp.com, see console_host.py): messages
arrive in both directions, a blocked send is attempted, the server is stopped while the console goes on,
then started again. The database must hold every message exactly once and the blocked send as a
behaviour event, with the customer's number nowhere in clear on the page.
"""

from __future__ import annotations

import sqlite3
import time

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from e2e.console_host import IN_HOUSE_URL
from e2e.test_enrolment import submit_enrolment
from e2e.test_extension_consoles import composer, console_browser, console_host, open_console  # noqa: F401
from tests.live_server import running_server

AGENT = "agent1@demo.veil"


def stored(instance) -> dict:
    """What devices logged into the server's database (read-only, beside the running server); the demo's
    own history is left out: it was not logged by a device and repeats its stock phrases."""
    with sqlite3.connect(f"file:{instance / 'veil.db'}?mode=ro", uri=True, timeout=10) as db:
        rows = list(db.execute("SELECT conversation_id, text FROM message WHERE device_id IS NOT NULL ORDER BY id"))
        kinds = [row[0] for row in db.execute("SELECT type FROM behaviour_event ORDER BY id")]
    return {"texts": [text for _c, text in rows], "rows": rows, "kinds": kinds}


def wait_for(check, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except StaleElementReferenceException:  # the page re-rendered under the check: look again
            last = None
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"{message} (last seen: {last!r})")


def enrol(driver, server, extension_id: str) -> None:
    code = server.cli("device", "code", "--email", AGENT)
    driver.get(f"chrome-extension://{extension_id}/options/options.html")
    WebDriverWait(driver, 15).until(
        lambda d: d.execute_script("return document.documentElement.dataset.ready === 'true'"))
    submit_enrolment(driver, server.url, code)
    WebDriverWait(driver, 20, poll_frequency=0.2).until(
        lambda d: d.find_element(By.ID, "connection-state").get_attribute("data-state") == "connected")


def test_events_survive_a_server_restart_and_are_stored_once(console_browser, console_host, tmp_path):  # noqa: F811
    from e2e.conftest import EXTENSION_ID

    driver = console_browser
    with running_server(tmp_path / "first") as server:
        instance, port = server.instance, int(server.url.rsplit(":", 1)[1])
        enrol(driver, server, EXTENSION_ID)
        open_console(driver, "whatsapp")
        history = driver.execute_script("return document.querySelectorAll('#main [data-id]').length")
        # a customer named by their number shows under the pseudonym the panel uses
        wait_for(lambda: "客户-" in driver.find_element(By.TAG_NAME, "body").text, 10,
                 "no pseudonym from the server in the chat list")
        for i in range(10):
            driver.execute_script("window.consoleSim.receive(arguments[0])", f"第{i}条：我的电话 13812345678")
        wait_for(lambda: len(stored(instance)["texts"]) >= history + 10, 20, "the first messages did not arrive")

    # The server is down; the agent works on.
    for i in range(10, 20):
        driver.execute_script("window.consoleSim.receive(arguments[0])", f"第{i}条：我的电话 13812345678")
    box = composer(driver, "whatsapp")
    box.click()
    box.send_keys("加我微信 wxid_abc123 私下交易")
    box.send_keys(Keys.ENTER)
    assert driver.execute_script("return window.consoleSim.sent.length") == 0
    assert "13812345678" not in driver.find_element(By.TAG_NAME, "body").text

    with running_server(tmp_path / "second", demo=False, instance=instance, port=port):
        def all_twenty():
            texts = stored(instance)["texts"]
            return all(any(t.startswith(f"第{i}条：") for t in texts) for i in range(20)) and texts
        texts = wait_for(all_twenty, 60, "the events kept during the outage did not arrive")
        time.sleep(2)  # anything sent twice would show up now
        final = stored(instance)
        for i in range(20):
            assert sum(t.startswith(f"第{i}条：") for t in final["texts"]) == 1, f"message {i} stored once"
        assert len(final["rows"]) == len(set(final["rows"])), "no message stored twice in a conversation"
        assert texts[-1].startswith("第19条"), "the outbox kept the order"
        assert "send_blocked" in final["kinds"]
        assert len(final["texts"]) >= history + 20


def test_an_in_house_console_joins_with_a_profile_update(console_browser, console_host, tmp_path):  # noqa: F811
    """An admin adds the company's own console to the generic profile; the open extension picks it up."""
    import json
    import urllib.request

    from e2e.conftest import EXTENSION_ID

    driver = console_browser
    with running_server(tmp_path / "server") as server:
        enrol(driver, server, EXTENSION_ID)
        driver.get(IN_HOUSE_URL)
        time.sleep(1)
        assert not driver.execute_script("return document.documentElement.hasAttribute('data-veil-ready')"), \
            "no profile covers this address yet"

        admin = server.cli("token", "create", "--email", "owner@demo.veil")
        status, source = server.api("/rules/source", admin)
        assert status == 200
        rules = source["rules"]
        status, payload = server.api("/rules", admin)
        consoles = [dict(c, matches=[f"{IN_HOUSE_URL}*"]) if c["id"] == "generic" else c for c in payload["consoles"]]
        body = json.dumps({**rules, "consoles": consoles, "note": "our CRM"}).encode()
        request = urllib.request.Request(f"{server.url}/api/v1/rules", data=body, method="PUT", headers={
            "Authorization": f"Bearer {admin}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

        # pushed to the extension (rules_changed), which registers the content script for the new address
        def masked_page():
            driver.get(IN_HOUSE_URL)
            time.sleep(0.5)
            return driver.execute_script("return document.documentElement.hasAttribute('data-veil-ready')")
        wait_for(masked_page, 30, "the profile update did not reach the extension")
        driver.execute_script("window.consoleSim.receive('call me on 13812345678')")
        body_text = driver.find_element(By.TAG_NAME, "body").text
        assert "13812345678" not in body_text and "*******5678" in body_text


def test_edits_and_deletions_keep_every_version_on_the_server(console_browser, console_host, tmp_path):  # noqa: F811
    from e2e.conftest import EXTENSION_ID

    driver = console_browser
    with running_server(tmp_path / "server") as server:
        enrol(driver, server, EXTENSION_ID)
        open_console(driver, "whatsapp")
        first = driver.execute_script("return window.consoleSim.receive('明天下午三点送货')")
        second = driver.execute_script("return window.consoleSim.receive('地址是人民路 1 号')")
        wait_for(lambda: {"明天下午三点送货", "地址是人民路 1 号"} <= set(stored(server.instance)["texts"]), 20,
                 "the messages did not arrive")
        driver.execute_script("window.consoleSim.editMessage(arguments[0], '明天下午四点送货')", first)
        driver.execute_script("window.consoleSim.deleteMessage(arguments[0])", second)

        def revisions():
            with sqlite3.connect(f"file:{server.instance / 'veil.db'}?mode=ro", uri=True, timeout=10) as db:
                return list(db.execute(
                    "SELECT m.text, r.kind, r.text, m.edited_at IS NOT NULL, m.deleted_at IS NOT NULL "
                    "FROM message_revision r JOIN message m ON m.id = r.message_id ORDER BY r.id"))
        rows = wait_for(lambda: len(revisions()) >= 2 and revisions(), 20, "the edit and the deletion did not arrive")
        assert ("明天下午三点送货", "edit", "明天下午四点送货", 1, 0) in rows, rows
        assert ("地址是人民路 1 号", "delete", "地址是人民路 1 号", 0, 1) in rows, rows
        kinds = stored(server.instance)["kinds"]
        assert "message_edited" in kinds and "message_deleted" in kinds
