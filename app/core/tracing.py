"""OpenTelemetry tracing, set up once per worker process after fork; off unless configured."""

import logging

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from app.core.config import Settings

logger = logging.getLogger(__name__)


def setup_tracing(settings: Settings) -> TracerProvider | None:
    """Installs an OTLP-exporting tracer provider when an endpoint is set; else tracing is off."""
    if settings.otel_exporter_otlp_endpoint is None:
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otel_service_name}))
    # The exporter reads the standard OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout).
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    logger.info("tracing: exporting spans to %s", settings.otel_exporter_otlp_endpoint)
    return provider
