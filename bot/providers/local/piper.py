"""Local text-to-speech on Piper (GPL-3.0, its own extra): WAV per request, sentence by sentence."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp

from bot.model.errors import ProviderBadRequest, ProviderJobFailed, ProviderNotConfigured
from bot.model.speech import SpeechAudio, TtsOptions
from bot.providers.base import PollResult, Ticket, TtsCapabilities
from bot.providers.local.settings import (
    TTS_EXTRA,
    PiperSettings,
    engine_missing,
    find_voices,
    voice_problem,
)
from bot.providers.local.voices import VoiceFetchError, fetch_voice
from bot.text import Msg, msg

_LOGGER = logging.getLogger(__name__)

VOICE_FAILED = msg("The local voice could not be loaded; the bot's operator has been told.")
VOICE_FETCH_FAILED = msg(
    "The local voice is not downloaded yet and fetching it failed; the bot's operator has been "
    "told. Please try again later."
)
# After a failed fetch, /speak fails at once for this long instead of hitting the source again.
_FETCH_BACKOFF = 60.0


class PiperTextToSpeech:
    """``type: local`` text-to-speech: Piper voices (ONNX) on this machine, off the event loop.

    Synchronous from the worker's side: ``submit`` returns the WAV. Piper splits the text into
    sentences and synthesizes them one after another; the service already cut long text into
    parts of at most ``max_chars``.
    """

    def __init__(
        self,
        name: str,
        settings: PiperSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        fetch: str | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="voicebot-piper")
        self._voices: dict[Path, Any] = {}
        self._load_lock = threading.Lock()
        # The one voice fetched when missing (the configured default), never one a chat names.
        can = session is not None and fetch is not None and settings.can_fetch(fetch)
        self._fetch = fetch if can else None
        self._session = session
        self._fetch_lock = asyncio.Lock()
        self._fetch_failed_at = float("-inf")

    def capabilities(self, model: str) -> TtsCapabilities:
        """Piper's limits and the voices found in ``voices_dir``.

        Raises:
            ProviderNotConfigured: the ``local-tts`` extra is not installed.
        """
        missing = engine_missing("piper", TTS_EXTRA)
        if missing:
            raise ProviderNotConfigured(f"providers.{self.name}: {missing}", provider=self.name)
        voices = set(find_voices(self.settings.voices_dir))
        if self._fetch is not None:
            voices.add(self._fetch)  # listed before it is downloaded: chats may pick it
        return TtsCapabilities(
            asynchronous=False,
            max_chars=self.settings.max_chars,
            voices=frozenset(voices),
            rerun_when_lost=True,
            voice_files=".onnx",
        )

    def voice_path(self, voice: str) -> Path:
        """The ``.onnx`` file of a voice name (in ``voices_dir``) or path.

        Raises:
            ProviderBadRequest: no such voice (the message lists the known ones).
        """
        problem = voice_problem(voice, self.settings.voices_dir)
        if problem:
            raise ProviderBadRequest(
                f"providers.{self.name}: {problem}",
                provider=self.name,
                user_message=_unknown_voice(voice, self.settings.voices_dir),
            )
        found = find_voices(self.settings.voices_dir)
        return found[voice] if voice in found else Path(voice).expanduser()

    async def submit(self, text: str, options: TtsOptions) -> SpeechAudio:
        """Synthesize ``text`` on a Piper thread; the answer is a mono 16-bit WAV.

        The default voice is fetched first when it is missing (once; see :mod:`.voices`).
        """
        if options.voice == self._fetch:
            await self._ensure_fetched(options.voice)
        path = self.voice_path(options.voice)
        loop = asyncio.get_running_loop()
        wav = await loop.run_in_executor(
            self._executor, self._synthesize, path, text, options.speed
        )
        return SpeechAudio(wav, "audio/wav")

    async def poll(self, ticket: Ticket) -> PollResult:
        """Never called: Piper answers ``submit`` directly."""
        raise ProviderBadRequest("local text-to-speech has no tickets", provider=self.name)

    async def _ensure_fetched(self, voice: str) -> None:
        """Download ``voice`` unless it is there; concurrent requests wait for one download."""
        async with self._fetch_lock:
            if voice in find_voices(self.settings.voices_dir):
                return
            assert self._session is not None and self.settings.voices_dir is not None
            loop = asyncio.get_running_loop()
            if loop.time() - self._fetch_failed_at < _FETCH_BACKOFF:
                raise self._fetch_failed(voice, "the last attempt failed moments ago")
            try:
                await fetch_voice(
                    self._session, self.settings.voice_source, voice, self.settings.voices_dir
                )
            except VoiceFetchError as exc:
                self._fetch_failed_at = loop.time()
                _LOGGER.error("%s: cannot fetch Piper voice %s: %s", self.name, voice, exc)
                raise self._fetch_failed(voice, str(exc)) from exc
            _LOGGER.info("%s: Piper voice %s is in %s", self.name, voice, self.settings.voices_dir)

    def _fetch_failed(self, voice: str, why: str) -> ProviderJobFailed:
        return ProviderJobFailed(
            f"cannot fetch Piper voice {voice}: {why}",
            provider=self.name,
            user_message=VOICE_FETCH_FAILED,
        )

    def close(self) -> None:
        """Stop the threads once the synthesis under way is done."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _synthesize(self, path: Path, text: str, speed: float) -> bytes:
        from piper import SynthesisConfig

        voice = self._voice(path)
        config = SynthesisConfig(length_scale=voice.config.length_scale / max(speed, 0.1))
        buf = io.BytesIO()
        with wave.open(buf, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(voice.config.sample_rate)
            for chunk in voice.synthesize(text, syn_config=config):  # one chunk per sentence
                out.writeframes(chunk.audio_int16_bytes)
        return buf.getvalue()

    def _voice(self, path: Path) -> Any:
        with self._load_lock:
            if path not in self._voices:
                self._voices[path] = self._load(path)
            return self._voices[path]

    def _load(self, path: Path) -> Any:
        from piper import PiperVoice  # the optional (GPL) extra: imported on first use

        try:
            voice = PiperVoice.load(path)
        except Exception as exc:  # onnxruntime raises its own types for damaged models
            _LOGGER.error("%s: cannot load Piper voice %s: %s", self.name, path, exc)
            raise ProviderJobFailed(
                f"cannot load Piper voice {path}: {exc}",
                provider=self.name,
                user_message=VOICE_FAILED,
            ) from exc
        _LOGGER.info(
            "%s: Piper voice %s loaded (%d Hz)", self.name, path.stem, voice.config.sample_rate
        )
        return voice


def _unknown_voice(voice: str, voices_dir: Path | None) -> Msg:
    known = ", ".join(find_voices(voices_dir))
    if known:
        return msg(
            "There is no voice {voice} here. Voices: {voices}.", voice=repr(voice), voices=known
        )
    return msg("There is no voice {voice} here.", voice=repr(voice))
