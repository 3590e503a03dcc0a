"""A real MCP server of our own for the tests, on stdio or streamable HTTP.

    python tests/mcp_server.py stdio
    python tests/mcp_server.py http PORT

Its tools: `add`, `shout`, `secret_tool`, `slow` (sleeps), `big` (a long result), `whoami`
(the bearer token the HTTP request carried, if any), `fail` (a tool error), `pid`, `admin.list`
(a name the providers refuse).
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("test-tools")


@server.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool()
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper()


@server.tool()
def secret_tool() -> str:
    """A tool the config blocks."""
    return "you should not see this"


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "done"


@server.tool()
def big(chars: int) -> str:
    """A result of `chars` characters."""
    return "x" * chars


@server.tool()
def whoami(ctx: Context) -> str:
    """The Authorization header of the HTTP request that called this tool."""
    return (ctx.headers or {}).get("authorization", "nobody")


@server.tool()
def whoami_too(ctx: Context) -> str:
    """The same, under another name (for a second server entry)."""
    return (ctx.headers or {}).get("authorization", "nobody")


@server.tool()
def pid() -> str:
    """This server's process id (a test kills it to see the client start another)."""
    return str(os.getpid())


@server.tool(name="admin.list")
def admin_list() -> str:
    """A name MCP allows and model providers refuse (a dot): never offered to the model."""
    return "admins"


@server.tool()
def fail() -> str:
    """Always fails."""
    raise ValueError("the tool broke")


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
