"""A real `veil serve` in a subprocess, on a free port, with its own instance folder.

Used by the e2e journeys and by tests that need a real server (several processes, a message queue).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 30


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


@contextlib.contextmanager
def running_server(tmp_path: Path, extra_env: dict[str, str] | None = None, *, demo: bool = True,
                   instance: Path | None = None, port: int | None = None) -> Iterator[VeilServer]:
    """Starts `veil serve` (after `veil init`, and `veil demo` unless told not to) and stops it after.

    Given the `instance` and `port` of a server that was stopped, it starts that server again.
    """
    instance = instance or tmp_path / "instance"
    tmp_path.mkdir(parents=True, exist_ok=True)
    instance.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "VEIL_SOCKETIO_QUEUE", "VEIL_SECRET_KEY")}
    env["VEIL_INSTANCE_PATH"] = str(instance)
    env.update(extra_env or {})
    port = port or _free_port()
    server = VeilServer(url=f"http://127.0.0.1:{port}", env=env, instance=instance)
    server.cli("init")
    if demo:
        server.cli("demo")

    log = tmp_path / f"serve-{port}.log"
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


