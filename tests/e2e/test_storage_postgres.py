"""PostgreSQL-only behaviour on a real throwaway cluster: concurrent migration, NOTIFY wake-ups,
the leader lock, and a server restart in the middle of work."""

from __future__ import annotations

import asyncio

import asyncpg

from bot.jobs.poller import Reach
from bot.model.job import JobKind, JobState, NewJob
from bot.model.speech import Origin
from bot.storage.postgres import PostgresJobStore, redacted
from bot.storage.postgres_schema import MIGRATIONS
from testkit.pgcluster import PgCluster

ORIGIN = Origin(platform="telegram", chat_id="42", user_id="7")
NEW = NewJob(JobKind.TTS, ORIGIN, "nanogpt", "m", {"parts": ["hi"]}, deadline_at=1e12)


async def test_postgres_concurrent_starts_migrate_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(PostgresJobStore.open(pg_url) for _ in range(4)))
    try:
        conn = await asyncpg.connect(pg_url)
        try:
            versions = await conn.fetch("SELECT version FROM voicebot_schema ORDER BY version")
        finally:
            await conn.close()
        assert [r[0] for r in versions] == list(range(1, len(MIGRATIONS) + 1))
    finally:
        for store in stores:
            await store.close()


async def test_postgres_notify_wakes_another_process(pg_url: str) -> None:
    a, b = await PostgresJobStore.open(pg_url), await PostgresJobStore.open(pg_url)
    woken = asyncio.Event()
    try:
        await b.claims.watch(woken.set)
        await a.create(NEW, now=1.0)
        await asyncio.wait_for(woken.wait(), 5.0)
    finally:
        await a.close()
        await b.close()


async def test_postgres_leader_lock_has_one_holder_and_a_standby_takes_over(pg_url: str) -> None:
    a, b = await PostgresJobStore.open(pg_url), await PostgresJobStore.open(pg_url)
    first, second = a.leader("telegram:1"), b.leader("telegram:1")
    try:
        await asyncio.wait_for(first.acquire(), 5.0)
        standby = asyncio.create_task(second.acquire())
        await asyncio.sleep(0.5)  # a window under test: the standby must not get it meanwhile
        assert not standby.done()  # held elsewhere
        await first.release()  # the holder stops (or dies: the server frees it either way)
        await asyncio.wait_for(standby, 10.0)
        other = a.leader("discord:1")  # another name is another lock
        await asyncio.wait_for(other.acquire(), 5.0)
        await other.release()
    finally:
        await first.release()
        await second.release()
        await a.close()
        await b.close()


async def test_postgres_server_restart_mid_run_loses_nothing(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    store = await PostgresJobStore.open(pg_url, pool_size=4)
    leader = store.leader("telegram:restart")
    woken = asyncio.Event()
    try:
        await store.claims.watch(woken.set)
        await leader.acquire()
        lost = asyncio.create_task(leader.wait_lost())
        created = [await store.create(NEW, now=float(i)) for i in range(5)]
        restart = asyncio.create_task(asyncio.to_thread(pg_cluster.restart))
        more = [await store.create(NEW, now=10.0 + i) for i in range(20)]  # across the restart
        await restart
        await asyncio.wait_for(lost, 10.0)  # the lock went with its connection: not leader now
        await asyncio.wait_for(leader.acquire(), 10.0)  # and it comes back
        ids = {j.id for j in created + more}
        claimed = await store.claims.claim(100.0, Reach(["telegram"]), 100, 30.0)
        assert {j.id for j in claimed} == ids
        assert all(j.state is JobState.QUEUED for j in claimed)
        woken.clear()
        await store.create(NEW, now=50.0)  # notifications resume on the new connection
        await asyncio.wait_for(woken.wait(), 10.0)
    finally:
        await leader.release()
        await store.close()


def test_postgres_url_password_is_redacted() -> None:
    assert redacted("postgresql://bot:s3cret@db:5432/v") == "postgresql://bot:***@db:5432/v"
    assert redacted("postgresql://bot@/v?host=/tmp") == "postgresql://bot@/v?host=/tmp"
