"""The operator command's pieces that need no edge: its live-feed parser, its error lines,
its bound on a silent edge, and its slimness."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest
from typer.testing import CliRunner

from voicebus.cli.calls import sse_events
from voicebus.cli.edge import error_line
from voicebus.cli.main import operator_app

pytestmark = pytest.mark.unit


def test_server_sent_events_are_read_with_their_names_and_comments_skipped() -> None:
    lines = [": keep-alive", "", "id: 1", "event: call.started.v1", 'data: {"a":', "data: 1}", "",
             "event: overflow", "data: {}", ""]  # fmt: skip
    assert list(sse_events(lines)) == [("call.started.v1", '{"a":\n1}'), ("overflow", "{}")]


def test_the_edges_error_shape_becomes_one_line_naming_the_field() -> None:
    body = {"error": {"code": "invalid_request", "message": "bad body",
                      "fields": [{"field": "spec.name", "message": "required"}]}}  # fmt: skip
    line = error_line(httpx.Response(422, json=body))
    assert line == "422 invalid_request: bad body (spec.name: required)"
    assert error_line(httpx.Response(502, text="<html>bad gateway")) == "502: <html>bad gateway"


def test_an_edge_that_accepts_but_never_answers_fails_within_the_timeout() -> None:
    with socket.socket() as silent:  # listens, never reads nor answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = CliRunner().invoke(
            operator_app(), ["calls", "list", "--url", url, "--api-key", "k", "--timeout", "0.5"]
        )
    assert result.exit_code == 1
    assert result.stderr.strip() == f"the edge at {url} did not answer within 0.5 s"


def test_the_command_needs_neither_the_bus_nor_the_database() -> None:
    probe = (
        "import sys, voicebus.cli.main\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'nats', 'sqlalchemy',"
        " 'asyncpg', 'faststream', 'pipecat'} or m.startswith(('voicebus.devkit',"
        " 'voicebus.runtime', 'voicebus.engines')))\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    assert done.stdout.strip() == "[]"
