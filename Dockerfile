# The bot on a Docker host: secrets from --env-file, lab.yaml and data/ mounted.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    WTB_LAB_FILE=/app/lab.yaml \
    WTB_DATA_DIR=/app/data \
    WTB_HTTP_HOST=0.0.0.0 \
    WTB_HTTP_PORT=8080

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY wandb_client ./wandb_client
COPY config ./config
COPY examples ./examples
# tini reaps the processes that sweep agents leave behind when they are killed.
RUN apt-get update && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
RUN pip install . && useradd --create-home --uid 10001 bot && mkdir -p /app/data \
    && chown bot /app/data
USER bot
VOLUME ["/app/data"]
EXPOSE 8080
HEALTHCHECK --interval=60s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"
ENTRYPOINT ["tini", "--", "wandb-telegram-bot"]
CMD ["run"]
