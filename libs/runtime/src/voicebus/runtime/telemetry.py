"""OpenTelemetry tracing: one provider per process, trace context carried in NATS headers.

FastStream's telemetry middleware propagates context on every message it
publishes and consumes. Raw nats-py publishes (audio frames, control
commands) use :func:`inject_trace_context` and :func:`extract_trace_context`,
which write the same W3C ``traceparent``/``tracestate``/``baggage`` headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from voicebus.runtime.settings import ServiceSettings

__all__ = [
    "TRACEPARENT",
    "child_spans",
    "consumed",
    "create_tracer_provider",
    "export_spans",
    "extract_trace_context",
    "inject_trace_context",
    "otlp_traces_url",
    "sampled",
    "within",
]

TRACEPARENT = "traceparent"
"""The W3C header naming the publisher's span (``00-<trace>-<span>-<flags>``)."""

# The propagators FastStream's middleware uses, so raw and FastStream messages agree.
_TRACE = TraceContextTextMapPropagator()
_BAGGAGE = W3CBaggagePropagator()


def create_tracer_provider(settings: ServiceSettings) -> TracerProvider:
    """A provider whose resource names this service and instance; nothing exported yet.

    Without ``VB_OTEL_EXPORTER_OTLP_ENDPOINT`` the root sampler is off: no span
    is recorded unless an upstream service sampled the trace, so an untraced
    deployment pays almost nothing per message while context still flows.
    Call :func:`export_spans` at start-up to attach the exporter.
    """
    resource = Resource.create(
        {
            "service.name": f"voicebus-{type(settings).service_name}",
            "service.namespace": "voicebus",
            "service.instance.id": settings.instance_id,
            "deployment.environment.name": settings.environment.value,
        }
    )
    root = ALWAYS_ON if settings.otel_exporter_otlp_endpoint else ALWAYS_OFF
    return TracerProvider(resource=resource, sampler=ParentBased(root), shutdown_on_exit=False)


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a base endpoint, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` means it."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


def export_spans(provider: TracerProvider, settings: ServiceSettings) -> bool:
    """Attach an OTLP/HTTP exporter when an endpoint is configured, and install the provider.

    The provider becomes the global one (for ``trace.get_tracer``) unless a
    provider was installed already in this process. No console exporter is
    ever attached.

    Returns:
        Whether spans will be exported.
    """
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    if not settings.otel_exporter_otlp_endpoint:
        return False
    # Imported here: the exporter pulls in requests and protobuf, needed only when exporting.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=otlp_traces_url(settings.otel_exporter_otlp_endpoint))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return True


def inject_trace_context(
    headers: dict[str, str] | None = None, context: Context | None = None
) -> dict[str, str]:
    """Write the current (or given) trace context into NATS headers.

    Args:
        headers: headers to add to; a new dict when None.
        context: the context to carry; the current one when None.

    Returns:
        The headers, with ``traceparent`` (and ``tracestate``/``baggage`` when present).
    """
    carrier = {} if headers is None else headers
    _TRACE.inject(carrier, context=context)
    _BAGGAGE.inject(carrier, context=context)
    return carrier


def extract_trace_context(headers: Mapping[str, str] | None) -> Context:
    """Read the trace context a publisher put into NATS headers.

    Use the result as ``tracer.start_as_current_span(..., context=ctx)``.
    Missing or malformed headers give an empty context (a new trace).
    """
    carrier = dict(headers or {})
    return _BAGGAGE.extract(carrier, context=_TRACE.extract(carrier))


def sampled(headers: Mapping[str, str] | None) -> bool:
    """Whether the headers carry a trace context whose publisher records the trace.

    Reads the ``traceparent`` flags without building a context, so a consumer of
    untraced traffic pays one dictionary lookup.
    """
    value = headers.get(TRACEPARENT) if headers else None
    if not value or len(value) < 55:
        return False
    try:
        return bool(int(value[-2:], 16) & 1)
    except ValueError:
        return False


@contextmanager
def child_spans(
    tracer: trace.Tracer,
    name: str,
    carriers: Iterable[Mapping[str, str] | None],
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[list[trace.Span]]:
    """One span per sampled message of a batch, each a child of its publisher's span.

    A batch (one database transaction for many events) belongs to as many traces
    as it has messages; each traced message gets its own span over the shared
    work. Unsampled messages get none. An exception leaving the block is recorded
    on every span.

    Args:
        tracer: the service's tracer.
        name: the spans' name.
        carriers: each message's headers.
        attributes: set on every span.

    Yields:
        The spans started (empty when no message is traced).
    """
    spans = [
        tracer.start_span(
            name,
            context=extract_trace_context(headers),
            kind=trace.SpanKind.CONSUMER,
            attributes=dict(attributes or {}),
        )
        for headers in carriers
        if sampled(headers)
    ]
    try:
        yield spans
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
        raise
    finally:
        for span in spans:
            span.end()


@contextmanager
def within(context: Context | None) -> Iterator[None]:
    """Make ``context`` current for the block (nothing changes when it is None).

    Work handed from one task to another (a queue, a pipeline frame) takes its
    trace context along this way, so what the receiving task publishes belongs
    to the trace that asked for it.
    """
    if context is None:
        yield
        return
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def consumed(
    tracer: trace.Tracer,
    name: str,
    headers: Mapping[str, str] | None,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[None]:
    """Handle a message received with raw nats-py inside a span of its publisher's trace.

    FastStream's middleware does this for its subscribers. An untraced message
    costs one header lookup and gets no span.
    """
    if not sampled(headers):
        yield
        return
    with tracer.start_as_current_span(
        name,
        context=extract_trace_context(headers),
        kind=trace.SpanKind.CONSUMER,
        attributes=dict(attributes or {}),
    ):
        yield
