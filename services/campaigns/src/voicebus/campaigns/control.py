"""Speaking to a live campaign call: the notification message, voicemail, machine hang-up."""

from __future__ import annotations

import logging

from nats.aio.client import Client

from voicebus.campaigns import policy
from voicebus.contracts.campaigns import AmdPolicy, CampaignMode, CampaignSpec
from voicebus.contracts.commands import HangUp, HangUpData, Say, SayData
from voicebus.contracts.events import AmdResult, EndReason
from voicebus.contracts.ids import new_id
from voicebus.runtime.publish import deliver_control

log = logging.getLogger(__name__)


async def speak_then_hang_up(
    nc: Client, tenant_id: str, call_id: str, text: str, source: str
) -> bool:
    """Say ``text`` with barge-in off, then hang up once it has played."""
    say = Say(
        tenant_id=tenant_id,
        call_id=call_id,
        source=source,
        data=SayData(
            utterance_id=new_id(), seq=0, text=text, final=True, allow_interruptions=False
        ),
    )
    delivered = await deliver_control(nc, say)
    data = HangUpData(reason=EndReason.AGENT_HANGUP, after_playback=True)
    hang_up = HangUp(tenant_id=tenant_id, call_id=call_id, source=source, data=data)
    await deliver_control(nc, hang_up)
    return delivered


async def on_answer(
    nc: Client, spec: CampaignSpec, tenant_id: str, call_id: str, source: str
) -> None:
    """Notification campaigns speak their message and hang up; conversations do nothing."""
    if spec.mode is CampaignMode.NOTIFICATION and spec.message and not spec.detect_machine:
        await speak_then_hang_up(nc, tenant_id, call_id, spec.message, source)


async def on_amd(
    nc: Client,
    spec: CampaignSpec,
    tenant_id: str,
    call_id: str,
    result: str,
    source: str,
    detector: str = "provider",
) -> None:
    """Apply the campaign's machine policy, or start a notification once a human answered.

    Media's detector reports a machine early and its greeting's end (the beep)
    later: a voicemail is left only then, so the message is recorded whole.
    """
    if not policy.is_machine(result):
        if spec.mode is CampaignMode.NOTIFICATION and spec.message and spec.detect_machine:
            await speak_then_hang_up(nc, tenant_id, call_id, spec.message, source)
        return
    if spec.amd is AmdPolicy.VOICEMAIL and detector == "media" and result == AmdResult.MACHINE:
        return  # media's machine_end_beep follows when the greeting ends
    if spec.amd is AmdPolicy.HANG_UP:
        data = HangUpData(reason=EndReason.MACHINE_DETECTED, after_playback=False)
        command = HangUp(tenant_id=tenant_id, call_id=call_id, source=source, data=data)
        await deliver_control(nc, command)
    elif spec.amd is AmdPolicy.VOICEMAIL:
        text = spec.voicemail_message or spec.message
        if text:
            await speak_then_hang_up(nc, tenant_id, call_id, text, source)
