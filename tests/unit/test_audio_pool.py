"""The audio threads: their work runs off the event loop, and its CPU time is counted and shown."""

from __future__ import annotations

import threading

import pytest

from bot.audio.codec import to_voice_clip
from bot.audio.pool import AudioPool
from bot.jobs.metrics import Metrics
from testkit.fakes.audio import make_tone


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
