"""The real extension in the consoles' test pages (e2e/pages), at the consoles' own addresses.

For every shipped profile's page: no identifier is ever readable in any painted frame (a hook samples
the page just before each frame is painted, from the very first one), a blocked message does not leave
while an allowed one does, and Shift+Enter and IME composition work as before.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from e2e.conftest import CHROMEDRIVER
from e2e.console_host import PAGES, URLS, ConsoleHost

CONSOLES = sorted(name for name in URLS if (PAGES / f"{name}.html").exists())
PROFILES = Path(__file__).resolve().parents[1] / "shared_rules" / "consoles"

# What the pages show and must never be readable: digits of the customer's number in any grouping, the
# e-mail address. Checked in text and in every attribute that reaches the screen.
SECRETS = ["13812345678", "1381234", "12345678", "jane.doe@example.com", "jane.doe"]

# Installed before any page script: on every animation frame (just before paint), look at everything a
# person could read and record any secret seen.
FRAME_PROBE = """
(() => {
  const secrets = %s;
  const probe = { frames: 0, leaks: [] };
  window.__veilProbe = probe;
  const attributes = ['title', 'aria-label', 'alt', 'placeholder', 'href'];
  const readable = () => {
    if (!document.body) return '';
    // A page still transparent (before the extension is ready) shows nothing.
    const html = document.documentElement;
    if (getComputedStyle(html).opacity === '0') return '';
    let text = document.body.innerText + '\\n' + document.title;
    for (const el of document.querySelectorAll('[title],[aria-label],[alt],[placeholder],[href]')) {
      if (el.closest('[contenteditable],textarea,input')) continue;  // what the agent types
      for (const name of attributes) if (el.hasAttribute(name)) text += '\\n' + el.getAttribute(name);
    }
    return text.replace(/[\\s\\u00a0-]+/g, '');
  };
  const sample = () => {
    probe.frames += 1;
    const text = readable();
    for (const secret of secrets) if (text.includes(secret)) probe.leaks.push([probe.frames, secret]);
    requestAnimationFrame(sample);
  };
  requestAnimationFrame(sample);
})();
"""


@pytest.fixture(scope="module")
def console_host(tmp_path_factory):
    with ConsoleHost(tmp_path_factory.mktemp("consoles")) as host:
        yield host


@pytest.fixture
def console_browser(chromium, extension_dir, console_host, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", f"--load-extension={extension_dir}",
                 f"--disable-extensions-except={extension_dir}", *console_host.chromium_flags()):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FRAME_PROBE % json.dumps(SECRETS)})
    try:
        yield driver
    finally:
        driver.quit()


def open_console(driver, name: str) -> None:
    """Opens the console page and waits until the extension has masked it and made it visible.

    The service worker registers the content script shortly after Chromium starts; a page opened before
    that runs without it, so the page is opened again until the extension is there.
    """
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        driver.get(URLS[name])
        try:
            WebDriverWait(driver, 3, poll_frequency=0.1).until(
                lambda d: d.execute_script("return document.documentElement.hasAttribute('data-veil-ready')"))
            return
        except TimeoutException:
            continue
    raise AssertionError(f"the extension did not start on {URLS[name]}")


def profile(name: str) -> dict:
    return json.loads((PROFILES / f"{name}.json").read_text(encoding="utf-8"))


def composer(driver, name: str):
    return driver.find_element(By.CSS_SELECTOR, profile(name)["composer"]["input"])


def leaks(driver) -> tuple[int, list]:
    return tuple(driver.execute_script("return [window.__veilProbe.frames, window.__veilProbe.leaks]"))


@pytest.mark.parametrize("name", CONSOLES)
def test_no_identifier_is_ever_painted(console_browser, console_host, name):
    driver = console_browser
    open_console(driver, name)
    driver.execute_script("""
      const sim = window.consoleSim;
      sim.receive('我的电话 13812345678，邮箱 jane.doe@example.com');
      sim.receive('call me: +86 138-1234-5678');
      if (sim.loadOlder) sim.loadOlder();
    """)
    WebDriverWait(driver, 5).until(lambda d: d.execute_script("return window.__veilProbe.frames") > 30)
    frames, seen = leaks(driver)
    assert frames > 30
    assert seen == [], f"identifiers readable in painted frames: {seen[:5]}"
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "5678" in body, "masked numbers keep their last four digits"


@pytest.mark.parametrize("name", CONSOLES)
def test_blocked_message_does_not_leave_and_allowed_one_does(console_browser, console_host, name):
    driver = console_browser
    open_console(driver, name)
    box = composer(driver, name)
    box.click()
    box.send_keys("加我微信 wxid_abc123 私下交易")
    box.send_keys(Keys.ENTER)
    panel = WebDriverWait(driver, 5).until(lambda d: d.execute_script(
        "return document.querySelector('veil-guard') !== null"))
    assert panel
    assert driver.execute_script("return window.consoleSim.sent.length") == 0
    assert not any("私下交易" in text for text in console_host.sent_texts())

    driver.execute_script("""
      const el = arguments[0];
      if ('value' in el && el.tagName !== 'DIV') el.value = ''; else el.textContent = '';
      el.dispatchEvent(new InputEvent('input', {bubbles: true}));
    """, box)
    box.send_keys("您好，您的订单 20261123001 已发货")
    box.send_keys(Keys.ENTER)
    WebDriverWait(driver, 5).until(lambda d: d.execute_script("return window.consoleSim.sent.length") == 1)
    assert driver.execute_script("return window.consoleSim.sent[0]").strip() == "您好，您的订单 20261123001 已发货"


@pytest.mark.parametrize("name", CONSOLES)
def test_shift_enter_and_ime_work_as_before(console_browser, console_host, name):
    driver = console_browser
    open_console(driver, name)
    box = composer(driver, name)
    box.click()
    box.send_keys("第一行")
    box.send_keys(Keys.SHIFT, Keys.ENTER)
    box.send_keys("second line")
    # Enter while an input method is composing (Chinese pinyin) is not a send
    driver.execute_script("""
      const el = arguments[0];
      el.dispatchEvent(new CompositionEvent('compositionstart', {bubbles: true}));
      el.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true,
                                                     isComposing: true, keyCode: 229}));
      el.dispatchEvent(new CompositionEvent('compositionend', {bubbles: true, data: ''}));
    """, box)
    assert driver.execute_script("return window.consoleSim.sent.length") == 0
    box.send_keys(Keys.ENTER)
    WebDriverWait(driver, 5).until(lambda d: d.execute_script("return window.consoleSim.sent.length") == 1)
    sent = driver.execute_script("return window.consoleSim.sent[0]")
    assert "第一行" in sent and "second line" in sent and "\n" in sent
