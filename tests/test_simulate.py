"""`veil simulate` against a real `veil serve`: simulated devices enrol, stream, and everything is stored once."""

from __future__ import annotations

import subprocess

import pytest

from backend.simulation import Simulation, SimulationError
from tests.live_server import REPO, _veil_command, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("simulate")) as live:
        yield live


def test_cli_reports_sent_acknowledged_and_stored(server):
    done = subprocess.run([*_veil_command(), "simulate", "--server", server.url, "--agents", "3", "--rate", "4",
                           "--duration", "2"], cwd=REPO, env=server.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    sent = next(line for line in lines if line.startswith("sent: "))
    acked = next(line for line in lines if line.startswith("acknowledged: "))
    stored = next(line for line in lines if line.startswith("stored: "))
    count = int(sent.split()[1])
    # Every agent sent something; how much fits in 2 s depends on the machine (each waits for its batch's
    # answer, like the extension), and what matters is that all of it was acknowledged and stored.
    assert count >= 3
    assert acked.split()[1] == str(count) and "refused: 0" in acked
    assert stored.split()[1] == str(count)
    assert lines[-1].startswith("check: OK")


def test_every_device_stream_is_stored_once_and_devices_are_revoked(server):
    token = server.cli("token", "create", "--email", "owner@demo.veil")
    sim = Simulation(server.url, token, agents=2, rate=10, duration=1.5, seed=7)
    try:
        sim.setup()
        report = sim.run()
    finally:
        sim.close()
    assert report.complete, report.lines()
    assert report.totals.by_type["message"] > 0 and report.totals.resent == 0
    for device in sim.devices:
        status, body = server.api(f"/devices/{device.device_id}", token)
        assert status == 200
        assert body["stored"]["events"] == device.totals.acked
        assert body["device"]["revoked"] is True  # close() revokes what setup() enrolled
    # The risky replies were caught by the server's own check, on top of what the devices sent.
    assert report.stored["behaviour_events"] >= report.totals.by_type["behaviour"]


def test_a_token_that_is_not_an_admins_is_refused(server):
    agent_token = server.cli("token", "create", "--email", "agent1@demo.veil")
    with pytest.raises(SimulationError, match="owner or an admin"):
        Simulation(server.url, agent_token, agents=1, rate=1, duration=1).setup()
    done = subprocess.run([*_veil_command(), "simulate", "--server", server.url, "--token", "veil_wrong"],
                          cwd=REPO, env=server.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "HTTP 401" in done.stderr
