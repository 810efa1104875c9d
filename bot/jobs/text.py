"""TextRunner: summaries and translations of a transcript by the chat model, map then reduce."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot.chat import render
from bot.chat.replies import INTERRUPTED_PART
from bot.jobs.split import PartStore
from bot.jobs.steps import Completion, Failure, JobSteps, NextPoll
from bot.model.errors import ProviderError, RateLimited
from bot.model.job import Blob, Job, JobState, NewPart, Part
from bot.model.speech import Transcript
from bot.providers.chat import ChatMessage, TextGenerator
from bot.text import Msg, decode, encode, msg

_LOGGER = logging.getLogger(__name__)

SUMMARY = "summary"
TRANSLATE = "translate"
ACTIONS = (SUMMARY, TRANSLATE)
CHARS_PER_TOKEN = 3
"""Conservative: about 4 for English, fewer for most other scripts."""
PROMPT_TOKENS = 300  # the instructions, and slack for the server's message framing
OUTPUT_TOKENS = 1500  # the longest answer asked for (a piece's translation can be longer)

_MAP = (
    "You summarize part {part} of {parts} of a transcript of a recording. Write in {language}: "
    "two or three sentences on what this part is about, then its key points as a short list. "
    "Only what the transcript says."
)
_REDUCE = (
    "You get summaries of the consecutive parts of one transcript. Write in {language}: a short "
    "summary of the whole recording (a few sentences), then its key points as a bulleted list "
    "(at most ten). Only what the summaries say."
)
_SINGLE = (
    "You summarize a transcript of a recording. Write in {language}: a short summary (a few "
    "sentences), then its key points as a bulleted list (at most ten). Only what the transcript "
    "says."
)
_TRANSLATE = (
    "Translate this transcript into {language}. Keep line breaks and any 'Speaker N:' labels "
    "as they are. Answer with the translation only."
)


def pieces(text: str, max_input_tokens: int) -> list[str]:
    """``text`` cut at word boundaries into pieces that fit one request's input."""
    budget = max(200, (max_input_tokens - PROMPT_TOKENS) * CHARS_PER_TOKEN)
    return render.split_message(text, budget) or [""]


class TextRunner:
    """Moves a TEXT job: QUEUED → one request (short transcript), or split into pieces
    (``job_parts``: map requests, then for a summary one reduce part) → COMPLETED. Each piece is
    a durable sub-job: a restart never pays for a finished piece again, and a piece caught
    mid-request is not resent (the job then fails and the button can be pressed again)."""

    def __init__(
        self,
        steps: JobSteps,
        parts: PartStore,
        llm: TextGenerator | None,
        *,
        clock: Callable[[], float],
        max_input_tokens: int,
        concurrency: int = 2,
    ) -> None:
        self._steps = steps
        self._parts = parts
        self._llm = llm
        self._clock = clock
        self._max_input = max_input_tokens
        self._concurrency = max(1, concurrency)

    async def submit(self, job: Job, now: float) -> None:
        """QUEUED → COMPLETED for a transcript that fits one request; else split into parts."""
        if await self._steps.begin_submit(job.id, now) is None:
            return
        source = await self._source_text(job)
        if source is None:
            return
        budget = int(job.options.get("max_input_tokens") or self._max_input)
        chunks = pieces(source, budget)
        if len(chunks) == 1:
            try:
                text = await self._ask(job, _SINGLE if _summary(job) else _TRANSLATE, chunks[0])
            except ProviderError as exc:
                await self._failed(job, exc)
                return
            await self._complete(job, text, cost=None)
            return
        done = await self._reusable(job, len(chunks))
        parts = [
            NewPart(float(i), 0.0, Blob(c.encode(), None, "text/plain"), done.get(i))
            for i, c in enumerate(chunks)
        ]
        if _summary(job):
            parts.append(NewPart(float(len(chunks)), 0.0, Blob(b"", None, "text/plain")))
        now = self._clock()
        await self._parts.store_parts(job.id, parts, next_poll_at=now, now=now)

    async def _reusable(self, job: Job, count: int) -> dict[int, Mapping[str, Any]]:
        """The finished pieces of the failed job this one retries: the same transcript cut with
        the same budget gives the same pieces, so their answers are reused, not paid again."""
        before = await self._steps.get(str(job.options.get("after", "")))
        if before is None or before.options.get("max_input_tokens") != job.options.get(
            "max_input_tokens"
        ):
            return {}
        parts = await self._parts.of(before.id)
        if len(parts) - (1 if _summary(before) else 0) != count:
            return {}
        return {
            p.index: p.result
            for p in parts[:count]
            if p.state is JobState.COMPLETED and p.result is not None
        }

    async def step(self, job: Job, now: float) -> None:
        """Run the pieces still to do (bounded), then the reduce; finish when all are done."""
        parts = await self._parts.of(job.id)
        for part in parts:
            if part.state is JobState.SUBMITTING:  # its process died mid-request
                await self._parts.fail_part(job.id, part.index, INTERRUPTED_PART, now=now)
        parts = await self._parts.of(job.id)
        failed = next((p for p in parts if p.state is JobState.FAILED), None)
        if failed is not None:
            reason = decode(failed.error or "")
            await self._fail(
                job,
                msg("Part {n} could not be done: {reason}.", n=failed.index + 1, reason=reason),
            )
            return
        reduce = parts[-1] if _summary(job) else None
        maps = parts[:-1] if reduce is not None else parts
        todo = [p for p in maps if p.state is JobState.QUEUED][: self._concurrency]
        if not todo and reduce is not None and reduce.state is JobState.QUEUED:
            todo = [reduce]
        outcomes = await asyncio.gather(
            *(self._run(job, p, maps) for p in todo), return_exceptions=True
        )
        refused = [o for o in outcomes if isinstance(o, ProviderError)]
        if refused:
            await self._failed(job, refused[0])
            return
        await self._settle(job, await self._parts.of(job.id), outcomes)

    async def _settle(self, job: Job, parts: Sequence[Part], outcomes: Sequence[object]) -> None:
        now = self._clock()
        if all(p.state is JobState.COMPLETED for p in parts):
            texts = [_text(p) for p in parts]
            text = texts[-1] if _summary(job) else "\n\n".join(texts)
            await self._complete(job, text, cost=sum(p.cost or 0.0 for p in parts) or None)
            return
        waits = [o for o in outcomes if isinstance(o, float)]
        done = sum(1 for p in parts if p.state is JobState.COMPLETED) / len(parts)
        delay = min(waits) if waits else 0.0
        await self._steps.reschedule(job.id, NextPoll(now + delay, progress=done), now)

    async def _run(self, job: Job, part: Part, maps: Sequence[Part]) -> float | None:
        if not await self._parts.begin_part(job.id, part.index, self._clock()):
            return None
        if part.index >= len(maps):  # the reduce: the pieces' summaries together
            done = await self._parts.of(job.id)
            instructions, text = _REDUCE, "\n\n".join(_text(p) for p in done[: len(maps)])
        else:
            blob = await self._parts.load_part_input(job.id, part.index)
            text = blob.data.decode() if blob else ""
            instructions = _MAP if _summary(job) else _TRANSLATE
        try:
            answer = await self._ask(job, instructions, text, part=part.index + 1, parts=len(maps))
        except RateLimited as exc:
            await self._parts.requeue_part(job.id, part.index, self._clock())
            return exc.retry_after or 5.0
        except ProviderError as exc:
            await self._parts.fail_part(job.id, part.index, encode(exc.text), now=self._clock())
            raise
        await self._parts.complete_part(job.id, part.index, Transcript(answer), now=self._clock())
        return None

    async def _ask(self, job: Job, instructions: str, text: str, **fields: int) -> str:
        if self._llm is None:
            raise ProviderError("no llm route", user_message=msg("Summaries are not set up here."))
        language = str(job.options.get("language") or "English")
        messages = [
            ChatMessage("system", instructions.format(language=language, **fields)),
            ChatMessage("user", text),
        ]
        answer = await self._llm.complete(messages, model=job.model, max_tokens=OUTPUT_TOKENS)
        return answer.text

    async def _source_text(self, job: Job) -> str | None:
        source = await self._steps.get(str(job.options.get("source", "")))
        t = source.transcript if source is not None else None
        if t is None:
            await self._fail(job, msg("The transcript is gone (deleted or expired)."))
            return None
        diarize = bool(source.options.get("diarize")) if source else False
        return render.render_transcript(t, diarize=diarize).strip()

    async def _complete(self, job: Job, text: str, cost: float | None) -> None:
        result = Transcript(text=text).to_dict()
        await self._steps.complete(
            job.id, Completion(result, cost=cost, polled=True), self._clock()
        )

    async def _failed(self, job: Job, exc: ProviderError) -> None:
        if isinstance(exc, RateLimited) and job.state is JobState.QUEUED:
            await self._steps.requeue(
                job.id, self._clock() + (exc.retry_after or 5.0), self._clock()
            )
            return
        _LOGGER.warning("job %s: the chat model refused: %s", job.id, exc)
        await self._fail(job, exc.text)

    async def _fail(self, job: Job, message: Msg) -> None:
        stored = encode(message)  # each reader sees it in their language
        await self._steps.fail(job.id, Failure(stored, "text", polled=True), self._clock())


def _summary(job: Job) -> bool:
    return job.options.get("action") == SUMMARY


def _text(part: Part) -> str:
    t = part.transcript
    return t.text if t is not None else ""
