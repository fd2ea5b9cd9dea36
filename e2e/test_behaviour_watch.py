"""The behaviour watch's device signals, with the real extension: removing it is reported through the
removal link Chrome opens, and a console used while the server is unreachable is reported once."""

from __future__ import annotations

from e2e.test_event_stream import enrol, stored, wait_for
from e2e.test_extension_consoles import console_browser, console_host, open_console  # noqa: F401
from tests.live_server import running_server


def test_removing_the_extension_is_reported(console_browser, tmp_path):  # noqa: F811
    from e2e.conftest import EXTENSION_ID

    driver = console_browser
    with running_server(tmp_path / "server") as server:
        enrol(driver, server, EXTENSION_ID)
        # What "Remove from Chrome" does, without the confirmation dialog.
        driver.execute_script("chrome.management.uninstallSelf({showConfirmDialog: false})")
        kinds = wait_for(lambda: "extension_removed" in stored(server.instance)["kinds"]
                         and stored(server.instance)["kinds"], 20,
                         "Chrome did not open the removal link, or the server did not record it")
        assert kinds.count("extension_removed") == 1


def test_a_console_used_while_the_server_is_down_is_reported_once(console_browser, console_host,  # noqa: F811
                                                                  tmp_path):
    from e2e.conftest import EXTENSION_ID

    driver = console_browser
    with running_server(tmp_path / "first") as server:
        instance, port = server.instance, int(server.url.rsplit(":", 1)[1])
        enrol(driver, server, EXTENSION_ID)
        open_console(driver, "whatsapp")
    for i in range(5):  # the server is down; the agent works on
        driver.execute_script("window.consoleSim.receive(arguments[0])", f"offline {i}")
    with running_server(tmp_path / "second", demo=False, instance=instance, port=port):
        wait_for(lambda: sum(t.startswith("offline ") for t in stored(instance)["texts"]) == 5, 60,
                 "the events kept during the outage did not arrive")
        assert stored(instance)["kinds"].count("offline_use") == 1
