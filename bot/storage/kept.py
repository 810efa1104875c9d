"""Kept audio: the ``job_blobs`` beside a job (its input, output clip and kept recording).

A local engine's recording is kept for a while after its transcript so that Whisper's own
translate task can run on it later (role ``recording``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.jobs.speech_translate import RECORDING
from bot.model.job import Blob, JobState
from bot.storage.codec import BLOB_COLUMNS, blob_from_row, blob_row
from bot.storage.database import marks, state_in

if TYPE_CHECKING:
    from bot.storage.database import Database


class KeptAudio:
    """Reads, keeps and drops a job's audio; composed into :class:`bot.storage.jobs.SqlJobStore`.
    How long a recording is kept is the job's ``options["keep_audio_until"]``, set at creation."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def load_blob(self, job_id: str, role: str) -> Blob | None:
        """The ``input``, ``output`` or ``recording`` audio of a job, if still kept."""
        rows = await self.db.fetch(
            "SELECT data, filename, content_type FROM job_blobs WHERE job_id = ? AND role = ?",
            (job_id, role),
        )
        return blob_from_row(rows[0]) if rows else None

    async def keep_recording(self, job_id: str, blob: Blob) -> None:
        """Keep ``blob`` beside the job (once: a second call changes nothing)."""
        await self.db.execute(
            f"INSERT INTO job_blobs ({', '.join(BLOB_COLUMNS)}) VALUES ({marks(5)}) "
            "ON CONFLICT (job_id, role) DO NOTHING",
            blob_row(job_id, RECORDING, blob),
        )

    async def drop_recordings(self, now: float) -> int:
        """Drop the recordings kept past their time, or of jobs that ended without a transcript
        (nothing to translate); returns how many."""
        until = self.db.dialect.json_number("options", "keep_audio_until")
        return await self.db.execute(
            "DELETE FROM job_blobs WHERE role = ? AND job_id IN (SELECT id FROM jobs WHERE "
            f"{state_in([JobState.FAILED, JobState.CANCELLED])} OR COALESCE({until}, 0) < ?)",
            (RECORDING, now),
        )
