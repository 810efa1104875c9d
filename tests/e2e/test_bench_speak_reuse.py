"""The /speak reuse benchmark runs in its smallest size and says what it measured."""

from __future__ import annotations

from bench.speak_reuse import measure


async def test_bench_speak_reuse_pays_and_encodes_once() -> None:
    result = await measure(requests=3, clip_seconds=1.0)
    before, after = result["before"], result["after"]
    assert (before["provider_requests"], after["provider_requests"]) == (3, 1)
    assert 0 < after["audio_cpu_ms"] < before["audio_cpu_ms"]
