"""The lab file and settings: good files load, every mistake is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from config import LabConfig, LabFileError, Settings, load_lab, parse_lab

REPO = Path(__file__).resolve().parent.parent


def test_example_lab_file_loads_with_absolute_sweep_paths() -> None:
    lab = load_lab(REPO / "lab.example.yaml")
    assert lab.entity == "lab" and lab.admins == (111222333,)
    assert lab.chats[0].digest is not None and lab.chats[0].digest.timezone == "Europe/Berlin"
    sweep = lab.sweeps["wine"]
    assert sweep.file.is_absolute() and sweep.file.is_file()
    assert sweep.workdir == REPO / "examples" / "wine"
    assert lab.project("unknown-project").goal == "maximize"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "entity: Field required"),
        ({"entity": "lab", "admins": ["bob"]}, "admins[0]: Input should be a valid integer"),
        ({"entity": "lab", "chats": [{"name": "x"}]}, "chats[0].id: Field required"),
        (
            {"entity": "lab", "chats": [{"id": 1, "events": ["exploded"]}]},
            "chats[0].events[0]: Input should be",
        ),
        (
            {"entity": "lab", "chats": [{"id": 1, "digest": {"cron": "every day"}}]},
            "chats[0].digest.cron: needs five fields",
        ),
        (
            {
                "entity": "lab",
                "chats": [{"id": 1, "digest": {"cron": "0 9 * * *", "timezone": "Mars/Base"}}],
            },
            "chats[0].digest.timezone: unknown time zone 'Mars/Base'",
        ),
        (
            {"entity": "lab", "chats": [{"id": 1, "projects": ["../../etc"]}]},
            "chats[0].projects: project '..' may use only",
        ),
        ({"entity": "lab", "chats": [{"id": 1}, {"id": 1}]}, "chat id 1 appears twice"),
        (
            {"entity": "lab", "projects": {"p": {"goal": "biggest"}}},
            "projects.p.goal: Input should be 'maximize' or 'minimize'",
        ),
        ({"entity": "lab", "surprise": 1}, "surprise: Extra inputs are not permitted"),
        (
            {"entity": "lab", "projects": {"p": {"sweep_runs": "all"}}},
            "projects.p.sweep_runs: Input should be 'card' or 'each'",
        ),
        (
            {"entity": "lab", "sweeps": {"w": {"file": "w.yaml", "project": "p", "sweep_runs": 1}}},
            "sweeps.w.sweep_runs: Input should be 'card' or 'each'",
        ),
        (
            {"entity": "lab", "sweeps": {"w": {"file": "nope.yaml", "project": "p"}}},
            "sweeps.w.file: ",
        ),
        ([1, 2], "expected a mapping"),
    ],
)
def test_bad_lab_data_names_the_field(data: Any, expected: str, tmp_path: Path) -> None:
    with pytest.raises(LabFileError) as caught:
        parse_lab(data, "lab.yaml", tmp_path)
    assert any(
        expected in line and line.startswith("lab.yaml: ") for line in caught.value.problems
    ), caught.value.problems


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    with pytest.raises(LabFileError) as caught:
        parse_lab(
            {"entity": "lab", "admins": ["x"], "chats": [{"name": "y"}]}, "lab.yaml", tmp_path
        )
    assert len(caught.value.problems) == 2


def test_missing_and_broken_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(LabFileError, match="not found"):
        load_lab(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("entity: [unclosed\n")
    with pytest.raises(LabFileError, match="not valid YAML at line"):
        load_lab(broken)


def test_settings_keep_secrets_secret_and_derive_urls(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        TELEGRAM_BOT_TOKEN="123:abc",
        WANDB_API_KEY="local-" + "x" * 40,
        WTB_TELEGRAM_API_URL="http://127.0.0.1:9/bot/",
        WANDB_BASE_URL="http://127.0.0.1:8",
        WTB_DATA_DIR=str(tmp_path),
    )
    assert isinstance(settings.telegram_bot_token, SecretStr)
    assert "123:abc" not in repr(settings) and "xxxx" not in str(settings)
    assert settings.file_url == "http://127.0.0.1:9/file/bot"
    assert settings.ui_url == "http://127.0.0.1:8"
    assert settings.db_path == tmp_path / "bot.sqlite3"
    assert settings.poll_interval == 30 and settings.idle_poll_interval is None


def test_settings_default_to_the_real_services() -> None:
    settings = Settings(_env_file=None, TELEGRAM_BOT_TOKEN="1:a", WANDB_API_KEY="k")  # type: ignore[call-arg]
    assert settings.telegram_api_url == "https://api.telegram.org/bot"
    assert settings.file_url == "https://api.telegram.org/file/bot"
    assert settings.ui_url == "https://wandb.ai"


def test_lab_round_trips_through_yaml(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump({"entity": "lab", "chats": [{"id": -5, "projects": ["a/b"]}]}))
    lab = load_lab(path)
    assert lab.chat(-5) is not None and lab.chat(-6) is None
    assert lab.chats[0].events[0] == "finished"


def test_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    names = [field.alias for field in Settings.model_fields.values()]
    assert [name for name in names if f"`{name}`" not in readme] == []


def test_a_chat_reads_times_in_its_own_zone_else_its_digests_else_the_labs():
    from config.lab import LabConfig

    lab = LabConfig.model_validate(
        {
            "entity": "lab",
            "timezone": "Asia/Tokyo",
            "chats": [
                {"id": 1, "timezone": "Europe/Berlin", "digest": {"cron": "0 9 * * *"}},
                {"id": 2, "digest": {"cron": "0 9 * * *", "timezone": "America/New_York"}},
                {"id": 3, "digest": {"cron": "0 9 * * *"}},
                {"id": 4},
            ],
        }
    )
    assert [lab.chat_zone(i) for i in (1, 2, 3, 4, 5)] == [
        "Europe/Berlin",
        "America/New_York",
        "Asia/Tokyo",
        "Asia/Tokyo",
        "Asia/Tokyo",
    ]
    assert LabConfig(entity="lab").chat_zone(1) == "UTC"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        LabConfig.model_validate({"entity": "lab", "chats": [{"id": 1, "timezone": "Mars/Base"}]})


def test_a_sweeps_own_sweep_runs_wins_over_its_projects() -> None:
    lab = LabConfig.model_validate(
        {
            "entity": "lab",
            "projects": {"p": {"sweep_runs": "each"}},
            "sweeps": {
                "own": {"file": "a.yaml", "project": "p", "sweep_runs": "card"},
                "inherits": {"file": "b.yaml", "project": "p"},
                "plain": {"file": "c.yaml", "project": "q"},
            },
        }
    )
    assert lab.sweep_runs_of("own", "p") == "card"
    assert lab.sweep_runs_of("inherits", "p") == "each"
    assert lab.sweep_runs_of("plain", "q") == "card"
    # A sweep no longer in the lab file follows its project.
    assert lab.sweep_runs_of("gone", "p") == "each"
