"""Opening a SQLite store that cannot be opened: one line with the path and the cause."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.model.errors import BotError
from bot.storage.access import access_problem
from bot.storage.sqlite import SqliteJobStore


async def test_store_under_a_file_names_the_file_in_the_way(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    with pytest.raises(BotError) as info:
        await SqliteJobStore.open(blocker / "sub" / "voicebot.sqlite3")
    assert str(info.value) == (
        f"cannot open the database {blocker / 'sub' / 'voicebot.sqlite3'}: "
        f"{blocker} is a file, not a folder"
    )


async def test_store_run_lock_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "voicebot.sqlite3"
    (tmp_path / "voicebot.sqlite3.run.lock").mkdir()  # something else sits where the lock goes
    store = await SqliteJobStore.open(db)
    try:
        with pytest.raises(BotError, match=r"cannot create the run lock .*run\.lock: Is a dir"):
            store.db.lock_runner()
    finally:
        await store.close()


def test_store_access_problem_names_the_missing_permission(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("this process ignores file permissions (root): see tests/e2e")
        assert access_problem(folder / "voicebot.sqlite3") == (
            f"no write permission on the folder {folder} (owner uid {os.getuid()}, mode 0555; "
            f"this process runs as uid {os.geteuid()})"
        )
        assert access_problem(folder / "new" / "voicebot.sqlite3") is not None
    finally:
        folder.chmod(0o755)
    assert access_problem(folder / "voicebot.sqlite3") is None
