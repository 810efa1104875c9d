"""Audio fixtures made in-process with PyAV: tones and silence in any container."""

from __future__ import annotations

import io
import math
from fractions import Fraction

import av

_CODECS = {
    "ogg": "libopus",
    "mp3": "libmp3lame",
    "wav": "pcm_s16le",
    "webm": "libopus",
    "flac": "flac",
    "m4a": "aac",
    "mp4": "aac",
}
_FORMATS = {"m4a": "mp4"}


def make_tone(
    seconds: float,
    container: str = "ogg",
    *,
    rate: int = 48000,
    freq: float = 440.0,
    amplitude: float = 0.4,
    bitrate: int | None = None,
    channels: int = 1,
) -> bytes:
    """Return ``seconds`` of a sine tone (amplitude 0 gives silence) encoded in ``container``."""
    buf = io.BytesIO()
    fmt = _FORMATS.get(container, container)
    with av.open(buf, "w", format=fmt) as out:
        codec = _CODECS[container]
        stream = out.add_stream(codec, rate=rate)
        layout = "mono" if channels == 1 else "stereo"
        stream.layout = layout  # type: ignore[union-attr]
        if bitrate:
            stream.bit_rate = bitrate
        total = int(seconds * rate)
        chunk = 960
        pts = 0
        while pts < total:
            n = min(chunk, total - pts)
            pcm = bytearray()
            for i in range(pts, pts + n):
                v = int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate))
                pcm += v.to_bytes(2, "little", signed=True) * channels
            frame = av.AudioFrame(format="s16", layout=layout, samples=n)
            frame.planes[0].update(bytes(pcm))
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
            pts += n
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def decode_info(data: bytes) -> tuple[str, str, float, int, int]:
    """Return (format, codec, duration seconds, sample rate, channels) by decoding."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = 0
        for frame in container.decode(stream):
            samples += frame.samples
        rate = stream.codec_context.sample_rate
        return (
            container.format.name,
            stream.codec_context.name,
            samples / rate,
            rate,
            stream.codec_context.channels,
        )


def sound_spans(data: bytes, *, threshold: int = 1500) -> list[tuple[float, float]]:
    """Where there is sound (start, end seconds, 10 ms resolution): what the fake recognisers
    "hear" as words in the synthesized recordings of ``testkit/synth.py``."""
    rate, window = 16000, 160
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    pcm = bytearray()
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                pcm += bytes(out.planes[0])[: out.samples * 2]
    samples = memoryview(bytes(pcm)).cast("h")
    spans: list[tuple[float, float]] = []
    start = None
    count = len(samples) // window
    for i in range(count + 1):
        loud = i < count and sum(map(abs, samples[i * window : (i + 1) * window : 2])) > (
            threshold * window // 2
        )
        if loud and start is None:
            start = i
        elif not loud and start is not None:
            if i - start >= 5:  # 50 ms: a click is not a word
                spans.append((start * window / rate, i * window / rate))
            start = None
    return spans


def ogg_duration(data: bytes) -> float:
    """Seconds of an Ogg/Opus stream read from its last page's granule position (48 kHz
    samples) less the header's pre-skip, without decoding; 0.0 for anything else."""
    last, head = data.rfind(b"OggS"), data.find(b"OpusHead")
    if last < 0 or head < 0 or len(data) < last + 14:
        return 0.0
    granule = int.from_bytes(data[last + 6 : last + 14], "little")
    pre_skip = int.from_bytes(data[head + 10 : head + 12], "little")
    return max(0.0, (granule - pre_skip) / 48000)
