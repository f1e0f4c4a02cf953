"""Keep the import rules of DESIGN.md: who may import whom, and a pure domain."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = ("bot", "handlers", "wandb_client", "config")
# bot/domain is pure: no I/O, no clock, no Telegram, no database, no network, no processes.
DOMAIN_FORBIDDEN = (
    "telegram",
    "sqlite3",
    "aiohttp",
    "asyncio",
    "wandb",
    "subprocess",
    "os",
    "socket",
    "httpx",
    "matplotlib",
    "time",
    "pathlib",
)


def modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((REPO / package).rglob("*.py")):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        yield name.removesuffix(".__init__"), path


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def ours(name: str) -> bool:
    return name.split(".")[0] in OURS


ALL = [(name, path) for package in OURS for name, path in modules(package)]


@pytest.mark.parametrize(("name", "path"), [m for m in ALL if m[0].startswith("config")])
def test_config_imports_nothing_of_ours(name: str, path: Path) -> None:
    assert {i for i in imports_of(path) if ours(i) and not i.startswith("config")} == set()


@pytest.mark.parametrize(("name", "path"), [m for m in ALL if m[0].startswith("wandb_client")])
def test_wandb_client_imports_nothing_of_ours(name: str, path: Path) -> None:
    assert {i for i in imports_of(path) if ours(i) and not i.startswith("wandb_client")} == set()


@pytest.mark.parametrize(("name", "path"), [m for m in ALL if m[0].startswith("bot.domain")])
def test_domain_is_pure(name: str, path: Path) -> None:
    found = imports_of(path)
    allowed = ("bot.domain", "wandb_client.models", "config")
    assert {i for i in found if ours(i) and not i.startswith(allowed)} == set()
    assert {i for i in found if i.split(".")[0] in DOMAIN_FORBIDDEN} == set()
    source = path.read_text(encoding="utf-8")
    for clock in ("datetime.now(", "datetime.utcnow(", "time.time(", "date.today("):
        assert clock not in source, f"{name} reads the clock; pass `now` in"


@pytest.mark.parametrize(("name", "path"), [m for m in ALL if m[0].startswith("handlers")])
def test_handlers_never_import_the_composition_root(name: str, path: Path) -> None:
    assert "bot.app" not in imports_of(path)
    assert not any(
        i.startswith("wandb") and not i.startswith("wandb_client") for i in imports_of(path)
    )


@pytest.mark.parametrize(
    ("name", "path"), [m for m in ALL if m[0] not in ("bot.app", "bot.__main__")]
)
def test_nothing_imports_the_composition_root(name: str, path: Path) -> None:
    assert "bot.app" not in imports_of(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert relative == [], "use absolute imports"


@pytest.mark.parametrize(("name", "path"), [m for m in ALL if not m[0].startswith("config")])
def test_only_config_reads_the_environment(name: str, path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    if name.startswith("wandb_client"):
        # The client hands W&B's own variables to the subprocesses it starts.
        return
    assert "os.environ" not in source and "getenv(" not in source


def test_every_public_module_has_a_docstring() -> None:
    missing = [name for name, path in ALL if not ast.get_docstring(ast.parse(path.read_text()))]
    assert missing == []
