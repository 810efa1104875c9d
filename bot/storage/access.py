"""Why a SQLite file could not be opened, in one line: the path and the permission missing."""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

_NAMES = {os.R_OK: "read", os.W_OK: "write", os.X_OK: "search (x)"}


def open_failure(path: Path, exc: BaseException) -> str:
    """The sentence for a database at ``path`` that failed to open with ``exc``.

    SQLite's own words ("unable to open database file") name neither the file nor the cause,
    and the usual cause is a folder mounted from the host that the process's user may not write
    (``docker run -v "$PWD/data:/data"`` with a root-owned ``./data``), so the checks below are
    what SQLite needs: the folder searchable and writable (the database, its ``-wal`` and
    ``-shm`` files and the run lock are created there) and the file readable and writable.
    """
    problem = access_problem(path)
    if problem is None:
        reason = getattr(exc, "strerror", None) or str(exc)
        problem = f"{reason} (at {path})" if isinstance(exc, OSError) else str(reason)
    return f"cannot open the database {path}: {problem}"


def access_problem(path: Path) -> str | None:
    """What this process may not do that opening the SQLite file at ``path`` needs, or None."""
    folder = path.parent
    existing = folder
    # os.path.exists, not Path.exists: a folder we may not search must not raise here.
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    if existing != folder:
        missing = _lacking(existing, os.W_OK | os.X_OK)
        return None if missing is None else f"cannot create the folder {folder}: {missing}"
    if (missing := _lacking(folder, os.X_OK)) is not None:
        return missing
    if os.path.exists(path) and (missing := _lacking(path, os.R_OK | os.W_OK)) is not None:
        return missing
    return _lacking(folder, os.W_OK)


def lock_failure(lock: Path, exc: OSError) -> str:
    """The sentence for a run lock (``<file>.run.lock``) that could not be created."""
    problem = access_problem(lock) if exc.errno in (errno.EACCES, errno.EPERM) else None
    return f"cannot create the run lock {lock}: {problem or exc.strerror}"


def _lacking(where: Path, modes: int) -> str | None:
    """``no write permission on the folder /data (owner uid 0, mode 0755; this process runs as
    uid 10001)``, or None when every permission in ``modes`` is granted."""
    effective = os.access in os.supports_effective_ids
    denied = [
        name
        for mode, name in _NAMES.items()
        if modes & mode and not os.access(where, mode, effective_ids=effective)
    ]
    if not denied:
        return None
    try:
        info = where.stat()
    except OSError:
        owner = ""
    else:
        owner = f"owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}; "
    kind = "folder" if os.path.isdir(where) else "file"
    return (
        f"no {' or '.join(denied)} permission on the {kind} {where} "
        f"({owner}this process runs as uid {os.geteuid()})"
    )
