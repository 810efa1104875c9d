"""The threads the CPU-bound audio steps run on, and what they cost."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")


class AudioPool:
    """Runs the CPU-bound audio steps (probe, re-encode, voice clips) off the event loop.

    On few threads on purpose: FFmpeg work in many threads fights the event loop for the GIL and
    the cores. Measured on 2 cores, probing a voice note costs 0.7 ms of CPU on one thread and
    1.8 ms each on asyncio's default pool of six. By default one thread per core beyond the
    event loop's (``jobs.audio_threads`` sets it): the encoders release the GIL, so on more cores
    the voice messages of a backlog (a restart with many jobs in flight) are made side by side.

    ``cpu_seconds`` is the CPU time its threads spent on the steps (the thread's own clock, so
    other threads and processes don't count): what the audio work costs, apart from the rest.
    """

    def __init__(self, threads: int | None = None) -> None:
        count = threads or default_threads()
        self.threads = count
        self._executor = ThreadPoolExecutor(count, thread_name_prefix="voicebot-audio")
        self._lock = threading.Lock()
        self._cpu = 0.0

    @property
    def cpu_seconds(self) -> float:
        """CPU time spent on the steps so far, all threads together."""
        with self._lock:
            return self._cpu

    async def run(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """``fn(*args, **kwargs)`` on an audio thread."""

        def timed() -> _T:
            started = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                with self._lock:
                    self._cpu += spent

        return await asyncio.get_running_loop().run_in_executor(self._executor, timed)

    def close(self) -> None:
        """Stop the threads once the work already handed over is done."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def default_threads() -> int:
    """One audio thread per CPU core beyond the event loop's, at least one."""
    return max(1, (os.cpu_count() or 2) - 1)
