"""A call's way through its workflow, turn by turn: the state loaded when a reply begins, each
change saved for the next worker, put on the record, and the call ended at a final node."""

from __future__ import annotations

import logging

from voicebus_agent.ports import ActionLog, CommandSender, WorkflowStates
from voicebus_agent.workflow.flow import Flow, Steps, WorkflowState
from voicebus_contracts import HangUp, WorkflowProgressed
from voicebus_contracts.agents import Variable, WorkflowNode

log = logging.getLogger(__name__)


class Workflows:
    """One agent's workflow for all its calls: where each call is lives in `states`."""

    def __init__(
        self, flow: Flow, *, states: WorkflowStates, record: ActionLog, control: CommandSender
    ) -> None:
        self.flow = flow
        self._states = states
        self._record = record
        self._control = control

    async def turn(self, call_id: str, reply_id: str) -> WorkflowTurn:
        """The call's workflow as it was when reply `reply_id` began (the same on a retry)."""
        state = await self._states.begin(call_id, reply_id) or self.flow.start()
        return WorkflowTurn(self, call_id=call_id, reply_id=reply_id, state=state)

    async def moved(self, turn: WorkflowTurn, before: WorkflowState, steps: Steps) -> None:
        """Save where `turn` went, put it on the record, and end the call at a final node."""
        after = steps.state
        await self._states.save(turn.call_id, after)
        if (after.node, after.variables) != (before.node, before.variables):
            log.info(
                "call %s: workflow at %s (from %s), %d variables",
                turn.call_id,
                after.node,
                before.node,
                len(after.variables),
            )
            progressed = WorkflowProgressed(
                node=after.node, previous_node=before.node, variables=after.variables
            )
            try:
                await self._record(turn.call_id, progressed)
            except Exception:
                log.warning("call %s: workflow progress not recorded", turn.call_id)
        if any(node.end_call for node in steps.entered):
            hang_up = HangUp(reason=f"workflow ended at {after.node}", after_reply=turn.reply_id)
            if not await self._control.send(turn.call_id, hang_up):
                log.warning("call %s is not live on any gateway: not hung up", turn.call_id)

    async def save(self, turn: WorkflowTurn, state: WorkflowState) -> None:
        await self._states.save(turn.call_id, state)


class WorkflowTurn:
    """The workflow during one reply: every change is saved (and recorded) as it happens."""

    def __init__(
        self, workflows: Workflows, *, call_id: str, reply_id: str, state: WorkflowState
    ) -> None:
        self._workflows = workflows
        self.flow = workflows.flow
        self.call_id = call_id
        self.reply_id = reply_id
        self.state = state

    @property
    def node(self) -> WorkflowNode:
        return self.flow.node(self.state)

    async def collect(self, values: dict[str, str]) -> Steps:
        return await self._apply(self.flow.collect(self.state, values))

    async def go(self, to: str) -> Steps:
        return await self._apply(self.flow.go(self.state, to))

    async def asked(self, variable: Variable) -> None:
        self.state = self.flow.asked(self.state, variable)
        await self._workflows.save(self, self.state)

    async def _apply(self, steps: Steps) -> Steps:
        before, self.state = self.state, steps.state
        await self._workflows.moved(self, before, steps)
        return steps
