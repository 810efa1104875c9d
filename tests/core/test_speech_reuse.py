"""An identical /speak is answered from the stored clip: no provider request, no encode, no
charge; any difference in text, voice, model or speed is synthesized anew."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.model.job import JobState
from testkit.core import CoreWithFakes
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import ORIGIN, harness_config


async def test_speech_reuse_same_request_sends_the_stored_clip(
    h: CoreWithFakes, nano: FakeNanoGpt
) -> None:
    assert h.core is not None
    first = await h.core.service.speak(ORIGIN, "Hello there.")
    await h.drive()
    again = await h.core.service.speak(ORIGIN, "Hello there.")
    third = await h.core.service.speak(ORIGIN, "Hello there.")
    await h.drive()
    assert nano.submits["tts"] == 1
    assert again.state is JobState.COMPLETED and again.options["reused_from"] == first.id
    # A reuse of a reuse points at the job that holds the clip.
    assert third.options["reused_from"] == first.id
    [(one, clip1), (two, clip2), (three, clip3)] = h.out.delivered
    assert [one.id, two.id, three.id] == [first.id, again.id, third.id]
    assert clip1 is not None and clip2 is not None and clip3 is not None
    assert clip1.ogg == clip2.ogg == clip3.ogg and clip2.duration == clip1.duration
    assert clip2.waveform == clip1.waveform
    assert await h.core.store.kept.load_blob(again.id, "output") is None  # not stored twice


@pytest.mark.parametrize(
    ("text", "voice", "model"),
    [
        ("Hello there!", None, None),
        ("Hello there.", "am_adam", None),
        ("Hello there.", None, "Elevenlabs-V3"),
    ],
)
async def test_speech_reuse_any_difference_is_synthesized_anew(
    h: CoreWithFakes, nano: FakeNanoGpt, text: str, voice: str | None, model: str | None
) -> None:
    assert h.core is not None
    await h.core.service.speak(ORIGIN, "Hello there.")
    await h.drive()
    other = await h.core.service.speak(ORIGIN, text, voice=voice, model=model)
    await h.drive()
    assert nano.submits["tts"] == 2 and "reused_from" not in other.options


async def test_speech_reuse_other_speed_is_synthesized_anew(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    for speed, submits in ((1.0, 1), (1.0, 1), (1.25, 2)):
        # The speed is the operator's: a restart with another one says the same text anew.
        h = CoreWithFakes(harness_config(tmp_path, nano, canto, tts={"speed": speed}))
        core = await h.open()
        try:
            await core.service.speak(ORIGIN, "Hello there.")
            await h.drive()
        finally:
            await h.close()
        assert nano.submits["tts"] == submits


async def test_speech_reuse_is_free_and_outside_the_limits(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    limits = {"daily_tts_chars_per_user": 20}
    cfg = harness_config(tmp_path, nano, canto, tts={"model": "Elevenlabs-V3"}, limits=limits)
    h = CoreWithFakes(cfg)
    core = await h.open()
    try:
        await core.service.speak(ORIGIN, "Twelve chars")
        await h.drive()
        # A second paid one would pass 20 characters today; the same clip again costs nothing.
        again = await core.service.speak(ORIGIN, "Twelve chars")
        await h.drive()
        assert nano.submits["tts"] == 1 and again.options["reused_from"]
        [row] = await core.store.usage.usage(0.0)
        assert row["jobs"] == 2 and row["cost"] == pytest.approx(0.05)  # paid once
        activity = await core.store.usage.activity(
            ORIGIN.platform, ORIGIN.user_id, ORIGIN.chat_id, started_since=0.0, day=0.0
        )
        assert activity.user_chars == 12 and activity.started == 1
    finally:
        await h.close()
