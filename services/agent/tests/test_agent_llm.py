"""The LLM responder against a local server speaking OpenAI's streaming chat completions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI
from pydantic import ValidationError

from voicebus_agent.llm import APOLOGY, FixedScript, LlmResponder, LlmSettings
from voicebus_agent.models import ModelResponders
from voicebus_agent.ports import Message, ToolCall
from voicebus_agent.sentences import SentenceCutter
from voicebus_agent.settings import AgentSettings
from voicebus_agent.tools import CallTools
from voicebus_contracts import CallCommand, HangUp, SendDtmf, TransferCall
from voicebus_contracts.agents import LanguageModel
from voicebus_devstack.commands import SentCommands
from voicebus_devstack.fake_openai import FakeOpenAI

CALL = "CA-llm"
REPLY = f"{CALL}:t1:reply"
HISTORY = [
    Message(id="greeting", role="agent", text="Hello! How can I help?"),
    Message(id="t1", role="user", text="I would like to book a table."),
]


class RecordingToolbox:
    """Answers every tool with its name and arguments, after `delay_s`; notes what ran when."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.ran: list[ToolCall] = []
        self.running = 0
        self.most_at_once = 0

    def definitions(self) -> list[dict[str, Any]]:
        schema = {"type": "object", "properties": {"day": {"type": "string"}}}
        return [
            {"type": "function", "function": {"name": name, "parameters": schema}}
            for name in ("check_availability", "check_weather")
        ]

    async def run(self, call: ToolCall, *, call_id: str, reply_id: str) -> str:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await asyncio.sleep(self.delay_s)
        self.running -= 1
        self.ran.append(call)
        return json.dumps({"tool": call.name, "arguments": json.loads(call.arguments)})


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def responder(
    fake: FakeOpenAI, toolbox: RecordingToolbox | None = None, **settings: Any
) -> LlmResponder:
    return LlmResponder(
        client=AsyncOpenAI(base_url=fake.base_url, api_key=fake.api_key, max_retries=0),
        settings=LlmSettings(model="test-model", **settings),
        script=FixedScript("Be brief.", toolbox or RecordingToolbox()),
    )


async def said(llm: LlmResponder) -> list[str]:
    return [sentence async for sentence in llm.respond(HISTORY, call_id=CALL, reply_id=REPLY)]


async def test_streamed_tokens_come_out_as_sentences(fake: FakeOpenAI) -> None:
    fake.answer("Sure, Dr. Smith can see you. For how many people? We open at 6.30 pm!")

    assert await said(responder(fake, temperature=0.2)) == [
        "Sure, Dr. Smith can see you.",
        "For how many people?",
        "We open at 6.30 pm!",
    ]
    [request] = fake.requests
    assert request["model"] == "test-model"
    assert request["temperature"] == 0.2
    assert request["stream"] is True
    assert request["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "I would like to book a table."},
    ]
    assert {t["function"]["name"] for t in request["tools"]} == {
        "check_availability",
        "check_weather",
    }


async def test_the_first_sentence_goes_out_before_the_answer_is_complete(
    fake: FakeOpenAI,
) -> None:
    fake.answer("Yes. " + "And here is a much longer second sentence. " * 5, piece_delay_s=0.01)
    llm = responder(fake)

    sentences = llm.respond(HISTORY, call_id=CALL, reply_id=REPLY)
    assert await anext(sentences) == "Yes."
    assert fake.streamed == 0  # the model is still writing the rest
    rest = [s async for s in sentences]
    assert len(rest) == 5
    assert fake.streamed == 1


async def test_parallel_tool_calls_run_together_and_their_results_go_back(
    fake: FakeOpenAI,
) -> None:
    fake.answer(
        "Let me check.",
        tool_calls=[("check_availability", {"day": "Friday"}), ("check_weather", {"day": "Fri"})],
    )
    fake.answer("Friday works, and it will be sunny.")
    toolbox = RecordingToolbox(delay_s=0.05)

    assert await said(responder(fake, toolbox)) == [
        "Let me check.",
        "Friday works, and it will be sunny.",
    ]
    assert [c.name for c in toolbox.ran] == ["check_availability", "check_weather"]
    assert toolbox.most_at_once == 2
    second = fake.requests[1]
    asked = second["messages"][-3]
    assert asked["role"] == "assistant"
    assert [c["function"]["name"] for c in asked["tool_calls"]] == [
        "check_availability",
        "check_weather",
    ]
    results = second["messages"][-2:]
    assert [r["tool_call_id"] for r in results] == [c["id"] for c in asked["tool_calls"]]
    assert json.loads(results[0]["content"]) == {
        "tool": "check_availability",
        "arguments": {"day": "Friday"},
    }


async def test_a_slow_tool_gets_a_filler_sentence(fake: FakeOpenAI) -> None:
    fake.answer(tool_calls=[("check_availability", {"day": "Friday"})])
    fake.answer("Friday works.")
    slow = RecordingToolbox(delay_s=0.3)

    assert await said(responder(fake, slow, filler="Let me look.", filler_after_s=0.05)) == [
        "Let me look.",
        "Friday works.",
    ]
    fake.answer(tool_calls=[("check_availability", {"day": "Friday"})])
    fake.answer("Friday works.")
    assert await said(responder(fake, RecordingToolbox(), filler_after_s=1.0)) == ["Friday works."]


async def test_a_model_that_keeps_calling_tools_gets_an_apology(fake: FakeOpenAI) -> None:
    for _ in range(3):
        fake.answer(tool_calls=[("check_weather", {"day": "today"})])

    assert await said(responder(fake, max_tool_rounds=2)) == [APOLOGY]
    assert len(fake.requests) == 3


async def test_a_refused_key_is_an_apology_not_a_crash(fake: FakeOpenAI) -> None:
    llm = LlmResponder(
        client=AsyncOpenAI(base_url=fake.base_url, api_key="sk-wrong", max_retries=0),
        settings=LlmSettings(model="test-model"),
        script=FixedScript("Be brief.", RecordingToolbox()),
    )
    assert await said(llm) == [APOLOGY]


@pytest.mark.parametrize(
    ("name", "arguments", "command"),
    [
        ("transfer_call", {"to": "+14155550100"}, TransferCall(to="+14155550100")),
        ("send_dtmf", {"digits": "1w2#"}, SendDtmf(digits="1w2#")),
        ("end_call", {}, HangUp(reason="the agent ended the call", after_reply=REPLY)),
        ("end_call", {"reason": "done"}, HangUp(reason="done", after_reply=REPLY)),
    ],
)
async def test_call_tools_send_their_command_to_the_call(
    name: str, arguments: dict[str, str], command: CallCommand
) -> None:
    control = SentCommands()
    result = await CallTools(control).run(
        ToolCall(id="c1", name=name, arguments=json.dumps(arguments)), call_id=CALL, reply_id=REPLY
    )
    assert json.loads(result) == {"ok": True}
    assert control.sent == [(CALL, command)]


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("transfer_call", '{"to": "4155550100"}', "transfer_call refused"),
        ("transfer_call", "{not json", "transfer_call refused"),
        ("send_dtmf", '{"digits": "12", "extra": 1}', "send_dtmf refused"),
        ("launch_rocket", "{}", "no tool named 'launch_rocket'"),
    ],
)
async def test_misused_call_tools_answer_the_model_with_the_error(
    name: str, arguments: str, error: str
) -> None:
    control = SentCommands()
    result = json.loads(
        await CallTools(control).run(
            ToolCall(id="c1", name=name, arguments=arguments), call_id=CALL, reply_id=REPLY
        )
    )
    assert error in result["error"]
    assert control.sent == []


async def test_a_call_tool_on_an_ended_call_says_so() -> None:
    result = await CallTools(SentCommands(live=False)).run(
        ToolCall(id="c1", name="send_dtmf", arguments='{"digits": "1"}'),
        call_id=CALL,
        reply_id=REPLY,
    )
    assert "the call is over" in json.loads(result)["error"]


@pytest.mark.parametrize(
    ("chunks", "sentences"),
    [
        (["Hello there. How", " are you?"], ["Hello there.", "How are you?"]),
        (["It costs 3.", "50 dollars. Okay"], ["It costs 3.50 dollars.", "Okay"]),
        (["Visit example.com today! Bye"], ["Visit example.com today!", "Bye"]),
        (['He said "stop." Then', " left."], ['He said "stop."', "Then left."]),
        (["Call Mrs. Jones, e.g. tomorrow. Fine"], ["Call Mrs. Jones, e.g. tomorrow.", "Fine"]),
        (["Wait... what?! No"], ["Wait...", "what?!", "No"]),
    ],
)
def test_sentences_are_cut_where_they_end(chunks: list[str], sentences: list[str]) -> None:
    cutter = SentenceCutter()
    out = [s for chunk in chunks for s in cutter.feed(chunk)]
    assert out + cutter.flush() == sentences


def test_an_llm_on_openai_without_a_key_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("VOICEBUS_AGENT_LLM_MODEL", "gpt-4o-mini")
    with pytest.raises(ValidationError, match="OPENAI_API_KEY"):
        AgentSettings()
    monkeypatch.setenv("VOICEBUS_AGENT_LLM_BASE_URL", "http://127.0.0.1:11434/v1")
    assert AgentSettings().llm_api_key is None  # a local endpoint needs none


async def test_the_services_key_goes_to_the_services_endpoint_only(fake: FakeOpenAI) -> None:
    settings = AgentSettings(llm_base_url="http://127.0.0.1:9/v1", llm_api_key=fake.api_key)

    async def no_record(call_id: str, event: object) -> None:
        return None

    async with httpx.AsyncClient() as http:
        models = ModelResponders(
            settings,
            call_tools=RecordingToolbox(),
            http=http,
            record=no_record,
            secrets={"VOICEBUS_SECRET_AGENTS_KEY": fake.api_key},
        )
        elsewhere = LanguageModel(model="m", base_url=fake.base_url)
        with_secret = elsewhere.model_copy(update={"api_key_secret": "AGENTS_KEY"})
        fake.answer("Hello.")
        refused = [
            s
            async for s in models(elsewhere, "Be brief.").respond(
                HISTORY, call_id=CALL, reply_id=REPLY
            )
        ]
        answered = [
            s
            async for s in models(with_secret, "Be brief.").respond(
                HISTORY, call_id=CALL, reply_id=REPLY
            )
        ]
        await models.aclose()

    assert refused == [APOLOGY]  # the endpoint got no key: 401
    assert answered == ["Hello."]


async def test_a_model_that_does_not_answer_is_retried_then_apologized_for(
    fake: FakeOpenAI,
) -> None:
    settings = AgentSettings(
        llm_base_url=fake.base_url, llm_api_key=fake.api_key, llm_timeout_s=0.2, llm_retries=1
    )

    async def no_record(call_id: str, event: object) -> None:
        return None

    async def reply(models: ModelResponders) -> list[str]:
        model = LanguageModel(model="m", base_url=fake.base_url)
        responder = models(model, "Be brief.")
        return [s async for s in responder.respond(HISTORY, call_id=CALL, reply_id=REPLY)]

    fake.gate = asyncio.Event()  # the model holds every answer
    async with httpx.AsyncClient() as http:
        models = ModelResponders(
            settings, call_tools=RecordingToolbox(), http=http, record=no_record
        )
        stalled = await reply(models)
        tried = len(fake.requests)
        fake.gate.set()  # the model is back: the call goes on
        fake.answer("Here I am.")
        answered = await reply(models)
        await models.aclose()

    assert stalled == [APOLOGY]
    assert tried == 2  # once, and once again
    assert answered == ["Here I am."]
