"""Project-level promises: CI runs README's test command; the core never imports a chat library
or an adapter (the dependency points one way: adapters, the CLI among them, import bot/)."""

from __future__ import annotations

import re
import subprocess
import sys

from testkit.process import ROOT, subprocess_env


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```sh\n(.*?)```", readme, re.S)
    test_cmd = next(c.strip() for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci


def test_core_never_imports_chat_libraries() -> None:
    code = (
        "import pkgutil, importlib, sys, bot\n"
        "for m in pkgutil.walk_packages(bot.__path__, 'bot.'):\n"
        "    importlib.import_module(m.name)\n"
        "top = ('discord', 'telegram', 'adapters')\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in top)\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_core_source_never_names_an_adapter() -> None:
    """Not even lazily, inside a function (which importing every module would not catch)."""
    pattern = re.compile(r"^\s*(from|import)\s+adapters\b", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "bot").rglob("*.py"))
        if pattern.search(path.read_text())
    ]
    assert offenders == []


def test_wheel_ships_neither_tests_nor_testkit() -> None:
    """testkit/ (fakes, synthetic audio, the PostgreSQL cluster) is for tests and bench/ only."""
    import fnmatch
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in ("testkit", "testkit.fakes", "tests", "tests.unit", "bench"):
        assert not any(fnmatch.fnmatch(package, pattern) for pattern in include), package
    assert any(fnmatch.fnmatch("bot.jobs", pattern) for pattern in include)
