"""/cancel and the ✖ button on Telegram (real PTB against FakeTelegram)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.jobs.poller import Reach
from bot.model.job import JobState
from testkit.fakes.audio import make_tone
from testkit.telegram_bot import ADMIN, GROUP, MEMBER, USER, placeholder_job_id, running

pytestmark = pytest.mark.usefixtures("ptb_timedelta")


async def test_telegram_cancel_command_stops_running_job_and_warns_of_charge(
    tmp_path: Path,
) -> None:
    async with running(tmp_path, stt={"model": "Elevenlabs-STT"}) as w:
        w.nano.polls_to_complete = 10**6
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        job_id = placeholder_job_id(placeholder)
        markup = placeholder.params.get("reply_markup")
        assert markup is not None and f"cancel:{job_id}" in str(markup)
        await w.nano.wait_for("transcribe/status", timeout=10)
        answer = await w.reply_to(w.tg.send_text(USER, USER, "/cancel"))
        assert answer.text is not None and f"Cancelled job {job_id}" in answer.text
        assert "may still be charged" in answer.text
        job = await w.core.store.get(job_id)
        assert job is not None and job.state is JobState.CANCELLED
        polls = len(w.nano.requests_to("transcribe/status"))
        # Nothing of this platform is left to poll or deliver (recorded in the store), so no
        # poll can follow and the count is final.
        assert await w.core.store.claims.next_wakeup(Reach(["telegram"])) is None
        assert len(w.nano.requests_to("transcribe/status")) == polls
        assert placeholder.message is not None
        shown = w.tg.messages(USER)
        edited = next(m for m in shown if m["message_id"] == placeholder.message["message_id"])
        assert edited["text"].startswith("✖ Cancelled") and "reply_markup" not in edited
        again = await w.reply_to(w.tg.send_text(USER, USER, f"/cancel {job_id}"))
        assert again.text is not None and "already finished" in again.text


async def test_telegram_cancel_button_only_for_owner_or_admin(tmp_path: Path) -> None:
    async with running(tmp_path, stt={"model": "Elevenlabs-STT"}) as w:
        w.nano.polls_to_complete = 10**6
        w.tg.add_chat(GROUP, title="Voice lab")
        w.tg.set_member(GROUP, ADMIN, "administrator")
        voice = w.tg.send_voice(GROUP, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        job_id = placeholder_job_id(placeholder)
        assert placeholder.message is not None
        mid = placeholder.message["message_id"]
        start = len(w.tg.calls)
        w.tg.press_button(GROUP, MEMBER, mid, f"cancel:{job_id}")
        refused = await w.tg.wait_for("answerCallbackQuery", start=start)
        assert refused.params.get("show_alert") in (True, "true", "True")
        assert "Only the person who started a job" in str(refused.params.get("text"))
        job = await w.core.store.get(job_id)
        assert job is not None and not job.state.terminal
        start = len(w.tg.calls)
        w.tg.press_button(GROUP, ADMIN, mid, f"cancel:{job_id}")
        done = await w.tg.wait_for("answerCallbackQuery", start=start)
        assert done.params.get("text") == "Cancelled."
        edit = await w.tg.wait_for(
            lambda c: c.method == "editMessageText" and (c.text or "").startswith("✖ Cancelled"),
            start=start,
        )
        assert edit.params.get("message_id") == mid
        job = await w.core.store.get(job_id)
        assert job is not None and job.state is JobState.CANCELLED
