"""Counting final replies in FakeTelegram's log: every trigger must get exactly one (the stress,
drain and rolling deploy tests and bench/storage.py)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeNanoGpt
from testkit.fakes.telegram import FakeTelegram
from testkit.support import write_config


@dataclass
class Trigger:
    """One user message that must get exactly one final reply."""

    kind: str  # "stt" | "tts"
    chat: int
    message_id: int
    key: str  # audio sha256 (stt) or the /speak text (tts)


@dataclass
class Tally:
    triggers: list[Trigger] = field(default_factory=list)


def is_final_text(text: str | None) -> bool:
    return bool(text) and "…" not in (text or "") and not (text or "").startswith("✅ Done")


def final_replies(tg: FakeTelegram) -> dict[tuple[int, int], set[tuple[int, int, str]]]:
    """(chat, trigger id) → distinct (chat, bot message id, what) that carried a final reply."""
    reply_of: dict[tuple[int, int], tuple[int, int]] = {}  # bot message → trigger it replied to
    finals: dict[tuple[int, int], set[tuple[int, int, str]]] = collections.defaultdict(set)
    for call in tg.calls:
        if not call.ok or call.method not in ("sendMessage", "sendVoice", "editMessageText"):
            continue
        chat = call.chat_id
        if call.method == "editMessageText":
            trigger = reply_of.get((chat, call.params["message_id"]))
            target = call.params["message_id"]
        else:
            assert call.message is not None
            reply = call.params.get("reply_parameters") or {}
            trigger = (chat, reply["message_id"]) if "message_id" in reply else None
            target = call.message["message_id"]
            if trigger is not None:
                reply_of[(chat, target)] = trigger
        if trigger is None:
            continue
        if call.method == "sendVoice":
            finals[trigger].add((chat, target, "voice"))
        elif is_final_text(call.text):
            finals[trigger].add((chat, target, call.text or ""))
    return finals


def all_answered(tg: FakeTelegram, tally: Tally) -> bool:
    finals = final_replies(tg)
    return all(finals.get((t.chat, t.message_id)) for t in tally.triggers)


async def wait_all_answered(tg: FakeTelegram, tally: Tally, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not all_answered(tg, tally) and loop.time() < deadline:
        with_timeout = min(1.0, max(0.0, deadline - loop.time()))
        with contextlib.suppress(TimeoutError):
            await tg.wait_for(lambda c: True, timeout=with_timeout, start=len(tg.calls))


def once_each(tg: FakeTelegram, tally: Tally) -> list[int]:
    """How many final replies each trigger got (all 1: none lost, none answered twice)."""
    finals = final_replies(tg)
    return [len(finals.get((t.chat, t.message_id), set())) for t in tally.triggers]


def interrupted(tg: FakeTelegram) -> list[str]:
    """Replies that say a job was interrupted (possibly charged, to be sent again)."""
    return [c.text or "" for c in tg.calls if "interrupted" in (c.text or "")]


def telegram_run_config(
    tmp_path: Path, tg: FakeTelegram, nano: FakeNanoGpt, url: str | None, **sections: Any
) -> Path:
    """A ``voicebot run`` config on the fake Telegram and NanoGPT, on PostgreSQL at ``url``
    (else SQLite), polling at least every second."""
    return write_config(
        tmp_path,
        nano_url=nano.url,
        storage={"url": url} if url else {},
        jobs={"max_poll_interval": 1},
        telegram={"token": tg.token, "api_base": tg.api_base},
        **sections,
    )


def send_voices(tg: FakeTelegram, tally: Tally, n: int, chat: int) -> None:
    """``n`` distinct voice notes from ``chat`` (a private chat with its user), each recorded
    in ``tally``."""
    for _ in range(n):
        data = make_tone(0.5, freq=200.0 + 7 * len(tally.triggers))
        message = tg.send_voice(chat, chat, data, duration=1)
        tally.triggers.append(Trigger("stt", chat, message["message_id"], ""))
