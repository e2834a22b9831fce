"""Content capture where the config file and the store both speak of a team: the stricter wins."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from app.config.settings import TeamSettingsConfig, default_config
from app.teams.directory import TeamDirectory, TeamPolicy


def test_a_store_row_does_not_turn_content_back_on_for_a_config_team(tmp_path: Path) -> None:
    quiet = TeamSettingsConfig(team_id="quiet", success_callback=(), failure_callback=(), callback_vars={},
                               turn_off_message_logging=True)
    teams = TeamDirectory(replace(default_config(tmp_path), default_team_settings=(quiet,)))
    # /team/quiet/disable_logging gives the config team a row; the row says nothing about content.
    teams.replace({}, {"quiet": TeamPolicy(capture_content=True, logging_disabled=True),
                       "loud": TeamPolicy(capture_content=False)})
    assert (teams.capture_content("quiet"), teams.logging_disabled()) == (False, frozenset({"quiet"}))
    assert (teams.capture_content("loud"), teams.capture_content("other"), teams.capture_content(None)) == (
        False, True, True)
