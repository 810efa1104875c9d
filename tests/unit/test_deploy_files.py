"""The files around the code keep their promises: git ignores what a run leaves, the Docker build
context holds only what the image copies, and compose probes /healthz and shares one model
volume."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from bot.config.load import HealthConfig
from testkit.process import ROOT


@pytest.mark.parametrize(
    "path",
    ["voicebot.sqlite3.run.lock", "data/voicebot.sqlite3.run.lock", "voicebot.sqlite3-wal"],
)
def test_gitignore_covers_what_a_run_leaves_beside_the_database(path: str) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    found = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False, timeout=30
    )
    assert found.returncode == 0, f"{path} is not ignored by .gitignore"


def _dockerignored(name: str) -> bool:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(fnmatch.fnmatch(name, p.removeprefix("**/")) for p in patterns)


def test_dockerignore_keeps_environments_and_caches_out_but_not_what_the_image_copies() -> None:
    for heavy in (".venv", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache", "__pycache__"):
        assert _dockerignored(heavy), heavy
    copied = re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    names = [name for line in copied for name in line.split()]
    assert {"pyproject.toml", "bot", "adapters"} <= set(names)
    for name in names:
        assert not _dockerignored(name), f"the Dockerfile copies {name}, .dockerignore drops it"


def _compose() -> Any:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_healthcheck_probes_healthz_on_the_health_port() -> None:
    check = _compose()["services"]["bot"]["healthcheck"]
    command = " ".join(check["test"])
    assert f"http://127.0.0.1:{HealthConfig().port}/healthz" in command
    assert "voicebot jobs" not in command
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "/healthz" in dockerfile  # the image's own HEALTHCHECK says the same


def test_compose_replicas_share_one_model_volume() -> None:
    compose = _compose()
    mounts = [str(v) for v in compose["services"]["bot"]["volumes"]]
    shared = [m.split(":")[0] for m in mounts if m.split(":")[1] == "/models"]
    assert shared, "no volume on /models, where the image keeps models (VOICEBOT_MODELS)"
    # A named volume (not a host path): every replica mounts the same one.
    assert shared[0] in (compose.get("volumes") or {})
    assert "VOICEBOT_MODELS=/models" in (ROOT / "Dockerfile").read_text()
