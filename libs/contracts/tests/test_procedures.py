"""Every ``vb.rpc`` subject the contracts declare is in the procedure list, once."""

from __future__ import annotations

import pytest

from voicebus.contracts import (
    campaigns,
    chains,
    erasure,
    keys,
    knowledge,
    replay,
    retention,
    rpc,
    telephony,
)
from voicebus.contracts.agents import api as agents
from voicebus.contracts.procedures import PROCEDURES

pytestmark = pytest.mark.unit


def test_every_rpc_subject_is_a_procedure_once() -> None:
    declared = {
        value
        for module in (
            rpc,
            campaigns,
            telephony,
            agents,
            keys,
            chains,
            erasure,
            retention,
            replay,
            knowledge,
        )
        for value in vars(module).values()
        if isinstance(value, str) and value.startswith("vb.rpc.")
    }
    listed = [p.subject for p in PROCEDURES]
    assert len(listed) == len(set(listed))
    assert set(listed) == declared


def test_a_procedures_name_is_its_subject_without_the_prefix() -> None:
    names = {p.name for p in PROCEDURES}
    assert {"edge.accounts.get", "gateway.sessions.create", "audit.calls.get"} <= names
