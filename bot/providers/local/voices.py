"""Fetches one Piper voice (``.onnx`` + ``.onnx.json``) into voices_dir: both files or neither."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

_LOGGER = logging.getLogger(__name__)

VOICE_SOURCE = "https://huggingface.co/rhasspy/piper-voices/resolve/v1.0.0"
"""The official Piper voices on Hugging Face, at a fixed tag (the layout of ``voice_url``)."""
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0
"""Seconds without a byte before a download is given up."""
_CHUNK = 256 * 1024
_STALE_PART = 3600.0
Progress = Callable[[str, int, int | None], None]
"""Called as bytes arrive: (file name, bytes so far, expected bytes or None)."""
# <family>_<REGION>-<name>-<quality>, e.g. en_US-joe-medium or ca_ES-upc_ona-x_low: nothing that
# could leave the voices directory or the source's folder layout.
_VOICE = re.compile(
    r"^(?P<family>[a-z]{2,3})_(?P<region>[A-Za-z0-9]+)-(?P<name>[A-Za-z0-9_]+)-(?P<quality>[a-z_]+)$"
)


class VoiceFetchError(Exception):
    """A voice could not be fetched; the message says why (for the operator's log)."""


def fetchable_name(voice: str) -> bool:
    """Whether ``voice`` is a Piper voice name the source's layout can locate."""
    return _VOICE.match(voice) is not None


def voice_url(source: str, voice: str, suffix: str) -> str:
    """``<source>/<family>/<family>_<REGION>/<name>/<quality>/<voice><suffix>``, the layout of
    the rhasspy/piper-voices repository (e.g. ``en/en_US/joe/medium/en_US-joe-medium.onnx``).

    Raises:
        VoiceFetchError: ``voice`` is not a Piper voice name.
    """
    found = _VOICE.match(voice)
    if found is None:
        raise VoiceFetchError(f"{voice!r} is not a Piper voice name like en_US-joe-medium")
    family, region, name, quality = found.group("family", "region", "name", "quality")
    folder = f"{family}/{family}_{region}/{name}/{quality}"
    return f"{source.rstrip('/')}/{folder}/{voice}{suffix}"


async def fetch_voice(
    session: aiohttp.ClientSession,
    source: str,
    voice: str,
    voices_dir: Path,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    progress: Progress | None = None,
) -> Path:
    """Download ``voice`` into ``voices_dir`` and return its ``.onnx`` path.

    Each file goes to a hidden temporary file first (never matching ``*.onnx``); both are renamed
    into place only once both arrived whole, the config first, so an interrupted download never
    leaves a voice that looks complete.

    Raises:
        VoiceFetchError: the source refused, the connection broke, a timeout passed, the files
            are not what a voice is, or voices_dir cannot be written.
    """
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=connect_timeout, sock_read=read_timeout
    )
    _prepare(voices_dir, voice)
    parts: list[Path] = []
    try:
        config_url = voice_url(source, voice, ".onnx.json")
        config = await _download(session, config_url, voices_dir, voice, timeout)
        parts.append(config)
        _check_config(config)
        model_url = voice_url(source, voice, ".onnx")
        model = await _download(
            session, model_url, voices_dir, voice, timeout, log_size=True, progress=progress
        )
        parts.append(model)
        target = voices_dir / f"{voice}.onnx"
        os.replace(config, f"{target}.json")
        os.replace(model, target)
        parts.clear()
        return target
    finally:
        _discard(parts)


def _announce(voice: str, expected: int | None, url: str, voices_dir: Path) -> None:
    """Say in the log that a large file is being fetched (a first start waits for it)."""
    size = f"{expected / 1e6:.1f} MB" if expected else "size unknown"
    _LOGGER.warning(
        "downloading Piper voice %s (%s) from %s into %s; this happens once",
        voice,
        size,
        url,
        voices_dir,
    )


async def _download(
    session: aiohttp.ClientSession,
    url: str,
    voices_dir: Path,
    voice: str,
    timeout: aiohttp.ClientTimeout,
    *,
    log_size: bool = False,
    progress: Progress | None = None,
) -> Path:
    """One file into a temporary file in ``voices_dir``; its length checked against the header."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{voice}.", suffix=".part", dir=voices_dir)
    except OSError as exc:
        raise VoiceFetchError(f"cannot write in voices_dir {voices_dir}: {exc}") from exc
    part = Path(name)
    received = 0
    expected: int | None = None
    try:
        with os.fdopen(fd, "wb") as out:
            async with session.get(url, timeout=timeout, allow_redirects=True) as response:
                if response.status != 200:
                    raise VoiceFetchError(f"{url} answered HTTP {response.status}")
                expected = response.content_length
                if log_size:
                    _announce(voice, expected, url, voices_dir)
                async for chunk in response.content.iter_chunked(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress(f"{voice}.onnx", received, expected)
        if expected is not None and received != expected:
            raise VoiceFetchError(f"{url}: got {received} of {expected} bytes")
        if received == 0:
            raise VoiceFetchError(f"{url}: the file is empty")
        return part
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        _discard([part])
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = "no answer in time"
        raise VoiceFetchError(f"{url}: {reason}") from exc
    except BaseException:
        _discard([part])
        raise


def _check_config(path: Path) -> None:
    """A voice's ``.onnx.json`` is a JSON object naming its sample rate (not an error page)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise VoiceFetchError(f"the voice config is not JSON: {exc}") from exc
    if not isinstance(data, dict) or "audio" not in data:
        raise VoiceFetchError("the voice config has no 'audio' section (not a Piper voice)")


def _discard(parts: list[Path]) -> None:
    for part in parts:
        part.unlink(missing_ok=True)


def _prepare(voices_dir: Path, voice: str) -> None:
    """Create voices_dir; remove this voice's temporary files left by a process killed
    mid-download (an hour old: another process may be fetching the same voice right now)."""
    try:
        voices_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VoiceFetchError(f"cannot create voices_dir {voices_dir}: {exc}") from exc
    cutoff = time.time() - _STALE_PART
    for part in voices_dir.glob(f".{voice}.*.part"):
        try:
            if part.stat().st_mtime < cutoff:
                part.unlink()
        except OSError:
            pass
