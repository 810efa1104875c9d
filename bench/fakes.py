"""The fake providers in their own process (loopback), driven over a pipe by the harness."""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import multiprocessing
import multiprocessing.connection
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av

API_KEY_NANO = "bench-nano-key"
API_KEY_CANTO = "bench-canto-key"


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One provider run as the fake saw it: when its processing finished and how often it was
    asked about it."""

    run_id: str
    ready_at: float
    polls: int


def run_key(kind: str, info: dict[str, Any]) -> str:
    """The key a job's processing time is looked up by: upload size (STT) or text length (TTS)."""
    if kind == "tts":
        return f"tts:{int(info.get('textLength', 0))}"
    return f"stt:{int(info.get('fileSize', info.get('size', 0)))}"


def tone(seconds: float, container: str = "ogg", *, rate: int = 16000) -> bytes:
    """A 400 Hz tone encoded with PyAV (fast: the PCM is one period repeated)."""
    codec = {"ogg": "libopus", "mp3": "libmp3lame"}[container]
    period = b"".join(
        int(12000 * math.sin(2 * math.pi * i / 40)).to_bytes(2, "little", signed=True)
        for i in range(40)
    )
    total = int(seconds * rate)
    pcm = (period * (total // 40 + 1))[: total * 2]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream: Any = out.add_stream(codec, rate=rate)  # PyAV's stubs return a stream union
        stream.layout = "mono"
        chunk = 960
        for pts in range(0, total, chunk):
            n = min(chunk, total - pts)
            frame = av.AudioFrame(format="s16", layout="mono", samples=n)
            frame.planes[0].update(pcm[pts * 2 : (pts + n) * 2])
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


class FakeProviders:
    """Handle on the fake-provider process: start, configure processing times, read runs, stop.

    The fakes live in a separate process so the bot's CPU time is its own; ``time.monotonic`` is
    system-wide on Linux, so completion times recorded there compare with delivery times here.
    """

    def __init__(self) -> None:
        self.nano_url = ""
        self.canto_url = ""
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None

    def start(self) -> None:
        """Spawn the process and wait for its URLs."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="bench-fakes")
        self._proc.start()
        self._conn = parent
        if not parent.poll(60):
            raise RuntimeError("fake providers did not start")
        urls = parent.recv()
        self.nano_url, self.canto_url = urls["nano"], urls["canto"]

    def _call(self, command: str, **args: Any) -> Any:
        if self._conn is None:
            raise RuntimeError("fake providers are not running")
        self._conn.send((command, args))
        if not self._conn.poll(60):
            raise RuntimeError(f"fake providers did not answer {command}")
        return self._conn.recv()

    def configure(self, table: dict[str, tuple[float, float]], default: float) -> None:
        """(queue, processing) seconds per run key (see :func:`run_key`); ``default`` for
        unknown keys. A queued run answers "pending" (TTS: with a queue position) until its
        queue time is over."""
        self._call("configure", table=table, default=default)

    def reset(self) -> None:
        """Forget recorded requests, poll counters and completion times."""
        self._call("reset")

    def finish_runs(self) -> None:
        """Every existing run is done as of now."""
        self._call("finish")

    def runs(self) -> dict[str, RunInfo]:
        """Every run with a known completion time, by run id (runId / request_id)."""
        rows: list[tuple[str, float, int]] = self._call("runs")
        return {r: RunInfo(r, ready, polls) for r, ready, polls in rows}

    def stop(self) -> None:
        """Ask the process to exit, then make sure it did."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(("stop", {}))
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join(10)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(5)
            self._proc = None


def _serve(conn: multiprocessing.connection.Connection) -> None:
    asyncio.run(_serve_async(conn))


async def _serve_async(conn: multiprocessing.connection.Connection) -> None:
    from testkit.fakes.providers import FakeCantonese, FakeNanoGpt

    nano = FakeNanoGpt(API_KEY_NANO)
    canto = FakeCantonese(API_KEY_CANTO)
    fakes = (nano, canto)
    settings: dict[str, Any] = {"table": {}, "default": 0.0}

    def processing_time(kind: str, model: str, info: Any) -> float | tuple[float, float]:
        table: dict[str, tuple[float, float]] = settings["table"]
        timing = table.get(run_key(kind, dict(info)))
        return float(settings["default"]) if timing is None else (timing[0], timing[1])

    for fake in fakes:
        fake.polls_to_complete = 1  # complete at the first poll after processing finished
        fake.processing_time = processing_time
        await fake.start()
    conn.send({"nano": nano.url, "canto": canto.url})
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_command() -> None:
        try:
            command, args = conn.recv()
        except (EOFError, OSError):
            done.set()
            return
        if command == "stop":
            done.set()
            return
        conn.send(_handle(command, args, fakes, settings))

    loop.add_reader(conn.fileno(), on_command)
    try:
        await done.wait()
    finally:
        loop.remove_reader(conn.fileno())
        for fake in fakes:
            await fake.stop()


def _handle(command: str, args: dict[str, Any], fakes: Any, settings: dict[str, Any]) -> Any:
    if command == "configure":
        settings.update(args)
    elif command == "reset":
        for fake in fakes:
            fake.requests.clear()
            fake.polls.clear()
            fake.completions.clear()
    elif command == "finish":
        for fake in fakes:
            fake.finish_runs()
    elif command == "runs":
        return [
            (run_id, ready, fake.polls.get(run_id, 0))
            for fake in fakes
            for run_id, ready in fake.completions.items()
        ]
    return None
