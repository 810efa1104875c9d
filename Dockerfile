# voicebot: plain image mirroring README's install command. PyAV's wheel bundles FFmpeg + libopus,
# so no system ffmpeg is needed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md config.example.yaml ./
COPY bot ./bot
COPY adapters ./adapters
RUN pip install ".[postgres]" \
    && useradd --create-home --uid 10001 voicebot \
    && mkdir /data && chown voicebot:voicebot /data

# Config and database live on the volume: put config.yaml there (secrets via environment).
VOLUME ["/data"]
WORKDIR /data
USER voicebot
ENV VOICEBOT_CONFIG=/data/config.yaml VOICEBOT_DB=/data/voicebot.sqlite3

# `docker stop` sends SIGTERM: voicebot stops intake, finishes in-flight writes and exits 0.
ENTRYPOINT ["voicebot"]
CMD ["run"]
