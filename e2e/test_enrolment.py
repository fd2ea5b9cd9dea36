"""An agent enrols the browser from the options page with a one-time code from their supervisor."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

OPTIONS_PAGE = "options/options.html"


def submit_enrolment(driver, server_url: str, code: str) -> None:
    server_field = driver.find_element(By.ID, "server-url")
    server_field.clear()
    server_field.send_keys(server_url)
    driver.find_element(By.ID, "enrolment-code").send_keys(code)
    driver.find_element(By.ID, "enrol-button").click()


def test_enrolment_connects_and_heartbeat_reaches_server(veil_server, open_extension_page):
    code = veil_server.cli("device", "code", "--email", "agent1@demo.veil")
    owner_token = veil_server.cli("token", "create", "--email", "owner@demo.veil")
    driver = open_extension_page(OPTIONS_PAGE)
    assert driver.find_element(By.ID, "enrolment-state").get_attribute("data-state") == "not-enrolled"

    # Typed the way people do: lower case, a space instead of the dash.
    submit_enrolment(driver, veil_server.url, code.lower().replace("-", " "))

    wait = WebDriverWait(driver, 20, poll_frequency=0.2)
    connection = driver.find_element(By.ID, "connection-state")
    wait.until(lambda d: connection.get_attribute("data-state") == "connected")
    heartbeat = wait.until(lambda d: d.find_element(By.ID, "last-heartbeat").get_attribute("data-at"))
    enrolment = driver.find_element(By.ID, "enrolment-state")
    assert enrolment.get_attribute("data-state") == "enrolled"
    assert "agent1@demo.veil" in enrolment.text
    assert "Demo Co" in enrolment.text
    assert heartbeat

    status, body = veil_server.api(f"/devices/{enrolment.get_attribute('data-device-id')}", owner_token)
    assert status == 200, body
    device = body["device"]
    assert device["revoked"] is False
    assert device["last_seen_at"], "the heartbeat was acknowledged but the server did not record it"

    # The popup reads the same state from the service worker.
    popup = open_extension_page("popup/popup.html")
    assert popup.find_element(By.ID, "connection-state").get_attribute("data-state") == "connected"
    assert popup.find_element(By.ID, "server-url").text == veil_server.url
    assert "agent1@demo.veil" in popup.find_element(By.ID, "enrolment-state").text


def enrolled_device_ids(veil_server, owner_token: str) -> set[int]:
    status, body = veil_server.api("/devices", owner_token)
    assert status == 200, body
    return {device["id"] for device in body["devices"] if device["enrolled_at"]}


def test_wrong_code_shows_error_and_enrols_nothing(veil_server, open_extension_page):
    veil_server.cli("device", "code", "--email", "agent2@demo.veil")
    owner_token = veil_server.cli("token", "create", "--email", "owner@demo.veil")
    enrolled_before = enrolled_device_ids(veil_server, owner_token)
    driver = open_extension_page(OPTIONS_PAGE)

    submit_enrolment(driver, veil_server.url, "ZZZZ-ZZZZ")

    message = driver.find_element(By.ID, "form-message")
    wait = WebDriverWait(driver, 15, poll_frequency=0.2)
    wait.until(lambda d: message.get_attribute("data-kind") == "error")
    assert "code" in message.text.lower()
    assert driver.find_element(By.ID, "enrolment-state").get_attribute("data-state") == "not-enrolled"
    assert driver.find_element(By.ID, "connection-state").get_attribute("data-state") == "not-enrolled"

    assert enrolled_device_ids(veil_server, owner_token) == enrolled_before


def test_badly_formed_code_is_caught_before_the_server(veil_server, open_extension_page):
    driver = open_extension_page(OPTIONS_PAGE)
    submit_enrolment(driver, veil_server.url, "K7QF-3M")
    message = driver.find_element(By.ID, "form-message")
    assert message.get_attribute("data-kind") == "error"
    assert "K7QF-3MZP" in message.text
