"""Running ``voicebot`` as a subprocess, offline: the environment, ``run`` with its log in a file,
and one-shot CLI commands."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
OFFLINE_DIR = Path(__file__).resolve().parent / "offline"
"""Holds ``sitecustomize``: a subprocess with it on PYTHONPATH refuses the network."""


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a ``voicebot`` subprocess: offline guard loaded, project importable."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    paths = [str(OFFLINE_DIR), str(ROOT)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


async def start_voicebot_run(config: Path, log: Path) -> asyncio.subprocess.Process:
    """Start ``python -m adapters.cli --config CONFIG run`` offline, its output appended to ``log``.

    A file, not a pipe: nobody has to drain it for the bot to keep running.
    """
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adapters.cli",
            "--config",
            str(config),
            "run",
            cwd=ROOT,
            env=subprocess_env(),
            stdout=sink,
            stderr=sink,
        )


async def start_voicebot(
    *args: str,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], object] | None = None,
) -> asyncio.subprocess.Process:
    """Start ``python -m adapters.cli ARGS`` offline, stdout and stderr piped.

    ``preexec_fn`` runs in the child before exec (e.g. to drop root's file-permission bypass).
    """
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.cli",
        *args,
        cwd=ROOT,
        env=env or subprocess_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=preexec_fn,
    )


async def voicebot(
    *args: str,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], object] | None = None,
) -> tuple[int, str, str]:
    """Run ``python -m adapters.cli ARGS`` to the end: exit code, stdout, stderr (see
    :func:`start_voicebot`)."""
    proc = await start_voicebot(*args, env=env, preexec_fn=preexec_fn)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class BotProcess:
    """``python -m adapters.cli --config X run`` with its log in a file (a pipe could fill up)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log_path = log
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await start_voicebot_run(self.config, self.log_path)

    async def end(self, sig: int, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        return code

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def wait_line(log: Path, text: str, timeout: float) -> float:
    """Seconds until ``text`` appears in ``log`` (a process writes it); TimeoutError after
    ``timeout``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while text not in await asyncio.to_thread(log.read_text, errors="replace"):
        if loop.time() - start > timeout:
            raise TimeoutError(f"{text!r} not in {log.name} after {timeout}s")
        await asyncio.sleep(0.05)
    return loop.time() - start


async def healthz(log: Path) -> tuple[int, dict[str, Any]]:
    """GET /healthz of the process writing ``log``, once it has logged where it serves (the
    configs use port 0)."""
    await wait_line(log, "health: serving http://127.0.0.1:", timeout=30)
    text = await asyncio.to_thread(log.read_text, errors="replace")
    line = next(x for x in text.splitlines() if "health: serving" in x)
    url = line.split("health: serving ")[1].split()[0]
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


async def sigkill(proc: asyncio.subprocess.Process) -> None:
    """Kill -9 a ``voicebot run``: no clean-up at all (a crash, a power cut)."""
    proc.kill()
    assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL


async def terminate(proc: asyncio.subprocess.Process) -> None:
    """Stop a ``voicebot run`` as a service manager does (SIGTERM), killed if it hangs."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 15)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
