"""Access lists, usage limits, /usage, /forget, retention purge and log redaction — real store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bot.app.core import Core, RedactingFilter, setup_logging
from bot.model.errors import AudioTooLong
from bot.model.speech import Origin
from bot.service.limits import AccessDenied, Guard, LimitExceeded
from testkit.core import CoreWithFakes
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeNanoGpt
from testkit.support import NANO_KEY, FakeClock, make_config

ALICE = Origin("telegram", "100", "1", reply_to="5")
BOB = Origin("telegram", "100", "2", reply_to="6")


async def open_core(tmp_path: Path, nano: FakeNanoGpt, **sections: Any) -> tuple[Core, FakeClock]:
    fakes = CoreWithFakes(make_config(tmp_path, nano_url=nano.url, **sections), platform="telegram")
    return await fakes.open(), fakes.clock


async def test_limits_rate_per_user_says_which_limit(tmp_path: Path, nano: FakeNanoGpt) -> None:
    core, clock = await open_core(tmp_path, nano, limits={"jobs_per_minute": 2})
    try:
        await core.service.speak(ALICE, "one")
        await core.service.speak(ALICE, "two")
        with pytest.raises(LimitExceeded, match=r"2 jobs in the last minute \(limit 2\)"):
            await core.service.speak(ALICE, "three")
        await core.service.speak(BOB, "bob is not limited by alice")
        clock.advance(61)
        await core.service.speak(ALICE, "a minute later")
    finally:
        await core.close()


async def test_limits_concurrency_per_user_and_chat(tmp_path: Path, nano: FakeNanoGpt) -> None:
    core, _ = await open_core(
        tmp_path, nano, limits={"concurrent_per_user": 1, "concurrent_per_chat": 2}
    )
    try:
        await core.service.speak(ALICE, "first")
        with pytest.raises(LimitExceeded, match="You already have 1 unfinished job "):
            await core.service.speak(ALICE, "second")
        await core.service.speak(BOB, "bob")
        carol = Origin("telegram", "100", "3")
        with pytest.raises(LimitExceeded, match="This chat already has 2 unfinished jobs"):
            await core.service.speak(carol, "carol")
        await core.poller.run_once()  # jobs finish: room again
        await core.service.speak(ALICE, "again")
    finally:
        await core.close()


async def test_limits_daily_audio_minutes_and_reset_time(tmp_path: Path, nano: FakeNanoGpt) -> None:
    core, _ = await open_core(tmp_path, nano, limits={"daily_audio_minutes_per_user": 0.05})
    try:
        await core.service.transcribe(ALICE, make_tone(2.0), "a.ogg")
        with pytest.raises(LimitExceeded, match=r"daily limit of 0.05 audio minutes.*00:00 UTC"):
            await core.service.transcribe(ALICE, make_tone(2.0), "b.ogg")
    finally:
        await core.close()


async def test_limits_max_audio_and_speak_length(tmp_path: Path, nano: FakeNanoGpt) -> None:
    core, _ = await open_core(
        tmp_path, nano, limits={"max_audio_minutes": 0.02, "max_speak_chars": 10}
    )
    try:
        with pytest.raises(AudioTooLong):
            await core.service.transcribe(ALICE, make_tone(3.0), "long.ogg")
        with pytest.raises(LimitExceeded, match="11 characters; the limit is 10"):
            await core.service.speak(ALICE, "x" * 11)
        assert await core.store.recent(5) == []
    finally:
        await core.close()


async def test_access_deny_allow_and_admins(tmp_path: Path, nano: FakeNanoGpt) -> None:
    core, _ = await open_core(
        tmp_path,
        nano,
        access={
            "allow": ["telegram:chat:100"],
            "deny": ["telegram:user:2"],
            "admins": ["telegram:9"],
        },
    )
    try:
        svc = core.service
        assert svc.allowed(ALICE)
        assert not svc.allowed(BOB)  # denied user in an allowed chat
        assert not svc.allowed(Origin("telegram", "555", "1"))  # chat not on the allow list
        assert svc.allowed(Origin("telegram", "555", "9"))  # admins everywhere
        with pytest.raises(AccessDenied):
            await svc.speak(BOB, "hi")
        with pytest.raises(AccessDenied):
            await svc.transcribe(BOB, make_tone(1.0), "a.ogg")
    finally:
        await core.close()


async def test_access_checked_once_per_request(
    tmp_path: Path, nano: FakeNanoGpt, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request reads the access lists once, first: a denied user's file is not reused."""
    core, _ = await open_core(tmp_path, nano, access={"deny": ["telegram:user:2"]})
    checked: list[str] = []
    allowed = Guard.allowed

    def counting(guard: Guard, origin: Origin) -> bool:
        checked.append(origin.user_id)
        return allowed(guard, origin)

    monkeypatch.setattr(Guard, "allowed", counting)
    try:
        await core.service.transcribe(ALICE, make_tone(1.0), "a.ogg", dedup_key="f1")
        assert checked == ["1"]
        await core.service.speak(ALICE, "hello")
        assert checked == ["1", "1"]
        await core.poller.run_once()
        with pytest.raises(AccessDenied):
            await core.service.transcribe(BOB, make_tone(1.0), "a.ogg", dedup_key="f1")
        assert checked == ["1", "1", "2"]
    finally:
        await core.close()


async def test_usage_for_admins_only(tmp_path: Path, nano: FakeNanoGpt) -> None:
    core, _ = await open_core(tmp_path, nano, access={"admins": ["telegram:user:1"]})
    try:
        await core.service.transcribe(ALICE, make_tone(1.0), "a.ogg")
        await core.poller.run_once()
        text = await core.service.usage_text(ALICE)
        assert "Today (UTC):" in text and "user 1: 1 job," in text and "cost" in text
        with pytest.raises(AccessDenied, match="Only the bot's admins"):
            await core.service.usage_text(BOB)
    finally:
        await core.close()


async def test_forget_deletes_only_callers_jobs(tmp_path: Path, nano: FakeNanoGpt) -> None:
    core, _ = await open_core(tmp_path, nano)
    try:
        mine = await core.service.transcribe(ALICE, make_tone(1.0), "a.ogg")
        theirs = await core.service.speak(BOB, "hello")
        assert "Deleted 1" in await core.service.forget(ALICE)
        assert await core.store.get(mine.id) is None
        assert await core.store.kept.load_blob(mine.id, "input") is None
        assert await core.store.get(theirs.id) is not None
        assert "no stored jobs" in await core.service.forget(ALICE)
    finally:
        await core.close()


async def test_purge_removes_only_old_delivered_jobs(tmp_path: Path, nano: FakeNanoGpt) -> None:
    core, clock = await open_core(tmp_path, nano, storage={"retention_days": 1})
    try:
        old = await core.service.speak(ALICE, "old")
        await core.poller.run_once()
        await core.poller.run_once()
        pending = await core.service.speak(ALICE, "still queued")
        clock.advance(2 * 86400)
        assert await core.purge_expired() == 1
        assert await core.store.get(old.id) is None
        assert await core.store.get(pending.id) is not None
    finally:
        await core.close()


def test_redacting_filter_masks_secrets_in_messages_and_tracebacks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = "123456:SECRET-telegram-token"
    config = make_config(tmp_path, telegram={"token": token})
    setup_logging(config)
    handler = logging.getLogger().handlers[0]
    filt = next(f for f in handler.filters if isinstance(f, RedactingFilter))
    record = logging.LogRecord(
        "x", logging.ERROR, "f", 1, "calling %s with %s", (token, NANO_KEY), None
    )
    try:
        raise RuntimeError(f"https://api.telegram.org/bot{token}/getMe failed")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    filt.filter(record)
    text = record.getMessage() + (record.exc_text or "")
    assert token not in text and NANO_KEY not in text
    assert text.count("***") >= 3
