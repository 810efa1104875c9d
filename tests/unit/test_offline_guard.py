"""The offline guard refuses the internet at once and lets loopback through."""

from __future__ import annotations

import socket
import subprocess
import sys

import aiohttp
import pytest
from aiohttp import web

from testkit.process import subprocess_env


async def test_offline_guard_refuses_public_address_immediately() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.get("https://api.telegram.org/", timeout=aiohttp.ClientTimeout(5)):
                pass


def test_offline_guard_refuses_raw_socket_to_private_range() -> None:
    with socket.socket() as sock, pytest.raises(OSError, match="offline"):
        sock.connect(("10.1.2.3", 443))


async def test_offline_guard_allows_loopback() -> None:
    app = web.Application()

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="here")

    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as resp,
        ):
            assert await resp.text() == "here"
    finally:
        await runner.cleanup()


def test_offline_guard_is_active_in_subprocesses() -> None:
    code = "import socket; socket.create_connection(('93.184.216.34', 80), timeout=5)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "tests are offline" in proc.stderr
