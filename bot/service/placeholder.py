"""The placeholder an adapter shows under a new job, sent before the job is stored.

Every platform answers first and stores second. Discord sends its placeholder (or defers the
interaction) before calling the service and passes its id in the origin (``placeholder_id``).
Telegram's placeholder shows the job id and a ✖ Cancel button keyed by it, so it is sent by
the service itself, through a :class:`Placeholder` the adapter passes in: once every check has
passed (a refused voice note gets its reason, never a placeholder first), under the id the job
will be stored with, right before the one write that stores the job with the placeholder's id
in its origin. Nothing is written back after creation, so a delivery or a progress update never
waits for, or races, a placeholder being sent; a placeholder that cannot be sent leaves a job
without one (its reply is then sent anew); a job answered from an existing one (a reused
transcript, a summary already asked for) gets none, as its reply follows at once; a job the
store refuses after all, or finds already there, takes the placeholder back; a restart between
the placeholder and the write leaves that placeholder unused (the platform event was not
confirmed: it is replayed and answered anew). Rows stored before kept the placeholder in
``progress_message_id``; :attr:`bot.model.job.Job.placeholder_id` reads either.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Protocol

from bot.model.job import Job, JobState, NewJob, new_job_id
from bot.service.records import JobRecords

_LOGGER = logging.getLogger(__name__)


class Placeholder(Protocol):
    """How an adapter shows a job about to be stored (see the module docstring)."""

    async def show(self, job: Job) -> str | None:
        """Send the placeholder of ``job``, not stored yet (its id is the one it gets).

        Returns:
            The placeholder message's id, or None when it could not be sent.
        """
        ...

    async def withdraw(self, job: Job) -> None:
        """The job was not stored with this placeholder after all (refused, or answered by
        another): take it back (its id is ``job.origin.placeholder_id``)."""
        ...


def preview(new: NewJob, now: float) -> Job:
    """The job ``new`` becomes when stored under its id (as the adapter shows it before)."""
    return Job(
        id=new.id or "",
        kind=new.kind,
        origin=new.origin,
        provider=new.provider,
        model=new.model,
        options=new.options,
        state=JobState.QUEUED,
        created_at=now,
        updated_at=now,
        deadline_at=new.deadline_at,
        input_duration=new.input_duration,
    )


async def create_shown(
    store: JobRecords, new: NewJob, placeholder: Placeholder | None, **create: Any
) -> Job:
    """Show ``new`` through ``placeholder`` (if any), then store it with the placeholder's id
    in its origin (``create``: the store's keyword arguments, ``now`` among them)."""
    if placeholder is None:
        return await store.create(new, **create)
    if new.id is None:  # drawn now: the placeholder shows the id the job is stored under
        new = dataclasses.replace(new, id=new_job_id())
    shown = preview(new, create["now"])
    message_id = await placeholder.show(shown)
    if message_id is not None:
        origin = new.origin
        extra = {**origin.extra, "placeholder_id": message_id}
        new = dataclasses.replace(new, origin=dataclasses.replace(origin, extra=extra))
        shown = dataclasses.replace(shown, origin=new.origin)  # withdraw finds the message
    try:
        job = await store.create(new, **create)
    except BaseException:
        await placeholder.withdraw(shown)
        raise
    if job.placeholder_id != message_id:
        # Another live job holds the same key: it answers under its own placeholder.
        _LOGGER.info("job %s: answered by job %s; placeholder withdrawn", shown.id, job.id)
        await placeholder.withdraw(shown)
    return job
