"""create_shown: the placeholder is shown before the one write that stores the job with it,
and taken back when the job is refused or answered by another."""

from __future__ import annotations

from typing import Any

import pytest

from bot.model.job import Job, JobKind, JobState, NewJob
from bot.model.speech import Origin
from bot.service.limits import LimitExceeded
from bot.service.placeholder import create_shown
from bot.text import msg

ORIGIN = Origin(platform="test", chat_id="chat-1", user_id="user-1", reply_to="m-1")
NEW = NewJob(JobKind.STT, ORIGIN, "nanogpt", "whisper", {"language": "en"}, deadline_at=100.0)


class Shown:
    """A platform's placeholders: what was shown and taken back, in order."""

    def __init__(self, message_id: str | None = "p-1") -> None:
        self.message_id = message_id
        self.calls: list[tuple[str, Job]] = []

    async def show(self, job: Job) -> str | None:
        self.calls.append(("show", job))
        return self.message_id

    async def withdraw(self, job: Job) -> None:
        self.calls.append(("withdraw", job))


class Store:
    """Stores what it is given (``holder``: a live job with the same key is returned instead;
    ``refuse``: the insert's limits refuse)."""

    def __init__(self, holder: Job | None = None, refuse: bool = False) -> None:
        self.holder = holder
        self.refuse = refuse
        self.created: list[NewJob] = []

    async def create(self, new: NewJob, *, now: float, **kwargs: Any) -> Job:
        self.created.append(new)
        if self.refuse:
            raise LimitExceeded(msg("Too many."))
        if self.holder is not None:
            return self.holder
        return Job(new.id or "drawn", new.kind, new.origin, new.provider, new.model, new.options,
                   JobState.QUEUED, now, now, new.deadline_at)  # fmt: skip


async def test_placeholder_is_shown_under_the_stored_id_and_in_the_stored_origin() -> None:
    shown, store = Shown(), Store()
    job = await create_shown(store, NEW, shown, now=5.0)  # type: ignore[arg-type]
    [(call, preview)] = shown.calls
    assert call == "show" and preview.id == job.id and preview.kind is JobKind.STT
    [stored] = store.created
    assert stored.origin.placeholder_id == "p-1" and stored.id == job.id
    assert job.placeholder_id == "p-1"


async def test_placeholder_not_sent_leaves_a_job_without_one() -> None:
    shown, store = Shown(message_id=None), Store()
    job = await create_shown(store, NEW, shown, now=5.0)  # type: ignore[arg-type]
    assert job.placeholder_id is None and [c for c, _ in shown.calls] == ["show"]


async def test_placeholder_is_taken_back_when_the_store_refuses() -> None:
    shown, store = Shown(), Store(refuse=True)
    with pytest.raises(LimitExceeded):
        await create_shown(store, NEW, shown, now=5.0)  # type: ignore[arg-type]
    assert [c for c, _ in shown.calls] == ["show", "withdraw"]
    assert shown.calls[1][1].origin.placeholder_id == "p-1"  # the message to delete


async def test_placeholder_is_taken_back_when_another_job_answers() -> None:
    holder = Job("other1", JobKind.TEXT, ORIGIN, "p", "m", {}, JobState.QUEUED, 1.0, 1.0, 9.0)
    shown, store = Shown(), Store(holder=holder)
    job = await create_shown(store, NEW, shown, now=5.0)  # type: ignore[arg-type]
    assert job is holder
    assert [c for c, _ in shown.calls] == ["show", "withdraw"]


async def test_no_placeholder_stores_the_job_as_given() -> None:
    store = Store()
    await create_shown(store, NEW, None, now=5.0)  # type: ignore[arg-type]
    assert store.created == [NEW]
