"""A throwaway PostgreSQL cluster for the tests: temp dir, Unix socket only, unprivileged user."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path


def bindir() -> Path | None:
    """Where initdb/pg_ctl live (PATH first, then ``pg_config --bindir``), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        folder = Path(out.stdout.strip())
        if (folder / "initdb").exists():
            return folder
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))  # Debian's layout
    return installed[-1].parent if installed else None


class PgCluster:
    """initdb + pg_ctl in a temp dir; as root, run as the ``postgres`` user (initdb won't run as
    root)."""

    def __init__(self, bin_dir: Path) -> None:
        self._bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="voicebot-pg-"))
        self.data = self.dir / "data"
        self.socket_dir = self.dir
        self._user: str | None = None
        if os.geteuid() == 0:
            # initdb refuses root: the distribution's postgres user, else nobody.
            names = [u.pw_name for u in pwd.getpwall()]
            self._user = "postgres" if "postgres" in names else "nobody"
            entry = pwd.getpwnam(self._user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            os.chmod(self.dir, 0o755)
            # The temp root must let that user in.
            os.chmod(self.dir.parent, os.stat(self.dir.parent).st_mode | 0o011)

    def _run(self, *args: str) -> None:
        cmd = [str(self._bin / args[0]), *args[1:]]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    @property
    def superuser(self) -> str:
        """The cluster's superuser name (the OS user that ran initdb)."""
        return self._user or pwd.getpwuid(os.geteuid()).pw_name

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL for ``database`` over the Unix socket."""
        return f"postgresql://{self.superuser}@/{database}?host={self.socket_dir}"

    def init(self) -> None:
        """Create the cluster (trust auth: only this socket's directory can reach it)."""
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        """Start the server, listening on the Unix socket only."""
        opts = f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off -c max_connections=200"
        log = self.dir / "server.log"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(log), "-o", opts, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate`` is a crash: no checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Stop the server abruptly and start it again (a crash-restart for fault tests)."""
        self.stop("immediate")
        self.start()

    def create_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        name = new_database_name()
        self._run("createdb", "-h", str(self.socket_dir), name)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by :meth:`create_database` (even with clients connected)."""
        name = url.split("/")[-1].split("?")[0]
        self._run("dropdb", "-h", str(self.socket_dir), "--force", "--if-exists", name)

    def remove(self) -> None:
        """Stop (if running) and delete everything."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def new_database_name() -> str:
    """A fresh database name for one test."""
    return "t_" + secrets.token_hex(6)
