"""Decode any audio to mono s16 PCM frames, and encode such frames to OGG/Opus (PyAV)."""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer

from bot.audio.headers import is_wav
from bot.model.errors import AudioError
from bot.text import msg

_LOGGER = logging.getLogger(__name__)

# Errors PyAV raises for data it cannot parse; InvalidDataError is both FFmpegError and ValueError.
AV_ERRORS = (av.FFmpegError, ValueError, EOFError, OSError)
_WAV_PROBE = {"probesize": "4096"}


def open_audio(data: bytes) -> InputContainer:
    """Open ``data`` for demuxing.

    Raises:
        AudioError: not a container FFmpeg reads, with a sentence saying what it looks like.
    """
    try:
        if is_wav(data):
            # FFmpeg's stream probe reads up to 5 MB of a WAV (all of a TTS reply) to learn what
            # its header already says: 7-10 ms for 4 s of Piper speech, 0.35 ms with a small
            # probe (the fmt chunk comes first).
            return av.open(io.BytesIO(data), mode="r", format="wav", options=_WAV_PROBE)
        return av.open(io.BytesIO(data), mode="r")
    except AV_ERRORS as exc:
        if _looks_like_text(data):
            message = msg("This file isn't audio I can read (it looks like text).")
        elif isinstance(exc, EOFError):
            message = msg("This file isn't audio I can read (it is cut off before any sound).")
        else:
            message = msg("This file isn't audio I can read (unknown or damaged format).")
        raise AudioError(f"cannot open audio: {exc}", user_message=message) from exc


def _looks_like_text(data: bytes) -> bool:
    head = data[:1024]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch.isspace() for ch in text)


def audio_stream(container: InputContainer) -> AudioStream:
    """The first audio stream.

    Raises:
        AudioError: there is none (a video without sound, a file without an audio track).
    """
    if container.streams.audio:
        return container.streams.audio[0]
    if container.streams.video:
        raise AudioError(
            "video without an audio track", user_message=msg("This video has no sound.")
        )
    raise AudioError("no audio stream", user_message=msg("This file has no audio track."))


def pcm_frames(
    data: bytes,
    rate: int | Callable[[int], int],
    frame_size: int | None = None,
    *,
    frame_ms: int | None = None,
) -> Iterator[AudioFrame]:
    """Decode the first audio stream to mono s16 at ``rate``, stopping quietly at truncation.

    ``rate``: the rate out, or a function of the stream's own rate that picks it (an encoder
    taking the source's rate as it is spares a resampling pass). ``frame_size``: samples per
    frame out, the encoder's (else PyAV re-frames every frame once more before encoding:
    measured 5-9 % of a voice clip's CPU); ``frame_ms`` gives it in milliseconds instead.
    """
    if not data:
        raise AudioError("empty audio part", user_message=msg("The speech audio was empty."))
    with open_audio(data) as container:
        stream = audio_stream(container)
        out_rate = rate if isinstance(rate, int) else rate(stream.sample_rate or 48000)
        if frame_ms is not None:
            frame_size = out_rate * frame_ms // 1000
        resampler = av.AudioResampler(
            format="s16", layout="mono", rate=out_rate, frame_size=frame_size
        )
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except AV_ERRORS:
                    continue  # one damaged packet; the decoder resynchronises on the next
                for frame in frames:
                    yield from resampler.resample(frame)
        except AV_ERRORS as exc:
            _LOGGER.info("audio ends early (%s); using what decoded", exc)
    yield from resampler.resample(None)


def encode_ogg(
    frames: Iterable[AudioFrame],
    *,
    rate: int | None,
    bit_rate: int,
    options: dict[str, str],
) -> bytes:
    """Encode mono s16 frames at ``rate`` to OGG/Opus, restamping them so joined parts line up.

    ``rate`` None: the first frame's (48 kHz when there is none); libopus takes 8, 12, 16, 24
    and 48 kHz.
    """
    source = iter(frames)
    first = next(source, None)
    if rate is None:
        rate = 48000 if first is None else first.sample_rate
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=rate, options=dict(options))
        stream.layout = "mono"
        stream.bit_rate = bit_rate
        pts = 0
        for frame in itertools.chain(() if first is None else (first,), source):
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += frame.samples
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()
