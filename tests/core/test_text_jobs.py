"""Summaries and translations as durable jobs, in-process on real parts (SQLite store, poller,
the fake chat-completions server): once per transcript + action + language, map then reduce
within ``max_input_tokens``, resumed after a restart without paying a finished piece again."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from bot.config.load import parse_config
from bot.model.errors import InputError
from bot.model.job import JobKind, JobState, NewJob
from bot.model.speech import Origin, Transcript
from bot.service.limits import Guard
from testkit.core import CoreWithFakes
from testkit.fakes.chat import FakeChat, tokens
from testkit.support import config_dict

ORIGIN = Origin(platform="test", chat_id="chat-1", user_id="user-1", reply_to="m-1")
KEY = "test-chat-key"
LONG = " ".join(f"Sentence number {i} says something about topic {i % 7}." for i in range(600))


class TextHarness(CoreWithFakes):
    """A core whose ``llm`` is the fake chat-completions server (none: no ``llm`` section)."""

    def __init__(self, tmp_path: Path, chat: FakeChat | None, **llm: Any) -> None:
        data = config_dict(tmp_path)
        if chat is not None:
            data["providers"]["brain"] = {"type": "openai", "base_url": chat.url, "api_key": KEY}
            data["llm"] = {"provider": "brain", "model": "gpt-4o-mini", **llm}
        super().__init__(parse_config(data, env={}), steps=60, dt=0.5)

    async def transcript(self, text: str) -> str:
        """A finished transcription job of this chat (as the STT pipeline leaves it)."""
        assert self.core is not None
        new = NewJob(JobKind.STT, ORIGIN, "nanogpt", "Whisper-Large-V3", {}, deadline_at=1e12)
        job = await self.core.store.create(
            new, now=self.clock(), state=JobState.COMPLETED, result=Transcript(text).to_dict()
        )
        assert await self.core.store.replies.mark_delivered(job.id, "m-2", self.clock())
        return job.id


async def test_text_summary_once_per_transcript_action_and_language(
    tmp_path: Path, chat: FakeChat
) -> None:
    h = TextHarness(tmp_path, chat)
    core = await h.open()
    try:
        source = await h.transcript("We agreed to ship on Friday. Alice writes the notes.")
        job = await core.service.text_job(ORIGIN, source, "summary", "de-DE")
        again = await core.service.text_job(ORIGIN, source, "summary", "de")  # a second press
        assert again.id == job.id
        await h.drive()
        assert await core.service.text_job(ORIGIN, source, "summary", "de") is not None
        [(done, _)] = h.out.delivered
        translated = await core.service.text_job(ORIGIN, source, "translate", "fr")
        await h.drive()
    finally:
        await h.close()
    assert done.id == job.id and done.state is JobState.COMPLETED
    assert done.transcript is not None and done.transcript.text.startswith("Summary of ")
    assert translated.id != job.id and len(h.out.delivered) == 2
    first, second = chat.requests_to("chat")
    assert chat.submits["chat"] == 2  # the summary once, the translation once
    assert "German" in first.json["messages"][0]["content"]
    assert first.json["messages"][1]["content"].startswith("We agreed to ship on Friday.")
    assert "Translate this transcript into French" in second.json["messages"][0]["content"]


async def test_text_long_transcript_map_then_reduce_within_the_budget(
    tmp_path: Path, chat: FakeChat
) -> None:
    h = TextHarness(tmp_path, chat, max_input_tokens=1000)
    core = await h.open()
    try:
        source = await h.transcript(LONG)
        job = await core.service.text_job(ORIGIN, source, "summary", "en")
        await h.drive()
        parts = await core.store.parts.of(job.id)
    finally:
        await h.close()
    [(done, _)] = h.out.delivered
    assert done.state is JobState.COMPLETED, done.error
    sent = chat.requests_to("chat")
    assert len(parts) >= 4 and len(sent) == len(parts)  # each piece, then one reduce
    for request in sent:
        assert sum(tokens(m["content"]) for m in request.json["messages"]) <= 1000
    maps, reduce = sent[:-1], sent[-1]
    assert "".join(r.json["messages"][1]["content"] for r in maps).replace(" ", "") == LONG.replace(
        " ", ""
    )
    assert reduce.json["messages"][0]["content"].startswith("You get summaries")
    assert reduce.json["messages"][1]["content"].count("Summary of") == len(maps)
    assert done.transcript is not None and done.transcript.text == chat.reply(
        reduce.json["messages"]
    )


async def test_text_restart_mid_pieces_never_pays_a_finished_piece_again(
    tmp_path: Path, chat: FakeChat
) -> None:
    h = TextHarness(tmp_path, chat, max_input_tokens=1000)
    core = await h.open()
    source = await h.transcript(LONG)
    job = await core.service.text_job(ORIGIN, source, "translate", "es")
    answer = chat.reply

    def two_then_busy(messages: list[dict[str, Any]]) -> str:
        if chat.submits["chat"] >= 2:  # the server is busy from now on: 429 + Retry-After
            chat.rate_limited = 1000
        return answer(messages)

    chat.reply = two_then_busy
    await h.drive(steps=3)
    assert chat.submits["chat"] == 2
    await h.close()  # restart
    chat.rate_limited, chat.reply = 0, answer
    core = await h.open()
    try:
        await h.drive()
        parts = await core.store.parts.of(job.id)
    finally:
        await h.close()
    [(done, _)] = h.out.delivered
    assert done.state is JobState.COMPLETED
    assert chat.submits["chat"] == len(parts)  # translation: no reduce, every piece once
    pieces = [r.json["messages"][1]["content"] for r in chat.requests_to("chat")]
    assert len(set(pieces)) == len(parts)  # the rest were 429s: retried, not charged


async def test_text_failed_job_gives_its_key_up_and_no_llm_means_no_offer(
    tmp_path: Path, chat: FakeChat
) -> None:
    h = TextHarness(tmp_path, chat)
    core = await h.open()
    try:
        source = await h.transcript("Short.")
        chat.push("chat", 401, {"error": {"message": "bad key", "type": "x", "code": None}})
        failed = await core.service.text_job(ORIGIN, source, "summary", "en")
        await h.drive()
        retry = await core.service.text_job(ORIGIN, source, "summary", "en")
        await h.drive()
        with pytest.raises(InputError, match="no finished transcript"):
            await core.service.text_job(ORIGIN, "zzzzzz", "summary", "en")
    finally:
        await h.close()
    states = [(j.id, j.state) for j, _ in h.out.delivered]
    assert states == [(failed.id, JobState.FAILED), (retry.id, JobState.COMPLETED)]
    plain = TextHarness(tmp_path / "plain", None)
    core = await plain.open()
    try:
        assert not core.service.offers_text()
        with pytest.raises(InputError, match="not set up"):
            await core.service.text_job(ORIGIN, "abcdef", "summary")
    finally:
        await plain.close()


async def test_text_job_checks_access_once(
    tmp_path: Path, chat: FakeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A summary reads the access lists once, first (the limits that follow do not again)."""
    checked: list[str] = []
    allowed = Guard.allowed

    def counting(guard: Guard, origin: Origin) -> bool:
        checked.append(origin.user_id)
        return allowed(guard, origin)

    monkeypatch.setattr(Guard, "allowed", counting)
    h = TextHarness(tmp_path, chat)
    core = await h.open()
    try:
        source = await h.transcript("Short.")
        await core.service.text_job(ORIGIN, source, "summary", "en")
    finally:
        await h.close()
    assert checked == ["user-1"]


def test_text_interrupted_failure_speaks_of_the_chat_model() -> None:
    from bot.chat.replies import failure_text
    from bot.model.job import Job

    job = Job(
        id="abc123",
        kind=JobKind.TEXT,
        origin=ORIGIN,
        provider="brain",
        model="m",
        options={"action": "summary"},
        state=JobState.FAILED,
        created_at=1.0,
        updated_at=2.0,
        deadline_at=3.0,
        error="This job was interrupted while it was being sent to the speech service",
        error_code="interrupted",
    )
    text = failure_text(job)
    assert text.startswith("❌ Summary failed (job abc123): a restart interrupted it")
    assert "speech service" not in text


async def test_text_retry_after_a_failure_reuses_the_finished_pieces(
    tmp_path: Path, chat: FakeChat
) -> None:
    h = TextHarness(tmp_path, chat, max_input_tokens=1000)
    core = await h.open()
    try:
        source = await h.transcript(LONG)
        first = await core.service.text_job(ORIGIN, source, "summary", "en")
        answer = chat.reply
        answered = itertools.count(1)

        def refuse_a_later_one(messages: list[dict[str, Any]]) -> str:
            # Counted by answers, not arrivals: two pieces run at once, so the fourth request
            # may already be in flight; the next one to arrive is refused (the model is gone).
            if next(answered) == 3:
                chat.push("chat", 400, {"error": {"message": "busy", "type": "x", "code": None}})
            return answer(messages)

        chat.reply = refuse_a_later_one
        await h.drive()
        chat.reply = answer
        failed = await core.store.get(first.id)
        assert failed is not None and failed.state is JobState.FAILED
        paid_before = chat.submits["chat"]
        retry = await core.service.text_job(ORIGIN, source, "summary", "en")  # pressed again

        await h.drive()
        done = await core.store.get(retry.id)
        parts = await core.store.parts.of(retry.id)
    finally:
        await h.close()
    assert retry.id != first.id and done is not None and done.state is JobState.COMPLETED
    assert paid_before >= 3
    assert chat.submits["chat"] == len(parts)  # every piece and the reduce paid exactly once


@pytest.mark.parametrize("offered", [True, False])
async def test_text_buttons_come_with_the_reply_from_the_core(
    tmp_path: Path, chat: FakeChat, offered: bool
) -> None:
    """The adapter is handed the buttons to show under a transcript; it asks nobody."""
    h = TextHarness(tmp_path, chat if offered else None)
    core = await h.open()
    try:
        new = NewJob(JobKind.STT, ORIGIN, "nanogpt", "Whisper-Large-V3", {}, deadline_at=1e12)
        job = await core.store.create(
            new, now=h.clock(), state=JobState.COMPLETED, result=Transcript("Hello.").to_dict()
        )
        await core.worker.delivery.deliver(job, h.clock())
    finally:
        await h.close()
    [reply] = h.out.replies
    assert reply.job.id == job.id
    assert reply.buttons == (("summary", "translate") if offered else ())
