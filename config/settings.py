"""Secrets and knobs from the environment and `.env`."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class Settings(BaseSettings):
    """Hold every setting the bot reads from its environment; built once at start."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    telegram_bot_token: SecretStr = Field(alias="TELEGRAM_BOT_TOKEN")
    wandb_api_key: SecretStr = Field(alias="WANDB_API_KEY")
    wandb_base_url: str | None = Field(default=None, alias="WANDB_BASE_URL")
    telegram_api_url: str = Field(
        default="https://api.telegram.org/bot", alias="WTB_TELEGRAM_API_URL"
    )
    telegram_file_url: str | None = Field(default=None, alias="WTB_TELEGRAM_FILE_URL")
    wandb_ui_url: str | None = Field(default=None, alias="WTB_WANDB_UI_URL")
    lab_file: Path = Field(default=Path("lab.yaml"), alias="WTB_LAB_FILE")
    data_dir: Path = Field(default=Path("data"), alias="WTB_DATA_DIR")
    log_level: str = Field(default="INFO", alias="WTB_LOG_LEVEL")

    poll_interval: float = Field(default=30.0, gt=0, alias="WTB_POLL_INTERVAL")
    # None: idle projects are polled as often as active ones; batching keeps that cheap.
    idle_poll_interval: float | None = Field(default=None, gt=0, alias="WTB_IDLE_POLL_INTERVAL")
    max_backoff: float = Field(default=600.0, gt=0, alias="WTB_MAX_BACKOFF")
    wandb_down_notice_after: float = Field(default=600.0, gt=0, alias="WTB_WANDB_DOWN_NOTICE_AFTER")
    watermark_overlap: float = Field(default=120.0, ge=0, alias="WTB_WATERMARK_OVERLAP")
    wandb_timeout: float = Field(default=20.0, gt=0, alias="WTB_WANDB_TIMEOUT")
    wandb_concurrency: int = Field(default=4, ge=1, le=32, alias="WTB_WANDB_CONCURRENCY")
    wandb_batch_size: int = Field(default=25, ge=1, le=100, alias="WTB_WANDB_BATCH_SIZE")
    stall_floor: float = Field(default=600.0, gt=0, alias="WTB_STALL_FLOOR")
    stall_factor: float = Field(default=10.0, gt=1, alias="WTB_STALL_FACTOR")
    delivery_interval: float = Field(default=1.0, gt=0, alias="WTB_DELIVERY_INTERVAL")
    # Telegram unreachable: a message is retried for this long, then given up with a log line.
    delivery_max_age: float = Field(default=86400.0, gt=0, alias="WTB_DELIVERY_MAX_AGE")
    delivery_max_backoff: float = Field(default=60.0, gt=0, alias="WTB_DELIVERY_MAX_BACKOFF")
    # Well above Telegram's usual answer time: a send is repeated only if its answer took longer.
    send_timeout: float = Field(default=30.0, gt=0, alias="WTB_SEND_TIMEOUT")

    max_sweep_count: int = Field(default=500, ge=1, alias="WTB_MAX_SWEEP_COUNT")
    max_agents: int = Field(default=4, ge=1, alias="WTB_MAX_AGENTS")
    agent_stagger: float = Field(default=1.0, ge=0, alias="WTB_AGENT_STAGGER")
    agent_stop_timeout: float = Field(default=30.0, gt=0, alias="WTB_AGENT_STOP_TIMEOUT")
    agent_check_interval: float = Field(default=5.0, gt=0, alias="WTB_AGENT_CHECK_INTERVAL")
    card_edit_interval: float = Field(default=5.0, ge=0, alias="WTB_CARD_EDIT_INTERVAL")
    confirm_ttl: float = Field(default=60.0, gt=0, alias="WTB_CONFIRM_TTL")
    # A stop not seen to take effect this long after it was asked for is told, with a retry.
    stop_retry_after: float = Field(default=180.0, gt=0, alias="WTB_STOP_RETRY_AFTER")
    # The `wandb` command agents run as; None means the one beside the bot's Python.
    agent_executable: str | None = Field(default=None, alias="WTB_AGENT_EXECUTABLE")

    http_host: str = Field(default="127.0.0.1", alias="WTB_HTTP_HOST")
    http_port: int | None = Field(default=None, ge=0, le=65535, alias="WTB_HTTP_PORT")
    # Webhook mode: Telegram POSTs updates to this public URL instead of being long-polled;
    # PTB's own server listens on `telegram_webhook_listen` behind the lab's HTTPS proxy.
    telegram_webhook_url: str | None = Field(default=None, alias="WTB_TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = Field(
        default=None, alias="WTB_TELEGRAM_WEBHOOK_SECRET"
    )
    telegram_webhook_listen: str = Field(
        default="127.0.0.1:8443", alias="WTB_TELEGRAM_WEBHOOK_LISTEN"
    )
    # The bearer token W&B automations send to POST /hooks/wandb; unset, the route is off.
    wandb_hook_secret: SecretStr | None = Field(default=None, alias="WTB_WANDB_HOOK_SECRET")

    @field_validator(
        "telegram_api_url",
        "wandb_base_url",
        "wandb_ui_url",
        "telegram_file_url",
        "telegram_webhook_url",
    )
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret_chars(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram accepts 1-256 of these characters and refuses setWebhook otherwise.
        if value is not None and not _TELEGRAM_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("use 1-256 characters A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("telegram_webhook_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected host:port, e.g. 0.0.0.0:8443")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        # Without the secret anyone who finds the URL could post updates as any user.
        if self.telegram_webhook_url and self.telegram_webhook_secret is None:
            raise ValueError(
                "WTB_TELEGRAM_WEBHOOK_SECRET must be set when WTB_TELEGRAM_WEBHOOK_URL is"
            )
        return self

    @property
    def webhook_listen(self) -> tuple[str, int]:
        """Return the host and port PTB's webhook server listens on."""
        host, _, port = self.telegram_webhook_listen.rpartition(":")
        return host, int(port)

    @property
    def file_url(self) -> str:
        """Return the Bot API file URL that matches the API URL."""
        if self.telegram_file_url:
            return self.telegram_file_url
        base, _, tail = self.telegram_api_url.rpartition("/")
        return f"{base}/file/{tail}"

    @property
    def ui_url(self) -> str:
        """Return the base of W&B links shown in chats."""
        if self.wandb_ui_url:
            return self.wandb_ui_url
        if self.wandb_base_url and "api.wandb.ai" not in self.wandb_base_url:
            return self.wandb_base_url
        return "https://wandb.ai"

    @property
    def db_path(self) -> Path:
        """Return the SQLite file inside the data directory."""
        return self.data_dir / "bot.sqlite3"

    @property
    def agent_log_dir(self) -> Path:
        """Return the folder where sweep agents write their logs."""
        return self.data_dir / "agents"
