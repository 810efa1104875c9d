"""Injected faults: provider errors through the fake APIs (and a resetting TCP proxy), platform
errors through FakeTelegram, and secrets that must never leak into requests or logs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import socket
import struct
from pathlib import Path

import pytest

from bot.app.core import config_secrets, setup_logging
from bot.model.errors import MalformedAnswer, ProviderTimeout
from bot.model.job import Job, JobState
from bot.text import ENGLISH, encode
from testkit.core import core_with_fakes
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeNanoGpt
from testkit.support import NANO_KEY
from testkit.telegram_bot import USER, placeholder_job_id, running

pytestmark = pytest.mark.usefixtures("ptb_timedelta")

UNAVAILABLE = "The speech service is unavailable right now."
SUBMIT_FAULTS = {
    "500": UNAVAILABLE,
    "malformed-json": MalformedAnswer.default_message,
    "timeout": ProviderTimeout.default_message,
    "connection-reset": UNAVAILABLE,
}


class ResetProxy:
    """TCP proxy in front of a fake: the next ``resets`` requests are answered with a TCP reset
    (RST) after they arrived; everything else is piped through."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.resets = 0
        self.reset_done = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> ResetProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def requests(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if self.resets > 0 and data.startswith((b"POST ", b"GET ")):
                        # The request reached the far side; answer it with a TCP reset.
                        self.resets -= 1
                        self.reset_done += 1
                        sock = writer.get_extra_info("socket")
                        linger = struct.pack("ii", 1, 0)
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                        writer.transport.abort()
                        break
                    dst.write(data)
                    await dst.drain()
            dst.close()

        async def answers(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(requests(reader, up_writer), answers(up_reader, writer))


def _operator_lines(caplog: pytest.LogCaptureFixture, job: Job) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and job.id in r.getMessage()]


# -- provider faults on submit -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "user_text"),
    [
        (401, {"error": "Invalid API key"}, "key was rejected; the operator has been told"),
        (402, {"error": "Insufficient balance"}, "out of credit; the operator has been told"),
    ],
    ids=["401", "402"],
)
async def test_fault_auth_and_balance_one_message_one_log_line_no_storm(
    tmp_path: Path,
    nano: FakeNanoGpt,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: dict[str, str],
    user_text: str,
) -> None:
    caplog.set_level(logging.INFO)
    async with core_with_fakes(tmp_path, nano_url=nano.url) as b:
        for _ in range(3):
            nano.push("transcribe", status, body)
        jobs = [await b.stt(1.0 + i / 10) for i in range(3)]
        await b.drive()
        assert len(nano.requests_to("transcribe")) == 3  # one request per job, no retries
        assert nano.submits["transcribe"] == 0
        delivered = {j.id: j for j, _ in b.out.delivered}
        for job in jobs:
            done = delivered[job.id]
            assert done.state is JobState.FAILED and user_text in (done.error or "")
            lines = _operator_lines(caplog, job)
            assert len(lines) == 1 and lines[0].levelno == logging.ERROR, lines
            assert str(status) in lines[0].getMessage()
        assert NANO_KEY not in caplog.text


async def test_fault_key_revoked_while_polling_stops_polling(
    tmp_path: Path, nano: FakeNanoGpt, caplog: pytest.LogCaptureFixture
) -> None:
    async with core_with_fakes(tmp_path, nano_url=nano.url, stt={"model": "Elevenlabs-STT"}) as b:
        nano.polls_to_complete = 10_000
        job = await b.stt()
        nano.push("transcribe/status", 401, {"error": "Invalid API key"})
        await b.drive()
        done = await b.only_result()
        assert done.state is JobState.FAILED and "key was rejected" in (done.error or "")
        assert len(nano.requests_to("transcribe/status")) == 1
        assert len(_operator_lines(caplog, job)) == 1


@pytest.mark.parametrize(
    ("status", "headers"),
    [(503, {}), (429, {"Retry-After": "7"})],
    ids=["503", "429-retry-after"],
)
async def test_fault_submit_not_taken_is_retried_once_taken(
    tmp_path: Path, nano: FakeNanoGpt, status: int, headers: dict[str, str]
) -> None:
    async with core_with_fakes(tmp_path, nano_url=nano.url) as b:
        nano.push("transcribe", status, {"error": "busy"}, headers=headers)
        job = await b.stt()
        start = b.clock.now
        await b.core.poller.run_once()
        queued = await b.core.store.get(job.id)
        assert queued is not None and queued.state is JobState.QUEUED
        assert queued.next_poll_at is not None
        if headers:
            assert queued.next_poll_at >= start + 7  # Retry-After honoured
        await b.drive()
        done = await b.only_result()
        assert done.state is JobState.COMPLETED and done.transcript is not None
        assert len(nano.requests_to("transcribe")) == 2 and nano.submits["transcribe"] == 1


@pytest.mark.parametrize(
    "fault",
    ["500", "malformed-json", "timeout", "connection-reset"],
)
async def test_fault_ambiguous_submit_fails_clearly_and_is_never_resent(
    tmp_path: Path, nano: FakeNanoGpt, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    nano_port = int(nano.url.split(":")[2].split("/")[0])
    async with ResetProxy(nano_port) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/api"
        providers = {"nanogpt": {"api_key": NANO_KEY, "base_url": url, "timeout": 0.5}}
        async with core_with_fakes(tmp_path, nano_url=url, providers=providers) as b:
            if fault == "500":
                nano.push("transcribe", 500, {"error": "Internal error"})
            elif fault == "malformed-json":
                nano.push("transcribe", 200, "{not json", {"Content-Type": "application/json"})
            elif fault == "timeout":
                nano.push("transcribe", 200, {"transcription": "late"}, delay=1.5)
            else:
                proxy.resets = 1
            job = await b.stt()
            await b.drive()
            done = await b.only_result()
            # The request may have been charged: never resent, the user is told to retry.
            assert done.state is JobState.FAILED and done.error == encode(SUBMIT_FAULTS[fault])
            reached = len(nano.requests_to("transcribe")) + proxy.reset_done
            assert reached == 1
            assert len(_operator_lines(caplog, job)) == 1
            # The bot still works afterwards.
            b.out.delivered.clear()
            await asyncio.sleep(0 if fault != "timeout" else 1.2)  # let the slow answer go
            await b.stt(1.5)
            await b.drive()
            assert (await b.only_result()).state is JobState.COMPLETED


async def test_fault_connection_refused_submit_waits_and_succeeds_after_restart(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    async with core_with_fakes(tmp_path, nano_url=f"http://127.0.0.1:{dead}/api") as b:
        job = await b.stt()
        await b.drive(steps=5)
        queued = await b.core.store.get(job.id)
        assert queued is not None and queued.state is JobState.QUEUED  # provably not sent
        assert queued.attempts >= 2 and b.out.delivered == []
    async with core_with_fakes(
        tmp_path, nano_url=nano.url
    ) as b:  # the operator fixed the URL; same database
        await b.core.worker.recover(b.clock())
        await b.drive()
        done = await b.only_result()
        assert done.id == job.id and done.state is JobState.COMPLETED
        assert nano.submits["transcribe"] == 1


# -- provider faults while polling -----------------------------------------------------------------


async def test_fault_poll_errors_back_off_capped_then_complete(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    jobs = {"max_poll_interval": 8}
    async with ResetProxy(int(nano.url.split(":")[2].split("/")[0])) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/api"
        async with core_with_fakes(
            tmp_path, nano_url=url, stt={"model": "Elevenlabs-STT"}, jobs=jobs
        ) as b:
            nano.polls_to_complete = 1
            await b.stt()
            await b.core.poller.run_once()  # submitted
            proxy.resets = 1
            nano.push("transcribe/status", 500, {"error": "boom"})
            nano.push("transcribe/status", 502, "<html>Bad gateway</html>")
            nano.push("transcribe/status", 200, b"{not json")
            nano.push("transcribe/status", 429, {"error": "slow"}, {"Retry-After": "20"})
            for _ in range(3):
                nano.push("transcribe/status", 503, {"error": "down"})
            gaps = await b.drive(steps=40)
            done = await b.only_result()
            assert done.state is JobState.COMPLETED and done.transcript is not None
            polls = len(nano.requests_to("transcribe/status")) + proxy.reset_done
            assert polls == 9  # 8 faults, one success: no storm
            assert max(gaps) >= 20  # Retry-After honoured
            assert max(g for g in gaps if g < 20) <= 8 * 1.25  # backoff capped (with jitter)
            assert nano.submits["transcribe"] == 1


async def test_fault_status_never_completes_hits_deadline(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    config = {"deadline_seconds": 120, "max_poll_interval": 10}
    async with core_with_fakes(
        tmp_path, nano_url=nano.url, stt={"model": "Elevenlabs-STT"}, jobs=config
    ) as b:
        nano.polls_to_complete = 10**9
        await b.stt()
        await b.drive(steps=200)
        done = await b.only_result()
        assert done.state is JobState.FAILED
        assert (
            ENGLISH.render(done.error or "")
            == "The speech service did not finish within 2 minutes, so the job was stopped."
        )
        polls = len(nano.requests_to("transcribe/status"))
        assert 5 <= polls <= 120  # bounded by the schedule, not a storm


# -- platform faults (Telegram) --------------------------------------------------------------------


async def test_fault_telegram_retry_after_is_honoured(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        w.tg.fail("editMessageText", 429, retry_after=1)
        loop = asyncio.get_running_loop()
        voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
        placeholder = await w.reply_to(voice)
        refused = await w.tg.wait_for(lambda c: c.method == "editMessageText" and not c.ok)
        refused_at = loop.time()
        job = await w.delivered(placeholder_job_id(placeholder))
        assert loop.time() - refused_at >= 0.9
        edits = [c for c in w.tg.calls if c.method == "editMessageText"]
        assert [c.ok for c in edits] == [False, True] and refused.status == 429
        assert job.delivery_attempts == 1


async def test_fault_telegram_5xx_is_retried(tmp_path: Path) -> None:
    async with running(tmp_path) as w:
        w.tg.fail("sendVoice", 502, times=2)
        asked = w.tg.send_text(USER, USER, "/speak hello")
        job = await w.delivered(placeholder_job_id(await w.reply_to(asked)))
        voices = [c for c in w.tg.calls if c.method == "sendVoice"]
        assert [c.ok for c in voices] == [False, False, True]
        assert job.delivery_attempts == 2


@pytest.mark.parametrize(
    ("setup", "marker"),
    [("block", "blocked"), ("chat-gone", "chat not found"), ("kicked", "kicked")],
)
async def test_fault_telegram_permanent_refusal_is_undeliverable_not_retried(
    tmp_path: Path, setup: str, marker: str
) -> None:
    async with running(tmp_path) as w:
        asked = w.tg.send_text(USER, USER, "/speak hello")
        placeholder = await w.reply_to(asked)
        if setup == "block":
            w.tg.block(USER)
        elif setup == "chat-gone":
            w.tg.fail("sendVoice", 400, "Bad Request: chat not found", times=50)
        else:
            w.tg.fail("sendVoice", 403, "Forbidden: bot was kicked from the group", times=50)
        job_id = placeholder_job_id(placeholder)
        for _ in range(200):
            job = await w.core.store.get(job_id)
            if job is not None and job.delivery_error:
                break
            await asyncio.sleep(0.05)
        assert job is not None and marker in (job.delivery_error or "").lower()
        assert job.delivered_at is None
        attempts = len([c for c in w.tg.calls if c.method == "sendVoice"])
        await w.core.poller.run_once(w.core.clock() + 3600)  # an hour later: still nothing due
        assert len([c for c in w.tg.calls if c.method == "sendVoice"]) == attempts == 1


# -- secrets ---------------------------------------------------------------------------------------


def _request_texts(nano: FakeNanoGpt) -> list[str]:
    texts = []
    for r in nano.requests:
        texts += [r.path, json.dumps(r.query), r.raw.decode("latin-1"), json.dumps(r.json)]
        texts += [f"{k}: {v}" for k, v in r.headers.items()]
        texts += [json.dumps(r.form)]
        for f in r.files.values():
            texts += [f.filename, f.content_type, f.data.decode("latin-1")]
    return texts


async def test_secrets_never_reach_providers_logs_or_errors(tmp_path: Path) -> None:
    buf = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        async with running(tmp_path, tts={"model": "Elevenlabs-V3"}) as w:
            setup_logging(w.core.config)  # the real handler and redacting filter
            root.handlers[0].setStream(buf)  # type: ignore[attr-defined]
            root.setLevel(logging.DEBUG)
            secrets = config_secrets(w.core.config)
            token = w.tg.token
            assert token in secrets and NANO_KEY in secrets
            voice = w.tg.send_voice(USER, USER, make_tone(1.0), duration=1)
            await w.delivered(placeholder_job_id(await w.reply_to(voice)))
            asked = w.tg.send_text(USER, USER, "/speak hello")
            await w.delivered(placeholder_job_id(await w.reply_to(asked)))
            w.nano.push("transcribe", 401, {"error": f"Invalid API key {NANO_KEY}"})
            failing = w.tg.send_voice(USER, USER, make_tone(1.2), duration=1)
            failed = await w.delivered(placeholder_job_id(await w.reply_to(failing)))
            w.tg.block(USER)  # a delivery refusal: its text is stored on the job
            blocked_ask = w.tg.send_text(USER, USER, "/speak again")
            blocked_id = placeholder_job_id(await w.reply_to(blocked_ask))
            status = await w.core.service.status_text("telegram", str(USER), None)
            for _ in range(200):
                blocked = await w.core.store.get(blocked_id)
                if blocked is not None and blocked.delivery_error:
                    break
                await asyncio.sleep(0.05)
            assert w.tg.downloads == 2
            requests = "\n".join(_request_texts(w.nano))
            telegram_sent = "\n".join(json.dumps(c.params, default=str) for c in w.tg.calls)
        logs = buf.getvalue()
        errors = "\n".join(
            [failed.error or "", blocked.delivery_error or "" if blocked else "", status]
        )
        secret_part = token.split(":", 1)[1]
        assert token not in requests and secret_part not in requests  # file URL stayed with PTB
        assert NANO_KEY not in telegram_sent and secret_part not in telegram_sent
        assert "Invalid API key" in logs  # the failure was logged...
        for secret in (token, secret_part, NANO_KEY, "test-canto-key"):
            assert secret not in logs  # ...without the key it echoed
            assert secret not in errors
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
