"""Test-wide setup: no network but loopback, a marker per tier (by folder), one fixture per fake
server, and the databases the store contract runs on."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from testkit.process import OFFLINE_DIR

sys.path.insert(0, str(OFFLINE_DIR))
from tests_offline_guard import install

install()

from bot.storage import open_store  # noqa: E402
from bot.storage.jobs import SqlJobStore  # noqa: E402
from testkit.fakes.chat import FakeChat  # noqa: E402
from testkit.fakes.discord import FakeDiscord  # noqa: E402
from testkit.fakes.media_site import MediaSite  # noqa: E402
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt  # noqa: E402
from testkit.fakes.telegram import FakeTelegram  # noqa: E402
from testkit.pgcluster import PgCluster, bindir  # noqa: E402
from testkit.support import CHAT_KEY, Opener  # noqa: E402
from testkit.synth import two_hours  # noqa: E402

# httpx (PTB) honours proxy variables; a proxy must never sit between a client and a fake.
os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ["no_proxy"] = "127.0.0.1,localhost"
# Nothing may download a model at test time: the hub clients fail at once instead of trying (the
# socket guard would refuse them anyway). Subprocesses inherit this.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
for _proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_proxy, None)


TIERS = ("unit", "core", "adapters", "e2e")
"""One folder and one marker each (registered in pyproject.toml); ``-m "not e2e"`` runs fast."""
TESTS = Path(__file__).resolve().parent


def _needs_postgres(item: pytest.Item) -> bool:
    """A PostgreSQL cluster is the e2e tier's, wherever the test lives: asked for by name, or as
    the ``postgres`` case of a backend-parametrized ``target``."""
    names = getattr(item, "fixturenames", ())
    callspec = getattr(item, "callspec", None)
    parametrized = callspec is not None and callspec.params.get("target") == "postgres"
    return parametrized or "pg_url" in names or "pg_cluster" in names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its folder's tier; a PostgreSQL case anywhere is also ``e2e``."""
    for item in items:
        parts = item.path.resolve().relative_to(TESTS).parts
        tier = parts[0] if len(parts) > 1 and parts[0] in TIERS else None
        if tier is None:
            # Loud: an unmarked test would silently join every tier's run.
            folders = ", ".join(f"tests/{t}/" for t in TIERS)
            raise pytest.UsageError(f"{item.nodeid}: a test lives in one of {folders}")
        item.add_marker(getattr(pytest.mark, tier))
        if tier != "e2e" and _needs_postgres(item):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def two_hours_recording(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> bytes:
    """Two hours of speech-like audio (:func:`testkit.synth.two_hours`): synthesized once, kept
    in pytest's cache folder for later runs (in the session's temporary folder without it)."""
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    folder = cache.mkdir("voicebot-synth") if cache is not None else tmp_path_factory.getbasetemp()
    return two_hours(Path(folder))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One aiohttp session for a test's clients (closed after it)."""
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def nano() -> AsyncIterator[FakeNanoGpt]:
    """A fake NanoGPT API on loopback, fresh for each test."""
    async with FakeNanoGpt() as fake:
        yield fake


@pytest.fixture
async def canto() -> AsyncIterator[FakeCantonese]:
    """A fake cantonese.ai API on loopback, fresh for each test."""
    async with FakeCantonese() as fake:
        yield fake


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    """A fake Telegram Bot API on loopback, fresh for each test."""
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    """A fake Discord (REST + gateway) on loopback, fresh for each test."""
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
async def site() -> AsyncIterator[MediaSite]:
    """A local media site for links (audio files, pages, HLS, redirects), fresh for each test."""
    served = MediaSite()
    await served.start()
    try:
        yield served
    finally:
        await served.stop()


@pytest.fixture
async def chat() -> AsyncIterator[FakeChat]:
    """A fake chat-completions API on loopback (key :data:`CHAT_KEY`), fresh for each test."""
    async with FakeChat(CHAT_KEY) as fake:
        yield fake


# The black-box tests take their fakes as one tuple: one fixture per combination they start.
@pytest.fixture
def nano_canto(nano: FakeNanoGpt, canto: FakeCantonese) -> tuple[FakeNanoGpt, FakeCantonese]:
    """The two provider fakes."""
    return nano, canto


@pytest.fixture
def tg_nano(tg: FakeTelegram, nano: FakeNanoGpt) -> tuple[FakeTelegram, FakeNanoGpt]:
    """Fake Telegram and fake NanoGPT."""
    return tg, nano


@pytest.fixture
def tg_nano_canto(
    tg: FakeTelegram, nano: FakeNanoGpt, canto: FakeCantonese
) -> tuple[FakeTelegram, FakeNanoGpt, FakeCantonese]:
    """Fake Telegram and both provider fakes."""
    return tg, nano, canto


@pytest.fixture
def dc_nano_canto(
    dc: FakeDiscord, nano: FakeNanoGpt, canto: FakeCantonese
) -> tuple[FakeDiscord, FakeNanoGpt, FakeCantonese]:
    """Fake Discord and both provider fakes."""
    return dc, nano, canto


@pytest.fixture
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process PTB opts in to v23's timedelta durations (no deprecation warnings, same types
    later); ``voicebot`` subprocesses run as in production."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL cluster for the whole session (skipped where the binaries are
    missing, unless ``VOICEBOT_REQUIRE_POSTGRES=1``, as CI sets: then it fails)."""
    folder = bindir()
    if folder is None:
        if os.environ.get("VOICEBOT_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL binaries (initdb, pg_ctl) not found")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found; CI installs them")
    cluster = PgCluster(folder)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh, empty database on the session's cluster; dropped afterwards."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend's database (the store contract runs on both): a SQLite file, or a fresh
    database on the test cluster."""
    if request.param == "sqlite":
        return str(tmp_path / "db" / "jobs.sqlite3")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def opener(target: str) -> AsyncIterator[Opener]:
    """Opens another store (another "process": its own owner id) on the same database."""
    opened: list[SqlJobStore] = []

    async def open_one() -> SqlJobStore:
        store = await open_store(target, pool_size=4)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture
async def store(opener: Opener) -> SqlJobStore:
    """A store on :func:`target`, closed after the test."""
    return await opener()
