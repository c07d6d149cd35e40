"""Trace context in NATS headers, and a provider that never writes to the console."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from voicebus.runtime.settings import ServiceSettings
from voicebus.runtime.telemetry import (
    create_tracer_provider,
    export_spans,
    extract_trace_context,
    inject_trace_context,
    otlp_traces_url,
)

pytestmark = pytest.mark.unit


def test_round_trip_through_headers() -> None:
    tracer = TracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    ctx = baggage.set_baggage("tenant", "acme")
    with tracer.start_as_current_span("publish", context=ctx) as span:
        token = context.attach(baggage.set_baggage("tenant", "acme"))
        try:
            headers = inject_trace_context({"Nats-Msg-Id": "e1"})
        finally:
            context.detach(token)
        sent = span.get_span_context()
    assert headers["Nats-Msg-Id"] == "e1"
    assert headers["traceparent"].startswith("00-")
    received = extract_trace_context(headers)
    parent = trace.get_current_span(received).get_span_context()
    assert (parent.trace_id, parent.span_id) == (sent.trace_id, sent.span_id)
    assert baggage.get_baggage("tenant", received) == "acme"


def test_missing_headers_give_a_new_trace() -> None:
    assert not trace.get_current_span(extract_trace_context(None)).get_span_context().is_valid


def test_provider_resource(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    provider = create_tracer_provider(settings_cls(instance_id="demo-1"))
    attrs = provider.resource.attributes
    assert attrs["service.name"] == "voicebus-demo"
    assert attrs["service.instance.id"] == "demo-1"


def test_without_endpoint_root_spans_are_not_recorded(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    tracer = create_tracer_provider(settings_cls()).get_tracer("t")
    with tracer.start_as_current_span("root") as span:
        assert not span.is_recording()


def test_otlp_url() -> None:
    assert otlp_traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert otlp_traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert otlp_traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"


def test_exporter_only_with_an_endpoint(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    plain = settings_cls()
    assert export_spans(create_tracer_provider(plain), plain) is False
    traced = settings_cls(otel_exporter_otlp_endpoint="http://127.0.0.1:1")
    provider = create_tracer_provider(traced)
    try:
        assert export_spans(provider, traced) is True
        # Never ended, so nothing is sent to the unreachable collector.
        span = provider.get_tracer("t").start_span("root")
        assert span.is_recording()
    finally:
        provider.shutdown()
