"""Moving a call through its workflow: collecting variables, taking transitions, saying what
each node says. Plain Python over the contracts; the responders drive it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from voicebus_contracts.agents import Transition, Variable, Workflow, WorkflowNode

_NUMBER = re.compile(r"^-?\d+(?:[.,]\d+)?$")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


class WorkflowState(BaseModel):
    """Where a call is in its workflow, and what it collected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str
    variables: dict[str, str] = Field(default_factory=dict)
    asking: str | None = None
    """The variable the agent asked for last: the caller's next words may be its value."""


@dataclass(frozen=True)
class Steps:
    """What a change did: the state after it, the nodes entered on the way (in order), and
    the values refused, each with why."""

    state: WorkflowState
    entered: tuple[WorkflowNode, ...] = ()
    refused: tuple[str, ...] = ()

    def then(self, more: Steps) -> Steps:
        return Steps(more.state, self.entered + more.entered, self.refused + more.refused)


class Flow:
    """One workflow, and the variables every call of the agent starts with."""

    def __init__(self, workflow: Workflow, *, defaults: Mapping[str, str] | None = None) -> None:
        self.workflow = workflow
        self._defaults = dict(defaults or {})

    def start(self) -> WorkflowState:
        return WorkflowState(node=self.workflow.start, variables=self._defaults)

    def node(self, state: WorkflowState) -> WorkflowNode:
        return self.workflow.node(state.node)

    def missing(self, state: WorkflowState) -> list[Variable]:
        """The current node's variables not known yet, in the node's order."""
        return [v for v in self.node(state).collect if v.name not in state.variables]

    def caller_transitions(self, state: WorkflowState) -> list[Transition]:
        """The current node's ways out that the caller's words decide."""
        return [t for t in self.node(state).transitions if not t.data_driven]

    def collect(self, state: WorkflowState, values: Mapping[str, str]) -> Steps:
        """Keep the values that fit the current node's variables, then follow the transitions
        the data now satisfies."""
        wanted = {v.name: v for v in self.node(state).collect}
        kept = dict(state.variables)
        refused: list[str] = []
        for name, raw in values.items():
            variable = wanted.get(name)
            if variable is None:
                refused.append(f"{name}: not collected at this step")
            elif (value := _fitted(variable, raw)) is None:
                refused.append(f"{name}: {raw!r} is not {_expected(variable)}")
            else:
                kept[name] = value
        asking = state.asking if state.asking not in kept else None
        collected = state.model_copy(update={"variables": kept, "asking": asking})
        return Steps(collected, refused=tuple(refused)).then(self._settle(collected))

    def go(self, state: WorkflowState, to: str) -> Steps:
        """Take the current node's caller-driven transition to `to`, and on from there as the
        data allows."""
        if to not in {t.to for t in self.caller_transitions(state)}:
            raise ValueError(f"step {state.node!r} has no way to {to!r}")
        return self._enter(state, to)

    def asked(self, state: WorkflowState, variable: Variable) -> WorkflowState:
        return state.model_copy(update={"asking": variable.name})

    def say(self, node: WorkflowNode, state: WorkflowState) -> str | None:
        """The node's line, its `{variable}` placeholders filled in."""
        if node.say is None:
            return None
        filled = _PLACEHOLDER.sub(lambda m: state.variables.get(m.group(1), ""), node.say)
        return re.sub(r"\s{2,}", " ", filled).strip() or None

    def _enter(self, state: WorkflowState, node_id: str) -> Steps:
        moved = self._move(state, node_id)
        return moved.then(self._settle(moved.state))

    def _move(self, state: WorkflowState, node_id: str) -> Steps:
        entered = state.model_copy(update={"node": node_id, "asking": None})
        return Steps(entered, (self.workflow.node(node_id),))

    def _settle(self, state: WorkflowState) -> Steps:
        """Follow data-driven transitions from the current node while they hold; a node is
        entered at most once on the way, so a cycle in the graph cannot spin."""
        steps = Steps(state)
        seen = {state.node}
        while (to := self._data_says(steps.state)) is not None and to not in seen:
            seen.add(to)
            steps = steps.then(self._move(steps.state, to))
        return steps

    def _data_says(self, state: WorkflowState) -> str | None:
        node = self.node(state)
        known = state.variables
        for transition in node.transitions:
            if not transition.data_driven:
                continue
            if transition.once_collected and any(v.name not in known for v in node.collect):
                continue
            if all(
                known.get(name, "").casefold() == value.casefold()
                for name, value in transition.if_equals.items()
            ):
                return transition.to
        return None


def _fitted(variable: Variable, raw: str) -> str | None:
    """The value as the call record keeps it, or None when it does not fit the variable."""
    value = raw.strip()
    if not value:
        return None
    if variable.choices:
        return next((c for c in variable.choices if c.casefold() == value.casefold()), None)
    if variable.kind == "number":
        return value if _NUMBER.match(value) else None
    return value


def _expected(variable: Variable) -> str:
    if variable.choices:
        return "one of " + ", ".join(variable.choices)
    return "a number" if variable.kind == "number" else "a value"
