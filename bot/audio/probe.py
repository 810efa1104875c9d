"""What an upload is: container, codec and duration, from its header or by demuxing (PyAV)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import av
from av.audio.stream import AudioStream
from av.container import InputContainer

from bot.audio.headers import read_header
from bot.audio.pcm import AV_ERRORS, audio_stream, open_audio, pcm_frames
from bot.model.errors import AudioError
from bot.text import msg

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What :func:`probe` found: container (extension-style name), codec, duration and size."""

    container: str
    codec: str
    duration: float
    sample_rate: int
    channels: int
    size: int
    has_video: bool = False


def probe(data: bytes, filename: str | None = None) -> AudioInfo:
    """Identify ``data`` and measure its audio duration.

    Ogg/Opus (every Telegram and Discord voice note) and PCM WAV are read from their headers,
    exactly and without demuxing: the last Ogg page's granule position less the Opus pre-skip,
    the WAV data chunk's size (see :mod:`bot.audio.headers`). Anything else, or anything odd in
    those, is demuxed: the duration comes from packet timestamps (no decoding), because header
    durations are wrong for truncated MP3/FLAC; the first packets are decoded to prove the audio
    is readable.

    Raises:
        AudioError: empty, unreadable, soundless or zero-length input.
    """
    if not data:
        raise AudioError("empty audio file", user_message=msg("The file is empty."))
    header = read_header(data)
    if header is not None and header.duration > 0:
        return AudioInfo(
            container=header.container,
            codec=header.codec,
            duration=header.duration,
            sample_rate=header.sample_rate,
            channels=header.channels,
            size=len(data),
        )
    info = _demuxed(data, filename)
    if info.duration <= 0:
        raise AudioError(
            "audio stream has no samples", user_message=msg("The audio is empty (0 s).")
        )
    return info


def _demuxed(data: bytes, filename: str | None) -> AudioInfo:
    """What demuxing ``data`` finds (decoding it all only when packets carry no timestamps)."""
    with open_audio(data) as container:
        stream = audio_stream(container)
        has_video = bool(container.streams.video)
        name = _container_name(container.format.name, stream, has_video, filename)
        duration = _measure(container, stream)
        if duration is None:
            duration = _decoded_seconds(data)
        ctx = stream.codec_context
        return AudioInfo(
            container=name,
            codec=ctx.name,
            duration=duration,
            sample_rate=ctx.sample_rate,
            channels=ctx.channels,
            size=len(data),
            has_video=has_video,
        )


def _container_name(fmt: str, stream: AudioStream, has_video: bool, filename: str | None) -> str:
    """Map FFmpeg's demuxer name ("mov,mp4,m4a,...") to the extension a provider would expect."""
    names = fmt.split(",")
    if "ogg" in names:
        return "ogg"
    if "matroska" in names:
        ext = _ext(filename)
        webm_audio = stream.codec_context.name in ("opus", "vorbis")
        return "webm" if webm_audio and ext != "mkv" else "mkv"
    if "mov" in names:
        return "mp4" if has_video else "m4a"
    return names[0]


def _measure(container: InputContainer, stream: AudioStream) -> float | None:
    """Return seconds spanned by the packets (None when they carry no timestamps).

    Raises:
        AudioError: packets exist but none decodes.
    """
    first: int | None = None
    end = 0
    timed = True
    decoded = False
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None or not packet.duration:
                timed = False
            else:
                first = packet.pts if first is None else min(first, packet.pts)
                end = max(end, packet.pts + packet.duration)
            decoded = decoded or _decodes(packet, stream)
    except AV_ERRORS as exc:
        # A truncated file: keep what was read so far.
        _LOGGER.info("audio ends early (%s); measuring what was read", exc)
    if not decoded:
        decoded = _decodes(None, stream)  # flush: some decoders hold the first frames back
    if first is None and timed:
        return 0.0  # no packets at all
    if not decoded:
        raise AudioError(
            "no audio packet decodes",
            user_message=msg("This file isn't audio I can read (the sound data is damaged)."),
        )
    if not timed or first is None:
        return None
    # Negative first timestamps are encoder delay (Opus pre-skip, AAC priming), not audio.
    return float((end - max(first, 0)) * stream.time_base) if stream.time_base else None


def _decodes(packet: av.Packet[AudioStream] | None, stream: AudioStream) -> bool:
    try:
        frames = stream.decode(packet)
    except AV_ERRORS:
        return False
    return any(frame.samples for frame in frames)


def _decoded_seconds(data: bytes) -> float:
    rate = 8000  # only counting; a low rate keeps the resampler cheap
    return sum(frame.samples for frame in pcm_frames(data, rate)) / rate


def _ext(filename: str | None) -> str:
    return os.path.splitext(filename or "")[1].lower().lstrip(".")
