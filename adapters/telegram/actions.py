"""Keeps "typing…" / "recording voice…" visible in a chat while one of its jobs is working."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from telegram import Bot
from telegram.error import RetryAfter, TelegramError

from adapters.telegram.convert import seconds
from bot.model.job import Job

_LOGGER = logging.getLogger(__name__)

INTERVAL = 4.5  # Telegram shows an action for 5 s or until the bot's next message

_ChatKey = tuple[str, str | None]


class ChatActions:
    """One small task per chat with active jobs; it ends when the chat has none left.

    Purely cosmetic and in memory: after a restart the action comes back when a job of the chat
    reports progress again.
    """

    def __init__(self, bot: Bot, *, max_age: float, interval: float = INTERVAL) -> None:
        self._bot = bot
        self._max_age = max_age
        self._interval = interval
        self._jobs: dict[_ChatKey, dict[str, tuple[str, float]]] = {}
        self._tasks: dict[_ChatKey, asyncio.Task[None]] = {}
        self._emptied: dict[_ChatKey, asyncio.Event] = {}

    def track(self, job: Job, action: str) -> None:
        """Show ``action`` in the job's chat until :meth:`done` is called for it."""
        key = (job.origin.chat_id, job.origin.thread_id)
        jobs = self._jobs.setdefault(key, {})
        if job.id in jobs:
            return
        jobs[job.id] = (action, time.monotonic())
        if key not in self._tasks:
            self._emptied[key] = asyncio.Event()
            self._tasks[key] = asyncio.create_task(self._run(key), name=f"chat-action-{key[0]}")

    def done(self, job_id: str) -> None:
        """The job was answered: stop showing an action for it."""
        for key, jobs in self._jobs.items():
            if jobs.pop(job_id, None) is not None and not jobs and key in self._emptied:
                self._emptied[key].set()

    def active(self, chat_id: str) -> bool:
        """Whether an action is being kept up in this chat (for tests and diagnostics)."""
        return any(key[0] == chat_id and jobs for key, jobs in self._jobs.items())

    async def close(self) -> None:
        """Stop every task (at shutdown)."""
        tasks = list(self._tasks.values())
        self._jobs.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _current(self, key: _ChatKey) -> str | None:
        jobs = self._jobs.get(key, {})
        now = time.monotonic()
        # A job that is never delivered here (deferred, or another process took over) must not
        # keep the chat "typing" forever.
        for job_id, (_, since) in list(jobs.items()):
            if now - since > self._max_age:
                del jobs[job_id]
        actions = {action for action, _ in jobs.values()}
        if not actions:
            return None
        return "record_voice" if "record_voice" in actions else sorted(actions)[0]

    async def _run(self, key: _ChatKey) -> None:
        chat_id, thread_id = key
        try:
            while (action := self._current(key)) is not None:
                delay = self._interval
                try:
                    await self._bot.send_chat_action(
                        chat_id,
                        action,
                        message_thread_id=int(thread_id) if thread_id is not None else None,
                    )
                except RetryAfter as exc:
                    delay = max(delay, seconds(exc.retry_after) or delay)
                except TelegramError as exc:
                    _LOGGER.debug("chat action in %s failed: %s", chat_id, exc)
                # Woken early when the chat's last job is answered, so the task ends promptly.
                emptied = self._emptied[key]
                if self._jobs.get(key):
                    emptied.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(emptied.wait(), delay)
        finally:
            self._tasks.pop(key, None)
            self._emptied.pop(key, None)
            if not self._jobs.get(key):
                self._jobs.pop(key, None)
