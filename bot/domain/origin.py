"""Where a run's code came from: its branch and commit, from tags CI set or W&B's git data."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.format import esc
from wandb_client.models import RunSnapshot

# The tags the lab's GitHub Actions workflow gives every run (examples/github-actions/).
BRANCH_TAG = "branch:"
COMMIT_TAG = "commit:"
SHORT_COMMIT = 7
# `/runs <project> branch=<name>` looks for the branch's runs among this many newest runs.
BRANCH_SCAN = 200


@dataclass(frozen=True, slots=True)
class Origin:
    """A run's branch and commit; either may be unknown."""

    branch: str | None
    commit: str | None

    @property
    def short_commit(self) -> str | None:
        """Return the commit's first seven characters, as git shows it."""
        return self.commit[:SHORT_COMMIT] if self.commit else None


def _tag_value(tags: tuple[str, ...], prefix: str) -> str | None:
    for tag in tags:
        if tag.startswith(prefix) and len(tag) > len(prefix):
            return tag[len(prefix) :]
    return None


def run_origin(run: RunSnapshot) -> Origin:
    """Return a run's branch and commit: CI's tags first, else W&B's git metadata."""
    return Origin(
        branch=_tag_value(run.tags, BRANCH_TAG) or run.git_branch,
        commit=_tag_value(run.tags, COMMIT_TAG) or run.git_commit,
    )


def is_origin_tag(tag: str) -> bool:
    """Tell whether a tag only records the branch or commit (shown on their own line)."""
    return tag.startswith((BRANCH_TAG, COMMIT_TAG))


def render_origin(run: RunSnapshot, limit: int = 40) -> str:
    """Render `branch main · commit 3f2a1c9`, labelled, or "" when neither is known."""
    origin = run_origin(run)
    parts = []
    if origin.branch:
        branch = origin.branch if len(origin.branch) <= limit else origin.branch[: limit - 1] + "…"
        parts.append(f"branch {esc(branch)}")
    if origin.short_commit:
        parts.append(f"commit <code>{esc(origin.short_commit)}</code>")
    return " · ".join(parts)


def on_branch(run: RunSnapshot, branch: str) -> bool:
    """Tell whether a run's code came from `branch`."""
    return run_origin(run).branch == branch
