"""Typed keys read and print `entity/project[/id]` paths, and refuse anything else."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.keys import BadKeyError, ProjectKey, RunKey, SweepKey
from config import parse_lab

ROUND_TRIPS = [
    (ProjectKey, "lab/wine", ProjectKey("lab", "wine")),
    (ProjectKey, "my-team/cifar_10.v2", ProjectKey("my-team", "cifar_10.v2")),
    (RunKey, "lab/wine/abc123xy", RunKey("lab", "wine", "abc123xy")),
    (RunKey, "lab/wine/run-1", RunKey("lab", "wine", "run-1")),
    (SweepKey, "lab/wine/sw33p", SweepKey("lab", "wine", "sw33p")),
]


@pytest.mark.parametrize(("cls", "text", "key"), ROUND_TRIPS)
def test_parse_and_str_round_trip(cls: Any, text: str, key: Any) -> None:
    assert cls.parse(text) == key
    assert str(key) == text
    assert key.path == text


BAD = [
    (ProjectKey, ""),
    (ProjectKey, "wine"),
    (ProjectKey, "lab/wine/abc"),
    (ProjectKey, "/wine"),
    (ProjectKey, "lab/"),
    (ProjectKey, "lab/ wine"),
    (RunKey, "lab/wine"),
    (RunKey, "lab/wine/abc/def"),
    (RunKey, "lab//abc"),
    (RunKey, "lab/wine/"),
    (RunKey, "lab/wine/a b"),
    (SweepKey, "sw33p"),
    (SweepKey, "lab/wine/sweeps/sw33p"),
]


@pytest.mark.parametrize(("cls", "text"), BAD)
def test_parse_refuses_what_is_not_a_path(cls: Any, text: str) -> None:
    with pytest.raises(BadKeyError, match="is not entity/project"):
        cls.parse(text)


def test_keys_lead_to_their_project_and_children() -> None:
    project = ProjectKey("lab", "wine")
    assert project.run("r1").project_key == project
    assert project.sweep("s1").project_key == project
    assert project.run("r1") == RunKey("lab", "wine", "r1")
    assert project.sweep("s1") == SweepKey("lab", "wine", "s1")


def test_keys_are_hashable_and_ordered() -> None:
    keys = {ProjectKey("b", "x"), ProjectKey("a", "y"), ProjectKey("a", "y")}
    assert sorted(keys) == [ProjectKey("a", "y"), ProjectKey("b", "x")]
    with pytest.raises(AttributeError):
        ProjectKey("a", "b").entity = "c"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("project", "entity"),
    [("wine", "other-team"), ("plain", "lab"), ("unknown", "lab"), ("blank", "lab")],
)
def test_entity_of_uses_the_projects_own_entity_else_the_labs(project: str, entity: str) -> None:
    lab = parse_lab(
        {
            "entity": "lab",
            "projects": {"wine": {"entity": "other-team"}, "plain": {"metric": "acc"}, "blank": {}},
        }
    )
    assert lab.entity_of(project) == entity
