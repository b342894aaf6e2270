# digest: the daily news digest, as a long-running scheduler by default.
#   docker build -t digest .
#   docker run -d --name digest --env-file .env -v digest-data:/data digest
# One-off commands use the same image: docker run --rm --env-file .env -v digest-data:/data digest digest run
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Locked, hash-checked dependencies first, so the layer is cached across code changes.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY digest ./digest
COPY templates ./templates
RUN pip install --no-deps . && rm -rf /src

RUN useradd --system --uid 10001 --create-home --home-dir /data digest
USER digest
WORKDIR /data
VOLUME ["/data"]
ENV DIGEST_DATABASE_URL=sqlite:////data/digest.db \
    DIGEST_OUTPUT_DIR=/data/preview \
    DIGEST_LOG_FORMAT=json

# The scheduler touches its heartbeat at least every 30 seconds while it runs.
HEALTHCHECK --interval=1m --timeout=10s --start-period=30s --retries=3 \
    CMD ["digest", "health"]

CMD ["digest", "schedule"]
