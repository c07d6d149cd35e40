"""Commands: subjects, the control union and validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voicebus.contracts.commands import (
    Clear,
    HangUp,
    OriginateCall,
    OriginateCallData,
    Say,
    SayData,
    SendDtmf,
    SendDtmfData,
    Transfer,
    TransferData,
    parse_control,
)

pytestmark = pytest.mark.unit

ENV = {"tenant_id": "acme", "call_id": "c1", "source": "orchestrator/o1"}


def test_control_commands_address_the_call() -> None:
    cmds = [
        Say(**ENV, data=SayData(utterance_id="a1", seq=0, text="Hello.")),
        Clear(**ENV),
        HangUp(**ENV),
        Transfer(**ENV, data=TransferData(to_number="+14155550123")),
        SendDtmf(**ENV, data=SendDtmfData(digits="1w2")),
    ]
    assert [c.subject for c in cmds] == [
        "vb.ctl.c1.say", "vb.ctl.c1.clear", "vb.ctl.c1.hangup", "vb.ctl.c1.transfer",
        "vb.ctl.c1.dtmf",
    ]  # fmt: skip
    for cmd in cmds:
        assert parse_control(cmd.to_bytes()) == cmd


def test_originate_goes_to_the_work_queue() -> None:
    cmd = OriginateCall(**ENV, data=OriginateCallData(agent_id="demo", to_number="+14155550199"))
    assert cmd.subject == "vb.cmd.call.originate"
    assert cmd.data.ring_timeout_s == 30


def test_bad_numbers_and_digits_name_the_field() -> None:
    with pytest.raises(ValidationError, match="to_number"):
        OriginateCallData(agent_id="demo", to_number="555-0199")
    with pytest.raises(ValidationError, match="digits"):
        SendDtmfData(digits="12x")
