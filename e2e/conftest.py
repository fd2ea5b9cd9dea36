"""Browser journeys: the real extension in headless Chromium against a real `veil serve`.

Fixtures compose: `veil_server` (one demo instance per session; tests compare before and after
rather than assume an empty database) and `browser` (a fresh profile per test with dist/extension
loaded). The extension is built once per session if dist/ is missing or stale. `console_pages` serves
the simulated chat consoles in e2e/pages/ and records what they send; `plain_browser` is Chromium
without the extension, for checking those pages themselves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.live_server import REPO, VeilServer, running_server  # noqa: F401  (VeilServer: for type hints in journeys)

EXTENSION_SOURCE = REPO / "extension"
EXTENSION_DIST = REPO / "dist" / "extension"
CONSOLE_PAGES = REPO / "e2e" / "pages"
CHROMIUM = os.environ.get("VEIL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VEIL_CHROMEDRIVER", "/usr/bin/chromedriver")


def extension_id(manifest_path: Path) -> str:
    """Chrome's id for an extension with a manifest "key": sha256 of the key, first 32 hex digits as a-p."""
    der = base64.b64decode(json.loads(manifest_path.read_text())["key"])
    return "".join(chr(ord("a") + int(digit, 16)) for digit in hashlib.sha256(der).hexdigest()[:32])


EXTENSION_ID = extension_id(EXTENSION_SOURCE / "manifest.json")


def _browser_missing() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if not missing:
        return None
    return f"not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)"


@pytest.fixture(scope="session", autouse=True)
def chromium() -> str:
    """Every journey needs the browser, so this runs first and skips before a server is started."""
    reason = _browser_missing()
    if reason:
        # On CI a missing browser is a broken runner, not a reason to go green.
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


def _newest_mtime(folder: Path) -> float:
    return max(path.stat().st_mtime for path in folder.rglob("*") if path.is_file())


@pytest.fixture(scope="session")
def extension_dir() -> Path:
    built = EXTENSION_DIST / "manifest.json"
    if not built.exists() or built.stat().st_mtime < _newest_mtime(EXTENSION_SOURCE):
        if not (REPO / "node_modules" / "socket.io-client").exists():
            subprocess.run(["npm", "ci"], cwd=REPO, check=True)
        subprocess.run(["npm", "run", "build"], cwd=REPO, check=True)
    return EXTENSION_DIST


@pytest.fixture(scope="session")
def veil_server(tmp_path_factory: pytest.TempPathFactory):
    with running_server(tmp_path_factory.mktemp("veil")) as server:
        yield server


def start_chromium(chromium: str, profile: Path, *flags: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", *flags):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture
def browser(chromium: str, extension_dir: Path, tmp_path: Path):
    driver = start_chromium(chromium, tmp_path / "profile", f"--load-extension={extension_dir}",
                            f"--disable-extensions-except={extension_dir}")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def plain_browser(chromium: str, tmp_path_factory: pytest.TempPathFactory):
    """One Chromium without the extension for the session: each test loads its page afresh."""
    driver = start_chromium(chromium, tmp_path_factory.mktemp("plain") / "profile")
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class ConsolePages:
    """The e2e/pages server: `url` is its origin, `sent` every body POSTed to /e2e/sent, oldest first."""

    url: str
    sent: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, body: dict) -> None:
        with self.lock:
            self.sent.append(body)

    def recorded(self) -> list[dict]:
        with self.lock:
            return list(self.sent)

    def clear(self) -> None:
        with self.lock:
            self.sent.clear()


class ConsolePageHandler(SimpleHTTPRequestHandler):
    """Static files from e2e/pages/, and POST /e2e/sent into the recorder; nothing of the Flask app."""

    def __init__(self, *args, pages: ConsolePages, **kwargs):
        self.pages = pages
        super().__init__(*args, directory=str(CONSOLE_PAGES), **kwargs)

    def do_POST(self) -> None:
        if self.path != "/e2e/sent":
            self.send_error(404)
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        except ValueError:
            self.send_error(400, "not JSON")
            return
        self.pages.record(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args) -> None:
        pass  # one line per request would bury the test output


@pytest.fixture(scope="session")
def console_pages_server():
    pages = ConsolePages(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(ConsolePageHandler, pages=pages))
    pages.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="console-pages", daemon=True)
    thread.start()
    try:
        yield pages
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def console_pages(console_pages_server: ConsolePages) -> ConsolePages:
    """The session's page server with an empty recorder."""
    console_pages_server.clear()
    return console_pages_server


@pytest.fixture
def open_extension_page(browser):
    """Opens a page of the extension once Chromium has loaded it, and waits for the page's first render."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def open_page(path: str):
        url = f"chrome-extension://{EXTENSION_ID}/{path}"

        def ready(driver) -> bool:
            try:
                href, loaded = driver.execute_script(
                    "return [location.href, document.documentElement.dataset.ready === 'true']")
                if href != url:
                    # Chromium may still be loading the extension; an early visit shows an error page.
                    driver.get(url)
                    return False
                return loaded
            except WebDriverException:
                return False

        WebDriverWait(browser, 15, poll_frequency=0.2).until(ready, f"{url} did not load")
        return browser

    return open_page
