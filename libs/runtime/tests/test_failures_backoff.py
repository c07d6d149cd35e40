"""Which failures are outages and which are the message's fault; how long to wait."""

from __future__ import annotations

import itertools
import json

import asyncpg
import nats.errors
import pytest
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError

from voicebus.contracts.deadletters import DeadLetterReason
from voicebus.contracts.events import CallEnded, parse_event
from voicebus.runtime import backoff
from voicebus.runtime.deadletters import Origin, origin_of
from voicebus.runtime.failures import Failure, classify, dead_letter_reason, describe

pytestmark = pytest.mark.unit


def _validation_error() -> ValidationError:
    try:
        parse_event(b'{"type": "call.ended.v1", "tenant_id": "acme", "call_id": "c1"}')
    except ValidationError as err:
        return err
    raise AssertionError("expected a validation error")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectionRefusedError(), Failure.TRANSIENT),
        (TimeoutError(), Failure.TRANSIENT),
        (nats.errors.NoServersError(), Failure.TRANSIENT),
        (OperationalError("SELECT 1", {}, ConnectionRefusedError()), Failure.TRANSIENT),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), Failure.TRANSIENT),
        (asyncpg.exceptions.AdminShutdownError("terminating"), Failure.TRANSIENT),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), Failure.TRANSIENT),
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed"), Failure.TRANSIENT),
        (asyncpg.exceptions.UntranslatableCharacterError("\\u0000"), Failure.DATA),
        (asyncpg.exceptions.StringDataRightTruncationError("too long"), Failure.DATA),
        (asyncpg.exceptions.UniqueViolationError("dup"), Failure.DATA),
        (json.JSONDecodeError("x", "doc", 0), Failure.DATA),
        (ZeroDivisionError(), Failure.UNKNOWN),
        (KeyError("x"), Failure.UNKNOWN),
    ],
)
def test_failures_are_told_apart(exc: BaseException, kind: Failure) -> None:
    assert classify(exc) is kind


def test_sqlalchemy_wrapped_driver_errors_keep_their_sqlstate() -> None:
    class AdaptedError(Exception):
        sqlstate = "22P05"

    wrapped = IntegrityError("INSERT", {}, AdaptedError())
    assert classify(wrapped) is Failure.DATA
    assert "22P05" in describe(wrapped)


def test_reasons_and_details_name_fields_never_values() -> None:
    err = _validation_error()
    assert classify(err) is Failure.DATA
    assert dead_letter_reason(err) is DeadLetterReason.INVALID_MESSAGE
    detail = describe(err)
    assert "data" in detail
    assert "acme" not in detail
    refused = asyncpg.exceptions.UntranslatableCharacterError("\\u0000 in 'secret'")
    assert dead_letter_reason(refused) is DeadLetterReason.STORAGE_REJECTED
    assert "secret" not in describe(refused)
    assert dead_letter_reason(ZeroDivisionError()) is DeadLetterReason.HANDLER_FAILED
    assert CallEnded.event_name == "call.ended"


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    low = [backoff.delay_s(n, rand=lambda: 0.0) for n in range(1, 10)]
    high = [backoff.delay_s(n, rand=lambda: 0.999999) for n in range(1, 10)]
    assert low[:4] == [0.25, 0.5, 1.0, 2.0]
    assert all(h <= backoff.CAP_S for h in high)
    assert high[-1] == pytest.approx(backoff.CAP_S, rel=1e-5)
    assert all(b >= a for a, b in itertools.pairwise(low))
    assert backoff.delay_s(10_000) <= backoff.CAP_S


def test_ack_subjects_name_their_origin() -> None:
    assert origin_of("$JS.ACK.VB_EVENTS.audit-call-events.3.1042.17.1700000000000000000.5") == (
        Origin("VB_EVENTS", "audit-call-events", 3, 1042)
    )
    with_domain = "$JS.ACK.hub.ACCHASH.VB_EVENTS.audit.1.7.7.1700000000000000000.0.token"
    assert origin_of(with_domain) == Origin("VB_EVENTS", "audit", 1, 7)
    assert origin_of("_INBOX.abc") is None
    assert origin_of(None) is None
