"""The launchers this bot can start agents with, by the lab file's name for them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from config import LabConfig
from wandb_client.launcher import Launcher


class LauncherRegistry:
    """Map a sweep's `launcher:` (local, slurm, …) to the launcher that runs its agents."""

    def __init__(self, launchers: Iterable[Launcher]) -> None:
        """Register each launcher under its `kind`."""
        self._by_kind: dict[str, Launcher] = {}
        for launcher in launchers:
            if launcher.kind in self._by_kind:
                raise ValueError(f"two launchers of kind {launcher.kind!r}")
            self._by_kind[launcher.kind] = launcher

    @property
    def kinds(self) -> tuple[str, ...]:
        """Return the registered kinds."""
        return tuple(self._by_kind)

    def get(self, kind: str) -> Launcher:
        """Return the launcher of a kind; KeyError names the kinds there are."""
        try:
            return self._by_kind[kind]
        except KeyError:
            raise KeyError(f"no launcher {kind!r} (there are: {', '.join(self.kinds)})") from None

    def __contains__(self, kind: object) -> bool:
        """Say whether a kind is registered."""
        return kind in self._by_kind

    def problems(self, lab: LabConfig) -> list[str]:
        """Return one line per lab-file sweep whose launcher this bot does not have."""
        return [
            f"sweeps.{name}.launcher: {sweep.launcher!r} is not available here"
            f" (available: {', '.join(self.kinds)})"
            for name, sweep in lab.sweeps.items()
            if sweep.launcher not in self._by_kind
        ]

    def as_mapping(self) -> Mapping[str, Launcher]:
        """Return the launchers by kind."""
        return dict(self._by_kind)
