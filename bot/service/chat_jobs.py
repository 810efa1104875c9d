"""A chat's jobs as its people see them: /status, one job or the recent ones."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.chat.status import render_job, render_job_list
from bot.model.job import Job
from bot.service.records import JobRecords
from bot.text import ENGLISH, Text

_LOGGER = logging.getLogger(__name__)


class ChatJobs:
    """Finds a chat's jobs (another chat's are invisible) and describes them."""

    def __init__(
        self,
        store: JobRecords,
        *,
        clock: Callable[[], float],
        eta: Callable[[Job], float | None],
    ) -> None:
        self._store = store
        self._clock = clock
        self._eta = eta

    async def job(self, platform: str, chat_id: str, job_id: str) -> Job | None:
        """A job of this chat (another chat's job is invisible: None)."""
        return await self._store.find_for_chat(platform, chat_id, job_id)

    async def recent_jobs(self, platform: str, chat_id: str, limit: int = 10) -> list[Job]:
        """This chat's newest jobs."""
        return await self._store.recent_for_chat(platform, chat_id, limit)

    async def status_text(
        self, platform: str, chat_id: str, job_id: str | None = None, tr: Text = ENGLISH
    ) -> str:
        """What /status answers: one job in detail, or this chat's recent jobs."""
        now = self._clock()
        if not job_id or not job_id.strip():
            return render_job_list(await self.recent_jobs(platform, chat_id), now, tr)
        wanted = job_id.strip().lstrip("#`").rstrip("`")
        if not wanted.isalnum() or len(wanted) > 32:
            return tr.gettext(
                "{value} is not a job id. Job ids look like ab12cd.",
                value=repr(job_id.strip()[:40]),
            )
        job = await self.job(platform, chat_id, wanted)
        if job is None:
            return tr.gettext(
                "No job {id} in this chat. Use /status to list this chat's jobs.", id=wanted
            )
        return render_job(job, now, eta=self._eta(job), tr=tr)
