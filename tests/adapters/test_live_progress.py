"""Live partial transcripts on the real client libraries against the fake platforms: the text so
far in the placeholder (✖ Cancel kept), in order and within each platform's edit budget under 20
jobs in one chat; drafts in Telegram private chats, edits where a draft is refused."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from telegram.ext import AIORateLimiter

from adapters.discord.replies import CHANNEL_BUDGET
from adapters.telegram.placeholders import GROUP_BUDGET, PRIVATE_BUDGET, Placeholders
from bot.jobs.live import EditBudget, EditThrottle, with_partial
from bot.model.job import Job, JobState
from bot.model.speech import Origin
from testkit.discord_bot import running_bot
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.fakes.telegram import Call, FakeTelegram
from testkit.support import FakeClock, a_job
from testkit.telegram_bot import GROUP, USER, World, running

pytestmark = pytest.mark.usefixtures("ptb_timedelta", "unlimited_ptb")

JOBS = 20
TICK = 0.5  # seconds of the fake clock between two polls of every job
WORDS = [f"word{i}" for i in range(400)]


def running_job(n: int, platform: str, chat: int) -> Job:
    origin = Origin(platform=platform, chat_id=str(chat), user_id=str(USER))
    return a_job(origin, JobState.SUBMITTED, f"live{n:02d}")


def placed(job: Job, message_id: object) -> Job:
    extra = {**job.origin.extra, "placeholder_id": str(message_id)}
    return replace(job, origin=replace(job.origin, extra=extra))


async def grow(
    jobs: Sequence[Job],
    progress: Callable[[Job], Awaitable[None]],
    clock: FakeClock,
    calls: Callable[[], int],
    ticks: int,
) -> list[float]:
    """Every job polled each tick with one more word; the fake clock time of each platform call
    made meanwhile (index: the fake's call order)."""
    times: list[float] = []
    for tick in range(1, ticks + 1):
        clock.now = tick * TICK
        before = calls()
        for job in jobs:
            text = " ".join(WORDS[: tick + int(job.id[-2:])])
            shown = with_partial(job, text)
            assert shown is not None
            await progress(shown)
        times += [clock.now] * (calls() - before)
    return times


def assert_within(
    times: Sequence[float], per_message: dict[str, list[float]], b: EditBudget
) -> None:
    for at in times:
        assert sum(1 for t in times if at - b.window < t <= at) <= b.per_chat
    for message_times in per_message.values():
        assert all(
            later - earlier >= b.per_message for earlier, later in itertools.pairwise(message_times)
        )


@pytest.fixture
def unlimited_ptb(monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB's own limiter waits in real time, and these tests run a fake clock far ahead of it:
    lifted here, so what reaches the fake is what the edit budget let out."""
    import adapters.telegram.adapter as module

    def limiter(max_retries: int = 0) -> AIORateLimiter:
        return AIORateLimiter(overall_max_rate=0, group_max_rate=0, max_retries=max_retries)

    monkeypatch.setattr(module, "AIORateLimiter", limiter)


def methods(tg: FakeTelegram, *names: str) -> list[Call]:
    return [c for c in tg.calls if c.method in names]


def assert_growing(texts: Sequence[str]) -> None:
    counts = [sum(1 for w in text.split() if w.startswith("word")) for text in texts]
    assert counts == sorted(counts) and len(set(counts)) == len(counts), counts


async def test_live_telegram_group_edits_in_order_within_budget(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        clock = FakeClock(0.0)
        placeholders = w.adapter.placeholders
        placeholders.throttle = EditThrottle(clock)
        jobs = []
        for n in range(JOBS):
            job = running_job(n, "telegram", GROUP)
            jobs.append(placed(job, await placeholders.show(job)))
        count = lambda: len(methods(w.tg, "editMessageText"))  # noqa: E731
        times = await grow(jobs, placeholders.progress, clock, count, ticks=300)
        calls = methods(w.tg, "editMessageText")
    edits = calls
    assert len(edits) == len(times) and all(c.ok for c in edits)
    per_message: dict[str, list[float]] = {}
    texts: dict[str, list[str]] = {}
    for call, at in zip(calls, times, strict=True):
        key = str(call.params["message_id"])
        per_message.setdefault(key, []).append(at)
        texts.setdefault(key, []).append(call.text or "")
        assert "✖" in str(call.params["reply_markup"])  # Cancel kept under the text so far
    assert_within(times, per_message, GROUP_BUDGET)
    assert len(per_message) == JOBS  # every job's text shown, none starved
    for shown in texts.values():
        assert_growing(shown)
    assert len(edits) >= GROUP_BUDGET.per_chat * 2  # two minutes and a half: the budget used


async def private_placeholder(w: World) -> tuple[Placeholders, FakeClock, Job]:
    """A running job's placeholder in the private chat, its throttle on a fake clock."""
    clock = FakeClock(0.0)
    placeholders = w.adapter.placeholders
    placeholders.throttle = EditThrottle(clock)
    job = running_job(1, "telegram", USER)
    return placeholders, clock, placed(job, await placeholders.show(job))


async def test_live_telegram_private_chat_streams_drafts(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        placeholders, clock, job = await private_placeholder(w)
        shown = ("sendMessageDraft", "editMessageText")
        count = lambda: len(methods(w.tg, *shown))  # noqa: E731
        times = await grow([job], placeholders.progress, clock, count, ticks=20)
        calls = methods(w.tg, *shown)
        # Where the API refuses a draft, the placeholder shows the text instead.
        w.tg.fail("sendMessageDraft", 400, "Bad Request: TEXTDRAFT_PEER_INVALID")
        refused = len(w.tg.calls)
        clock.now += 10.0
        await placeholders.progress(with_partial(job, "word0 word1 word2") or job)
        after = [c for c in w.tg.calls[refused:] if c.method in shown]
    drafts = [c for c in calls if c.method == "sendMessageDraft"]
    assert drafts and all(c.ok for c in drafts)
    assert {c.params["draft_id"] for c in drafts} == {int(job.placeholder_id or 0)}
    assert_growing([c.text or "" for c in drafts])
    assert_within(
        times,
        {"draft": [t for c, t in zip(calls, times, strict=True) if c.method == "sendMessageDraft"]},
        PRIVATE_BUDGET,
    )
    edits = [c for c in calls if c.method == "editMessageText"]
    assert all("word" not in (c.text or "") for c in edits)  # the placeholder: state only
    assert [c.method for c in after] == ["sendMessageDraft", "editMessageText"]
    assert "word2" in (after[1].text or "") and not after[0].ok


async def test_live_discord_channel_edits_in_order_within_budget(
    tmp_path: Path, dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    async with running_bot(tmp_path, dc, nano, canto) as bot:
        replies = bot.adapter.replies
        clock = FakeClock(0.0)
        replies.throttle = EditThrottle(clock)
        channel = dc.ids.text_channel
        jobs = []
        for n in range(JOBS):
            message_id = await replies.outbox.send(channel, f"placeholder {n}")
            jobs.append(placed(running_job(n, "discord", channel), message_id))
        path = rf"/channels/{channel}/messages/\d+"
        count = lambda: len(dc.find_requests("PATCH", path))  # noqa: E731
        times = await grow(jobs, replies.progress, clock, count, ticks=60)
        edits = dc.find_requests("PATCH", path)
    per_message: dict[str, list[float]] = {}
    texts: dict[str, list[str]] = {}
    for request, at in zip(edits, times, strict=True):
        key = request.path.rsplit("/", 1)[1]
        per_message.setdefault(key, []).append(at)
        texts.setdefault(key, []).append(str(request.json.get("content")))
    assert_within(times, per_message, CHANNEL_BUDGET)
    assert len(per_message) == JOBS
    for shown in texts.values():
        assert_growing(shown)
    assert len(edits) >= CHANNEL_BUDGET.per_chat * 5  # thirty seconds: the budget used


async def test_live_telegram_draft_flood_control_does_not_end_drafts(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        placeholders, clock, job = await private_placeholder(w)
        w.tg.fail("sendMessageDraft", 429, retry_after=1)
        for n, at in enumerate((1.0, 5.0), start=1):
            clock.now = at
            await placeholders.progress(with_partial(job, " ".join(WORDS[:n])) or job)
        drafts = methods(w.tg, "sendMessageDraft")
        edits = methods(w.tg, "editMessageText")
    assert [d.ok for d in drafts] == [False, True]  # refused once for flood, then streamed
    assert all("word" not in (c.text or "") for c in edits)
