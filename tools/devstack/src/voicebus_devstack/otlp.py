"""An OpenTelemetry collector at the wire, for tests: it takes OTLP/HTTP trace exports (protobuf)
as a real collector does and keeps the spans, with the service that sent each."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from voicebus_devstack.asgi import LocalFake

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"


def attribute(attributes: list[KeyValue], key: str) -> str | None:
    """The string value of attribute `key`, if there is one."""
    return next((a.value.string_value for a in attributes if a.key == key), None)


@dataclass(frozen=True)
class ExportedSpan:
    service: str
    """The exporting process's `service.name`."""
    span: Span

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    def attribute(self, key: str) -> str | None:
        return attribute(list(self.span.attributes), key)


class FakeCollector(LocalFake):
    """Serves OTLP/HTTP at `base_url` (set OTEL_EXPORTER_OTLP_ENDPOINT to it); `spans` holds
    every span received, in the order received."""

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        self.paths: list[str] = []
        """The path of each export request."""

    def _app(self) -> Starlette:
        return Starlette(routes=[Route(TRACES_PATH, self._export, methods=["POST"])])

    async def _export(self, request: Request) -> Response:
        self.paths.append(request.url.path)
        if request.headers.get("content-type") != PROTOBUF:
            return Response(f"expected {PROTOBUF}", status_code=415)
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in export.resource_spans:
            service = attribute(list(resource_spans.resource.attributes), "service.name")
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(
                    ExportedSpan(service=service or "", span=span) for span in scope_spans.spans
                )
        body = ExportTraceServiceResponse().SerializeToString()
        return Response(body, media_type=PROTOBUF)
