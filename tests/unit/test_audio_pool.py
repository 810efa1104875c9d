"""The audio threads: their work runs off the event loop, and its CPU time is counted and shown."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from bot.audio.codec import to_voice_clip
from bot.audio.pool import AudioPool, default_threads
from bot.config.load import parse_config
from bot.jobs.metrics import Metrics
from bot.model.errors import ConfigError
from testkit.fakes.audio import make_tone
from testkit.support import config_dict


async def test_audio_pool_counts_the_cpu_of_its_steps_and_metrics_show_it() -> None:
    pool = AudioPool(threads=1)
    metrics = Metrics()
    metrics.count_audio_cpu(lambda: pool.cpu_seconds)
    loop_thread = threading.get_ident()
    try:
        assert pool.cpu_seconds == 0.0
        where = await pool.run(threading.get_ident)
        assert where != loop_thread
        mp3 = make_tone(5.0, "mp3")
        clip = await pool.run(to_voice_clip, [mp3])
        spent = pool.cpu_seconds
        # Five seconds of Opus encoding is real work; nothing else ran on that thread.
        assert clip.duration > 4.5
        assert 0.001 < spent < 5.0
        shown = metrics.render().decode()
        line = next(
            x for x in shown.splitlines() if x.startswith("voicebot_audio_cpu_seconds_total")
        )
        assert float(line.split()[-1]) == spent
    finally:
        pool.close()


async def test_audio_pool_counts_a_step_that_fails() -> None:
    pool = AudioPool(threads=1)

    def busy_then_fail() -> None:
        sum(i * i for i in range(200_000))
        raise ValueError("bad audio")

    try:
        with pytest.raises(ValueError, match="bad audio"):
            await pool.run(busy_then_fail)
        assert pool.cpu_seconds > 0.001
    finally:
        pool.close()


async def test_audio_pool_spreads_steps_over_its_threads() -> None:
    pool = AudioPool(threads=2)
    both = threading.Barrier(2, timeout=5)

    def meet() -> int:
        both.wait()  # returns only if the other step runs at the same time, on another thread
        return threading.get_ident()

    try:
        assert pool.threads == 2
        first, second = await asyncio.gather(pool.run(meet), pool.run(meet))
        assert first != second
    finally:
        pool.close()


def test_audio_threads_from_the_config_or_the_cores(tmp_path: Path) -> None:
    data = config_dict(tmp_path)
    assert parse_config(data, env={}).jobs.audio_threads is None
    assert AudioPool().threads == default_threads() == max(1, (os.cpu_count() or 2) - 1)
    data["jobs"]["audio_threads"] = 3
    assert parse_config(data, env={}).jobs.audio_threads == 3
    data["jobs"]["audio_threads"] = 0
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    assert "jobs.audio_threads: must be greater than 0" in info.value.problems
