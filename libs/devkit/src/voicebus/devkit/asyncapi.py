"""Generate the AsyncAPI 3 document of the bus from the contracts.

The document is built by FastStream's generator from declared publishers, one
per channel of :data:`voicebus.contracts.catalog.CHANNELS`, so the public
reference can never drift from the models services actually publish.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from faststream import FastStream
from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI

from voicebus.contracts.catalog import CHANNELS

TITLE = "voicebus bus"
VERSION = "1.0.0"
DESCRIPTION = (
    "Every event, command, audio frame and request on the voicebus NATS bus. Events "
    "(vb.evt.<tenant>.<call>.<type>) are stored in the JetStream stream VB_EVENTS "
    "with CloudEvents envelope names and a versioned type; per-call commands "
    "(vb.ctl.<call>.<verb>) and audio (vb.audio.<call>.in|out) are core NATS; "
    "vb.cmd.call.originate is a JetStream work queue (VB_COMMANDS); requests to the "
    "service that owns the data (vb.rpc.<service>.<resource>.<verb>) are answered on "
    "the request's reply subject."
)
DEFAULT_PATH = Path("docs") / "asyncapi.yaml"


def build_app() -> FastStream:
    """A FastStream app whose only purpose is to describe the bus (it never connects)."""
    broker = NatsBroker()
    for channel in CHANNELS:
        broker.publisher(
            channel.subject,
            stream=channel.stream,
            title=channel.title,
            description=channel.description,
            schema=channel.message,
        )
    return FastStream(
        broker,
        specification=AsyncAPI(title=TITLE, version=VERSION, description=DESCRIPTION),
    )


PARAMETERS: dict[str, dict[str, str]] = {
    "tenant_id": {"description": "Tenant id: one subject token ([A-Za-z0-9_-]{1,128})."},
    "call_id": {"description": "voicebus call id (UUIDv7): one subject token."},
    "reply_to": {
        "description": "The request's reply subject (a NATS inbox, _INBOX.<id>), where the "
        "owner answers."
    },
}


def render() -> dict[str, Any]:
    """The AsyncAPI 3 document as a JSON-able dict.

    FastStream does not declare the ``{tenant_id}``/``{call_id}``/``{reply_to}`` address
    parameters; AsyncAPI 3 requires them wherever an address uses them.
    """
    document: dict[str, Any] = build_app().schema.to_specification().to_jsonable()
    for channel in document.get("channels", {}).values():
        used = {
            name: dict(spec)
            for name, spec in PARAMETERS.items()
            if f"{{{name}}}" in channel["address"]
        }
        if used:
            channel["parameters"] = used
    return document


def render_yaml() -> str:
    """The AsyncAPI 3 document as YAML text, keys in a stable order."""
    return str(yaml.safe_dump(render(), sort_keys=True, allow_unicode=True, width=100))


def write(path: Path = DEFAULT_PATH) -> Path:
    """Write the document to ``path`` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_yaml(), encoding="utf-8")
    return path
