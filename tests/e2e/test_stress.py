"""Crash-safety stress: ``voicebot run`` SIGKILLed at random moments while jobs keep arriving.

Defaults keep CI quick (60 jobs, 5 kills); ``VOICEBOT_STRESS_JOBS`` / ``VOICEBOT_STRESS_KILLS``
scale it up (e.g. 200 / 10) and ``VOICEBOT_STRESS_SEED`` replays a run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import os
import random
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.jobs.worker import INTERRUPTED_MESSAGE
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeNanoGpt
from testkit.fakes.telegram import FakeTelegram
from testkit.process import start_voicebot_run
from testkit.stress import Tally, Trigger
from testkit.stress import final_replies as _finals
from testkit.stress import is_final_text as _is_final_text
from testkit.stress import wait_all_answered as _wait_all_answered
from testkit.support import write_config

JOBS = int(os.environ.get("VOICEBOT_STRESS_JOBS", "60"))
KILLS = int(os.environ.get("VOICEBOT_STRESS_KILLS", "5"))
SEED = int(os.environ.get("VOICEBOT_STRESS_SEED", str(random.SystemRandom().randrange(10**6))))
CHATS = (101, 102, 103, 104)
# Alternating per process start: sync Whisper + sync Kokoro, then async Elevenlabs for both.
MODELS = (("Whisper-Large-V3", "Kokoro-82m"), ("Elevenlabs-STT", "Elevenlabs-Turbo-V2.5"))

pytestmark = pytest.mark.timeout(60 + 2 * JOBS + 10 * KILLS)


def _config(
    tmp_path: Path, tg: FakeTelegram, nano: FakeNanoGpt, round_no: int, url: str | None = None
) -> Path:
    stt_model, tts_model = MODELS[round_no % 2]
    storage = {"url": url} if url else {}
    return write_config(
        tmp_path,
        storage=storage,
        nano_url=nano.url,
        stt={"model": stt_model},
        tts={"model": tts_model, "voice": "Rachel" if "Eleven" in tts_model else "af_bella"},
        jobs={"max_poll_interval": 1, "concurrency": 8, "deadline_seconds": 600},
        telegram={"token": tg.token, "api_base": tg.api_base},
    )


async def _feed(
    tg: FakeTelegram, tally: Tally, rng: random.Random, span: float, jobs: int = JOBS
) -> None:
    """Inject ``jobs`` distinct voice notes and /speak commands spread over ``span`` seconds."""
    gap = span / max(jobs, 1)
    for i in range(jobs):
        chat = CHATS[i % len(CHATS)]
        if rng.random() < 0.6:
            # Distinct tone and length per note: the provider sees distinct uploads.
            data = make_tone(0.4 + (i % 7) * 0.1, freq=200.0 + 7 * i)
            message = tg.send_voice(chat, chat, data, duration=1)
            tally.triggers.append(
                Trigger("stt", chat, message["message_id"], hashlib.sha256(data).hexdigest())
            )
        else:
            text = f"Stress line {i} for chat {chat}."
            message = tg.send_text(chat, chat, f"/speak {text}")
            tally.triggers.append(Trigger("tts", chat, message["message_id"], text))
        await asyncio.sleep(rng.uniform(0.2, 1.8) * gap)


def _adapter_starts(log: Path) -> int:
    return log.read_text(errors="replace").count("telegram adapter started")


async def _started(log: Path, times: int, timeout: float = 60.0) -> None:
    """Wait until the process writing ``log`` is up (its ``times``-th adapter start is logged,
    after run_bot installed its SIGTERM handler; a process killed early never logs one). Every
    job can be answered before the last restarted process has even imported voicebot; a SIGTERM
    then would meet Python's default handler, which is not what these tests are about."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _adapter_starts(log) < times:
        if loop.time() > deadline:
            raise TimeoutError(f"{log.name}: start {times} not logged within {timeout:g} s")
        await asyncio.sleep(0.1)


async def test_stress_sigkill_at_random_moments_every_job_answered_once(
    tmp_path: Path, tg_nano: tuple[FakeTelegram, FakeNanoGpt]
) -> None:
    tg, nano = tg_nano
    rng = random.Random(SEED)
    print(f"stress seed {SEED}: {JOBS} jobs, {KILLS} kills")
    nano.polls_to_complete = 1
    # Asynchronous runs take a while, so kills find jobs waiting at the provider too.
    nano.processing_time = lambda kind, model, info: rng.uniform(0.3, 2.5)
    log = tmp_path / "bot.log"
    tally = Tally()
    feeder = asyncio.create_task(_feed(tg, tally, rng, span=KILLS * 3.5))
    proc = await start_voicebot_run(_config(tmp_path, tg, nano, 0), log)
    kills, before = 0, 0
    try:
        for round_no in range(1, KILLS + 1):
            await tg.wait_held(timeout=30)
            await asyncio.sleep(rng.uniform(0.0, 3.0))
            proc.kill()
            assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
            kills += 1
            await asyncio.sleep(rng.uniform(0.0, 0.5))  # messages keep arriving while down
            before = _adapter_starts(log)  # the killed process may never have got that far
            proc = await start_voicebot_run(_config(tmp_path, tg, nano, round_no), log)
        await feeder
        await _wait_all_answered(tg, tally, timeout=30 + JOBS * 0.3)
        await _started(log, before + 1)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0, "SIGTERM must exit 0"
    finally:
        feeder.cancel()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    figures = _figures(tg, nano, tally)
    figures["kills"] = kills
    _explain_lost(tmp_path / "voicebot.sqlite3", tg, tally)
    print("stress figures:", figures)
    assert figures["jobs"] == JOBS
    assert figures["lost"] == 0, figures
    # The one documented repeat (docs/restarts.md): a reply the platform
    # accepted in the instant before a kill, before the store recorded it. Each kill can catch at
    # most the deliveries in flight at that instant; VOICEBOT_STRESS_STRICT=1 demands none.
    if os.environ.get("VOICEBOT_STRESS_STRICT") == "1":
        assert figures["duplicated"] == 0, figures
    else:
        assert figures["duplicated"] <= kills, figures
    assert figures["double_submitted"] == 0, figures
    assert figures["misdirected"] == 0, figures
    text = log.read_text(errors="replace")
    assert tg.token not in text and tg.token.split(":", 1)[1] not in text


def _explain_lost(db: Path, tg: FakeTelegram, tally: Tally) -> None:
    """Print, for each unanswered trigger, what the database knows (for diagnosing failures)."""
    finals = _finals(tg)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for t in tally.triggers:
            if not finals.get((t.chat, t.message_id)):
                rows = conn.execute(
                    "SELECT id, state, error_code, delivered_at, delivery_error FROM jobs "
                    "WHERE chat_id = ? AND reply_to = ?",
                    (str(t.chat), str(t.message_id)),
                ).fetchall()
                print("lost:", t.kind, t.chat, t.message_id, "jobs:", rows)


def _figures(tg: FakeTelegram, nano: FakeNanoGpt, tally: Tally) -> dict[str, Any]:
    finals = _finals(tg)
    lost = duplicated = interrupted = misdirected = 0
    for t in tally.triggers:
        got = finals.get((t.chat, t.message_id), set())
        lost += not got
        duplicated += len(got) > 1
        if len(got) > 1:
            print("duplicate replies to", t, sorted(got))
        for chat, _, what in got:
            wrong_kind = (what == "voice") != (t.kind == "tts") and not what.startswith("❌")
            misdirected += chat != t.chat or wrong_kind
        interrupted += any(INTERRUPTED_MESSAGE[:40] in what for _, _, what in got)
    uploads = collections.Counter(
        hashlib.sha256(r.files["audio"].data).hexdigest()
        for r in nano.requests_to("transcribe")
        if "audio" in r.files
    )
    texts = collections.Counter(
        r.json.get("text") for r in nano.requests_to("tts") if isinstance(r.json, dict)
    )
    double = sum(n > 1 for n in uploads.values()) + sum(n > 1 for n in texts.values())
    return {
        "jobs": len(tally.triggers),
        "stt": sum(t.kind == "stt" for t in tally.triggers),
        "tts": sum(t.kind == "tts" for t in tally.triggers),
        "lost": lost,
        "duplicated": duplicated,
        "double_submitted": double,
        "interrupted": interrupted,
        "misdirected": misdirected,
        "submits": dict(nano.submits),
    }


# -- several processes on PostgreSQL --------------------------------------------------------

PG_JOBS = int(os.environ.get("VOICEBOT_STRESS_PG_JOBS", "90"))
PG_KILLS = int(os.environ.get("VOICEBOT_STRESS_PG_KILLS", "4"))
PROCESSES = 3


@pytest.mark.timeout(120 + 2 * PG_JOBS + 20 * PG_KILLS)
async def test_stress_three_processes_on_postgres_sigkill_every_job_answered_once(
    tmp_path: Path, tg_nano: tuple[FakeTelegram, FakeNanoGpt], pg_url: str
) -> None:
    """``PROCESSES`` ``voicebot run`` on one PostgreSQL database share the work; one of them is
    SIGKILLed at random moments and restarted. Each kill's in-flight submits are noted at the
    instant of the kill: an "interrupted" reply for any other job is a false one."""
    tg, nano = tg_nano
    rng = random.Random(SEED)
    print(f"stress (postgres) seed {SEED}: {PG_JOBS} jobs, {PG_KILLS} kills, {PROCESSES} procs")
    nano.polls_to_complete = 1
    nano.processing_time = lambda kind, model, info: rng.uniform(0.3, 2.5)
    logs = [tmp_path / f"bot{i}.log" for i in range(PROCESSES)]
    tally = Tally()
    feeder = asyncio.create_task(_feed(tg, tally, rng, span=PG_KILLS * 4.0, jobs=PG_JOBS))
    config = _config(tmp_path, tg, nano, 0, url=pg_url)
    procs = [await start_voicebot_run(config, log) for log in logs]
    kills, legit, kill_marks = 0, set[str](), list[int]()
    starts = dict.fromkeys(logs, 1)  # per log: the adapter starts that mean its process is up
    try:
        await tg.wait_held(timeout=30)
        for _ in range(PG_KILLS):
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            victim = rng.randrange(PROCESSES)
            procs[victim].kill()
            assert await asyncio.wait_for(procs[victim].wait(), 10) == -signal.SIGKILL
            kills += 1
            kill_marks.append(len(tg.calls))
            legit |= await _submitting_of(pg_url, procs[victim].pid)
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            starts[logs[victim]] = _adapter_starts(logs[victim]) + 1
            procs[victim] = await start_voicebot_run(config, logs[victim])
        await feeder
        await _wait_all_answered(tg, tally, timeout=60 + PG_JOBS * 0.3)
        for log, proc in zip(logs, procs, strict=True):
            await _started(log, starts[log])
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert await asyncio.wait_for(proc.wait(), 15) == 0, "SIGTERM must exit 0"
    finally:
        feeder.cancel()
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    figures = _figures(tg, nano, tally)
    interrupted = await _interrupted(pg_url)
    figures.update(
        kills=kills,
        processes=PROCESSES,
        false_interrupted=len(interrupted - legit),
        duplicated_without_kill=_repeats_without_kill(tg, kill_marks),
    )
    print("stress figures (postgres):", figures)
    assert figures["jobs"] == PG_JOBS
    assert figures["lost"] == 0, figures
    if os.environ.get("VOICEBOT_STRESS_STRICT") == "1":
        assert figures["duplicated"] == 0, figures
    else:  # the documented repeat: a reply accepted in the instant before a kill (docs/restarts.md)
        assert figures["duplicated"] <= kills, figures
    assert figures["double_submitted"] == 0, figures
    assert figures["misdirected"] == 0, figures
    assert figures["false_interrupted"] == 0, figures
    # A repeat is only allowed where a kill fell between the two replies (the documented window).
    assert figures["duplicated_without_kill"] == 0, figures
    for log in logs:
        text = log.read_text(errors="replace")
        assert tg.token not in text and "Traceback" not in text, log


async def _submitting_of(url: str, pid: int | None) -> set[str]:
    """Jobs the process ``pid`` was submitting (its lease) at this instant."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id FROM jobs WHERE state = 'submitting' AND lease_owner LIKE $1",
            f"%:{pid}:%",
        )
    finally:
        await conn.close()
    return {r["id"] for r in rows}


async def _interrupted(url: str) -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id FROM jobs WHERE error_code = 'interrupted'")
    finally:
        await conn.close()
    return {r["id"] for r in rows}


def _repeats_without_kill(tg: FakeTelegram, kill_marks: list[int]) -> int:
    """Triggers answered twice with no kill between the two replies (call index order)."""
    first_seen: dict[tuple[int, int], int] = {}
    for index, call in enumerate(tg.calls):  # when each bot message became a final reply
        final = call.method == "sendVoice" or _is_final_text(call.text)
        if not call.ok or not final:
            continue
        if call.method == "editMessageText":
            first_seen.setdefault((call.chat_id, call.params["message_id"]), index)
        elif call.message is not None:
            first_seen.setdefault((call.chat_id, call.message["message_id"]), index)
    unexplained = 0
    for replies in _finals(tg).values():
        if len(replies) < 2:
            continue
        seen = sorted(first_seen.get((chat, target), -1) for chat, target, _ in replies)
        if not any(seen[0] < mark <= seen[-1] for mark in kill_marks):
            unexplained += 1
    return unexplained
