"""Voice messages: join speech audio into one OGG/Opus clip with its Discord waveform."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence

from av.audio.frame import AudioFrame

from bot.audio.headers import read_header
from bot.audio.pcm import encode_ogg, pcm_frames
from bot.model.errors import AudioError
from bot.model.speech import VoiceClip
from bot.text import msg

_VOICE_RATE = 48000
_VOICE_BITRATE = 32000
# 60 ms frames: ~10% faster to encode than 20 ms, and latency is irrelevant for a file.
_VOICE_OPUS_OPTIONS = {"application": "voip", "frame_duration": "60"}
_VOICE_FRAME = _VOICE_RATE * 60 // 1000
_KEEP_MAX_BPS = 96_000  # a provider's OGG/Opus above this is encoded again (for its size)
_WAVEFORM_MAX = 256
_WAVEFORM_SLICE = 0.1  # seconds of audio per waveform byte, at least
_WAVEFORM_DECIMATE = 16  # peaks on a 3 kHz copy are plenty for a bar graph, and 16x cheaper


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
        frame for part in parts for frame in pcm_frames(part, _VOICE_RATE, _VOICE_FRAME)
    )
    ogg = encode_ogg(frames, rate=_VOICE_RATE, bit_rate=_VOICE_BITRATE, options=_VOICE_OPUS_OPTIONS)
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
    for _ in tap.frames(pcm_frames(data, _VOICE_RATE)):
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
