"""Live partial transcripts: the text so far shown in a job's placeholder (handed to the adapter
with the job, shown and never stored), and the edit budget that keeps those edits inside what
each platform tolerates."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable

from bot.model.job import Job

_LOGGER = logging.getLogger(__name__)

PARTIAL_KEY = "live_text"
"""The key of ``Job.extra`` that carries the partial text to a deliverer's ``progress``."""
_SWEEP_EVERY = 600.0  # seconds: longer than any budget's window or a poll's pause
LIVE_OPTION = "live_transcripts"
"""The job option (set from the chat's setting, else the config) that turns live text off."""


def live(job: Job) -> bool:
    """Whether ``job`` shows its text as it is made (on unless its option says off)."""
    return job.options.get(LIVE_OPTION) is not False


def with_partial(job: Job | None, text: str | None) -> Job | None:
    """``job`` carrying ``text`` for its placeholder (unchanged without text or when off)."""
    if job is None or not text or job.state.terminal or not live(job):
        return job
    return dataclasses.replace(job, extra={**job.extra, PARTIAL_KEY: text})


def partial_text(job: Job) -> str | None:
    """The partial text a progress update carries, if any."""
    value = job.extra.get(PARTIAL_KEY)
    return str(value) if value else None


def tail(text: str, limit: int) -> str:
    """The end of ``text`` in at most ``limit`` characters, cut at a word and marked "…" (the
    newest words are what a reader watching it grow wants to see)."""
    if len(text) <= limit:
        return text
    end = text[len(text) - limit + 1 :]
    cut = end.find(" ")
    return "…" + (end[cut + 1 :] if 0 <= cut < limit // 2 else end)


@dataclasses.dataclass(frozen=True, slots=True)
class EditBudget:
    """How often progress edits may reach one chat: at most ``per_chat`` in any ``window``
    seconds, and a live-text edit of one message at most every ``per_message`` seconds."""

    per_chat: int
    window: float
    per_message: float


class EditThrottle:
    """Decides which progress edits go out. An edit that would break the budget is dropped, not
    queued: the next poll carries newer text, and a queued edit could land after the final reply.
    State edits (no partial text) skip the per-message pause but count against the chat's."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}
        self._last: dict[str, float] = {}
        # A hash, not the text: a long transcript's text is not kept twice per job.
        self._shown: dict[str, int] = {}
        # Per chat, the messages that asked for a live edit lately (and when): the budget is
        # shared between them, so that 20 jobs in one chat all grow, in turn.
        self._wanting: dict[str, dict[str, float]] = {}
        self._swept = clock()

    def allow(self, chat: str, message: str, text: str, budget: EditBudget, *, live: bool) -> bool:
        """Whether to edit ``message`` in ``chat`` to ``text`` now (recorded when True).

        Args:
            chat: the chat (channel) the budget is counted for.
            message: the edited message (or draft).
            text: what it would show; the same text again is never sent.
            budget: the platform's budget for this chat.
            live: the edit carries partial text (subject to the per-message pause).
        """
        now = self._clock()
        self._sweep(now)
        if self._shown.get(message) == hash(text):
            return False
        if live and now - self._last.get(message, float("-inf")) < self._pause(
            chat, message, budget
        ):
            return False
        sent = self._sent.setdefault(chat, deque())
        while sent and now - sent[0] >= budget.window:
            sent.popleft()
        if len(sent) >= budget.per_chat:
            _LOGGER.debug("chat %s: progress edit skipped (edit budget used up)", chat)
            return False
        sent.append(now)
        self._last[message] = now
        self._shown[message] = hash(text)
        return True

    def _pause(self, chat: str, message: str, budget: EditBudget) -> float:
        """The least time between two live edits of ``message``: the budget's, or longer when
        more messages in the chat share it (each gets its turn)."""
        now = self._clock()
        wanting = self._wanting.setdefault(chat, {})
        wanting[message] = now
        for other, at in list(wanting.items()):
            if now - at > budget.window + budget.per_message:
                del wanting[other]
        return max(budget.per_message, budget.window * len(wanting) / budget.per_chat)

    def _sweep(self, now: float) -> None:
        """Every few minutes, drop what is kept about chats and messages quiet for that long (a
        cancelled job's message is never forgotten otherwise): memory stays bounded by activity."""
        if now - self._swept < _SWEEP_EVERY:
            return
        self._swept = now
        for key, at in list(self._last.items()):
            if now - at > _SWEEP_EVERY:
                self.forget(key)
        for chat, sent in list(self._sent.items()):
            if not sent or now - sent[-1] > _SWEEP_EVERY:
                del self._sent[chat]
        for chat, wanting in list(self._wanting.items()):
            if not wanting or now - max(wanting.values()) > _SWEEP_EVERY:
                del self._wanting[chat]

    def forget(self, message: str) -> None:
        """The message's job ended: drop what was kept about it."""
        self._last.pop(message, None)
        self._shown.pop(message, None)
