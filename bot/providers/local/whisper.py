"""Local speech-to-text on faster-whisper: runs on worker threads, polled like a hosted job."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bot.model.errors import ProviderBadRequest, ProviderNotConfigured, UnknownJob
from bot.model.speech import AudioInput, Segment, SttOptions, Transcript, Word
from bot.providers.base import PollResult, PollStatus, SttCapabilities, Ticket
from bot.providers.languages import WHISPER_LANGUAGES
from bot.providers.local.batched import transcribe_batched
from bot.providers.local.presence import default_cache, first_line
from bot.providers.local.settings import (
    STT_EXTRA,
    WHISPER_SIZES_MB,
    WhisperSettings,
    engine_missing,
    whisper_model_problem,
)
from bot.text import msg

_LOGGER = logging.getLogger(__name__)

# Everything PyAV decodes goes in as it is: no re-encode for a local engine.
_FORMATS = frozenset(
    {"ogg", "oga", "opus", "mp3", "wav", "webm", "mkv", "m4a", "mp4", "flac", "aac", "amr"}
)
_MAX_UPLOAD = 512 * 1024 * 1024
# A run nobody has asked about for this long belongs to a job that ended (deadline, /forget):
# stop spending CPU on it. At least 5 minutes (ten times the default longest pause between polls)
# and 3 times the longest pause seen so far; a run dropped by mistake is only rerun, for free.
_ABANDON_AFTER = 300.0
# A recording of at most one Whisper window (30 s) is waited for in submit, up to this long.
_INLINE_SECONDS = 30.0
_INLINE_WAIT = 3.0
LOAD_FAILED = msg(
    "The local speech model could not be loaded; the bot's operator has been told."
).id
DECODE_FAILED = msg("The local speech engine could not decode this audio.").id
ENGINE_FAILED = msg("The local speech engine failed on this audio.").id


class _Cancelled(Exception):
    """The run was abandoned or the provider closed."""


class _RunFailed(Exception):
    """A run ended with a sentence for the user (``args[0]``) and a code (``args[1]``)."""


@dataclass(eq=False, slots=True)
class _Run:
    """One transcription: its input, how far it got, and the thread's future."""

    id: str
    audio: bytes
    options: SttOptions
    total: float
    last_poll: float
    done: float = 0.0
    started: bool = False
    texts: list[str] = field(default_factory=list)
    """The finished segments' text, appended by the worker thread (read by ``poll``)."""
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future[Transcript] | None = None


def whisper_languages(model: str) -> frozenset[str]:
    """What a Whisper model transcribes: English only for the ``*.en`` models, else Whisper's
    list (the same codes as faster-whisper's tokenizer, without reaching into its privates)."""
    if model.endswith(".en"):
        return frozenset({"en"})
    return WHISPER_LANGUAGES


class WhisperSpeechToText:
    """``type: local`` speech-to-text: faster-whisper (CTranslate2) on this machine.

    Asynchronous from the worker's side: ``submit`` starts a run on a worker thread and returns a
    ticket; ``poll`` reports PENDING (waiting for a free worker, with its place), RUNNING with the
    share of the audio transcribed so far (from the segments as they come), then the transcript.
    A run lives in this process only: after a restart its ticket is unknown (``UnknownJob``) and,
    because the capabilities say ``rerun_when_lost``, the worker runs the job again from its kept
    input. It costs nothing but time.
    """

    inline_wait: float = _INLINE_WAIT
    """How long ``submit`` waits for a short note before handing out a ticket (seconds)."""

    def __init__(
        self,
        name: str,
        settings: WhisperSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.settings = settings
        self._clock = clock
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="voicebot-whisper")
        self._models: dict[str, Any] = {}
        self._load_lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._longest_gap = 0.0

    def capabilities(self, model: str) -> SttCapabilities:
        """What faster-whisper does with ``model`` (a size name or a model directory).

        Raises:
            ProviderNotConfigured: the ``local`` extra is not installed.
            ProviderBadRequest: ``model`` is neither a size name nor a model directory.
        """
        missing = engine_missing("faster_whisper", STT_EXTRA)
        if missing:
            raise ProviderNotConfigured(f"providers.{self.name}: {missing}", provider=self.name)
        problem = whisper_model_problem(model)
        if problem:
            raise ProviderBadRequest(f"providers.{self.name}: {problem}", provider=self.name)
        return SttCapabilities(
            asynchronous=True,
            diarization=False,
            timestamps=True,
            formats=_FORMATS,
            max_upload_bytes=_MAX_UPLOAD,
            min_poll_interval=1.0,
            max_processing_seconds=6 * 3600.0,
            rerun_when_lost=True,
            languages=whisper_languages(model),
            translates_to_english=True,
            keep_audio_seconds=self.settings.keep_audio_hours * 3600.0,
        )

    async def submit(self, audio: AudioInput, options: SttOptions) -> Transcript | Ticket:
        """Queue a run on the worker threads and return its ticket; a voice note of one Whisper
        window is answered here instead when the engine finishes it within a moment."""
        self._sweep()
        run = _Run(
            id=uuid.uuid4().hex,
            audio=audio.data,
            options=options,
            total=audio.duration,
            last_poll=self._clock(),
        )
        self._runs[run.id] = run
        run.future = self._executor.submit(self._transcribe, run)
        _LOGGER.debug("%s: run %s queued (%.1f s of audio)", self.name, run.id, run.total)
        if 0 < run.total <= _INLINE_SECONDS and self._busy(besides=run) < self.settings.workers:
            answer = await self._answer_inline(run, run.future)
            if answer is not None:
                return answer
        return Ticket(provider=self.name, data={"run": run.id})

    async def _answer_inline(self, run: _Run, future: Future[Transcript]) -> Transcript | None:
        # The first poll of a ticket comes a second later at the soonest; a short note on a
        # warm engine is done well before. Waiting a bounded moment here answers it without that
        # second, and a run still going (a busy engine) is polled as usual.
        waited = asyncio.wrap_future(future)
        # Read the outcome however it ends, so an exception left to poll is not "never retrieved".
        waited.add_done_callback(lambda f: f.cancelled() or f.exception())
        await asyncio.wait({waited}, timeout=self.inline_wait)
        if not future.done() or future.cancelled() or future.exception() is not None:
            return None  # a failure is reported by poll, as for every run
        self._runs.pop(run.id, None)
        return future.result()

    async def poll(self, ticket: Ticket) -> PollResult:
        """Where a run is; its outcome once finished (then it is forgotten).

        Raises:
            UnknownJob: no such run in this process (it was lost to a restart).
        """
        run = self._runs.get(str(ticket.data.get("run")))
        if run is None or run.future is None:
            raise UnknownJob(
                f"run {ticket.data.get('run')} is not in this process (restarted?)",
                provider=self.name,
                user_message=msg("The local transcription was interrupted."),
            )
        now = self._clock()
        self._sweep(keep=run)
        self._longest_gap = max(self._longest_gap, now - run.last_poll)
        run.last_poll = now
        if not run.future.done():
            if not run.started:
                return PollResult(PollStatus.PENDING, queue_position=self._place(run))
            share = min(1.0, run.done / run.total) if run.total > 0 else 0.0
            # A copy of the list: the thread may append while it is joined.
            partial = " ".join(list(run.texts)) or None
            return PollResult(PollStatus.RUNNING, progress=share, partial=partial)
        del self._runs[run.id]
        return _outcome(run.future)

    def close(self) -> None:
        """Stop every run (at the next segment) and the threads."""
        for run in self._runs.values():
            run.cancel.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _busy(self, besides: _Run) -> int:
        """Runs queued or running other than ``besides`` (a note behind them is not waited for:
        it gets a ticket and its queue position at once)."""
        return sum(
            1 for r in self._runs.values() if r is not besides and r.future and not r.future.done()
        )

    def _place(self, run: _Run) -> int:
        waiting = [r for r in self._runs.values() if not r.started]
        return 1 + waiting.index(run) if run in waiting else 1

    def _sweep(self, keep: _Run | None = None) -> None:
        now = self._clock()
        limit = max(_ABANDON_AFTER, 3 * self._longest_gap)
        for run in list(self._runs.values()):
            if run is not keep and now - run.last_poll > limit:
                _LOGGER.info("%s: run %s abandoned (not polled); stopping it", self.name, run.id)
                run.cancel.set()
                del self._runs[run.id]

    # -- on a worker thread -------------------------------------------------------------------

    def _transcribe(self, run: _Run) -> Transcript:
        if run.cancel.is_set():
            raise _Cancelled
        run.started = True
        started = time.monotonic()
        model = self._model(run.options.model)
        batched = self.batched(run.total)
        try:
            segments, info = self._start(model, run, batched)
        except (ValueError, OSError, EOFError) as exc:  # PyAV's decode errors are among these
            _LOGGER.info("%s: run %s: cannot decode audio: %s", self.name, run.id, exc)
            raise _RunFailed(DECODE_FAILED, "audio") from exc
        run.total = float(info.duration) or run.total
        collected = list(self._follow(run, segments))
        _LOGGER.info(
            "%s: run %s: %.1f s of audio transcribed in %.1f s (%s)",
            self.name,
            run.id,
            run.total,
            time.monotonic() - started,
            f"batched by {self.settings.batch_size}" if batched else "sequential",
        )
        return _transcript(collected, str(info.language), run.total)

    def batched(self, duration: float) -> bool:
        """Whether a recording of ``duration`` seconds takes the batched path (unknown: no)."""
        return duration > 0 and duration >= self.settings.batch_min_seconds

    def _start(self, model: Any, run: _Run, batched: bool) -> tuple[Iterable[Any], Any]:
        """Begin decoding (lazily: the segments come as they are iterated) on either path."""
        s = self.settings
        language = None if run.options.language in ("", "auto") else run.options.language
        common: dict[str, Any] = {
            "language": language,
            "task": "translate" if run.options.translate else s.task,
            "beam_size": s.beam_size,
            "word_timestamps": s.word_timestamps,
            "initial_prompt": run.options.context or None,
        }
        if not batched:
            return model.transcribe(io.BytesIO(run.audio), vad_filter=s.vad_filter, **common)  # type: ignore[no-any-return]
        # The batched path (bot/providers/local/batched.py) runs the VAD once, cuts the
        # recording at pauses into windows of at most 30 s and decodes them side by side, each
        # batch primed with the end of the text before it: no window repeats or drops text
        # because of the one before it, as one long conditioned pass can.
        return transcribe_batched(model, run.audio, s.batch_size, common)

    def _follow(self, run: _Run, segments: Iterable[Any]) -> Iterable[Any]:
        # faster-whisper decodes lazily: each segment is computed as it is asked for, so progress
        # is real and a cancelled run stops at the next segment.
        for segment in segments:
            if run.cancel.is_set():
                raise _Cancelled
            run.done = float(segment.end)
            text = segment.text.strip()
            if text:  # as _transcript joins them, so the partial is a prefix of the result
                run.texts.append(text)
            yield segment

    def _model(self, model: str) -> Any:
        with self._load_lock:  # one load per model, however many runs start at once
            if model not in self._models:
                self._models[model] = self._load(model)
            return self._models[model]

    def _load(self, model: str) -> Any:
        from faster_whisper import WhisperModel  # the optional extra: imported on first use

        s = self.settings
        source = model
        if model in WHISPER_SIZES_MB:
            source = self._fetch(model)
        started = time.monotonic()
        try:
            loaded = WhisperModel(
                source,
                device=s.device,
                compute_type=s.compute_type,
                cpu_threads=s.cpu_threads,
                num_workers=s.workers,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            _LOGGER.error("%s: cannot load Whisper model %s: %s", self.name, source, exc)
            raise _RunFailed(LOAD_FAILED, "model") from exc
        _LOGGER.info(
            "%s: Whisper model %s loaded in %.1f s (%s, %s, %d thread(s) x %d worker(s))",
            self.name,
            model,
            time.monotonic() - started,
            s.device,
            s.compute_type,
            s.cpu_threads,
            s.workers,
        )
        return loaded

    def _fetch(self, size: str) -> str:
        """The cached directory of a named model, downloading it once (logged with its size)."""
        from faster_whisper.utils import download_model

        cache = str(self.settings.download_dir) if self.settings.download_dir else None
        try:
            return str(download_model(size, local_files_only=True, cache_dir=cache))
        except Exception as exc:  # huggingface_hub's "not in the cache" errors vary by version
            if self.settings.offline:
                _LOGGER.error(
                    "%s: Whisper model %s is not in %s and offline: true forbids downloading it; "
                    "'voicebot models' says how to place it by hand",
                    self.name,
                    size,
                    cache or default_cache(),
                )
                raise _RunFailed(LOAD_FAILED, "model") from exc
        where = cache or "the Hugging Face cache"
        _LOGGER.warning(
            "%s: downloading Whisper model %s (about %d MB) into %s; this happens once",
            self.name,
            size,
            WHISPER_SIZES_MB[size],
            where,
        )
        try:
            return str(download_model(size, cache_dir=cache))
        except Exception as exc:  # one line, not the hub's three: what failed and what to do
            _LOGGER.error(
                "%s: cannot download Whisper model %s (%s); 'voicebot models' says how to place "
                "it by hand",
                self.name,
                size,
                first_line(exc),
            )
            raise _RunFailed(LOAD_FAILED, "model") from exc


def _outcome(future: Future[Transcript]) -> PollResult:
    exc = future.exception()
    if exc is None:
        return PollResult(PollStatus.COMPLETED, transcript=future.result())
    if isinstance(exc, _RunFailed):
        return PollResult(PollStatus.FAILED, error=exc.args[0], error_code=f"local_{exc.args[1]}")
    if isinstance(exc, _Cancelled):
        return PollResult(PollStatus.FAILED, error=ENGINE_FAILED, error_code="local_cancelled")
    _LOGGER.error("local transcription crashed", exc_info=exc)
    return PollResult(PollStatus.FAILED, error=ENGINE_FAILED, error_code="local_engine")


def _transcript(segments: list[Any], language: str, duration: float) -> Transcript:
    words = tuple(
        Word(text=w.word.strip(), start=float(w.start), end=float(w.end))
        for w in itertools.chain.from_iterable(s.words or () for s in segments)
    )
    return Transcript(
        text=" ".join(s.text.strip() for s in segments if s.text.strip()),
        segments=tuple(
            Segment(text=s.text.strip(), start=float(s.start), end=float(s.end)) for s in segments
        ),
        words=words,
        language=language,
        duration=duration,
    )
