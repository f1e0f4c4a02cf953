"""The W&B client's own exception hierarchy; nothing else escapes the client."""

from __future__ import annotations


class WandbError(Exception):
    """Base class of every error the W&B client raises."""


class WandbAuthError(WandbError):
    """The API key was refused."""


class WandbNotFoundError(WandbError):
    """The entity, project, run or sweep does not exist."""


class WandbUnavailableError(WandbError):
    """W&B did not answer in time (rate limit, server error, unreachable)."""


class WandbRequestError(WandbError):
    """W&B refused the request as invalid."""


class AgentError(Exception):
    """Starting or stopping a `wandb agent` process failed."""
