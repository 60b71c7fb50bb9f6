"""What a service process tells about itself: logs, traces and metrics, set up at its start."""

from __future__ import annotations

from voicebus_runtime.logs import configure_logging
from voicebus_runtime.metrics import serve_metrics
from voicebus_runtime.settings import BusSettings
from voicebus_runtime.tracing import configure_tracing


def observe(service: str, bus: BusSettings) -> None:
    """Log as `service` at `bus.log_level` in `bus.log_format`, trace to `bus.otlp_endpoint` if
    set, and serve /metrics on `bus.metrics_port` unless it is 0.

    Call it once, first thing in a service's main: before anything logs, and before the
    service makes its broker (which traces only if tracing was configured by then).
    """
    configure_logging(
        bus.log_level, json=bus.log_format == "json", service=service, redact_pii=bus.redact_pii
    )
    configure_tracing(service, bus)
    if bus.metrics_port:
        serve_metrics(bus.metrics_port)
