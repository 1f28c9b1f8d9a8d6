"""The state file in the settings: where it is, turning it off, its size, opening it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from notifiers import Dispatcher, NotifierConfigError, NotifierState
from notifiers.settings import NotifierSettings
from notifiers.testing import RecordingNotifier
from tests.notifiers.dispatcher.test_dispatcher import note

P = "PYORCHESTRATE_NOTIFY_"


@pytest.fixture(autouse=True)
def _isolated(notify_env: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No PYORCHESTRATE_NOTIFY_* from the shell; XDG_STATE_HOME in the test's dir."""
    notify_env.chdir(tmp_path)
    notify_env.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    yield


def test_the_default_is_under_xdg_state_home(tmp_path: Path) -> None:
    settings = NotifierSettings()
    assert settings.state_path == tmp_path / "xdg" / "pyorchestrate" / "notify.sqlite3"
    assert settings.outbox_size == 10_000
    assert not settings.state_path.exists()  # nothing is created by reading settings


def test_environment_sets_the_path_and_size(
    notify_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    notify_env.setenv(P + "STATE_PATH", str(tmp_path / "s.sqlite3"))
    notify_env.setenv(P + "OUTBOX_SIZE", "50")
    settings = NotifierSettings()
    assert settings.state_path == tmp_path / "s.sqlite3"
    assert settings.outbox_size == 50


@pytest.mark.parametrize("off", ["", "none", "None", "off", "false"])
def test_the_state_can_be_turned_off(notify_env: pytest.MonkeyPatch, off: str) -> None:
    notify_env.setenv(P + "STATE_PATH", off)
    settings = NotifierSettings()
    assert settings.state_path is None
    assert settings.open_state() is None


def test_toml_and_home_expansion(tmp_path: Path) -> None:
    toml = tmp_path / "notify.toml"
    toml.write_text('state_path = "~/alerts/notify.sqlite3"\noutbox_size = 7\n')
    settings = NotifierSettings.from_toml(toml)
    assert settings.state_path == Path.home() / "alerts" / "notify.sqlite3"
    assert settings.outbox_size == 7


def test_a_bad_size_names_the_field(notify_env: pytest.MonkeyPatch) -> None:
    notify_env.setenv(P + "OUTBOX_SIZE", "0")
    with pytest.raises(NotifierConfigError, match="outbox_size"):
        NotifierSettings()


def test_open_state_bounds_the_outbox(tmp_path: Path) -> None:
    settings = NotifierSettings(state_path=tmp_path / "s.sqlite3", outbox_size=3)
    state = settings.open_state()
    assert isinstance(state, NotifierState)
    try:
        assert state.max_outbox == 3
        assert state.path == tmp_path / "s.sqlite3"
    finally:
        state.close()


def test_a_path_that_cannot_be_opened_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()
    settings = NotifierSettings(state_path=tmp_path / "a-directory")
    with pytest.raises(NotifierConfigError, match="state_path: cannot open"):
        settings.open_state()


def test_a_dispatcher_from_settings_closes_the_state_it_was_given(
    tmp_path: Path,
) -> None:
    settings = NotifierSettings(state_path=tmp_path / "s.sqlite3")
    state = settings.open_state()
    recording = RecordingNotifier()
    dispatcher = Dispatcher(
        [recording], state=state, close_state=True, name="notifiers-test-settings"
    )
    dispatcher.submit(note())
    assert dispatcher.flush(10)
    dispatcher.close()
    assert state is not None
    with pytest.raises(Exception, match="closed"):
        state.rows()
