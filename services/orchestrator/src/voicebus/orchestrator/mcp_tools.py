"""MCP tools: an agent's MCP servers, connected when a call starts, called with a timeout.

Each server gets one connection for the call (stdio: one process), opened and
closed by a task of its own (the SDK's transports are task-scoped). Its tool
list is discovered once per agent version and server and cached. A server that
cannot be reached within its timeout leaves the agent without its tools: the
conversation reports it as a ``call.error`` and the call goes on. HTTP servers
pass the same SSRF guard as webhook tools. A tool's structured result (or its
text, parsed as JSON when it is JSON) is the result; an error result is a
short ``ToolError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from voicebus.contracts.agents import McpServer, McpTransport
from voicebus.engines.base import ToolSpec
from voicebus.orchestrator.ssrf import TargetPolicy, TargetRefusedError, check_target
from voicebus.orchestrator.tools import ToolError

log = logging.getLogger(__name__)

Specs = tuple[ToolSpec, ...]


class McpConnection:
    """One server's session for one call, held open by its own task."""

    def __init__(self, server: McpServer) -> None:
        self.server = server
        self.session: ClientSession | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> ClientSession:
        """Connect and initialize within the server's timeout.

        Raises:
            ToolError: the server cannot be reached (the message says why).
        """
        self._task = asyncio.create_task(self._hold(), name=f"mcp-{self.server.name}")
        try:
            async with asyncio.timeout(self.server.timeout_s):
                await self._ready.wait()
        except TimeoutError:
            await self.close()
            raise ToolError(f"no answer within {self.server.timeout_s:g} s") from None
        if self.session is None:
            await self.close()
            raise ToolError(_reason(self._failure))
        return self.session

    async def _hold(self) -> None:
        try:
            async with AsyncExitStack() as stack:
                read, write = await _enter(stack, self.server)
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                self.session = session
                self._ready.set()
                await self._stop.wait()
        except Exception as exc:  # any transport failure: the call goes on without it
            self._failure = exc
        finally:
            self.session = None
            self._ready.set()

    async def close(self) -> None:
        """End the session (and a stdio server's process)."""
        self._stop.set()
        if self._task is not None:
            try:
                async with asyncio.timeout(5):
                    await self._task
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            except Exception:  # closing must never fail the call's end
                log.warning("mcp close failed", extra={"server": self.server.name})


async def _enter(stack: AsyncExitStack, server: McpServer) -> tuple[Any, Any]:
    """Enter the server's transport on ``stack``: (read stream, write stream)."""
    if server.transport is McpTransport.STDIO:
        assert server.command is not None
        params = StdioServerParameters(command=server.command, args=list(server.args))
        streams = await stack.enter_async_context(stdio_client(params))
    elif server.transport is McpTransport.SSE:
        assert server.url is not None
        streams = await stack.enter_async_context(sse_client(server.url, timeout=server.timeout_s))
    else:
        assert server.url is not None
        streams = await stack.enter_async_context(streamable_http_client(server.url))
    return streams[0], streams[1]


def _reason(exc: BaseException | None) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"cannot connect: {type(exc).__name__}" if exc is not None else "cannot connect"


class McpTool:
    """One tool of a connected server."""

    ends_call = False

    def __init__(self, spec: ToolSpec, connection: McpConnection) -> None:
        self.spec = spec
        self._connection = connection
        self.budget_s = connection.server.timeout_s

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        """Call the tool; its structured content or text is the result.

        Raises:
            ToolError: the server is gone, timed out or reported an error.
        """
        session = self._connection.session
        if session is None:
            raise ToolError("the MCP server is disconnected")
        timeout = self._connection.server.timeout_s
        try:
            async with asyncio.timeout(timeout):
                result = await session.call_tool(self.spec.name, dict(arguments))
        except TimeoutError:
            raise ToolError(f"timeout: no answer within {timeout:g} s") from None
        except Exception as exc:  # a protocol or transport error: short, for the LLM
            raise ToolError(f"mcp error: {type(exc).__name__}") from None
        text = " ".join(
            c.text for c in getattr(result, "content", []) if isinstance(c, TextContent)
        )
        if getattr(result, "is_error", False):
            raise ToolError(f"mcp tool error: {text[:300]}")
        structured = getattr(result, "structured_content", None)
        if structured is not None:
            return structured
        try:
            return json.loads(text)
        except ValueError:
            return {"text": text}

    def reply(self, result: Any) -> str | None:
        """None: the LLM speaks about the result."""
        return None


class McpTools:
    """MCP connections of every live call, and the tool lists cached per agent version.

    Args:
        policy: which non-public HTTP targets servers may be on.
    """

    def __init__(self, policy: TargetPolicy) -> None:
        self._policy = policy
        self._lists: dict[tuple[str, str, int, str], Specs] = {}

    async def connect(
        self, key: tuple[str, str, int], servers: list[McpServer]
    ) -> tuple[list[McpTool], list[McpConnection], list[str]]:
        """Connect every server for one call: (tools, connections to close, problems)."""
        tools: list[McpTool] = []
        connections: list[McpConnection] = []
        problems: list[str] = []
        for server in servers:
            try:
                if server.url is not None:
                    await check_target(server.url, self._policy)
                connection = McpConnection(server)
                session = await connection.open()
            except (ToolError, TargetRefusedError) as exc:
                problems.append(f"MCP server {server.name!r} unavailable, its tools are off: {exc}")
                continue
            connections.append(connection)
            specs = self._lists.get((*key, server.name))
            if specs is None:
                try:
                    async with asyncio.timeout(server.timeout_s):
                        listed = await session.list_tools()
                except Exception as exc:  # a server that cannot list is as good as down
                    problems.append(f"MCP server {server.name!r} did not list its tools: "
                                    f"{type(exc).__name__}")  # fmt: skip
                    continue
                specs = tuple(
                    ToolSpec(t.name, t.description or t.name, dict(t.input_schema))
                    for t in listed.tools
                    if server.tools is None or t.name in server.tools
                )
                self._lists[(*key, server.name)] = specs
            tools += [McpTool(spec, connection) for spec in specs]
        return tools, connections, problems
