"""Audio in-process with PyAV: probe uploads, fit them to a provider's limits, build voice clips."""

from __future__ import annotations

import io
import logging
import os
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer

from bot.audio.headers import is_wav, read_header
from bot.model.errors import AudioError, AudioTooLong
from bot.model.speech import AudioInput, VoiceClip
from bot.text import Duration, msg

_LOGGER = logging.getLogger(__name__)

# Errors PyAV raises for data it cannot parse; InvalidDataError is both FFmpegError and ValueError.
_AV_ERRORS = (av.FFmpegError, ValueError, EOFError, OSError)

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

_VOICE_RATE = 48000
_VOICE_BITRATE = 32000
# 60 ms frames: ~10% faster to encode than 20 ms, and latency is irrelevant for a file.
_VOICE_OPUS_OPTIONS = {"application": "voip", "frame_duration": "60"}
_VOICE_FRAME = _VOICE_RATE * 60 // 1000
_WAV_PROBE = {"probesize": "4096"}
_KEEP_MAX_BPS = 96_000  # a provider's OGG/Opus above this is encoded again (for its size)
_WAVEFORM_MAX = 256
_WAVEFORM_SLICE = 0.1  # seconds of audio per waveform byte, at least
_WAVEFORM_DECIMATE = 16  # peaks on a 3 kHz copy are plenty for a bar graph, and 16x cheaper


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


def mime_for(container: str) -> str:
    """Return the MIME type for a container/extension name (octet-stream when unknown)."""
    return _MIME.get(container.lower().lstrip("."), "application/octet-stream")


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
    with _open(data) as container:
        stream = _audio_stream(container)
        has_video = bool(container.streams.video)
        name = _container_name(container.format.name, stream, has_video, filename)
        duration = _measure(container, stream)
        if duration is None:
            duration = _decoded_seconds(data)
        ctx = stream.codec_context
        info = AudioInfo(
            container=name,
            codec=ctx.name,
            duration=duration,
            sample_rate=ctx.sample_rate,
            channels=ctx.channels,
            size=len(data),
            has_video=has_video,
        )
    if info.duration <= 0:
        raise AudioError(
            "audio stream has no samples", user_message=msg("The audio is empty (0 s).")
        )
    return info


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
        raise _too_long(max_duration / 60)
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


def to_voice_clip(parts: Sequence[bytes]) -> VoiceClip:
    """Join audio blobs (any container) into one OGG/Opus 48 kHz mono voice message.

    Returns:
        The clip, its duration in seconds and a Discord waveform (<= 256 bytes, >= 100 ms each).

    Raises:
        AudioError: no parts, or a part is empty or not decodable audio.
    """
    if not parts:
        raise AudioError("no audio parts to join", user_message=msg("The speech audio was empty."))
    kept = _kept_as_is(parts[0]) if len(parts) == 1 else None
    if kept is not None:
        return kept
    tap = _WaveformTap()
    frames = tap.frames(
        frame for part in parts for frame in _pcm_frames(part, _VOICE_RATE, _VOICE_FRAME)
    )
    ogg = _encode(frames, rate=_VOICE_RATE, bit_rate=_VOICE_BITRATE, options=_VOICE_OPUS_OPTIONS)
    if tap.samples == 0:
        raise AudioError(
            "speech decoded to nothing", user_message=msg("The speech audio was empty.")
        )
    duration = tap.samples / _VOICE_RATE
    return VoiceClip(ogg=ogg, duration=duration, waveform=tap.waveform(duration))


def _kept_as_is(data: bytes) -> VoiceClip | None:
    """A provider's own mono OGG/Opus (what an OpenAI-compatible server sends for ``opus``) is
    already a voice message: kept byte for byte and only decoded for its waveform, a fraction of
    what encoding it again costs. None for anything else (stereo, an unusual stream, a bitrate
    above a voice message's), which is encoded as usual."""
    header = read_header(data)
    if header is None or header.codec != "opus" or header.channels != 1 or header.duration <= 0:
        return None
    if len(data) * 8 / header.duration > _KEEP_MAX_BPS:
        return None
    tap = _WaveformTap()
    for _ in tap.frames(_pcm_frames(data, _VOICE_RATE)):
        pass
    if tap.samples == 0:
        return None
    return VoiceClip(ogg=data, duration=header.duration, waveform=tap.waveform(header.duration))


class _WaveformTap:
    """Counts samples and keeps a decimated copy of mono s16 frames passing through."""

    def __init__(self) -> None:
        self.samples = 0
        self._decimated = array("h")

    def frames(self, source: Iterable[AudioFrame]) -> Iterator[AudioFrame]:
        for frame in source:
            pcm = array("h", bytes(frame.planes[0])[: frame.samples * 2])
            self._decimated.extend(pcm[::_WAVEFORM_DECIMATE])
            self.samples += frame.samples
            yield frame

    def waveform(self, duration: float) -> bytes:
        """Return one peak byte (0-255) per slice of at least 100 ms, at most 256 slices."""
        pcm = self._decimated
        count = max(1, min(_WAVEFORM_MAX, int(duration / _WAVEFORM_SLICE), len(pcm)))
        out = bytearray()
        for i in range(count):
            chunk = pcm[len(pcm) * i // count : len(pcm) * (i + 1) // count]
            peak = max(max(chunk), -min(chunk)) if chunk else 0
            out.append(min(255, peak * 255 // 32767))
        return bytes(out)


def _open(data: bytes) -> InputContainer:
    try:
        if is_wav(data):
            # FFmpeg's stream probe reads up to 5 MB of a WAV (all of a TTS reply) to learn what
            # its header already says: 7-10 ms for 4 s of Piper speech, 0.35 ms with a small
            # probe (the fmt chunk comes first).
            return av.open(io.BytesIO(data), mode="r", format="wav", options=_WAV_PROBE)
        return av.open(io.BytesIO(data), mode="r")
    except _AV_ERRORS as exc:
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


def _audio_stream(container: InputContainer) -> AudioStream:
    if container.streams.audio:
        return container.streams.audio[0]
    if container.streams.video:
        raise AudioError(
            "video without an audio track", user_message=msg("This video has no sound.")
        )
    raise AudioError("no audio stream", user_message=msg("This file has no audio track."))


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
    except _AV_ERRORS as exc:
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
    except _AV_ERRORS:
        return False
    return any(frame.samples for frame in frames)


def pcm_frames(data: bytes, rate: int) -> Iterator[AudioFrame]:
    """Decode the first audio stream to mono s16 frames at ``rate`` (see :func:`_pcm_frames`)."""
    return _pcm_frames(data, rate)


def encode_upload(
    frames: Iterable[AudioFrame], *, rate: int, bit_rate: int, extra: dict[str, str] | None = None
) -> bytes:
    """Encode mono s16 frames at ``rate`` to OGG/Opus with the upload settings (plus ``extra``
    encoder options)."""
    options = {**_UPLOAD_OPUS_OPTIONS, **(extra or {})}
    return _encode(frames, rate=rate, bit_rate=bit_rate, options=options)


def estimate_bytes(duration: float, bit_rate: int) -> float:
    """About how large ``duration`` seconds of upload Opus at ``bit_rate`` will be."""
    return _estimate_bytes(duration, bit_rate)


def seconds_fitting(max_bytes: int, bit_rate: int) -> float:
    """How many seconds of upload Opus at ``bit_rate`` fit in ``max_bytes``."""
    return max(0, max_bytes - _OGG_HEADER_BYTES) * 8 / (bit_rate + _OGG_OVERHEAD_BPS)


def _decoded_seconds(data: bytes) -> float:
    rate = 8000  # only counting; a low rate keeps the resampler cheap
    return sum(frame.samples for frame in _pcm_frames(data, rate)) / rate


def _pcm_frames(data: bytes, rate: int, frame_size: int | None = None) -> Iterator[AudioFrame]:
    """Decode the first audio stream to mono s16 at ``rate``, stopping quietly at truncation.

    ``frame_size``: samples per frame out, the encoder's (else PyAV re-frames every frame once
    more before encoding: measured 5-9 % of a voice clip's CPU).
    """
    if not data:
        raise AudioError("empty audio part", user_message=msg("The speech audio was empty."))
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate, frame_size=frame_size)
    with _open(data) as container:
        stream = _audio_stream(container)
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except _AV_ERRORS:
                    continue  # one damaged packet; the decoder resynchronises on the next
                for frame in frames:
                    yield from resampler.resample(frame)
        except _AV_ERRORS as exc:
            _LOGGER.info("audio ends early (%s); using what decoded", exc)
    yield from resampler.resample(None)


def _encode(
    frames: Iterable[AudioFrame],
    *,
    rate: int,
    bit_rate: int,
    options: dict[str, str],
) -> bytes:
    """Encode mono s16 frames at ``rate`` to OGG/Opus, restamping them so joined parts line up."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=rate, options=dict(options))
        stream.layout = "mono"
        stream.bit_rate = bit_rate
        pts = 0
        for frame in frames:
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += frame.samples
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def _reencode_for_upload(data: bytes, filename: str, duration: float, max_bytes: int) -> AudioInput:
    for bit_rate in _UPLOAD_BITRATES:
        if _estimate_bytes(duration, bit_rate) > max_bytes:
            continue  # would not fit; don't spend CPU finding out
        ogg = _encode(
            _pcm_frames(data, _UPLOAD_RATE, _UPLOAD_RATE * 60 // 1000),
            rate=_UPLOAD_RATE,
            bit_rate=bit_rate,
            options=_UPLOAD_OPUS_OPTIONS,
        )
        if len(ogg) <= max_bytes:
            _LOGGER.debug("re-encoded to %d bytes at %d bit/s", len(ogg), bit_rate)
            return AudioInput(ogg, _with_ext(filename, "ogg"), mime_for("ogg"), duration)
        _LOGGER.debug("%d bit/s gave %d bytes > %d", bit_rate, len(ogg), max_bytes)
    raise _too_long(_minutes_fitting(max_bytes))


def _estimate_bytes(duration: float, bit_rate: int) -> float:
    return duration * (bit_rate + _OGG_OVERHEAD_BPS) / 8 + _OGG_HEADER_BYTES


def _minutes_fitting(max_bytes: int) -> float:
    seconds = max(0, max_bytes - _OGG_HEADER_BYTES) * 8 / (_UPLOAD_BITRATES[-1] + _OGG_OVERHEAD_BPS)
    return seconds / 60


def too_long(limit_minutes: float) -> AudioTooLong:
    """The error for audio over ``limit_minutes``, saying the limit."""
    return _too_long(limit_minutes)


def _too_long(limit_minutes: float) -> AudioTooLong:
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


def _ext(filename: str | None) -> str:
    return os.path.splitext(filename or "")[1].lower().lstrip(".")


def _with_ext(filename: str, ext: str) -> str:
    base = os.path.basename(filename or "")
    stem, old = os.path.splitext(base)
    if old.lower().lstrip(".") == ext:
        return base
    return f"{stem or 'audio'}.{ext}"
