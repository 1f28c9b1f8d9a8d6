"""A rule whose value may be None is turned off from settings with "off": environment
variables and TOML have no null."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifiers import NotifierConfigError, NotifierSettings, PipelineConfig

OPTIONAL = ("dedup_window", "group_window", "flap_threshold", "held_report_interval")


@pytest.mark.parametrize("field", OPTIONAL)
@pytest.mark.parametrize("spelling", ["off", "OFF", "none", "null", ""])
def test_off_turns_an_optional_rule_off(field: str, spelling: str) -> None:
    assert getattr(PipelineConfig.parse({field: spelling}), field) is None


def test_off_from_the_environment(notify_env: pytest.MonkeyPatch) -> None:
    notify_env.setenv("PYORCHESTRATE_NOTIFY_RULES__HELD_REPORT_INTERVAL", "off")
    notify_env.setenv("PYORCHESTRATE_NOTIFY_RULES__GROUP_WINDOW", "none")
    rules = NotifierSettings().rules
    assert rules.held_report_interval is None
    assert rules.group_window is None
    assert rules.dedup_window == PipelineConfig().dedup_window  # untouched


def test_off_from_toml(tmp_path: Path, notify_env: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify.toml"
    path.write_text(
        '[rules]\nflap_threshold = "off"\n\n'
        '[[rules.group_rules]]\nevents = ["agent_error"]\nwindow = "off"\n',
        encoding="utf-8",
    )
    rules = NotifierSettings.from_toml(path).rules
    assert rules.flap_threshold is None
    assert rules.group_rules[0].window is None


def test_other_words_are_still_errors() -> None:
    with pytest.raises(NotifierConfigError, match=r"rules\.held_report_interval"):
        PipelineConfig.parse({"held_report_interval": "never"})
    with pytest.raises(NotifierConfigError, match=r"rules\.stable_after"):
        PipelineConfig.parse({"stable_after": "off"})  # not optional
