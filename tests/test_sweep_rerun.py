"""Which lab entry, parameters, agents and project `/rerun` picks; its refusals in words."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.domain.commands import RerunRequest, RunRef, SweepStart
from bot.store import Store
from bot.sweeps.common import SweepError
from bot.sweeps.derived import rerun_run
from bot.sweeps.setup import new_record
from config.lab import LabConfig
from tests.harness import WINE
from wandb_client.models import RunSnapshot, SweepSnapshot

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
LAB = LabConfig.model_validate(
    {
        "entity": "lab",
        "sweeps": {
            "wine": {"file": WINE / "sweep.yaml", "project": "wine", "seed_param": "random_state"},
            "grid": {"file": WINE / "sweep-grid.yaml", "project": "wine"},
        },
    }
)
SWEEP_CONFIG = {
    "method": "random",
    "program": "train.py",
    "metric": {"name": "accuracy", "goal": "maximize"},
    "parameters": {"lr": {"min": 0.001, "max": 0.1}, "depth": {"values": [2, 4]}},
}


class FakeWandb:
    """The W&B sweep reads `rerun_run` makes, answered from memory."""

    ui_url = "https://wandb.example"

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def sweep(self, entity: str, project: str, sweep_id: str) -> SweepSnapshot:
        self.asked.append(sweep_id)
        return SweepSnapshot(entity, project, sweep_id, "", "FINISHED", "random", "", SWEEP_CONFIG)


def fake() -> Any:
    """Return a fake W&B (typed loosely: it answers only what `rerun_run` asks)."""
    return FakeWandb()


def make_run(sweep: str | None, config: Mapping[str, Any], project: str = "wine") -> RunSnapshot:
    return RunSnapshot(
        entity="lab",
        project=project,
        id="r1",
        display_name="rf-1",
        state="finished",
        url="",
        created_at=T0,
        config={k: {"value": v} for k, v in config.items()},
        sweep=sweep,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "bot.sqlite3")
    yield store
    store.close()


def started(store: Store, sweep_id: str, name: str, agents: int, gpus: tuple[int, ...]) -> None:
    request = SweepStart(name, 10, agents, gpus, "wine", "lab")
    store.sweeps.add(new_record(f"lab/wine/{sweep_id}", request, 10, 1, 1, "local", T0))


async def test_a_chat_sweeps_run_keeps_its_entry_agents_and_gpus_and_varies_the_seed(
    store: Store,
) -> None:
    started(store, "sw1", "wine", agents=4, gpus=(0, 1))
    run = make_run("sw1", {"lr": 0.01, "depth": 4, "random_state": 9})
    plan = await rerun_run(store, fake(), LAB, run, RerunRequest(RunRef("lab", "wine", "r1"), 5, 2))
    assert (plan.entry, plan.entity, plan.project, plan.gpus) == ("wine", "lab", "wine", (0, 1))
    # Never more agents than runs.
    assert plan.agents == 2 and plan.count == 2
    assert plan.config["method"] == "grid"
    assert plan.config["parameters"] == {
        "lr": {"value": 0.01},
        "depth": {"value": 4},
        "random_state": {"values": [0, 1, 2, 3, 4]},
    }


async def test_a_run_from_a_sweep_the_bot_did_not_start_needs_sweep_named(store: Store) -> None:
    run = make_run("other1", {"lr": 0.01, "depth": 4})
    request = RerunRequest(RunRef("lab", "wine", "r1"), 3, 3)
    with pytest.raises(SweepError) as caught:
        await rerun_run(store, fake(), LAB, run, request)
    assert str(caught.value) == (
        "rf-1 comes from sweep other1, which was not started from the chat: say which lab"
        " sweep runs it, e.g. sweep=<name> (known: grid, wine)."
    )
    # Named: that entry runs it, the run's own W&B sweep gives the parameters, one agent.
    named = RerunRequest(RunRef("lab", "wine", "r1"), 3, 3, "grid")
    wandb: Any = FakeWandb()
    plan = await rerun_run(store, wandb, LAB, run, named)
    assert wandb.asked == ["other1"] and plan.entry == "grid" and plan.agents == 1
    assert set(plan.config["parameters"]) == {"lr", "depth", "seed"}


async def test_a_run_from_no_sweep_takes_the_entrys_file_and_must_have_its_parameters(
    store: Store,
) -> None:
    request = RerunRequest(RunRef("lab", "wine", "r1"), 2, 2, "grid")
    plan = await rerun_run(
        store,
        fake(),
        LAB,
        make_run(None, {"n_estimators": 10, "max_depth": 2, "dataset": "wine"}),
        request,
    )
    assert plan.config["parameters"]["seed"] == {"values": [0, 1]}
    assert plan.config["program"] == "train.py" and plan.config["name"] == "grid: rf-1 ×2 seeds"
    with pytest.raises(SweepError, match="rf-1 has no value for max_depth, dataset, which"):
        await rerun_run(store, fake(), LAB, make_run(None, {"n_estimators": 10}), request)
