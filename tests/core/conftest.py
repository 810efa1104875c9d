"""The core tier's shared fixture: a core on the fake NanoGPT and cantonese.ai, opened, closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testkit.core import CoreWithFakes
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import harness_config


@pytest.fixture
async def h(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> AsyncIterator[CoreWithFakes]:
    harness = CoreWithFakes(harness_config(tmp_path, nano, canto))
    await harness.open()
    yield harness
    await harness.close()
