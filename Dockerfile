# voicebot: plain image mirroring README's install command. PyAV's wheel bundles FFmpeg + libopus,
# so no system ffmpeg is needed.
FROM python:3.11-slim

# Optional extras: "postgres" (asyncpg, for a shared PostgreSQL database: several processes),
# "local" (offline speech-to-text, faster-whisper; the keyless default); add "local-tts" for
# offline Piper voices (GPL-3.0: see README), or "" for hosted providers on SQLite only.
ARG EXTRAS=postgres,local

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md config.example.yaml ./
COPY bot ./bot
COPY adapters ./adapters
RUN if [ -n "$EXTRAS" ]; then pip install ".[$EXTRAS]"; else pip install .; fi \
    && useradd --create-home --uid 10001 voicebot \
    && mkdir -p /data /models/voices && chown -R voicebot:voicebot /data /models

# Config and database live on /data: put config.yaml there (secrets via environment). Whisper
# models downloaded once and Piper voices (NAME.onnx + NAME.onnx.json in /models/voices) live on
# /models, so a new image does not download them again.
VOLUME ["/data", "/models"]
WORKDIR /data
USER voicebot
ENV VOICEBOT_CONFIG=/data/config.yaml VOICEBOT_DB=/data/voicebot.sqlite3 \
    VOICEBOT_MODELS=/models VOICEBOT_VOICES=/models/voices HF_HOME=/models/huggingface

# /healthz answers 200 when every chat platform is connected, the database answers and the
# poller runs (health.port, default 9464, on loopback inside the container). The slim image has
# no curl, so the probe is a Python one-liner.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:9464/healthz', timeout=4).status == 200 else 1)"]

# `docker stop` sends SIGTERM: voicebot stops intake, finishes in-flight writes and exits 0.
ENTRYPOINT ["voicebot"]
CMD ["run"]
