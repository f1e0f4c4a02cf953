"""A W&B-compatible server on loopback that the real wandb 0.31 SDK accepts."""

from tests.servers.wandb.app import ServerThread, WandbServer
from tests.servers.wandb.sdk import (
    API_KEY,
    fast_agent_cli,
    public_api,
    sdk_env,
    wait_for,
    wandb_cli,
)

__all__ = [
    "API_KEY",
    "ServerThread",
    "WandbServer",
    "fast_agent_cli",
    "public_api",
    "sdk_env",
    "wait_for",
    "wandb_cli",
]
