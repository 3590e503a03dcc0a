"""Real database faults to inflict on a running server, each one a thing that happens in
production, and each one working when the tests run as root (which ignores file modes).

- `WritesFail`: the server process can no longer write any file, as when its disk fails
  or fills up. SQLite answers "disk I/O error".
- `PostgresDown`: PostgreSQL goes away: open connections are reset, new ones refused.
- `without_file_permission_override`: lets a root-run server be refused by file modes, so
  `chmod` makes its SQLite file really read-only for it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from .tcp_proxy import TcpProxy


class Fault(Protocol):
    def begin(self) -> None: ...

    def end(self) -> None: ...


@contextmanager
def during(fault: Fault) -> Iterator[None]:
    fault.begin()
    try:
        yield
    finally:
        fault.end()


class WritesFail:
    """Every write(2) of process `pid` to a regular file fails (EFBIG), until `end()`.

    Lowering another process's RLIMIT_FSIZE to 0 is the kernel's own refusal to let it
    write, reads still work, sockets are not files, and Python ignores SIGXFSZ, so the
    server keeps running and sees what a failing disk looks like: SQLite's
    SQLITE_IOERR_WRITE. (Its log file cannot be written meanwhile either.)
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._saved: tuple[int, int] | None = None

    def begin(self) -> None:
        soft, hard = resource.prlimit(self.pid, resource.RLIMIT_FSIZE)
        self._saved = (soft, hard)
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (0, hard))

    def end(self) -> None:
        if self._saved is not None:
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE, self._saved)
            self._saved = None


class PostgresDown:
    """PostgreSQL, as reached through `proxy`, stops: connections reset, new ones refused."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy

    def begin(self) -> None:
        self.proxy.down()

    def end(self) -> None:
        self.proxy.up()


# From <linux/prctl.h> and <linux/capability.h>.
_PR_CAPBSET_DROP = 24
# Loaded here, in the parent: a forked child of a threaded process must not dlopen.
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3


def permission_override_can_be_dropped() -> bool:
    """Whether a child can be made subject to file modes: not root, or root that may drop
    capabilities (CAP_SETPCAP)."""
    if os.geteuid() != 0:
        return True
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 8))  # CAP_SETPCAP
    return False


def without_file_permission_override() -> None:
    """`preexec_fn`: the child (even as root) is refused by file modes, like any user.

    Dropping the capabilities from the bounding set before exec leaves the new program
    without them: a read-only file is then read-only for it.
    """
    if os.geteuid() != 0:
        return
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
        if _LIBC.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
