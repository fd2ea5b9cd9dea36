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
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXTENSION_SOURCE = REPO / "extension"
EXTENSION_DIST = REPO / "dist" / "extension"
CHROMIUM = os.environ.get("VEIL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VEIL_CHROMEDRIVER", "/usr/bin/chromedriver")
STARTUP_TIMEOUT = 30


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _veil_command() -> list[str]:
    script = Path(sys.executable).with_name("veil")
    return [str(script)] if script.exists() else [sys.executable, "-m", "backend.cli"]


@dataclass
class VeilServer:
    url: str
    env: dict[str, str]
    instance: Path

    def cli(self, *args: str) -> str:
        """Runs a `veil` command against this server's instance; returns the last line of stdout."""
        done = subprocess.run([*_veil_command(), *args], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"veil {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        lines = done.stdout.strip().splitlines()
        assert lines, f"veil {' '.join(args)} printed nothing"
        return lines[-1].strip()

    def api(self, path: str, token: str) -> tuple[int, dict]:
        request = urllib.request.Request(f"{self.url}/api/v1{path}",
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"veil serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if json.load(response) == {"status": "ok", "db": "ok"}:
                    return
        except (OSError, ValueError) as error:
            last_error = error
        time.sleep(0.1)  # polling interval, bounded by the deadline above
    pytest.fail(f"veil serve not healthy after {STARTUP_TIMEOUT}s ({last_error}):\n{log.read_text()}")


@pytest.fixture(scope="session")
def veil_server(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("veil")
    instance = tmp_path / "instance"
    instance.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["VEIL_INSTANCE_PATH"] = str(instance)
    port = _free_port()
    server = VeilServer(url=f"http://127.0.0.1:{port}", env=env, instance=instance)
    server.cli("init")
    server.cli("demo")

    log = tmp_path / "serve.log"
    with log.open("w") as log_file:
        process = subprocess.Popen([*_veil_command(), "serve", "--port", str(port)], cwd=REPO, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(server.url, process, log)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
