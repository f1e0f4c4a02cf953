# The bot on a Docker host: secrets from --env-file, lab.yaml and data/ mounted.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    WTB_LAB_FILE=/app/lab.yaml \
    WTB_DATA_DIR=/app/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY wandb_client ./wandb_client
COPY config ./config
COPY examples ./examples
RUN pip install . && useradd --create-home --uid 10001 bot && mkdir -p /app/data \
    && chown bot /app/data
USER bot
VOLUME ["/app/data"]
ENTRYPOINT ["wandb-telegram-bot"]
CMD ["run"]
