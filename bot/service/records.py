"""The store roles the service calls: the job records intake writes and reads, kept recordings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from bot.model.job import Admission, Blob, Job, JobState, NewJob


class JobRecords(Protocol):
    """Creating jobs and the chat-scoped questions about them (status, cancel, forget)."""

    async def create(
        self,
        new: NewJob,
        *,
        now: float,
        input_blob: Blob | None = None,
        state: JobState = JobState.QUEUED,
        result: Mapping[str, Any] | None = None,
        output_blob: Blob | None = None,
        admit: Admission | None = None,
    ) -> Job:
        """Insert a job (QUEUED with its input, or already COMPLETED for a reused result); with
        ``new.unique_key`` held by a live job, that job instead (nothing is inserted).

        Raises:
            Exception: whatever ``admit.check`` raises (e.g. LimitExceeded): nothing is stored.
        """
        ...

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        ...

    async def find_for_chat(self, platform: str, chat_id: str, job_id: str) -> Job | None:
        """The job only if it belongs to this chat (chats never see each other's jobs)."""
        ...

    async def recent_for_chat(self, platform: str, chat_id: str, limit: int = 10) -> list[Job]:
        """Newest jobs of one chat first."""
        ...

    async def find_reusable(self, dedup_key: str) -> Job | None:
        """The newest completed job with this dedup key (its result can be reused for free)."""
        ...

    async def find_unique(self, unique_key: str) -> Job | None:
        """The live (not failed or cancelled) job holding ``unique_key``, if any."""
        ...

    async def find_released(self, unique_key: str) -> Job | None:
        """The newest failed or cancelled job that held ``unique_key`` (not yet given up to a
        new job): its finished parts may be reused."""
        ...

    async def find_by_source(self, platform: str, chat_id: str, source: str) -> Job | None:
        """The job created from one platform event (``origin.extra["source"]``), if any."""
        ...

    async def cancel(self, job_id: str, now: float) -> Job | None:
        """QUEUED/SUBMITTING/SUBMITTED → CANCELLED (final, never delivered), whoever holds it.

        Returns:
            The cancelled job, or None when it was not cancellable (gone or already finished).
        """
        ...

    async def forget(self, platform: str, chat_id: str, user_id: str) -> int:
        """Delete a user's jobs in one chat (a job mid-submit is kept); returns the count."""
        ...


class Recordings(Protocol):
    """A local engine's recordings, kept past the transcript for its own translation."""

    async def load_blob(self, job_id: str, role: str) -> Blob | None:
        """The ``input``, ``output`` or ``recording`` audio of a job, if still kept."""
        ...

    async def keep_recording(self, job_id: str, blob: Blob) -> None:
        """Keep a job's recording (``load_blob(job_id, "recording")``) until
        ``options["keep_audio_until"]``, past the moment its input is dropped."""
        ...
