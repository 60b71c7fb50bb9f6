"""Built-in tools: what the model can do to the call itself, through the call's gateway."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voicebus_agent.llm import is_tool_error, tool_error
from voicebus_agent.ports import ActionLog, CommandSender, Toolbox, ToolCall
from voicebus_contracts import (
    MAX_TEXT_CHARS,
    CallCommand,
    HangUp,
    SendDtmf,
    ToolCalled,
    ToolReturned,
    TransferCall,
)

log = logging.getLogger(__name__)


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _TransferArguments(_Arguments):
    to: str


class _DtmfArguments(_Arguments):
    digits: str


class _EndArguments(_Arguments):
    reason: str = Field(default="the agent ended the call", max_length=200)


DEFINITIONS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "end_call",
            "description": (
                "End the call once the caller has heard what you are saying now: say goodbye "
                "first, in the same answer."
            ),
            "parameters": {
                "type": "object",
                "properties": {"reason": {"type": "string", "description": "why, for the record"}},
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "transfer_call",
            "description": "Transfer the caller to another phone number (the call leaves you).",
            "parameters": {
                "type": "object",
                "properties": {
                    "to": {"type": "string", "description": "E.164 number, like +14155550100"}
                },
                "required": ["to"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "send_dtmf",
            "description": "Press keys on the phone line, to drive a phone menu.",
            "parameters": {
                "type": "object",
                "properties": {
                    "digits": {"type": "string", "description": "0-9, *, #; w waits 0.5 s"}
                },
                "required": ["digits"],
                "additionalProperties": False,
            },
        },
    },
]


class CallTools:
    """Toolbox of the built-in call-control tools (end, transfer, press keys), carried out
    through `control`."""

    def __init__(self, control: CommandSender) -> None:
        self._control = control

    def definitions(self) -> list[dict[str, Any]]:
        return DEFINITIONS

    async def run(self, call: ToolCall, *, call_id: str, reply_id: str) -> str:
        try:
            command = self._command(call, reply_id=reply_id)
        except (ValueError, ValidationError) as refused:
            log.info("call %s: tool %s refused: %s", call_id, call.name, refused)
            return tool_error(f"{call.name} refused: {refused}")
        try:
            live = await self._control.send(call_id, command)
        except Exception as failed:
            log.warning("call %s: tool %s failed", call_id, call.name, exc_info=True)
            return tool_error(f"{call.name} failed: {failed}")
        if not live:
            return tool_error(f"{call.name} failed: the call is over")
        return json.dumps({"ok": True})

    @staticmethod
    def _command(call: ToolCall, *, reply_id: str) -> CallCommand:
        match call.name:
            case "end_call":
                ending = _EndArguments.model_validate_json(call.arguments or "{}")
                return HangUp(reason=ending.reason, after_reply=reply_id)
            case "transfer_call":
                transfer = _TransferArguments.model_validate_json(call.arguments or "{}")
                return TransferCall(to=transfer.to)
            case "send_dtmf":
                dtmf = _DtmfArguments.model_validate_json(call.arguments or "{}")
                return SendDtmf(digits=dtmf.digits)
            case unknown:
                raise ValueError(f"there is no tool named {unknown!r}")


class Toolboxes:
    """Several toolboxes as one: every tool of each, run by the toolbox that has it."""

    def __init__(self, *toolboxes: Toolbox) -> None:
        self._toolboxes = toolboxes

    def definitions(self) -> list[dict[str, Any]]:
        return [d for toolbox in self._toolboxes for d in toolbox.definitions()]

    async def run(self, call: ToolCall, *, call_id: str, reply_id: str) -> str:
        for toolbox in self._toolboxes:
            if any(d["function"]["name"] == call.name for d in toolbox.definitions()):
                return await toolbox.run(call, call_id=call_id, reply_id=reply_id)
        return tool_error(f"there is no tool named {call.name!r}")


class RecordedToolbox:
    """A toolbox whose every call, and every answer, goes on the record; a record that fails
    is logged and the tool runs all the same."""

    def __init__(self, toolbox: Toolbox, record: ActionLog) -> None:
        self._toolbox = toolbox
        self._record = record

    def definitions(self) -> list[dict[str, Any]]:
        return self._toolbox.definitions()

    async def run(self, call: ToolCall, *, call_id: str, reply_id: str) -> str:
        called = ToolCalled(
            tool_call_id=call.id, name=call.name, arguments=call.arguments[:MAX_TEXT_CHARS]
        )
        await self._on_record(call_id, called)
        started = time.perf_counter()
        try:
            result = await self._toolbox.run(call, call_id=call_id, reply_id=reply_id)
        except Exception as failed:  # a toolbox that broke its promise not to raise
            log.exception("call %s: tool %s raised", call_id, call.name)
            result = tool_error(f"{call.name} failed: {failed}")
        returned = ToolReturned(
            tool_call_id=call.id,
            name=call.name,
            result=result[:MAX_TEXT_CHARS],
            failed=is_tool_error(result),
            duration_ms=round((time.perf_counter() - started) * 1000),
        )
        await self._on_record(call_id, returned)
        return result

    async def _on_record(self, call_id: str, event: ToolCalled | ToolReturned) -> None:
        try:
            await self._record(call_id, event)
        except Exception:
            log.warning("call %s: %s of tool %s not recorded", call_id, event.type, event.name)
