"""The product's shape stays as issue 22 left it: scripts/layout.py finds nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "layout.py"


def _layout() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layout", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_layout_no_loop_no_upward_import_no_oversize() -> None:
    assert _layout().findings() == []


def test_layout_finds_a_loop_and_an_upward_edge() -> None:
    layout = _layout()
    graph = {"bot.jobs.a": {"bot.jobs.b"}, "bot.jobs.b": {"bot.jobs.a"}, "bot.model.x": set()}
    assert layout.cycles(graph) == [["bot.jobs.a", "bot.jobs.b"]]
    assert layout.layer("bot.model.x") < layout.layer("bot.jobs.a")
    assert layout.layer("adapters.telegram.adapter") > layout.layer("bot.app.core")
