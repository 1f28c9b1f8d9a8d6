"""The dashboard in a real browser: Debian's Chromium driven by Selenium, offline.

Selenium gets the driver and the browser by path and ``SE_OFFLINE=true`` (without
them Selenium Manager goes online). Chromium is also pointed at a dead proxy on
127.0.0.1 for everything but loopback, so nothing it does leaves the machine.
One browser per test: the suite's leak check counts every child process.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from pyorchestrate import Orchestrator
from tests.agents import agent

from ._binaries import CHROMEDRIVER, CHROMIUM, require
from .conftest import XSS, MakeFleet, MakeServer

pytestmark = pytest.mark.slow

SLOW_RETRY = {
    "restart": "on-failure",
    "immediate_restarts": 0,
    "backoff_initial": 30.0,
    "backoff_jitter": 0,
}
WAIT = 10.0


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    require(CHROMIUM, CHROMEDRIVER)
    monkeypatch.setenv("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--proxy-server=http://127.0.0.1:9",  # loopback bypasses it; all else dies
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: object, condition: object, message: str) -> object:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition, message)


def _row_state(driver: object, name: str) -> str | None:
    script = (
        "for (const row of document.querySelectorAll('#agents tbody tr'))"
        "  if (row.dataset.agent === arguments[0])"
        "    return row.querySelector('.state').textContent;"
        "return null;"
    )
    return driver.execute_script(script, name)  # type: ignore[attr-defined, no-any-return]


def test_the_overview_lists_the_agents_and_markup_stays_text(
    make_fleet: MakeFleet, make_server: MakeServer, browser: object
) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    def register(orchestrator: Orchestrator) -> None:
        orchestrator.register_agent(agent("forever", "thread"), "worker")
        orchestrator.register_agent(agent("forever", "thread"), XSS)

    fleet = make_fleet(register)
    fleet.wait_state(XSS, "READY")
    server = make_server(socket_path=fleet.socket)
    driver = browser
    driver.get(server.url + "/")  # type: ignore[attr-defined]
    _wait(driver, lambda d: _row_state(d, "worker") == "READY", "worker not listed")
    assert _row_state(driver, XSS) == "READY"
    _wait(
        driver,
        lambda d: d.find_element("id", "connection").text == "live",
        "the page never went live",
    )
    # A re-render from the stream (app.js) keeps the name as text too.
    fleet.orchestrator.restart_agent(XSS)
    fleet.wait_state(XSS, "READY")
    _wait(driver, lambda d: _row_state(d, XSS) == "READY", "no re-render")
    links = driver.execute_script(  # type: ignore[attr-defined]
        "return [...document.querySelectorAll('#agents a')].map(a => a.textContent)"
    )
    assert XSS in links
    assert driver.execute_script("return document.scripts.length") == 2  # type: ignore[attr-defined]
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # type: ignore[attr-defined]  # noqa: B018


def test_a_killed_process_agent_turns_its_row_without_reload(
    make_fleet: MakeFleet, make_server: MakeServer, browser: object
) -> None:
    def register(orchestrator: Orchestrator) -> None:
        orchestrator.register_agent(
            agent("forever", "process"), "proc", supervision=SLOW_RETRY
        )

    fleet = make_fleet(register)
    fleet.wait_state("proc", "READY")
    server = make_server(socket_path=fleet.socket)
    driver = browser
    driver.get(server.url + "/")  # type: ignore[attr-defined]
    _wait(driver, lambda d: _row_state(d, "proc") == "READY", "proc not listed")
    _wait(
        driver,
        lambda d: d.find_element("id", "connection").text == "live",
        "the page never went live",
    )
    driver.execute_script("window.__notReloaded = true")  # type: ignore[attr-defined]
    os.kill(fleet.orchestrator.agent_status("proc")["pid"], signal.SIGKILL)
    _wait(
        driver,
        lambda d: _row_state(d, "proc") in ("BACKOFF", "FAILED", "FATAL"),
        "the row did not turn",
    )
    assert driver.execute_script("return window.__notReloaded === true")  # type: ignore[attr-defined]
    error = driver.execute_script(  # type: ignore[attr-defined]
        "return document.querySelector('#agents tbody tr td.error').textContent"
    )
    assert "SIGKILL" in error
    fleet.orchestrator.stop_agent("proc")


def test_the_restart_button_needs_the_token(
    make_fleet: MakeFleet, make_server: MakeServer, browser: object
) -> None:
    from selenium.webdriver.common.by import By

    token = "b7e1-tok-4c2a"
    fleet = make_fleet(
        lambda orchestrator: orchestrator.register_agent(
            agent("forever", "thread"), "worker"
        )
    )
    fleet.wait_state("worker", "READY")
    plain = make_server(socket_path=fleet.socket)
    operator = make_server(
        socket_path=fleet.socket, token=token, permissions="operator"
    )
    driver = browser
    driver.get(plain.url + "/agents/worker")  # type: ignore[attr-defined]
    assert driver.find_elements(By.CSS_SELECTOR, "button[data-action]") == []  # type: ignore[attr-defined]

    before = fleet.orchestrator.agent_status("worker")["generation_id"]
    driver.get(operator.url + "/agents/worker")  # type: ignore[attr-defined]
    _wait(
        driver,
        lambda d: d.find_element("id", "connection").text == "live",
        "the page never went live",
    )
    driver.find_element(By.CSS_SELECTOR, 'button[data-action="restart"]').click()  # type: ignore[attr-defined]
    prompt = _wait(driver, lambda d: d.switch_to.alert, "no token prompt")
    prompt.send_keys(token)  # type: ignore[attr-defined]
    prompt.accept()  # type: ignore[attr-defined]
    _wait(
        driver,
        lambda d: fleet.orchestrator.agent_status("worker")["generation_id"] > before,
        "the agent was not restarted",
    )
    _wait(
        driver,
        lambda d: (
            "restart" in d.find_element("id", "action-result").text.lower()
            or "stop" in d.find_element("id", "action-result").text.lower()
        ),
        "no result shown",
    )
    # The token stays in the tab (sessionStorage), never in a URL or a cookie.
    assert token not in driver.current_url  # type: ignore[attr-defined]
    assert driver.get_cookies() == []  # type: ignore[attr-defined]
    fleet.wait_state("worker", "READY")
