"""Debian's PgBouncer on loopback, in transaction pooling mode, in front of the tests' PostgreSQL.

Transaction pooling is how Neon's and Supabase's pooled connection strings (and most
managed set-ups) front PostgreSQL: each transaction may run on a different server
connection, so nothing may outlive one (prepared statements, session locks, SET).
Missing `pgbouncer` skips the tests that need it (fails them in CI: tests/optional.py);
`scripts/test` installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

from .databases import PG_HOST, PG_PORT, PG_USER
from .live import free_port
from .optional import require

BINARY = "pgbouncer"
_SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
# PgBouncer will not run as root; started as root, it switches to this user (`-u`).
_RUN_AS = "postgres"


def pgbouncer_binary() -> str | None:
    return shutil.which(BINARY, path=_SEARCH)


def _ini(port: int, directory: Path) -> str:
    return f"""\
[databases]
; Every database name the client asks for, on the tests' PostgreSQL (each test makes its own).
* = host={PG_HOST} port={PG_PORT}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "userlist.txt"}
pool_mode = transaction
max_client_conn = 2000
default_pool_size = 20
max_db_connections = 40
ignore_startup_parameters = extra_float_digits
logfile = {directory / "pgbouncer.log"}
pidfile = {directory / "pgbouncer.pid"}
admin_users = {PG_USER}
"""


class PgBouncer:
    """`with PgBouncer() as bouncer:` it listens on `bouncer.port` until the block ends.

    Its files (ini, user list, log) live in a directory of its own under the system's
    temporary directory, not under pytest's, which only root may enter.
    """

    def __init__(self) -> None:
        binary = pgbouncer_binary()
        require(binary, f"{BINARY} is not installed (Debian: apt-get install pgbouncer)")
        assert binary is not None
        self.binary = binary
        self.directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, database_url: str) -> str:
        """`database_url` (a PostgreSQL URL of the tests') pointed at this PgBouncer."""
        parts = urlsplit(database_url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) > 1 else host))

    def __enter__(self) -> Self:
        users = {PG_USER, "postgres", "root"}
        (self.directory / "userlist.txt").write_text("".join(f'"{u}" ""\n' for u in users))
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(_ini(self.port, self.directory))
        command = [self.binary, "-q", str(ini)]
        if os.geteuid() == 0:
            # The switched-to user must read the ini and write the log and pid files.
            shutil.chown(self.directory, _RUN_AS)
            for path in self.directory.iterdir():
                shutil.chown(path, _RUN_AS)
            command[1:1] = ["-u", _RUN_AS]
        errors = self.directory / "stderr.txt"
        with open(errors, "wb") as stderr:
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 15
        while not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.directory / "pgbouncer.log"
                why = errors.read_text() + (log.read_text() if log.exists() else "")
                self.__exit__(None, None, None)
                raise RuntimeError(f"pgbouncer did not start: {why}")
            time.sleep(0.05)
        return self

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: PgBouncer stops at once (SIGINT waits)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        """What PgBouncer logged so far (its errors say what a client did wrong)."""
        path = self.directory / "pgbouncer.log"
        return path.read_text() if path.exists() else ""
