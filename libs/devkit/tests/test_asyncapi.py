"""The committed AsyncAPI document is the one the contracts generate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from voicebus.contracts.catalog import CHANNELS
from voicebus.contracts.events import EVENT_CLASSES
from voicebus.contracts.procedures import PROCEDURES
from voicebus.devkit import asyncapi

pytestmark = pytest.mark.unit

COMMITTED = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"


def test_committed_document_matches_the_contracts() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == asyncapi.render_yaml(), (
        "docs/asyncapi.yaml is out of date: run `make asyncapi` and commit it"
    )


def test_document_covers_every_channel_with_its_parameters() -> None:
    document = yaml.safe_load(asyncapi.render_yaml())
    assert document["asyncapi"].startswith("3.")
    addresses = {c["address"]: c for c in document["channels"].values()}
    for channel in CHANNELS:
        assert channel.subject in addresses
        declared = set(addresses[channel.subject].get("parameters", {}))
        used = {name for name in asyncapi.PARAMETERS if f"{{{name}}}" in channel.subject}
        assert declared == used
    schemas = document["components"]["schemas"]
    for cls in EVENT_CLASSES:
        assert cls.__name__ in schemas
        assert "description" in schemas[cls.__name__]["properties"]["call_id"]


def test_a_changed_contract_shows_up_in_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    # Guards the guard: the drift test above must be able to fail.
    before = asyncapi.render_yaml()
    monkeypatch.setattr(asyncapi, "DESCRIPTION", "something else")
    assert asyncapi.render_yaml() != before


def test_every_procedure_has_its_request_and_reply_documented() -> None:
    document = yaml.safe_load(asyncapi.render_yaml())
    channels = document["channels"]
    for procedure in PROCEDURES:
        request = channels[f"rpc.{procedure.name}"]
        assert request["address"] == procedure.subject
        reply = channels[f"rpc.{procedure.name}.reply"]
        assert reply["address"] == "{reply_to}"
    secrets = document["components"]["schemas"]["StoredAccount"]["properties"]["secrets"]
    assert secrets["description"].startswith("SECRET")
