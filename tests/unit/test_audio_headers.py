"""Durations read from container headers agree with a full demux, and odd files fall back."""

from __future__ import annotations

import struct

import pytest

from bot.audio import codec as audio
from bot.audio import probe as probing
from bot.audio.headers import read_header
from testkit.fakes.audio import make_tone


def _demuxed(data: bytes, monkeypatch: pytest.MonkeyPatch) -> audio.AudioInfo:
    """What probe() measures with the header fast path switched off (the full demux)."""
    with monkeypatch.context() as patch:
        patch.setattr(probing, "read_header", lambda data: None)
        return audio.probe(data)


def _pre_skip(ogg: bytes) -> int:
    at = ogg.index(b"OpusHead")
    return int(struct.unpack_from("<H", ogg, at + 10)[0])


@pytest.mark.parametrize(
    ("seconds", "rate", "channels"), [(2.0, 48000, 1), (0.37, 16000, 1), (7.5, 24000, 2)]
)
def test_read_header_ogg_opus_matches_full_demux(
    seconds: float, rate: int, channels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ogg = make_tone(seconds, "ogg", rate=rate, channels=channels)
    assert _pre_skip(ogg) > 0  # the encoder's delay is in the file and must be left out
    header = read_header(ogg)
    assert header is not None
    full = _demuxed(ogg, monkeypatch)
    assert header.duration == pytest.approx(full.duration, abs=1 / 48000)
    assert header.duration == pytest.approx(seconds, abs=0.021)  # whole 20 ms frames
    assert (header.container, header.codec) == (full.container, full.codec) == ("ogg", "opus")
    assert header.channels == channels
    info = audio.probe(ogg)
    assert info.duration == header.duration and info.size == len(ogg)


@pytest.mark.parametrize(("seconds", "rate", "channels"), [(2.0, 16000, 1), (1.234, 44100, 2)])
def test_read_header_wav_matches_full_demux(
    seconds: float, rate: int, channels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    wav = make_tone(seconds, "wav", rate=rate, channels=channels)
    header = read_header(wav)
    assert header is not None
    assert header.duration == int(seconds * rate) / rate
    full = _demuxed(wav, monkeypatch)
    assert header.duration == pytest.approx(full.duration, abs=1 / rate)
    assert (header.codec, header.sample_rate, header.channels) == (
        full.codec,
        full.sample_rate,
        full.channels,
    )


def test_read_header_truncated_ogg_falls_back_to_demux(monkeypatch: pytest.MonkeyPatch) -> None:
    ogg = make_tone(3.0, "ogg")
    cut = ogg[: len(ogg) - 700]  # the last page is cut off: its granule position is a lie
    assert read_header(cut) is None
    info = audio.probe(cut)
    assert 1.0 < info.duration < 3.0
    assert info.duration == _demuxed(cut, monkeypatch).duration


def test_read_header_damaged_page_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    ogg = bytearray(make_tone(3.0, "ogg"))
    second_audio_page = ogg.index(b"OggS", ogg.index(b"OpusTags") + 100)
    ogg[second_audio_page : second_audio_page + 4] = b"XXXX"
    assert read_header(bytes(ogg)) is None
    info = audio.probe(bytes(ogg))  # the demuxer resynchronises; it never raises for this
    assert info.duration > 0


def test_read_header_undecodable_first_packet_falls_back() -> None:
    ogg = bytearray(make_tone(1.0, "ogg"))
    tags = ogg.index(b"OpusTags")
    first_audio = ogg.index(b"OggS", tags)
    count = ogg[first_audio + 26]
    body = first_audio + 27 + count
    # An Opus packet whose TOC says "code 3" with a zero frame count is invalid (RFC 6716 3.2.5).
    ogg[body : body + 2] = bytes([0x03, 0x00])
    assert read_header(bytes(ogg)) is None


def test_read_header_truncated_wav_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    wav = make_tone(2.0, "wav", rate=16000)
    cut = wav[: len(wav) // 2]
    assert read_header(cut) is None
    info = audio.probe(cut)
    assert info.duration == pytest.approx(1.0, abs=0.01)
    assert info.duration == _demuxed(cut, monkeypatch).duration


@pytest.mark.parametrize("container", ["mp3", "flac", "m4a", "webm"])
def test_read_header_other_containers_demuxed(container: str) -> None:
    data = make_tone(1.0, container)
    assert read_header(data) is None
    assert audio.probe(data).duration == pytest.approx(1.0, abs=0.06)


def test_read_header_garbage_is_not_a_header() -> None:
    assert read_header(b"OggS" + b"\x00" * 10) is None
    assert read_header(b"RIFF\x00\x00\x00\x00WAVEjunk") is None
    assert read_header(b"hello") is None
