"""A workflow in front of a language model: the current node's instructions in the system
prompt, its tools, and two tools of its own, to save the variables the caller gave and to move
to the next step the caller's words call for. Data-driven transitions are taken by code, the
moment the variables they test are saved."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from voicebus_agent.llm import tool_error
from voicebus_agent.ports import ActionLog, Scene, Toolbox, ToolCall
from voicebus_agent.tools import RecordedToolbox, Toolboxes
from voicebus_agent.workflow.flow import Steps
from voicebus_agent.workflow.progress import Workflows, WorkflowTurn
from voicebus_contracts.agents import Variable, WorkflowNode

SET_VARIABLES = "set_variables"
GO_TO_STEP = "go_to_step"


class WorkflowScript:
    """Gives the model of an agent with a workflow the scene of the call's current step; the
    agent's tools (`toolbox`) come recorded, the step tools are recorded with `record`."""

    def __init__(
        self, workflows: Workflows, *, prompt: str, toolbox: Toolbox, record: ActionLog
    ) -> None:
        self._workflows = workflows
        self._prompt = prompt
        self._toolbox = toolbox
        self._record = record

    async def scene(self, call_id: str, reply_id: str) -> Scene:
        turn = await self._workflows.turn(call_id, reply_id)
        return WorkflowScene(turn, prompt=self._prompt, toolbox=self._toolbox, record=self._record)


class WorkflowScene:
    """One reply's scene: it follows the call from step to step as the model's tools move it."""

    def __init__(
        self, turn: WorkflowTurn, *, prompt: str, toolbox: Toolbox, record: ActionLog
    ) -> None:
        self._turn = turn
        self._prompt = prompt
        self._toolbox = toolbox
        self._record = record
        self._arrived: tuple[WorkflowNode, ...] = ()
        """The steps entered during this reply, whose lines are still to be said."""

    def instructions(self) -> str:
        turn = self._turn
        node = turn.node
        parts = [
            self._prompt,
            f"You are following a conversation flow; the current step is {node.id!r}.",
        ]
        if node.instructions:
            parts.append(node.instructions)
        lines = [line for n in self._arrived if (line := turn.flow.say(n, turn.state))]
        if lines:
            parts.append("You have just reached this step: say, in your words: " + " ".join(lines))
        if known := turn.state.variables:
            parts.append("Known so far: " + ", ".join(f"{k}={v}" for k, v in known.items()))
        if missing := turn.flow.missing(turn.state):
            wanted = "; ".join(_described(v) for v in missing)
            parts.append(
                f"Ask the caller for what this step still needs, one thing at a time, and save "
                f"each answer with {SET_VARIABLES}: {wanted}."
            )
        if ways := turn.flow.caller_transitions(turn.state):
            choices = "; ".join(f"{t.to!r} when {_condition(t.when, t.examples)}" for t in ways)
            parts.append(f"Call {GO_TO_STEP} to move on: {choices}.")
        if node.end_call:
            parts.append("This is the last step: the call ends after what you say now.")
        return "\n\n".join(p for p in parts if p)

    def toolbox(self) -> Toolbox:
        node = self._turn.node
        allowed = self._toolbox if node.tools is None else OnlyTools(self._toolbox, node.tools)
        return Toolboxes(allowed, RecordedToolbox(_StepTools(self), self._record))

    def definitions(self) -> list[dict[str, Any]]:
        """The step tools that apply at the current step."""
        turn = self._turn
        tools = []
        if missing := turn.flow.missing(turn.state):
            tools.append(
                _function(
                    SET_VARIABLES,
                    "Save what the caller told you that this step collects.",
                    {v.name: _schema(v) for v in missing},
                )
            )
        if ways := turn.flow.caller_transitions(turn.state):
            step = {"type": "string", "enum": [t.to for t in ways]}
            tools.append(
                _function(
                    GO_TO_STEP,
                    "Move the conversation to the next step.",
                    {"step": step},
                    required=["step"],
                )
            )
        return tools

    async def run(self, call: ToolCall) -> str:
        try:
            arguments = json.loads(call.arguments or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be an object")
            if call.name == SET_VARIABLES:
                values = {k: _text(v) for k, v in arguments.items()}
                steps = await self._turn.collect(values)
            else:
                steps = await self._turn.go(str(arguments.get("step", "")))
        except (ValueError, ValidationError) as refused:
            return tool_error(f"{call.name} refused: {refused}")
        self._arrived += steps.entered
        return json.dumps(self._outcome(steps))

    def _outcome(self, steps: Steps) -> dict[str, Any]:
        turn = self._turn
        outcome: dict[str, Any] = {"step": turn.node.id}
        if steps.refused:
            outcome["refused"] = list(steps.refused)
        if missing := turn.flow.missing(turn.state):
            outcome["still_needed"] = [v.name for v in missing]
        if steps.entered:
            outcome["now"] = "New step: follow the updated instructions."
        return outcome


class _StepTools:
    """The workflow's own tools, bound to a scene (the scene's step decides which apply)."""

    def __init__(self, scene: WorkflowScene) -> None:
        self._scene = scene

    def definitions(self) -> list[dict[str, Any]]:
        return self._scene.definitions()

    async def run(self, call: ToolCall, *, call_id: str, reply_id: str) -> str:
        return await self._scene.run(call)


class OnlyTools:
    """The tools of `toolbox` named in `names`, and no others."""

    def __init__(self, toolbox: Toolbox, names: tuple[str, ...]) -> None:
        self._toolbox = toolbox
        self._names = frozenset(names)

    def definitions(self) -> list[dict[str, Any]]:
        return [d for d in self._toolbox.definitions() if d["function"]["name"] in self._names]

    async def run(self, call: ToolCall, *, call_id: str, reply_id: str) -> str:
        if call.name not in self._names:
            return tool_error(f"{call.name} cannot be used at this step")
        return await self._toolbox.run(call, call_id=call_id, reply_id=reply_id)


def _function(
    name: str, description: str, properties: dict[str, Any], *, required: list[str] | None = None
) -> dict[str, Any]:
    parameters = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        parameters["required"] = required
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


def _schema(variable: Variable) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "number" if variable.kind == "number" and not variable.choices else "string",
        "description": variable.description,
    }
    if variable.choices:
        schema["enum"] = list(variable.choices)
    return schema


def _described(variable: Variable) -> str:
    choices = f" (one of: {', '.join(variable.choices)})" if variable.choices else ""
    return f"{variable.name}: {variable.description}{choices}"


def _condition(when: str | None, examples: tuple[str, ...]) -> str:
    said = ", ".join(f'"{e}"' for e in examples[:3])
    if when and said:
        return f"{when} (as in {said})"
    return when or f"the caller says something like {said}"


def _text(value: object) -> str:
    """A tool argument as the variable's text (models send numbers as JSON numbers)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
