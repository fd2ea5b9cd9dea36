"""Browser journeys: the real extension in headless Chromium against a real `veil serve`.

Fixtures compose: `veil_server` (one demo instance per session; tests compare before and after
rather than assume an empty database) and `browser` (a fresh profile per test with dist/extension
loaded). The extension is built once per session if dist/ is missing or stale.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.live_server import REPO, VeilServer, running_server  # noqa: F401  (VeilServer: for type hints in journeys)

EXTENSION_SOURCE = REPO / "extension"
EXTENSION_DIST = REPO / "dist" / "extension"
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


@pytest.fixture
def browser(chromium: str, extension_dir: Path, tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", f"--load-extension={extension_dir}",
                 f"--disable-extensions-except={extension_dir}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


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
