"""Voice messages: join speech audio into one OGG/Opus clip with its Discord waveform."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from av.audio.frame import AudioFrame

from bot.audio.headers import read_header
from bot.audio.pcm import encode_ogg, pcm_frames
from bot.model.errors import AudioError
from bot.model.speech import VoiceClip
from bot.text import msg

_VOICE_RATE = 48000
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)  # the input rates libopus takes
_KEEP_MAX_BPS = 96_000  # a provider's OGG/Opus above this is encoded again (for its size)
_WAVEFORM_MAX = 256
_WAVEFORM_SLICE = 0.1  # seconds of audio per waveform byte, at least
_WAVEFORM_RATE = 3000  # peaks on a 3 kHz copy are plenty for a bar graph, and far cheaper


@dataclass(frozen=True, slots=True)
class ClipSettings:
    """How a voice message is encoded (libopus through FFmpeg's option names)."""

    options: Mapping[str, str]
    bit_rate: int = 32000
    frame_ms: int = 60  # 60 ms packets: ~10% cheaper than 20 ms; latency is moot for a file
    at_source_rate: bool = True  # encode at the source's rate when libopus takes it


# CELT only ("lowdelay": no SILK, no speech/music analysis), complexity 10, 32 kb/s VBR: measured
# on Piper speech (python -m bench.clip) at about a third of the CPU of the speech mode
# (SILK+CELT hybrid) the voice clip used before, the same tiny.en word error rate within 0.01,
# and 2-7 % more bytes. At the source's rate when libopus takes it (OpenAI-compatible MP3s are
# 24 kHz; Piper's 22.05 kHz goes to 24): no bandwidth lost, no 48 kHz resampling pass.
VOICE = ClipSettings({"application": "lowdelay", "frame_duration": "60"})
# What voice clips were before issue 25 (kept for the benchmark's comparison).
VOICE_BEFORE = ClipSettings({"application": "voip", "frame_duration": "60"}, at_source_rate=False)


def to_voice_clip(parts: Sequence[bytes], settings: ClipSettings = VOICE) -> VoiceClip:
    """Join audio blobs (any container) into one OGG/Opus mono voice message.

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
    rate = _RatePick() if settings.at_source_rate else _VOICE_RATE
    frames = tap.frames(
        frame for part in parts for frame in pcm_frames(part, rate, frame_ms=settings.frame_ms)
    )
    ogg = encode_ogg(frames, rate=None, bit_rate=settings.bit_rate, options=dict(settings.options))
    if tap.samples == 0:
        raise AudioError(
            "speech decoded to nothing", user_message=msg("The speech audio was empty.")
        )
    return VoiceClip(ogg=ogg, duration=tap.seconds, waveform=tap.waveform(tap.seconds))


class _RatePick:
    """The first part's rate, raised to the next one libopus takes; every later part's too."""

    def __init__(self) -> None:
        self.rate = 0

    def __call__(self, source: int) -> int:
        if not self.rate:
            self.rate = next((r for r in _OPUS_RATES if r >= source), _VOICE_RATE)
        return self.rate


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
        self.seconds = 0.0
        self._decimated = array("h")

    def frames(self, source: Iterable[AudioFrame]) -> Iterator[AudioFrame]:
        for frame in source:
            pcm = array("h", bytes(frame.planes[0])[: frame.samples * 2])
            self._decimated.extend(pcm[:: max(1, frame.sample_rate // _WAVEFORM_RATE)])
            self.samples += frame.samples
            self.seconds += frame.samples / frame.sample_rate
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
