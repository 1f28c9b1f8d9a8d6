"""The dashboard in a real browser: Debian's Chromium driven by Selenium, offline.

Selenium gets the driver and the browser by path and ``SE_OFFLINE=true`` (without
them Selenium Manager goes online). Chromium is also pointed at a dead proxy on
127.0.0.1 for everything but loopback, so nothing it does leaves the machine.
One browser per test: the suite's leak check counts every child process.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyorchestrate import Orchestrator
from tests.agents import agent

from ._binaries import CHROMEDRIVER, CHROMIUM, require
from .conftest import XSS, Fleet, MakeFleet, MakeServer

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


def _steady(driver: Any, action: Callable[[Any], object], message: str) -> object:
    """``action(driver)`` again until no element it used went stale under it: a live
    page (the Alerts page follows its state file) may render a table again between
    finding an element and using it."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def attempt(d: Any) -> object:
        result = action(d)
        return True if result is None else result

    return WebDriverWait(
        driver,
        WAIT,
        poll_frequency=0.05,
        ignored_exceptions=(StaleElementReferenceException,),
    ).until(attempt, message)


def _click(driver: Any, selector: str) -> None:
    from selenium.webdriver.common.by import By

    _steady(
        driver,
        lambda d: d.find_element(By.CSS_SELECTOR, selector).click(),
        f"could not click {selector}",
    )


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


def _events_seqs(driver: object) -> list[tuple[int, str, str]]:
    """The events table's rows: (seq, agent, event)."""
    rows = driver.execute_script(  # type: ignore[attr-defined]
        "return [...document.querySelectorAll('#events tbody tr')]"
        ".map(r => [...r.children].map(c => c.textContent))"
    )
    return [(int(r[0]), r[2], r[3]) for r in rows]


def test_the_events_page_follows_new_events_through_its_filters(
    make_fleet: MakeFleet, make_server: MakeServer, browser: object
) -> None:
    from selenium.webdriver.common.by import By

    def register(orchestrator: Orchestrator) -> None:
        orchestrator.register_agent(agent("forever", "thread"), "worker")
        orchestrator.register_agent(agent("forever", "thread"), "other")

    fleet = make_fleet(register)
    fleet.wait_state("worker", "READY")
    fleet.wait_state("other", "READY")
    server = make_server(socket_path=fleet.socket)
    driver = browser
    driver.get(server.url + "/events?agent=worker&follow=1")  # type: ignore[attr-defined]
    _wait(
        driver,
        lambda d: d.find_element("id", "connection").text == "live",
        "the page never went live",
    )
    driver.execute_script("window.__notReloaded = true")  # type: ignore[attr-defined]
    first = max(seq for seq, _, _ in _events_seqs(driver))
    fleet.orchestrator.restart_agent("other")  # filtered out: another agent
    fleet.orchestrator.restart_agent("worker")
    fleet.wait_state("worker", "READY")
    _wait(
        driver,
        lambda d: any(
            seq > first and event == "agent_ready" for seq, _, event in _events_seqs(d)
        ),
        "the new events did not show",
    )
    assert {name for _, name, _ in _events_seqs(driver)} == {"worker"}
    assert driver.execute_script("return window.__notReloaded === true")  # type: ignore[attr-defined]

    # Follow off: what comes meanwhile is not added. Events arrive in order, so
    # once the next restart's (follow on again) show, the skipped ones came too.
    follow = driver.find_element(By.ID, "follow")  # type: ignore[attr-defined]
    follow.click()
    latest = fleet.orchestrator.events()[-1].seq
    fleet.orchestrator.restart_agent("worker")
    fleet.wait_state("worker", "READY")
    skipped = {
        record.seq for record in fleet.orchestrator.events(agent="worker")
    } - set(range(latest + 1))
    assert skipped
    follow.click()
    fleet.orchestrator.restart_agent("worker")
    fleet.wait_state("worker", "READY")
    _wait(
        driver,
        lambda d: any(
            seq > max(skipped) and event == "agent_ready"
            for seq, _, event in _events_seqs(d)
        ),
        "following again showed nothing",
    )
    assert not skipped & {seq for seq, _, _ in _events_seqs(driver)}


def test_the_theme_switches_and_stays_and_pages_fit_a_phone(
    fleet: Fleet, make_server: MakeServer, browser: object, tmp_path: Path
) -> None:
    from notifiers.state import NotifierState

    path = tmp_path / "notify.sqlite3"
    with NotifierState(path) as state:  # a wide row in each of the Alerts tables
        state.save_stats({"a-rather-long-channel-name": {"sent": 1234567}})
        state.mute("event", "agent_error_or_another_long_event_name", duration=600)
    server = make_server(
        socket_path=fleet.socket,
        notify_state=str(path),
        token="phone-tok-1",
        permissions="operator",  # the buttons and the mute form too
    )
    driver = browser
    driver.set_window_size(375, 800)  # type: ignore[attr-defined]
    for path in ("/", "/events", "/agents/boom", "/alerts"):
        driver.get(server.url + path)  # type: ignore[attr-defined]
        overflow = driver.execute_script(  # type: ignore[attr-defined]
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, f"{path} is {overflow}px wider than a phone"

    def background() -> str:
        # Once the document has a body: a navigation may still be under way
        # when get() or refresh() return (rarely, but it happened).
        script = (
            "return document.readyState === 'complete' && document.body"
            " ? getComputedStyle(document.body).backgroundColor : null"
        )
        return str(_wait(driver, lambda d: d.execute_script(script), "no body"))

    driver.get(server.url + "/")  # type: ignore[attr-defined]
    before = background()
    driver.find_element("id", "theme").click()  # type: ignore[attr-defined]
    after = background()
    assert after != before
    theme = driver.execute_script("return document.documentElement.dataset.theme")  # type: ignore[attr-defined]
    assert theme in ("light", "dark")
    driver.refresh()  # type: ignore[attr-defined]
    assert background() == after
    driver.find_element("id", "theme").click()  # type: ignore[attr-defined]
    assert background() == before


def test_a_mute_from_the_alerts_page(
    fleet: Fleet, make_server: MakeServer, browser: object, tmp_path: Path
) -> None:
    """The operator mutes an agent on the Alerts page (token asked once, kept in the
    tab) and unmutes it; the notifier state file (what ``pyorchestrate notify
    mutes`` reads) changes each time."""
    from selenium.webdriver.common.by import By

    from notifiers.state import NotifierState

    token = "c41e-tok-77ab"
    path = tmp_path / "notify.sqlite3"
    NotifierState(path).close()  # a state file, as a dispatcher leaves it
    server = make_server(
        socket_path=fleet.socket,
        token=token,
        permissions="operator",
        notify_state=str(path),
    )
    driver = browser
    driver.get(server.url + "/alerts")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "value").send_keys("worker")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "reason").send_keys("deploy <b>now</b>")  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, '[data-alert-action="mute"]').click()  # type: ignore[attr-defined]
    prompt = _wait(driver, lambda d: d.switch_to.alert, "no token prompt")
    prompt.send_keys(token)  # type: ignore[attr-defined]
    prompt.accept()  # type: ignore[attr-defined]
    _wait(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, '#mutes tr[data-value="worker"]'),
        "the mute did not show",
    )
    with NotifierState(path) as state:
        assert [(m.kind, m.value) for m in state.mutes()] == [("agent", "worker")]
    reason = _steady(
        driver,
        lambda d: (
            d.find_element(
                By.CSS_SELECTOR, '#mutes tr[data-value="worker"] td:nth-child(5)'
            ).text
        ),
        "no reason shown",
    )
    assert isinstance(reason, str)
    assert reason.startswith("deploy <b>now</b> (by token@127.0.0.1")  # as text

    _click(driver, "#mutes button.unmute")
    _wait(
        driver,
        lambda d: (
            not d.find_elements(By.CSS_SELECTOR, '#mutes tr[data-value="worker"]')
        ),
        "the mute did not go",
    )
    with NotifierState(path) as state:
        assert state.mutes() == []

    # The agent page mutes its agent's alerts for an hour (the token is kept in
    # the tab: no prompt this time).
    driver.get(server.url + "/agents/worker")  # type: ignore[attr-defined]
    _click(driver, '[data-alert-action="mute"]')
    _wait(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, '[data-alert-action="unmute"]'),
        "the agent page did not show the mute",
    )
    with NotifierState(path) as state:
        (mute,) = state.mutes()
    assert (mute.kind, mute.value) == ("agent", "worker")
    assert mute.until is not None
    assert driver.get_cookies() == []  # type: ignore[attr-defined]


def test_the_alerts_page_follows_the_state_file_without_reload(
    fleet: Fleet, make_server: MakeServer, browser: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    from notifiers.state import NotifierState

    path = tmp_path / "notify.sqlite3"
    NotifierState(path).close()
    server = make_server(socket_path=fleet.socket, notify_state=str(path))
    driver = browser
    driver.get(server.url + "/alerts")  # type: ignore[attr-defined]
    _wait(
        driver,
        lambda d: d.find_element("id", "connection").text == "live",
        "the page never went live",
    )
    driver.execute_script("window.__notReloaded = true")  # type: ignore[attr-defined]
    with NotifierState(path) as state:  # as pyorchestrate notify mute and a dispatcher
        state.mute("event", "agent_*", duration=3600, reason="<i>upgrade</i>")
        state.save_stats({"pager": {"sent": 5, "failed": 2, "retried": 1}})
    _wait(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, '#mutes tr[data-value="agent_*"]'),
        "the mute did not show",
    )
    _wait(
        driver,
        lambda d: (
            d.find_elements(
                By.CSS_SELECTOR,
                '#channels tr[data-channel="pager"] td[data-count="sent"]',
            )
            and d.find_element(
                By.CSS_SELECTOR,
                '#channels tr[data-channel="pager"] td[data-count="sent"]',
            ).text
            == "5"
        ),
        "the counters did not show",
    )
    reason = driver.find_element(  # type: ignore[attr-defined]
        By.CSS_SELECTOR, '#mutes tr[data-value="agent_*"] td:nth-child(5)'
    ).text
    assert reason == "<i>upgrade</i>"  # text, not markup
    assert driver.execute_script("return window.__notReloaded === true")  # type: ignore[attr-defined]
    assert driver.find_elements(By.CSS_SELECTOR, "#mutes button") == []  # type: ignore[attr-defined]
