# voicebot: plain image mirroring README's install command. PyAV's wheel bundles FFmpeg + libopus,
# so no system ffmpeg is needed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md config.example.yaml ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip install . \
    && useradd --create-home --uid 10001 voicebot \
    && mkdir /data && chown voicebot:voicebot /data

# Config and database live on the volume: put config.yaml there (secrets via environment).
VOLUME ["/data"]
WORKDIR /data
USER voicebot
ENV VOICEBOT_CONFIG=/data/config.yaml VOICEBOT_DB=/data/voicebot.sqlite3

# /healthz answers 200 when every chat platform is connected, the database answers and the
# poller runs (health.port, default 9464, on loopback inside the container). The slim image has
# no curl, so the probe is a Python one-liner.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:9464/healthz', timeout=4).status == 200 else 1)"]

# `docker stop` sends SIGTERM: voicebot stops intake, finishes in-flight writes and exits 0.
ENTRYPOINT ["voicebot"]
CMD ["run"]
