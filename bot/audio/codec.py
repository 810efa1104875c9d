"""Fit uploads to a provider's formats and limits (the audio surface the rest of the bot calls)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from av.audio.frame import AudioFrame

from bot.audio.clip import to_voice_clip
from bot.audio.pcm import encode_ogg, pcm_frames
from bot.audio.probe import AudioInfo, probe
from bot.model.errors import AudioTooLong
from bot.model.speech import AudioInput
from bot.text import Duration, msg

__all__ = [
    "AudioInfo",
    "encode_upload",
    "estimate_bytes",
    "mime_for",
    "pcm_frames",
    "prepare_for_upload",
    "probe",
    "seconds_fitting",
    "to_voice_clip",
    "too_long",
]

_LOGGER = logging.getLogger(__name__)

_MIME = {
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": "audio/ogg",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "webm": "audio/webm",
    "mkv": "audio/x-matroska",
    "m4a": "audio/mp4",
    "mp4": "audio/mp4",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "amr": "audio/amr",
}

# Extension names for the same container: a provider accepting one of them accepts the file.
_ALIASES = {
    "ogg": ("ogg", "oga", "opus"),
    "m4a": ("m4a", "mp4"),
    "mp4": ("mp4", "m4a"),
}

# Speech needs no more than 16 kHz; Opus encodes it natively (SILK wideband).
_UPLOAD_RATE = 16000
_UPLOAD_BITRATES = (32000, 16000, 8000, 6000)
# OGG page headers and lacing with 60 ms packets cost under 1 kbit/s; this keeps estimates safe.
_OGG_OVERHEAD_BPS = 1000
_OGG_HEADER_BYTES = 4096
_UPLOAD_OPUS_OPTIONS = {"application": "voip", "vbr": "constrained", "frame_duration": "60"}


def mime_for(container: str) -> str:
    """Return the MIME type for a container/extension name (octet-stream when unknown)."""
    return _MIME.get(container.lower().lstrip("."), "application/octet-stream")


def prepare_for_upload(
    data: bytes,
    filename: str,
    *,
    formats: frozenset[str],
    max_bytes: int,
    max_duration: float | None = None,
    info: AudioInfo | None = None,
) -> AudioInput:
    """Return audio a provider accepts: the original bytes when possible, else small mono Opus.

    Args:
        data: the file as the user sent it.
        filename: its name, used for the upload's stem and extension.
        formats: container/extension names the provider accepts directly.
        max_bytes: the provider's upload limit.
        max_duration: the provider's duration limit in seconds, if any.
        info: what :func:`probe` said of ``data``, when the caller probed it already.

    Raises:
        AudioError: the input is not usable audio (see :func:`probe`).
        AudioTooLong: over ``max_duration``, or too long to fit ``max_bytes`` at the lowest bitrate.
    """
    info = info or probe(data, filename)
    if max_duration is not None and info.duration > max_duration:
        raise too_long(max_duration / 60)
    accepted = _accepted_name(info.container, formats)
    if accepted and not info.has_video and info.size <= max_bytes:
        return AudioInput(data, _with_ext(filename, accepted), mime_for(accepted), info.duration)
    _LOGGER.debug(
        "re-encoding %s (%s, %d bytes, video=%s) for upload",
        filename,
        info.container,
        info.size,
        info.has_video,
    )
    return _reencode_for_upload(data, filename, info.duration, max_bytes)


def encode_upload(
    frames: Iterable[AudioFrame], *, rate: int, bit_rate: int, extra: dict[str, str] | None = None
) -> bytes:
    """Encode mono s16 frames at ``rate`` to OGG/Opus with the upload settings (plus ``extra``
    encoder options)."""
    options = {**_UPLOAD_OPUS_OPTIONS, **(extra or {})}
    return encode_ogg(frames, rate=rate, bit_rate=bit_rate, options=options)


def estimate_bytes(duration: float, bit_rate: int) -> float:
    """About how large ``duration`` seconds of upload Opus at ``bit_rate`` will be."""
    return duration * (bit_rate + _OGG_OVERHEAD_BPS) / 8 + _OGG_HEADER_BYTES


def seconds_fitting(max_bytes: int, bit_rate: int) -> float:
    """How many seconds of upload Opus at ``bit_rate`` fit in ``max_bytes``."""
    return max(0, max_bytes - _OGG_HEADER_BYTES) * 8 / (bit_rate + _OGG_OVERHEAD_BPS)


def _reencode_for_upload(data: bytes, filename: str, duration: float, max_bytes: int) -> AudioInput:
    for bit_rate in _UPLOAD_BITRATES:
        if estimate_bytes(duration, bit_rate) > max_bytes:
            continue  # would not fit; don't spend CPU finding out
        ogg = encode_ogg(
            pcm_frames(data, _UPLOAD_RATE, _UPLOAD_RATE * 60 // 1000),
            rate=_UPLOAD_RATE,
            bit_rate=bit_rate,
            options=_UPLOAD_OPUS_OPTIONS,
        )
        if len(ogg) <= max_bytes:
            _LOGGER.debug("re-encoded to %d bytes at %d bit/s", len(ogg), bit_rate)
            return AudioInput(ogg, _with_ext(filename, "ogg"), mime_for("ogg"), duration)
        _LOGGER.debug("%d bit/s gave %d bytes > %d", bit_rate, len(ogg), max_bytes)
    raise too_long(seconds_fitting(max_bytes, _UPLOAD_BITRATES[-1]) / 60)


def too_long(limit_minutes: float) -> AudioTooLong:
    """The error for audio over ``limit_minutes``, saying the limit."""
    seconds = round(limit_minutes) * 60 if limit_minutes >= 10 else round(limit_minutes * 60)
    return AudioTooLong(
        msg("Audio is too long: the limit is about {duration}.", duration=Duration(seconds)),
        limit_minutes=limit_minutes,
    )


def _accepted_name(container: str, formats: frozenset[str]) -> str | None:
    wanted = {f.lower().lstrip(".") for f in formats}
    for name in _ALIASES.get(container, (container,)):
        if name in wanted:
            return name
    return None


def _with_ext(filename: str, ext: str) -> str:
    base = os.path.basename(filename or "")
    stem, old = os.path.splitext(base)
    if old.lower().lstrip(".") == ext:
        return base
    return f"{stem or 'audio'}.{ext}"
