"""Trace context in NATS headers, and a provider that never writes to the console."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

from voicebus.runtime.settings import ServiceSettings
from voicebus.runtime.telemetry import (
    child_spans,
    consumed,
    create_tracer_provider,
    export_spans,
    extract_trace_context,
    inject_trace_context,
    otlp_traces_url,
    sampled,
    within,
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


def _recorded() -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("t"), exporter


def _headers_of(span: trace.Span) -> dict[str, str]:
    return inject_trace_context({}, trace.set_span_in_context(span))


def test_sampled_reads_the_flags() -> None:
    tracer, _ = _recorded()
    with tracer.start_as_current_span("p") as span:
        headers = _headers_of(span)
    assert sampled(headers)
    assert not sampled({"traceparent": headers["traceparent"][:-2] + "00"})
    assert not sampled({"traceparent": "garbage"})
    assert not sampled({"traceparent": headers["traceparent"][:-2] + "zz"})
    assert not sampled({})
    assert not sampled(None)


def test_child_spans_one_per_traced_message() -> None:
    tracer, exporter = _recorded()
    with tracer.start_as_current_span("a") as a, tracer.start_as_current_span("b") as b:
        carriers = [_headers_of(a), None, {"x": "1"}, _headers_of(b)]
    exporter.clear()
    with child_spans(tracer, "store", carriers, {"batch": 4}) as spans:
        assert len(spans) == 2
    done: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    assert [s.name for s in done] == ["store", "store"]
    parents = [s.parent.span_id for s in done if s.parent is not None]
    assert parents == [a.get_span_context().span_id, b.get_span_context().span_id]
    assert all(s.attributes is not None and s.attributes["batch"] == 4 for s in done)


def test_child_spans_record_a_failure() -> None:
    tracer, exporter = _recorded()
    with tracer.start_as_current_span("a") as a:
        carriers = [_headers_of(a)]
    exporter.clear()
    with pytest.raises(ValueError, match="db"), child_spans(tracer, "store", carriers):
        raise ValueError("db")
    (done,) = exporter.get_finished_spans()
    assert done.status.status_code is trace.StatusCode.ERROR


def test_consumed_continues_the_publishers_trace_only_when_sampled() -> None:
    tracer, exporter = _recorded()
    with tracer.start_as_current_span("publish") as publish:
        headers = _headers_of(publish)
    with consumed(tracer, "event", headers):
        inner = trace.get_current_span().get_span_context()
    assert inner.trace_id == publish.get_span_context().trace_id
    assert inner.span_id != publish.get_span_context().span_id
    exporter.clear()
    with consumed(tracer, "event", {"content-type": "application/json"}):
        assert not trace.get_current_span().get_span_context().is_valid
    assert exporter.get_finished_spans() == ()


def test_within_makes_a_context_current_for_the_block() -> None:
    tracer, _ = _recorded()
    with tracer.start_as_current_span("turn") as turn:
        carried = context.get_current()
    assert not trace.get_current_span().get_span_context().is_valid
    with within(carried):
        assert trace.get_current_span() is turn
    assert not trace.get_current_span().get_span_context().is_valid
    with within(None):
        assert not trace.get_current_span().get_span_context().is_valid


def test_standard_otel_endpoint_name_is_read(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert settings_cls().otel_exporter_otlp_endpoint == "http://collector:4318"
    clean_env.setenv("VB_OTEL_EXPORTER_OTLP_ENDPOINT", "http://other:4318")
    assert settings_cls().otel_exporter_otlp_endpoint == "http://other:4318"
