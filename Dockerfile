# The bot on a Docker host: secrets from .env, lab.yaml and data/ mounted (docker-compose.yml).
FROM python:3.13-slim

# Extras of the package to install beside the bot: `examples` brings scikit-learn for the
# bundled wine sweep; a lab's own training dependencies go into an image built FROM this one.
ARG EXTRAS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WTB_LAB_FILE=/app/lab.yaml \
    WTB_DATA_DIR=/app/data \
    WTB_HTTP_HOST=0.0.0.0 \
    WTB_HTTP_PORT=8080

WORKDIR /app
# tini reaps the processes that sweep agents leave behind when they are killed.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY wandb_client ./wandb_client
COPY config ./config
COPY examples ./examples
# Not editable: the image runs the installed copy, only the running dependency set. The
# package pins its dependencies' ranges in pyproject.toml, which DL3013 cannot see.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" \
    && useradd --create-home --uid 10001 bot && mkdir -p /app/data && chown 10001 /app/data
USER 10001
VOLUME ["/app/data"]
EXPOSE 8080
HEALTHCHECK --interval=60s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["tini", "--", "wandb-telegram-bot"]
CMD ["run"]
