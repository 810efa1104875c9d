"""The voice-message clip as Telegram and Discord take it: an Ogg stream of mono Opus packets
(OpusHead, OpusTags, then audio), a duration and a waveform of at most 256 bytes, encoded at the
source's rate when libopus takes it, with the settings chosen in issue 25 (CELT only)."""

from __future__ import annotations

import struct
from functools import cache

import pytest

from bot.audio.clip import VOICE_BEFORE, to_voice_clip
from testkit.fakes.audio import decode_info, make_tone

_PAGE = struct.Struct("<4sBBqIIIB")


@cache
def tone(seconds: float, container: str, rate: int) -> bytes:
    return make_tone(seconds, container, rate=rate)


def ogg_packets(data: bytes) -> tuple[list[bytes], int, set[int]]:
    """Every packet of a one-stream Ogg file, its last granule position and the page flags."""
    packets, partial, pos, granule, flags = [], b"", 0, -1, set()
    while pos < len(data):
        magic, version, flag, page_granule, _serial, _seq, _crc, count = _PAGE.unpack_from(
            data, pos
        )
        assert (magic, version) == (b"OggS", 0)
        flags.add(flag)
        lacing, body = data[pos + 27 : pos + 27 + count], pos + 27 + count
        for value in lacing:
            partial += data[body : body + value]
            body += value
            if value < 255:
                packets.append(partial)
                partial = b""
        granule = page_granule if page_granule != -1 else granule
        pos = body
    return packets, granule, flags


@pytest.mark.parametrize(
    ("container", "rate", "opus_rate"),
    [("mp3", 24000, 24000), ("mp3", 44100, 48000), ("wav", 22050, 24000), ("wav", 16000, 16000)],
)
def test_voice_clip_is_a_mono_ogg_opus_voice_message(
    container: str, rate: int, opus_rate: int
) -> None:
    clip = to_voice_clip([tone(3.0, container, rate)])
    packets, granule, flags = ogg_packets(clip.ogg)
    head, tags, audio = packets[0], packets[1], packets[2:]
    assert head[:8] == b"OpusHead" and head[8] == 1  # version 1
    channels, pre_skip, input_rate, _gain, mapping = struct.unpack_from("<BHIhB", head, 9)
    assert (channels, mapping) == (1, 0)  # mono, the family every player takes
    assert input_rate == opus_rate  # the source's rate: nothing resampled to 48 kHz for it
    assert tags.startswith(b"OpusTags")
    assert 0x02 in flags and 0x04 in {f & 0x04 for f in flags}  # first and last page marked
    # Every audio packet is mono CELT (TOC config 16-31): the encoder got the chosen settings.
    assert all(p[0] >> 3 >= 16 and not p[0] & 0x04 for p in audio)
    # Durations agree: the Ogg granule (48 kHz), FFmpeg's decode, and what Discord is told.
    assert (granule - pre_skip) / 48000 == pytest.approx(3.0, abs=0.03)
    assert clip.duration == pytest.approx(3.0, abs=0.03)
    fmt, codec, seconds, decoded_rate, decoded_channels = decode_info(clip.ogg)
    assert (fmt, codec, decoded_rate, decoded_channels) == ("ogg", "opus", 48000, 1)
    assert seconds == pytest.approx(clip.duration, abs=0.03)
    assert len(clip.waveform) == 30 and min(clip.waveform) > 90  # 0.4 of full scale: ~102


def test_voice_clip_parts_at_different_rates_share_the_first_ones() -> None:
    clip = to_voice_clip([tone(1.0, "mp3", 24000), tone(1.5, "wav", 44100)])
    head = ogg_packets(clip.ogg)[0][0]
    assert struct.unpack_from("<I", head, 12)[0] == 24000
    assert clip.duration == pytest.approx(2.5, abs=0.06)
    assert decode_info(clip.ogg)[2] == pytest.approx(2.5, abs=0.06)


def test_voice_clip_of_a_voice_clip_is_kept_byte_for_byte() -> None:
    clip = to_voice_clip([tone(2.0, "mp3", 24000)])
    again = to_voice_clip([clip.ogg])
    assert again.ogg == clip.ogg
    assert again.duration == pytest.approx(clip.duration, abs=0.01)
    assert max(abs(a - b) for a, b in zip(again.waveform, clip.waveform, strict=True)) <= 12


def test_voice_clip_before_settings_still_make_a_48k_hybrid_clip() -> None:
    # The benchmark's baseline: the settings of before issue 25, on the same code path.
    clip = to_voice_clip([tone(2.0, "mp3", 24000)], VOICE_BEFORE)
    packets = ogg_packets(clip.ogg)[0]
    assert struct.unpack_from("<I", packets[0], 12)[0] == 48000
    assert clip.duration == pytest.approx(2.0, abs=0.03)
