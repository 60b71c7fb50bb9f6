"""An agent's HTTP tools against a local endpoint: arguments in, secrets in headers, answers and
failures back to the model as text."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voicebus_agent.http_tools import HttpTools
from voicebus_agent.knowledge.tool import SEARCH
from voicebus_agent.ports import ToolCall
from voicebus_agent.tools import DEFINITIONS, CallTools, RecordedToolbox, Toolboxes
from voicebus_contracts import SendDtmf, ToolCalled, ToolReturned, WorkflowProgressed
from voicebus_contracts.agents import BUILT_IN_TOOLS, AgentSpec, HttpTool
from voicebus_devstack.asgi import serve_asgi
from voicebus_devstack.commands import SentCommands

CALL = "CA-tools"
REPLY = f"{CALL}:t1:reply"


class Endpoint:
    """A local HTTP endpoint that notes each request and answers as told."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.delay_s = 0.0

    async def handle(self, request: Request) -> Response:
        self.requests.append(
            {
                "method": request.method,
                "query": dict(request.query_params),
                "body": (await request.body()).decode(),
                "authorization": request.headers.get("authorization"),
            }
        )
        await asyncio.sleep(self.delay_s)
        return JSONResponse({"status": "shipped", "eta": "tomorrow"}, status_code=self.status)


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[Endpoint, str]]:
    served = Endpoint()
    app = Starlette(routes=[Route("/orders", served.handle, methods=["GET", "POST"])])
    async with serve_asgi(app) as base_url:
        yield served, f"{base_url}/orders"


def order_tool(url: str, **fields: Any) -> HttpTool:
    return HttpTool.model_validate(
        {
            "name": "check_order",
            "description": "Look an order up by its number.",
            "url": url,
            "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
            "headers": {"Authorization": "Bearer {{secret:SHOP_TOKEN}}"},
            **fields,
        }
    )


async def run(tool: HttpTool, arguments: str, secrets: dict[str, str] | None = None) -> str:
    async with httpx.AsyncClient() as client:
        known = {"VOICEBUS_SECRET_SHOP_TOKEN": "s3cret"} if secrets is None else secrets
        tools = HttpTools([tool], client=client, secrets=known)
        return await tools.run(
            ToolCall(id="c1", name=tool.name, arguments=arguments), call_id=CALL, reply_id=REPLY
        )


async def test_a_get_tool_sends_its_arguments_as_the_query_with_its_secret(
    endpoint: tuple[Endpoint, str],
) -> None:
    served, url = endpoint
    answer = await run(order_tool(url, method="GET"), '{"order": "42"}')

    assert json.loads(answer) == {"status": "shipped", "eta": "tomorrow"}
    [request] = served.requests
    assert (request["method"], request["query"]) == ("GET", {"order": "42"})
    assert request["authorization"] == "Bearer s3cret"


async def test_a_post_tool_sends_its_arguments_as_json(endpoint: tuple[Endpoint, str]) -> None:
    served, url = endpoint
    await run(order_tool(url), '{"order": "42"}')

    [request] = served.requests
    assert request["method"] == "POST"
    assert json.loads(request["body"]) == {"order": "42"}


async def test_an_error_answer_reaches_the_model_as_an_error(
    endpoint: tuple[Endpoint, str],
) -> None:
    served, url = endpoint
    served.status = 503
    answer = json.loads(await run(order_tool(url), '{"order": "42"}'))
    assert "check_order answered HTTP 503" in answer["error"]


async def test_a_slow_tool_times_out(endpoint: tuple[Endpoint, str]) -> None:
    served, url = endpoint
    served.delay_s = 1.0
    answer = json.loads(await run(order_tool(url, timeout_s=0.1), '{"order": "42"}'))
    assert answer == {"error": "check_order did not answer within 0.1 s"}


@pytest.mark.parametrize(
    ("arguments", "secrets", "error"),
    [
        ('{"order": "42"}', {}, "VOICEBUS_SECRET_SHOP_TOKEN is not set"),
        ("[1, 2]", None, "the arguments must be a JSON object"),
        ("{not json", None, "check_order not called"),
    ],
)
async def test_a_tool_that_cannot_be_called_says_why_and_calls_nothing(
    endpoint: tuple[Endpoint, str], arguments: str, secrets: dict[str, str] | None, error: str
) -> None:
    served, url = endpoint
    answer = json.loads(await run(order_tool(url), arguments, secrets))
    assert error in answer["error"]
    assert served.requests == []


async def test_toolboxes_offer_every_tool_and_run_each_by_its_own_toolbox(
    endpoint: tuple[Endpoint, str],
) -> None:
    served, url = endpoint
    control = SentCommands()
    async with httpx.AsyncClient() as client:
        http = HttpTools(
            [order_tool(url)], client=client, secrets={"VOICEBUS_SECRET_SHOP_TOKEN": "x"}
        )
        tools = Toolboxes(CallTools(control), http)
        names = [d["function"]["name"] for d in tools.definitions()]
        await tools.run(
            ToolCall(id="1", name="check_order", arguments="{}"), call_id=CALL, reply_id=REPLY
        )
        await tools.run(
            ToolCall(id="2", name="send_dtmf", arguments='{"digits": "1"}'),
            call_id=CALL,
            reply_id=REPLY,
        )
        unknown = await tools.run(
            ToolCall(id="3", name="fly", arguments="{}"), call_id=CALL, reply_id=REPLY
        )

    assert names == ["end_call", "transfer_call", "send_dtmf", "check_order"]
    assert len(served.requests) == 1
    assert control.sent == [(CALL, SendDtmf(digits="1"))]
    assert "no tool named 'fly'" in json.loads(unknown)["error"]


def test_the_built_in_tools_are_the_ones_agents_may_not_redefine() -> None:
    assert {d["function"]["name"] for d in DEFINITIONS} | {SEARCH} == BUILT_IN_TOOLS


@pytest.mark.parametrize("names", [["check_order", "check_order"], ["send_dtmf"]])
def test_an_agents_tools_have_their_own_names(names: list[str]) -> None:
    tools = [order_tool("https://shop.example.com/orders", name=name) for name in names]
    with pytest.raises(ValidationError, match="tool names must be unique"):
        AgentSpec(agent_id="shop", name="Shop", tools=tuple(tools))


async def test_every_tool_call_and_answer_goes_on_the_record_even_when_recording_fails() -> None:
    records: list[tuple[str, ToolCalled | ToolReturned | WorkflowProgressed]] = []

    async def record(call_id: str, event: ToolCalled | ToolReturned | WorkflowProgressed) -> None:
        records.append((call_id, event))

    async def broken(call_id: str, event: ToolCalled | ToolReturned | WorkflowProgressed) -> None:
        raise ConnectionError("bus down")

    control = SentCommands()
    misuse = ToolCall(id="c9", name="send_dtmf", arguments='{"digits": ""}')
    answer = await RecordedToolbox(CallTools(control), record).run(
        misuse, call_id=CALL, reply_id=REPLY
    )
    again = await RecordedToolbox(CallTools(control), broken).run(
        misuse, call_id=CALL, reply_id=REPLY
    )

    assert answer == again
    [(_, called), (_, returned)] = records
    assert isinstance(called, ToolCalled)
    assert (called.tool_call_id, called.name) == ("c9", "send_dtmf")
    assert isinstance(returned, ToolReturned)
    assert returned.failed
    assert returned.result == answer
