"""How a CLI command waits for its job: live progress line, retry notes, give-up and Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any, TextIO

from bot.chat.sources import download_progress, downloading
from bot.chat.status import format_age
from bot.jobs.delivery import Reply
from bot.model.errors import BotError
from bot.model.job import Job, JobKind, JobState
from bot.model.speech import VoiceClip
from bot.service.records import JobRecords

_LOGGER = logging.getLogger(__name__)


class Interrupted(BotError):
    """Ctrl-C (SIGINT) or SIGTERM while a command waited: its job was cancelled."""


class CliDeliverer:
    """Delivers CLI jobs to the waiting command; other CLI jobs (from an earlier, interrupted
    command) are marked delivered, their results stay readable with ``voicebot status``.

    Retry notes (a provider that could not take the job) are written to ``err`` as they come;
    once the provider has been unreachable for ``give_up`` seconds the command stops waiting.
    """

    def __init__(
        self, *, clock: Callable[[], float], give_up: float, err: TextIO | None = None
    ) -> None:
        self._waiting: dict[str, asyncio.Future[tuple[Job, VoiceClip | None]]] = {}
        self._clock = clock
        self._give_up = give_up
        self._err = err or sys.stderr
        self.line: ProgressLine | None = None

    def expect(self, job_id: str) -> asyncio.Future[tuple[Job, VoiceClip | None]]:
        """A future resolved with the finished job."""
        fut = self._waiting.setdefault(job_id, asyncio.get_running_loop().create_future())
        return fut

    async def deliver(self, reply: Reply) -> str | None:
        fut = self._waiting.get(reply.job.id)
        if fut is not None and not fut.done():
            fut.set_result((reply.job, reply.clip))
        return None

    async def progress(self, job: Job) -> None:
        retry = job.extra.get("retry")
        fut = self._waiting.get(job.id)
        if not isinstance(retry, dict) or fut is None or fut.done():
            return
        waited = self._clock() - job.created_at
        detail = str(retry.get("detail", ""))
        attempt = int(retry.get("attempt", 0))
        # Only a job the provider never got is given up: one it has may already be charged,
        # and its deadline ends it (Ctrl-C still cancels it at once).
        if not retry.get("sent") and waited + float(retry.get("retry_in", 0.0)) > self._give_up:
            fut.set_exception(
                BotError(f"gave up after {attempt} attempt(s) in {format_age(waited)}: {detail}")
            )
            return
        if self.line is not None:
            self.line.clear()
        print(
            f"voicebot: attempt {attempt} failed ({retry.get('short', detail)}); "
            f"retrying in {float(retry.get('retry_in', 0.0)):.0f} s",
            file=self._err,
            flush=True,
        )


class ProgressLine:
    """One self-rewriting stderr line (TTY only): queued → uploading → transcribing, with a
    percentage and time left estimated from the learned provider speed."""

    def __init__(
        self,
        store: JobRecords,
        eta: Callable[[Job], float | None],
        clock: Callable[[], float],
        err: TextIO,
    ) -> None:
        self._store, self._eta, self._clock, self._err = store, eta, clock, err
        self._shown = False

    def text(self, job: Job) -> str:
        """The line for ``job`` as it is now."""
        now = self._clock()
        if downloading(job):
            where = "downloading " + (download_progress(job) or "the link")
        elif job.state is JobState.QUEUED:
            where = "queued"
        elif job.state is JobState.SUBMITTING:
            where = "uploading"
        else:
            where = "transcribing" if job.kind is JobKind.STT else "synthesizing"
        line = f"job {job.id}: {where}"
        if job.queue_position:
            line += f", provider queue position {job.queue_position}"
        eta = self._eta(job) if job.state is JobState.SUBMITTED else None
        start = job.submitted_at or job.created_at
        if eta is not None and eta > start:
            share = min(99, max(0, round(100 * (now - start) / (eta - start))))
            line += f" {share}% (estimated), about {format_age(max(1.0, eta - now))} left"
        return line + f" [{format_age(now - job.created_at)}]"

    async def run(self, job_id: str, every: float = 0.25) -> None:
        """Rewrite the line until cancelled."""
        while True:
            job = await self._store.get(job_id)
            if job is not None and not job.state.terminal:
                self._err.write("\r\x1b[K" + self.text(job))
                self._err.flush()
                self._shown = True
            await asyncio.sleep(every)

    def clear(self) -> None:
        """Erase the line (before other output, and at the end)."""
        if self._shown:
            self._err.write("\r\x1b[K")
            self._err.flush()
            self._shown = False


async def wait_for_job(
    store: JobRecords,
    job: Job,
    finished: asyncio.Future[tuple[Job, VoiceClip | None]],
    line: ProgressLine | None,
    clock: Callable[[], float],
    *,
    free: bool = False,
) -> tuple[Job, VoiceClip | None]:
    """Wait for the job; on Ctrl-C/SIGTERM (or giving up) cancel it in the store and say so
    (``free``: its engine charges nothing, a local one, so the note does not speak of charges)."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopped.set)
    ticker = asyncio.create_task(line.run(job.id)) if line is not None else None
    stop: asyncio.Future[Any] = asyncio.ensure_future(stopped.wait())
    try:
        done, _ = await asyncio.wait({finished, stop}, return_when=asyncio.FIRST_COMPLETED)
        if finished in done and finished.exception() is None:
            return finished.result()
        before = await store.get(job.id)
        cancelled = await store.cancel(job.id, clock())
        if line is not None:
            line.clear()
        if finished in done:
            raise finished.exception()  # type: ignore[misc]  # checked above: not None
        sent = (  # a link still downloading has sent nothing to the provider either
            before is not None and before.state is not JobState.QUEUED and not downloading(before)
        )
        raise Interrupted(cancel_note(job.id, cancelled, sent=sent, free=free))
    finally:
        stop.cancel()
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if line is not None:
            line.clear()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def cancel_note(job_id: str, cancelled: Job | None, *, sent: bool, free: bool = False) -> str:
    """One line saying what happened to the job when the command was interrupted."""
    if cancelled is None:
        return f"interrupted; job {job_id} had already finished (voicebot status {job_id})"
    if free:
        return f"cancelled job {job_id} (a local engine: nothing is charged)"
    if sent:
        return (
            f"cancelled job {job_id}; it had been sent to the provider, so it may still be charged"
        )
    return f"cancelled job {job_id} before it was sent (nothing was charged)"
