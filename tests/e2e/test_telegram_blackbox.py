"""Black box: ``voicebot run`` as a subprocess against FakeTelegram and the provider fakes."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.fakes.telegram import Call, FakeTelegram
from testkit.process import start_voicebot_run
from testkit.support import write_config

USER = 42


def bot_config(tmp_path: Path, tg: FakeTelegram, nano: FakeNanoGpt, canto: FakeCantonese) -> Path:
    return write_config(
        tmp_path,
        nano_url=nano.url,
        canto_url=canto.url,
        stt={"model": "Elevenlabs-STT"},
        jobs={"max_poll_interval": 1},
        telegram={"token": tg.token, "api_base": tg.api_base},
    )


async def stop_bot(proc: asyncio.subprocess.Process, sig: int) -> int:
    if proc.returncode is None:
        proc.send_signal(sig)
    return await asyncio.wait_for(proc.wait(), 10)


def replies_to(message: dict[str, Any]) -> Any:
    def match(call: Call) -> bool:
        reply = call.params.get("reply_parameters") or {}
        return call.method == "sendMessage" and reply.get("message_id") == message["message_id"]

    return match


async def test_telegram_blackbox_sigkill_while_pending_then_restart_replies_once(
    tmp_path: Path, tg_nano_canto: tuple[FakeTelegram, FakeNanoGpt, FakeCantonese]
) -> None:
    tg, nano, canto = tg_nano_canto
    config, log = bot_config(tmp_path, tg, nano, canto), tmp_path / "bot.log"
    nano.polls_to_complete = 10_000  # pending at the provider until we say otherwise
    proc = await start_voicebot_run(config, log)
    try:
        await tg.wait_held(timeout=30)
        voice = tg.send_voice(USER, USER, make_tone(2.0), duration=2)
        placeholder = await tg.wait_for(replies_to(voice), timeout=30)
        await nano.wait_for("transcribe/status", timeout=30)  # submitted, ticket stored
        assert tg.pending_updates() == []  # the update was confirmed: no replay on restart
        proc.kill()  # SIGKILL: no cleanup at all
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL

        nano.polls_to_complete = 1
        start = len(tg.calls)
        proc = await start_voicebot_run(config, log)
        assert placeholder.message is not None
        placeholder_id = placeholder.message["message_id"]
        edit = await tg.wait_for(
            lambda c: (
                c.method == "editMessageText"
                and c.params.get("message_id") == placeholder_id
                and "…" not in (c.text or "")
            ),
            timeout=30,
            start=start,
        )
        assert edit.text is not None and edit.text.startswith("Hello")
        assert await stop_bot(proc, signal.SIGTERM) == 0  # clean exit on SIGTERM
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    answers = [
        c
        for c in tg.sent(USER)
        if c.method in ("sendMessage", "editMessageText") and "…" not in (c.text or "")
    ]
    assert answers == [edit]  # exactly one reply with the transcript, in the placeholder
    assert nano.submits["transcribe"] == 1
    text = log.read_text(errors="replace")
    assert tg.token not in text and tg.token.split(":", 1)[1] not in text


async def test_telegram_blackbox_sigint_exits_130_cleanly_while_polling(
    tmp_path: Path, tg_nano_canto: tuple[FakeTelegram, FakeNanoGpt, FakeCantonese]
) -> None:
    tg, nano, canto = tg_nano_canto
    log = tmp_path / "bot.log"
    proc = await start_voicebot_run(bot_config(tmp_path, tg, nano, canto), log)
    try:
        await tg.wait_held(timeout=30)
        # 130 = 128 + SIGINT, as `run --help` documents (SIGTERM, a service manager's stop, is 0).
        assert await stop_bot(proc, signal.SIGINT) == 130, log.read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "telegram adapter started" in log.read_text()


async def test_telegram_blackbox_guest_call_survives_sigkill_and_is_answered_once(
    tmp_path: Path, tg_nano_canto: tuple[FakeTelegram, FakeNanoGpt, FakeCantonese]
) -> None:
    """A guest call (Bot API 10.0) in a group without the bot: answered at once, SIGKILL while
    the provider works, and after the restart the transcript lands in that one answer."""
    tg, nano, canto = tg_nano_canto
    config, log = bot_config(tmp_path, tg, nano, canto), tmp_path / "bot.log"
    nano.polls_to_complete = 10_000
    strangers = -1009876543210
    proc = await start_voicebot_run(config, log)
    try:
        await tg.wait_held(timeout=30)
        voice = tg.post_unseen_voice(strangers, USER, make_tone(2.0), duration=2)
        query = tg.send_guest(strangers, USER, reply_to=voice["message_id"])["guest_query_id"]
        await tg.wait_for("answerGuestQuery", timeout=30)
        await nano.wait_for("transcribe/status", timeout=30)
        proc.kill()
        await asyncio.wait_for(proc.wait(), 10)

        nano.polls_to_complete = 1
        start = len(tg.calls)
        proc = await start_voicebot_run(config, log)
        edit = await tg.wait_for(
            lambda c: c.method == "editMessageText" and (c.text or "").startswith("Hello"),
            timeout=30,
            start=start,
        )
        assert await stop_bot(proc, signal.SIGTERM) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    answer = tg.guest_answers[query]
    assert answer is not None and edit.params["inline_message_id"] == answer["inline_message_id"]
    assert [c.method for c in tg.calls if c.method == "answerGuestQuery"] == ["answerGuestQuery"]
    assert tg.sent(strangers) == [] and nano.submits["transcribe"] == 1
