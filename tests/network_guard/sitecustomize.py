"""Tests only: refuse, and record, every attempt to reach beyond this machine's loopback.

A test puts this directory on PYTHONPATH of the process it starts and names a log file in
NETWORK_GUARD_LOG. Python imports `sitecustomize` as it starts, before any of the
program's code, so every later import (LiteLLM, the Agents SDK, httpx, aiohttp) is under
the guard, in every worker process too. An attempt fails as a network error would, and one
line (with the code that made it) is appended to the log for the test to read.

Two layers: an audit hook sees every name lookup and connect of Python's socket module
(blocking clients, the asyncio loop, threads); uvloop, which uvicorn runs on, resolves and
connects through libuv instead, so its loop's entry points are wrapped as well.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import socket
import sys
import traceback
from typing import Any

_LOG = os.environ.get("NETWORK_GUARD_LOG", "")
_LOCAL_NAMES = {"", "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_local(host: object) -> bool:
    if host is None:
        return True  # a passive or loopback lookup
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False  # any other name would be resolved by DNS
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _refuse(what: str, target: object, error: OSError) -> None:
    if _LOG:
        stack = "".join(traceback.format_stack(limit=40)[:-2])
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"pid {os.getpid()}: {what} {target!r}\n{stack}\n")
    raise error


def _unreachable(what: str, target: object) -> None:
    _refuse(what, target, OSError(errno.ENETUNREACH, f"network guard: {what} {target!r}"))


def _unknown(what: str, target: object) -> None:
    _refuse(what, target, socket.gaierror(socket.EAI_NONAME, f"network guard: {what} {target!r}"))


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not event.startswith("socket."):
        return
    if event in {"socket.getaddrinfo", "socket.gethostbyname"}:
        if not _is_local(args[0]):
            _unknown(event, args[0])
    elif event in {"socket.connect", "socket.sendto"}:
        sock, address = args[0], args[-1]
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _unreachable(event, address)
    elif event in {"socket.gethostbyaddr", "socket.getnameinfo"}:
        target = args[0][0] if isinstance(args[0], tuple) else args[0]
        if not _is_local(target):
            _unknown(event, target)


def _guard_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    loop_class: Any = uvloop.Loop

    def host_of(call: tuple[Any, ...], kwargs: dict[str, Any], position: int, name: str) -> Any:
        return kwargs[name] if name in kwargs else call[position] if len(call) > position else None

    def guard(method: str, position: int, name: str, address: bool = False) -> None:
        original = getattr(loop_class, method)

        @functools.wraps(original)
        def checked(self: Any, *call: Any, **kwargs: Any) -> Any:
            target = host_of(call, kwargs, position, name)
            if address and not isinstance(target, tuple):
                return original(self, *call, **kwargs)  # a Unix socket path, or none
            host = target[0] if address else target
            if not _is_local(host):
                if method == "getaddrinfo":
                    _unknown(f"uvloop.{method}", target)
                _unreachable(f"uvloop.{method}", target)
            return original(self, *call, **kwargs)

        setattr(loop_class, method, checked)

    guard("getaddrinfo", 0, "host")
    guard("create_connection", 1, "host")
    guard("sock_connect", 1, "address", address=True)
    guard("create_datagram_endpoint", 2, "remote_addr", address=True)


if _LOG:
    sys.addaudithook(_audit)
    _guard_uvloop()
