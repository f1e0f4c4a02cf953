"""Typed keys for W&B projects, runs and sweeps, instead of `entity/project/id` strings."""

from __future__ import annotations

from dataclasses import dataclass


class BadKeyError(ValueError):
    """A text is not the `entity/project[/id]` path a key needs."""


def _parts(text: str, count: int, what: str) -> list[str]:
    parts = text.split("/")
    # Every part must be there and be one word: a path is stored and shown, never guessed.
    if len(parts) != count or any(not p or p != p.strip() or " " in p for p in parts):
        shape = "entity/project" + ("/id" if count == 3 else "")
        raise BadKeyError(f"{what} {text!r} is not {shape}")
    return parts


@dataclass(frozen=True, slots=True, order=True)
class ProjectKey:
    """One W&B project: `entity/project`."""

    entity: str
    project: str

    @classmethod
    def parse(cls, text: str) -> ProjectKey:
        """Read `entity/project`, raising BadKeyError for anything else."""
        entity, project = _parts(text, 2, "project")
        return cls(entity, project)

    def __str__(self) -> str:
        return f"{self.entity}/{self.project}"

    @property
    def path(self) -> str:
        """Return `entity/project`."""
        return str(self)

    def run(self, run_id: str) -> RunKey:
        """Return the key of one of this project's runs."""
        return RunKey(self.entity, self.project, run_id)

    def sweep(self, sweep_id: str) -> SweepKey:
        """Return the key of one of this project's sweeps."""
        return SweepKey(self.entity, self.project, sweep_id)


@dataclass(frozen=True, slots=True, order=True)
class RunKey:
    """One W&B run: `entity/project/run_id`."""

    entity: str
    project: str
    run_id: str

    @classmethod
    def parse(cls, text: str) -> RunKey:
        """Read `entity/project/run_id`, raising BadKeyError for anything else."""
        entity, project, run_id = _parts(text, 3, "run")
        return cls(entity, project, run_id)

    def __str__(self) -> str:
        return f"{self.entity}/{self.project}/{self.run_id}"

    @property
    def path(self) -> str:
        """Return `entity/project/run_id`."""
        return str(self)

    @property
    def project_key(self) -> ProjectKey:
        """Return the key of the run's project."""
        return ProjectKey(self.entity, self.project)


@dataclass(frozen=True, slots=True, order=True)
class SweepKey:
    """One W&B sweep: `entity/project/sweep_id`."""

    entity: str
    project: str
    sweep_id: str

    @classmethod
    def parse(cls, text: str) -> SweepKey:
        """Read `entity/project/sweep_id`, raising BadKeyError for anything else."""
        entity, project, sweep_id = _parts(text, 3, "sweep")
        return cls(entity, project, sweep_id)

    def __str__(self) -> str:
        return f"{self.entity}/{self.project}/{self.sweep_id}"

    @property
    def path(self) -> str:
        """Return `entity/project/sweep_id`."""
        return str(self)

    @property
    def project_key(self) -> ProjectKey:
        """Return the key of the sweep's project."""
        return ProjectKey(self.entity, self.project)
