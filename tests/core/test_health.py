"""HealthServer in process: what /healthz says when the poller or the database is gone."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.app.core import Core, run_bot
from bot.app.health import HealthServer
from testkit.support import make_config


async def test_health_database_and_poller_failures_turn_503(tmp_path: Path) -> None:
    core = await Core.open(make_config(tmp_path))
    health = HealthServer(core, [])
    await health.start("127.0.0.1", 0)
    url = f"http://127.0.0.1:{health.port}/healthz"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as resp:  # poller not started yet
                assert resp.status == 503 and (await resp.json())["poller"] == "stopped"
            core.poller.start()
            async with http.get(url) as resp:
                assert resp.status == 200
                assert await resp.json() == {
                    "status": "ok",
                    "adapters": {},
                    "database": "ok",
                    "poller": "alive",
                }
            await core.poller.stop(timeout=1)
            core.poller.start()
            await core.store.close()  # the database goes away under a running bot
            async with http.get(url) as resp:
                body = await resp.json()
                assert resp.status == 503 and body["database"].startswith("error")
            async with http.get(url.replace("healthz", "metrics")) as resp:
                assert resp.status == 200  # metrics still answer; the job gauges are stale
    finally:
        await core.poller.stop(timeout=1)
        await health.stop()
        await core.session.close()
        core.audio.close()


@pytest.mark.parametrize("enabled", [True, False])
async def test_health_off_switch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, enabled: bool
) -> None:
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()
    config = make_config(tmp_path, health={"enabled": enabled})
    task = asyncio.create_task(run_bot(config, lambda core: [], stop=stop))
    for _ in range(100):
        if "poller" in caplog.text or "health" in caplog.text:
            break
        await asyncio.sleep(0.02)
    # run_bot starts health (or not) before it waits for stop: once it returned, the line is in.
    stop.set()
    await asyncio.wait_for(task, 10)
    assert "shutting down" in caplog.text
    assert ("health: serving http://127.0.0.1:" in caplog.text) is enabled


async def test_health_dockerfile_probe_follows_healthz(tmp_path: Path) -> None:
    from testkit.process import ROOT

    line = next(x for x in (ROOT / "Dockerfile").read_text().splitlines() if "CMD [" in x)
    probe = json.loads(line.split("CMD", 1)[1].strip())
    assert probe[:2] == ["python", "-c"] and "/healthz" in probe[2]
    core = await Core.open(make_config(tmp_path))
    health = HealthServer(core, [])
    await health.start("127.0.0.1", 0)
    code = probe[2].replace(":9464/", f":{health.port}/")

    async def run_probe() -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stderr=asyncio.subprocess.DEVNULL
        )
        return await asyncio.wait_for(proc.wait(), 20)

    try:
        assert await run_probe() != 0  # poller not running: unhealthy
        core.poller.start()
        assert await run_probe() == 0
    finally:
        await core.poller.stop(timeout=1)
        await health.stop()
        await core.close()
