"""FastStream's Prometheus middleware, labelled with subject patterns instead of subjects.

FastStream labels its ``faststream_*`` series with the concrete subject a message
came from or went to. On voicebus most subjects carry a call id (``vb.ctl.<call>.say``,
``vb.evt.<tenant>.<call>.call.ended``) or a reply inbox, so every call would add series
to every process and to Prometheus for good. Here each subject is reduced by
:func:`voicebus.contracts.subjects.subject_pattern` before it becomes a label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from faststream.nats.prometheus import NatsPrometheusMiddleware
from faststream.nats.prometheus.provider import (
    BatchNatsMetricsSettingsProvider,
    NatsMetricsSettingsProvider,
)
from faststream.prometheus import ConsumeAttrs
from nats.aio.msg import Msg

from voicebus.contracts.subjects import subject_pattern

if TYPE_CHECKING:
    from faststream.message.message import StreamMessage
    from faststream.response import PublishCommand
    from prometheus_client import CollectorRegistry

__all__ = ["PatternPrometheusMiddleware"]


class _PatternProvider(NatsMetricsSettingsProvider):
    __slots__ = ()

    def get_consume_attrs_from_message(self, msg: StreamMessage[Msg]) -> ConsumeAttrs:
        attrs = super().get_consume_attrs_from_message(msg)
        attrs["destination_name"] = subject_pattern(attrs["destination_name"])
        return attrs

    def get_publish_destination_name_from_cmd(self, cmd: PublishCommand) -> str:
        return subject_pattern(cmd.destination)


class _BatchPatternProvider(BatchNatsMetricsSettingsProvider):
    __slots__ = ()

    def get_consume_attrs_from_message(self, msg: StreamMessage[list[Msg]]) -> ConsumeAttrs:
        attrs = super().get_consume_attrs_from_message(msg)
        attrs["destination_name"] = subject_pattern(attrs["destination_name"])
        return attrs

    def get_publish_destination_name_from_cmd(self, cmd: PublishCommand) -> str:
        return subject_pattern(cmd.destination)


def _provider(msg: object) -> _PatternProvider | _BatchPatternProvider | None:
    # ``object``: FastStream also passes KeyValue and object-store watch entries.
    if isinstance(msg, Sequence):
        return _BatchPatternProvider()
    if isinstance(msg, Msg) or msg is None:
        return _PatternProvider()
    return None  # KeyValue and object-store watches: not counted, as in FastStream


class PatternPrometheusMiddleware(NatsPrometheusMiddleware):
    """``NatsPrometheusMiddleware`` whose ``handler``/``destination`` labels are patterns."""

    def __init__(self, *, registry: CollectorRegistry, app_name: str) -> None:
        super().__init__(registry=registry, app_name=app_name)
        self._settings_provider_factory = _provider  # type: ignore[assignment]
