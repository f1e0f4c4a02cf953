"""Test-wide setup: keep every wandb file and setting of the test process in a temp dir."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The bot's own wandb.Api (wandb-core) must never read or write the developer's ~/.config,
# ~/.netrc or ./wandb, nor reach the internet.
_ROOT = Path(tempfile.mkdtemp(prefix="wtb-tests-"))
for _sub in ("wandb", "config", "cache", "data", "artifacts"):
    (_ROOT / _sub).mkdir(exist_ok=True)
os.environ.update(
    {
        "WANDB_DIR": str(_ROOT / "wandb"),
        "WANDB_CONFIG_DIR": str(_ROOT / "config"),
        "WANDB_CACHE_DIR": str(_ROOT / "cache"),
        "WANDB_DATA_DIR": str(_ROOT / "data"),
        "WANDB_ARTIFACT_DIR": str(_ROOT / "artifacts"),
        "WANDB_SILENT": "true",
        "WANDB_ERROR_REPORTING": "false",
        "WANDB_X_DISABLE_STATS": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
)
for _key in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_MODE"):
    os.environ.pop(_key, None)


@pytest.fixture(autouse=True)
def _close_stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every store a test opened: Python 3.13 reports a connection left to the GC."""
    from bot.store import Store

    opened: list[Store] = []
    original = Store.__init__

    def init(self: Store, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(Store, "__init__", init)
    yield
    for store in opened:
        store.close()
