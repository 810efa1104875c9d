"""Tests for bot.audio.codec: probing, upload preparation, voice clips, on audio made with PyAV."""

from __future__ import annotations

import io
import os
import random
import struct
import time
from fractions import Fraction
from functools import cache

import av
import pytest

from bot.audio.codec import AudioInfo, mime_for, prepare_for_upload, probe, to_voice_clip
from bot.model.errors import AudioError, AudioTooLong
from testkit.fakes.audio import decode_info, make_tone


@cache
def tone(
    seconds: float,
    container: str = "ogg",
    *,
    rate: int = 48000,
    amplitude: float = 0.4,
    channels: int = 1,
    bitrate: int | None = None,
) -> bytes:
    """make_tone, cached: generating PCM in Python is the slow part of these tests."""
    return make_tone(
        seconds, container, rate=rate, amplitude=amplitude, channels=channels, bitrate=bitrate
    )


def _video_mp4(*, with_audio: bool) -> bytes:
    """A tiny MPEG-4 video (1 s, 10 fps), optionally with 1 s of AAC sound."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = out.add_stream("aac", rate=16000) if with_audio else None
        if audio is not None:
            audio.layout = "mono"
        for i in range(10):
            frame = av.VideoFrame(64, 64, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([i * 20]) * plane.buffer_size)
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            for start in range(0, 16000, 1024):
                samples = min(1024, 16000 - start)
                sound = av.AudioFrame(format="s16", layout="mono", samples=samples)
                sound.planes[0].update(
                    bytes(range(256)) * (samples * 2 // 256) + bytes(samples * 2 % 256)
                )
                sound.sample_rate, sound.pts, sound.time_base = 16000, start, Fraction(1, 16000)
                out.mux(audio.encode(sound))
            out.mux(audio.encode(None))
    return buf.getvalue()


def _ogg_headers_only(data: bytes) -> bytes:
    """Cut an OGG/Opus file after its two header pages (OpusHead, OpusTags)."""
    second = data.index(b"OggS", 4)
    third = data.index(b"OggS", second + 4)
    return data[:third]


def _empty_wav() -> bytes:
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    return b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", 0)


# --- probe -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("container", "codec"),
    [
        ("ogg", "opus"),
        ("mp3", "mp3float"),
        ("wav", "pcm_s16le"),
        ("webm", "opus"),
        ("m4a", "aac"),
        ("flac", "flac"),
    ],
)
def test_probe_reads_each_container(container: str, codec: str) -> None:
    data = tone(2.0, container)
    info = probe(data, f"clip.{container}")
    assert info == AudioInfo(
        container=container,
        codec=codec,
        duration=pytest.approx(2.0, abs=0.06),  # type: ignore[arg-type]
        sample_rate=48000,
        channels=1,
        size=len(data),
    )


def test_probe_reports_stereo_and_rate() -> None:
    info = probe(tone(1.0, "wav", rate=22050, channels=2))
    assert (info.sample_rate, info.channels) == (22050, 2)


def test_probe_silence_is_valid_audio() -> None:
    assert probe(tone(1.5, "ogg", amplitude=0.0)).duration == pytest.approx(1.5, abs=0.03)


def test_probe_empty_bytes() -> None:
    with pytest.raises(AudioError) as err:
        probe(b"", "voice.ogg")
    assert err.value.user_message == "The file is empty."


def test_probe_random_bytes() -> None:
    # Seeded, not os.urandom: about 1 in 200 random strings happens to parse as a container with
    # no audio stream (seed 131 does), which is refused with the "no audio track" sentence.
    with pytest.raises(AudioError) as err:
        probe(random.Random(0).randbytes(4000), "voice.ogg")
    assert err.value.user_message.startswith("This file isn't audio I can read (")
    for seed in range(60):
        with pytest.raises(AudioError) as err:
            probe(random.Random(seed).randbytes(4000), "voice.ogg")
        message = err.value.user_message
        assert message.startswith("This file isn't audio I can read (") or (
            message == "This file has no audio track."
        )


def test_probe_text_file_named_ogg() -> None:
    with pytest.raises(AudioError) as err:
        probe(b"Dear diary, today I recorded nothing.\n" * 40, "voice.ogg")
    assert err.value.user_message == "This file isn't audio I can read (it looks like text)."


def test_probe_truncated_ogg_measures_what_is_there() -> None:
    full = tone(3.0, "ogg")
    half = full[: len(full) // 2]
    info = probe(half, "voice.ogg")
    decoded = decode_info(half)[2]
    assert 0.5 < info.duration < 2.0
    assert info.duration == pytest.approx(decoded, abs=0.07)


def test_probe_truncated_mp3_ignores_header_duration() -> None:
    # FFmpeg's header estimate still says 4 s for the cut file; the packets tell the truth.
    full = tone(4.0, "mp3")
    info = probe(full[: len(full) // 2])
    assert info.duration == pytest.approx(2.0, abs=0.1)


def test_probe_truncated_m4a_is_a_clear_error() -> None:
    full = tone(2.0, "m4a")  # the index (moov) is at the end, so half a file has none
    with pytest.raises(AudioError) as err:
        probe(full[: len(full) // 2], "voice.m4a")
    assert "isn't audio I can read" in err.value.user_message


def test_probe_ogg_cut_after_headers() -> None:
    with pytest.raises(AudioError) as err:
        probe(_ogg_headers_only(tone(1.0, "ogg")), "voice.ogg")
    assert (
        err.value.user_message
        == "This file isn't audio I can read (it is cut off before any sound)."
    )


def test_probe_zero_length_audio() -> None:
    with pytest.raises(AudioError) as err:
        probe(_empty_wav(), "empty.wav")
    assert err.value.user_message == "The audio is empty (0 s)."


def test_probe_video_without_sound() -> None:
    with pytest.raises(AudioError) as err:
        probe(_video_mp4(with_audio=False), "note.mp4")
    assert err.value.user_message == "This video has no sound."


def test_probe_video_with_sound() -> None:
    info = probe(_video_mp4(with_audio=True), "note.mp4")
    assert (info.container, info.codec, info.has_video) == ("mp4", "aac", True)
    assert info.duration == pytest.approx(1.0, abs=0.1)


def test_mime_for_known_and_unknown() -> None:
    assert [mime_for(c) for c in ("ogg", ".MP3", "m4a", "wav", "weird")] == [
        "audio/ogg",
        "audio/mpeg",
        "audio/mp4",
        "audio/wav",
        "application/octet-stream",
    ]


# --- prepare_for_upload ------------------------------------------------------------------------


def test_prepare_passes_accepted_file_through_untouched() -> None:
    data = tone(2.0, "ogg")
    audio = prepare_for_upload(
        data, "voice.ogg", formats=frozenset({"ogg", "mp3"}), max_bytes=10**6
    )
    assert audio.data is data
    assert (audio.filename, audio.content_type) == ("voice.ogg", "audio/ogg")
    assert audio.duration == pytest.approx(2.0, abs=0.05)


def test_prepare_fixes_extension_of_passed_through_file() -> None:
    data = tone(1.0, "mp3")
    audio = prepare_for_upload(data, "upload.bin", formats=frozenset({"mp3"}), max_bytes=10**6)
    assert audio.data is data
    assert (audio.filename, audio.content_type) == ("upload.mp3", "audio/mpeg")


def test_prepare_accepts_m4a_under_its_mp4_alias() -> None:
    audio = prepare_for_upload(
        tone(1.0, "m4a"), "a.m4a", formats=frozenset({"mp4"}), max_bytes=10**6
    )
    assert (audio.filename, audio.content_type) == ("a.mp4", "audio/mp4")


def test_prepare_reencodes_when_too_big() -> None:
    data = tone(20.0, "wav", rate=16000)  # ~640 kB
    audio = prepare_for_upload(
        data, "memo.wav", formats=frozenset({"wav", "ogg"}), max_bytes=60_000
    )
    assert len(audio.data) <= 60_000
    assert (audio.filename, audio.content_type) == ("memo.ogg", "audio/ogg")
    container, codec, seconds, _rate, channels = decode_info(audio.data)
    assert (container, codec, channels) == ("ogg", "opus", 1)
    assert seconds == pytest.approx(20.0, abs=0.1)
    assert audio.duration == pytest.approx(20.0, abs=0.1)


def test_prepare_reencodes_unsupported_container() -> None:
    data = tone(2.0, "flac")
    audio = prepare_for_upload(data, "x.flac", formats=frozenset({"mp3", "ogg"}), max_bytes=10**6)
    assert audio.data != data
    assert decode_info(audio.data)[:2] == ("ogg", "opus")
    assert decode_info(audio.data)[2] == pytest.approx(2.0, abs=0.05)


def test_prepare_reencodes_video_even_in_an_accepted_container() -> None:
    audio = prepare_for_upload(
        _video_mp4(with_audio=True), "note.mp4", formats=frozenset({"mp4", "ogg"}), max_bytes=10**6
    )
    assert audio.filename == "note.ogg"
    assert decode_info(audio.data)[:2] == ("ogg", "opus")
    with av.open(io.BytesIO(audio.data)) as container:
        assert not container.streams.video


def test_prepare_too_long_for_the_byte_limit() -> None:
    with pytest.raises(AudioTooLong) as err:
        prepare_for_upload(
            tone(40.0, "wav", rate=8000), "long.wav", formats=frozenset({"ogg"}), max_bytes=20_000
        )
    assert 0.1 < err.value.limit_minutes < 0.5
    assert str(err.value).startswith("Audio is too long: the limit is about ")
    assert str(err.value).endswith(" seconds.")


def test_prepare_audio_under_the_announced_limit_fits() -> None:
    max_bytes = 20_000
    with pytest.raises(AudioTooLong) as err:
        prepare_for_upload(
            tone(60.0, "wav", rate=8000), "a.wav", formats=frozenset(), max_bytes=max_bytes
        )
    fitting = err.value.limit_minutes * 60 * 0.9
    audio = prepare_for_upload(
        tone(round(fitting, 1), "wav", rate=8000), "a.wav", formats=frozenset(), max_bytes=max_bytes
    )
    assert len(audio.data) <= max_bytes


def test_prepare_over_max_duration() -> None:
    with pytest.raises(AudioTooLong) as err:
        prepare_for_upload(
            tone(4.0, "ogg"), "a.ogg", formats=frozenset({"ogg"}), max_bytes=10**6, max_duration=3.0
        )
    assert err.value.limit_minutes == pytest.approx(0.05)
    assert "limit is about 3 seconds" in str(err.value)


def test_prepare_rejects_non_audio() -> None:
    with pytest.raises(AudioError):
        prepare_for_upload(
            b"not audio at all" * 10, "a.ogg", formats=frozenset({"ogg"}), max_bytes=10**6
        )


# --- to_voice_clip -----------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["mp3", "wav", "ogg", "m4a"])
def test_voice_clip_from_each_container(container: str) -> None:
    clip = to_voice_clip([tone(2.0, container, rate=24000)])
    fmt, codec, seconds, rate, channels = decode_info(clip.ogg)
    assert (fmt, codec, rate, channels) == ("ogg", "opus", 48000, 1)
    assert clip.duration == pytest.approx(2.0, abs=0.06)
    assert seconds == pytest.approx(clip.duration, abs=0.03)


def test_voice_clip_downmixes_stereo() -> None:
    clip = to_voice_clip([tone(1.0, "mp3", rate=44100, channels=2)])
    assert decode_info(clip.ogg)[3:] == (48000, 1)


def test_voice_clip_joins_parts_in_order() -> None:
    parts = [tone(1.0, "mp3"), tone(1.5, "wav", amplitude=0.0), tone(0.5, "ogg")]
    clip = to_voice_clip(parts)
    assert clip.duration == pytest.approx(3.0, abs=0.06)
    assert decode_info(clip.ogg)[2] == pytest.approx(clip.duration, abs=0.03)
    # 30 slices of 100 ms: loud, then 15 silent ones, then loud again.
    wave = clip.waveform
    assert len(wave) == 30
    assert min(wave[1:9]) > 50
    assert max(wave[11:24]) < 5
    assert min(wave[26:29]) > 50


def test_voice_clip_keeps_a_providers_mono_ogg_opus_as_it_is() -> None:
    data = tone(2.0, "ogg", bitrate=32000)
    clip = to_voice_clip([data])
    assert clip.ogg == data  # not encoded again
    assert clip.duration == pytest.approx(2.0, abs=0.01)
    # The same bars as for the same sound arriving as WAV (and encoded here).
    encoded = to_voice_clip([tone(2.0, "wav")]).waveform
    assert len(clip.waveform) == len(encoded) == 20
    assert max(abs(a - b) for a, b in zip(clip.waveform, encoded, strict=True)) <= 12


@pytest.mark.parametrize(
    "data",
    [
        tone(1.0, "ogg", channels=2, bitrate=32000),  # stereo: a voice message is mono
        tone(1.0, "ogg", bitrate=192000),  # far above a voice message's size
    ],
    ids=["stereo", "high-bitrate"],
)
def test_voice_clip_encodes_other_ogg_opus_again(data: bytes) -> None:
    clip = to_voice_clip([data])
    assert clip.ogg != data
    assert decode_info(clip.ogg)[3:] == (48000, 1)
    assert len(clip.ogg) * 8 / clip.duration < 64000


def test_voice_clip_waveform_length_rules() -> None:
    for seconds, expected in ((0.05, 1), (3.0, 30), (12.0, 120), (40.0, 256)):
        clip = to_voice_clip([tone(seconds, "wav", rate=8000)])
        assert len(clip.waveform) == expected
        assert len(clip.waveform) <= max(1, clip.duration * 10)


def test_voice_clip_silence_vs_tone_waveform() -> None:
    silent = to_voice_clip([tone(2.0, "wav", amplitude=0.0)]).waveform
    loud = to_voice_clip([tone(2.0, "wav", amplitude=0.4)]).waveform
    assert max(silent) <= 1
    assert min(loud) >= 90  # 0.4 of full scale is ~102


@pytest.mark.parametrize("parts", [[], [b""], [os.urandom(3000)], [b"just some text\n" * 10]])
def test_voice_clip_rejects_empty_or_undecodable(parts: list[bytes]) -> None:
    with pytest.raises(AudioError):
        to_voice_clip(parts)


def test_voice_clip_rejects_zero_length_audio() -> None:
    with pytest.raises(AudioError) as err:
        to_voice_clip([_empty_wav()])
    assert err.value.user_message == "The speech audio was empty."


def test_voice_clip_speed_on_a_minute_of_audio() -> None:
    data = tone(60.0, "mp3", rate=24000)
    # CPU, not wall time: on a shared machine the wall clock says how busy the others are.
    start = time.thread_time()
    clip = to_voice_clip([data])
    elapsed = time.thread_time() - start
    print(f"to_voice_clip: 60 s in {elapsed:.3f} s of CPU = {60 / elapsed:.0f}x realtime")
    assert clip.duration == pytest.approx(60.0, abs=0.1)
    assert len(clip.waveform) == 256
    # Measured ~200x on 2 cores; this floor only catches a per-sample Python loop sneaking in.
    assert 60 / elapsed > 30
