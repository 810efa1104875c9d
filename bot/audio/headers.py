"""Exact audio durations read from container headers (Ogg/Opus pages, WAV chunks), no demuxing."""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass

import av
from av.audio.codeccontext import AudioCodecContext

# Errors PyAV raises for data it cannot parse (as in bot.audio.codec).
_AV_ERRORS = (av.FFmpegError, ValueError, EOFError, OSError)

_OGG_PAGE = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, seq, crc, n
_OPUS_RATE = 48000  # an Ogg Opus granule position counts 48 kHz samples, whatever the input rate
_WAV_PCM = {(1, 8): "pcm_u8", (1, 16): "pcm_s16le", (1, 24): "pcm_s24le", (1, 32): "pcm_s32le"}
_WAV_PCM |= {(3, 32): "pcm_f32le", (3, 64): "pcm_f64le"}
_THREAD = threading.local()
_DECODERS_KEPT = 4


@dataclass(frozen=True, slots=True)
class Header:
    """What a container header says exactly: its name, codec, duration and format."""

    container: str
    codec: str
    duration: float
    sample_rate: int
    channels: int


def read_header(data: bytes) -> Header | None:
    """The exact duration and format of an Ogg/Opus or WAV file, or None to demux instead.

    None whenever anything is unusual (another codec, chained or multiplexed streams, a page
    sequence gap, a cut-off last page or data chunk, a first audio packet that does not
    decode): the caller's full demux then measures what can be read and reports damage.
    """
    if data[:4] == b"OggS":
        return _ogg_opus(data)
    if is_wav(data):
        return _wav(data)
    return None


def is_wav(data: bytes) -> bool:
    """Whether ``data`` starts as a RIFF/WAVE file."""
    return data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def _ogg_opus(data: bytes) -> Header | None:
    """Walk every page header (cheap: no packet is copied but the first three) and take the
    last page's granule position, less the pre-skip from ``OpusHead``."""
    size = len(data)
    pos = 0
    serial = seq = -1
    granule = -1
    packets: list[bytes] = []
    partial = b""
    while pos < size:
        if pos + 27 > size:
            return None
        magic, version, _flags, page_granule, page_serial, page_seq, _crc, count = (
            _OGG_PAGE.unpack_from(data, pos)
        )
        lacing = data[pos + 27 : pos + 27 + count]
        body = pos + 27 + count
        end = body + sum(lacing)
        if magic != b"OggS" or version != 0 or len(lacing) != count or end > size:
            return None
        if serial not in (-1, page_serial) or (seq != -1 and page_seq != seq + 1):
            return None  # another stream muxed in, a chained file, or a lost page
        serial, seq = page_serial, page_seq
        if page_granule != -1:
            granule = page_granule
        if len(packets) < 3:
            partial = _split(data, body, lacing, partial, packets)
        pos = end
    return _opus_header(packets, granule)


def _split(data: bytes, body: int, lacing: bytes, partial: bytes, packets: list[bytes]) -> bytes:
    """Append the packets that end on this page; return the unfinished one it carries on."""
    start = body
    for value in lacing:
        if value < 255:
            end = start + value
            packets.append(partial + data[body:end])
            partial, body = b"", end
        start += value
    return partial + data[body:start]


def _opus_header(packets: list[bytes], granule: int) -> Header | None:
    if len(packets) < 3 or not packets[0].startswith(b"OpusHead") or len(packets[0]) < 19:
        return None
    head = packets[0]
    channels = head[9]
    pre_skip = struct.unpack_from("<H", head, 10)[0]
    if head[18] != 0 or granule < pre_skip or not packets[1].startswith(b"OpusTags"):
        return None  # mapping family 0 only (mono/stereo voice); others demux in full
    if not _decodes("libopus", head, packets[2]):
        return None
    return Header("ogg", "opus", (granule - pre_skip) / _OPUS_RATE, _OPUS_RATE, channels)


def _decodes(codec: str, extradata: bytes, packet: bytes) -> bool:
    """Whether the first audio packet decodes (the file is sound, not just well-formed).

    Opening a decoder costs more than decoding a packet, and voice notes share a handful of
    headers: each thread keeps an open decoder per header and flushes it after use.
    """
    decoders: dict[tuple[str, bytes], AudioCodecContext]
    decoders = _THREAD.__dict__.setdefault("decoders", {})
    key = (codec, extradata)
    try:
        ctx = decoders.pop(key, None) or _decoder(codec, extradata)
        frames = ctx.decode(av.Packet(packet))
        ctx.flush_buffers()
    except _AV_ERRORS:
        return False  # the decoder may be in any state: dropped
    if len(decoders) >= _DECODERS_KEPT:
        decoders.pop(next(iter(decoders)))
    decoders[key] = ctx
    return bool(frames)


def _decoder(codec: str, extradata: bytes) -> AudioCodecContext:
    ctx = av.CodecContext.create(codec, "r")
    assert isinstance(ctx, AudioCodecContext)
    ctx.extradata = extradata
    return ctx


def _wav(data: bytes) -> Header | None:
    """PCM in a RIFF/WAVE file: the ``data`` chunk's bytes over the ``fmt `` chunk's rate."""
    pos = 12
    fmt: tuple[int, int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk, length = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if chunk == b"fmt " and length >= 16:
            tag, channels, rate, _byte_rate, align, bits = struct.unpack_from(
                "<HHIIHH", data, pos + 8
            )
            fmt = (tag, channels, rate, align, bits)
        elif chunk == b"data":
            return _wav_header(fmt, length, len(data) - pos - 8)
        pos += 8 + length + (length & 1)
    return None


def _wav_header(
    fmt: tuple[int, int, int, int, int] | None, length: int, available: int
) -> Header | None:
    if fmt is None:
        return None
    tag, channels, rate, align, bits = fmt
    codec = _WAV_PCM.get((tag, bits))
    if codec is None or not channels or not rate or align != channels * bits // 8:
        return None
    if length > available:
        return None  # cut off (or a streaming header): the demuxer measures what is there
    frames = length // align
    return Header("wav", codec, frames / rate, rate, channels) if frames else None
