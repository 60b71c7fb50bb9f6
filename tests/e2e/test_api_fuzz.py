"""The REST API fuzzed from its own OpenAPI schemas (schemathesis), in the running product: any
request, valid or not, is answered as the schema says, never with a server error.

The gateway serves the public API: its own routes (calls, campaigns, Twilio's webhooks), and the
routes it forwards to the service that owns them (call records to analytics, agents and
knowledge bases to the agent service). Its schema does not describe what it forwards, so those
are fuzzed from their owner's schema (read at the owner's port) and sent through the gateway, as
an integrator sends them; what the gateway does not forward is fuzzed at the owner's port.

On a stack of its own (what the fuzzer creates, such as agents claiming any phone number, must
not reach other tests' calls), for each database. Each operation is a subtest: schemathesis'
`from_fixture` loader, which a schema served by a fixture's stack needs, fails under pytest 9
(it sets `Node._nodeid`, which pytest 9 no longer has), so operations are fuzzed with their
documented `as_strategy` under Hypothesis' `@given`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from voicebus_devstack.harness import RunningStack

from .conftest import running_stack, stopped

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

FUZZ = settings(max_examples=30)
"""Requests per operation, valid and invalid ones alike."""
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]
"""Not `status_code_conformance`: the services answer 404, 409, 503 and FastAPI's 400 (a body
that is not JSON) without declaring them in their schemas."""
REQUEST_TIMEOUT_S = 30.0

Route = tuple[str, str]
"""(METHOD, path template): how the schemas name an operation."""
NOT_FUZZED: dict[Route, str] = {
    ("POST", "/api/calls"): "places a phone call through Twilio: a real one, with credentials",
    ("POST", "/api/campaigns"): "dials each number of the campaign through Twilio",
    ("GET", "/api/events"): "an event stream, which never ends",
    ("GET", "/api/calls/{call_id}/events"): "an event stream, which never ends",
    ("GET", "/healthz"): "takes no input, and answers 503 by design while a service is missing",
}
PARTS = ("gateway", "analytics", "agent", "analytics-internal")
"""The gateway's own routes, each service's routes through the gateway, and analytics' routes
the gateway does not forward (the agent service has none it does not)."""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    new_postgres_database: Callable[[], contextlib.AbstractContextManager[str]],
) -> Iterator[RunningStack]:
    with contextlib.ExitStack() as cleanup:
        env: dict[str, str] = {}
        if request.param == "postgresql":
            env["VOICEBUS_DATABASE_URL"] = cleanup.enter_context(new_postgres_database())
        stack = running_stack(tmp_path_factory.mktemp(f"fuzzed-{request.param}"), env)
        yield stack
        stopped(stack)


@dataclass(frozen=True)
class Api:
    """Routes of one service's OpenAPI schema, and where they are sent."""

    schema: dict[str, Any]
    routes: frozenset[Route]
    url: str
    through_gateway: bool
    """Sent to the gateway, which forwards them to the service."""

    def operations(self) -> Iterator[APIOperation[Any, Any, Any, Any]]:
        loaded = schemathesis.openapi.from_dict(self.schema)
        loaded.config.update(base_url=self.url)
        for method, path in sorted(self.routes):
            yield loaded[path][method]


def routes_of(schema: dict[str, Any]) -> frozenset[Route]:
    return frozenset(
        (method.upper(), path) for path, item in schema["paths"].items() for method in item
    )


def service_urls(stack: RunningStack) -> dict[str, str]:
    """Each service's own address: the ports the stack was started with."""
    env = psutil.Process(stack.process.pid).environ()
    return {
        "gateway": stack.base_url,
        "analytics": f"http://127.0.0.1:{env['VOICEBUS_ANALYTICS_PORT']}",
        "agent": f"http://127.0.0.1:{env['VOICEBUS_AGENTS_PORT']}",
    }


def apis_of(stack: RunningStack) -> dict[str, Api]:
    """The API in `PARTS`: the gateway's own routes; each service's routes the gateway forwards
    (sent through it), and the rest (sent to the service)."""
    urls = service_urls(stack)
    schemas = {name: httpx.get(f"{url}/openapi.json").json() for name, url in urls.items()}
    at_gateway = routes_of(schemas["gateway"]) - NOT_FUZZED.keys()
    forwarded = {name: routes_of(schemas[name]) & at_gateway for name in ("analytics", "agent")}
    apis = {
        "gateway": Api(
            schemas["gateway"],
            at_gateway.difference(*forwarded.values()),
            urls["gateway"],
            through_gateway=False,
        )
    }
    for name, routes in forwarded.items():
        apis[name] = Api(schemas[name], routes, urls["gateway"], through_gateway=True)
        internal = routes_of(schemas[name]) - routes - NOT_FUZZED.keys()
        apis[f"{name}-internal"] = Api(schemas[name], internal, urls[name], through_gateway=False)
    return apis


def answers_as_documented(
    operation: APIOperation[Any, Any, Any, Any], *, through_gateway: bool
) -> None:
    """Valid and invalid requests of `operation`, each answered as its schema says."""

    @FUZZ
    @given(st.one_of([operation.as_strategy(mode) for mode in GenerationMode]))
    def any_request(case: Case[Any]) -> None:
        case.call_and_validate(checks=CHECKS, timeout=REQUEST_TIMEOUT_S)

    any_request()


@pytest.mark.parametrize("part", PARTS)
def test_any_request_is_answered_as_the_schema_says_never_with_a_server_error(
    fuzzed_stack: RunningStack, part: str, subtests: pytest.Subtests
) -> None:
    api = apis_of(fuzzed_stack)[part]
    assert api.routes, f"{part}: no routes"
    for operation in api.operations():
        with subtests.test(operation.label):
            answers_as_documented(operation, through_gateway=api.through_gateway)


# --- what the fuzzer leaves out, and what it found, request by request ------------------------


def test_a_call_without_twilio_credentials_is_refused_saying_which(
    fuzzed_stack: RunningStack,
) -> None:
    if os.environ.get("TWILIO_ACCOUNT_SID"):
        pytest.skip("Twilio credentials are set: this would place a real call")
    placed = httpx.post(
        f"{fuzzed_stack.base_url}/api/calls", json={"to": "+14155550100", "from": "+14155550101"}
    )
    assert placed.status_code == 503, placed.text
    assert "TWILIO_ACCOUNT_SID" in placed.json()["detail"]


NUL_IN_TEXT = [
    ("gateway", "/api/calls?q=%00"),
    ("gateway", "/api/calls?agent_id=%00"),
    ("gateway", "/api/analytics/summary?q=%00"),
    ("gateway", "/api/calls.csv?agent_id=%00"),
    ("analytics", "/api/calls/%00"),
    ("agent", "/api/agents/%00"),
]
"""Text with a NUL character, which PostgreSQL cannot store nor compare."""


@pytest.mark.parametrize(("service", "path"), NUL_IN_TEXT)
def test_a_nul_character_in_text_is_refused(
    fuzzed_stack: RunningStack, service: str, path: str
) -> None:
    answer = httpx.get(service_urls(fuzzed_stack)[service] + path)
    assert answer.status_code == 422, answer.text


def test_a_forwarded_path_with_a_control_character_is_refused(
    fuzzed_stack: RunningStack,
) -> None:
    answer = httpx.get(f"{fuzzed_stack.base_url}/api/knowledge-bases/%12/documents")
    assert answer.status_code == 422, answer.text


def test_an_unreadable_document_is_refused_as_documented(fuzzed_stack: RunningStack) -> None:
    refused = httpx.post(
        f"{fuzzed_stack.base_url}/api/knowledge-bases/fuzz/documents",
        files={"file": ("notes.bin", b"\x00\x01", "application/octet-stream")},
    )
    assert refused.status_code == 415, refused.text
    refused.request.read()  # schemathesis reads the request back; a multipart one is a stream
    schema = schemathesis.openapi.from_dict(apis_of(fuzzed_stack)["agent"].schema)
    schema["/api/knowledge-bases/{kb_id}/documents"]["POST"].validate_response(refused)
