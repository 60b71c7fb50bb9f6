"""What follows a call's end: its post-call results drawn and kept on its record, then its agent's
webhook told.

In the background, so that recording the events of other calls (one message at a time) never
waits for a model or a webhook; and durably, so that what a stop or a crash cut short is taken up
again when analytics starts (`resume`): a call ended without results is concluded, a concluded
call whose webhook was not told is told.

A call is concluded once: the store keeps the first results drawn for it, and only the follow-up
that kept them goes on to tell the webhook. A webhook is told at least once: a delivery cut short
is made again at the next start, so a receiver may see a call twice (its id tells).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from voicebus_analytics.ports import (
    Agents,
    CallEndedListener,
    CallJudge,
    CallStore,
    JudgementError,
)
from voicebus_analytics.post_call import Conclusion, conclude
from voicebus_analytics.views import CallDetail
from voicebus_contracts.agents import AgentSpec, LanguageModel, PostCall

log = logging.getLogger(__name__)

MAX_JUDGED_AT_ONCE = 4
"""Calls a model judges at the same time (a start may find many calls to conclude)."""


class FollowUp:
    """Concludes ended calls and tells their webhooks, each call in a task of its own.

    A call's results are judged by its agent's model, else by `service_model`, through `judge`;
    without either (or when the model fails), they are drawn offline (`post_call`). With
    `redact_pii`, their texts are kept redacted.
    """

    def __init__(
        self,
        *,
        store: CallStore,
        agents: Agents,
        listener: CallEndedListener,
        judge: CallJudge | None = None,
        service_model: LanguageModel | None = None,
        judged_at_once: int = MAX_JUDGED_AT_ONCE,
        redact_pii: bool = False,
    ) -> None:
        self._store = store
        self._agents = agents
        self._listener = listener
        self._judge = judge
        self._service_model = service_model
        self._redact_pii = redact_pii
        self._judging = asyncio.Semaphore(judged_at_once)
        self._released = asyncio.Event()
        self._released.set()
        self._under_way: dict[str, asyncio.Task[None]] = {}

    def call_ended(self, call_id: str) -> None:
        """Follow the ended call up in the background: returns at once."""
        self._start(call_id, conclude=True)

    def hold(self) -> None:
        """Let follow-ups wait until `resume`: while the agent catalog is read at start, a call
        concluded for an agent not heard of yet would miss its schema, model and webhook."""
        self._released.clear()

    async def resume(self) -> None:
        """Let follow-ups go on, and take up those a stop or a crash cut short."""
        self._released.set()
        unconcluded = await self._store.unconcluded_calls()
        unnotified = await self._store.unnotified_calls()
        if unconcluded or unnotified:
            log.info(
                "taking up %d ended calls not concluded and %d webhooks not told",
                len(unconcluded),
                len(unnotified),
            )
        for call_id in unconcluded:
            self._start(call_id, conclude=True)
        for call_id in unnotified:
            self._start(call_id, conclude=False)

    async def drain(self) -> None:
        """Wait for every follow-up under way to finish."""
        while self._under_way:
            await asyncio.gather(*self._under_way.values(), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop every follow-up under way: the next start takes them up again."""
        for task in self._under_way.values():
            task.cancel()
        await self.drain()

    def _start(self, call_id: str, *, conclude: bool) -> None:
        if call_id in self._under_way:
            return  # a redelivered end, or a call both ended and found at start
        task = asyncio.create_task(
            self._follow(call_id, conclude=conclude), name=f"follow-up-{call_id}"
        )
        self._under_way[call_id] = task
        task.add_done_callback(lambda _: self._under_way.pop(call_id, None))

    async def _follow(self, call_id: str, *, conclude: bool) -> None:
        try:
            await self._released.wait()
            call = await self._store.call(call_id)
            if call is None:
                return
            agent = None if call.agent_id is None else self._agents.get(call.agent_id)
            post_call = PostCall() if agent is None else agent.post_call
            if conclude:
                async with self._judging:
                    conclusion = await self._conclusion(call, agent, post_call)
                if self._redact_pii:
                    conclusion = conclusion.redacted()
                if not await self._store.conclude_call(call_id, conclusion, at=_now()):
                    return  # concluded already: whoever did tells the webhook
                call = await self._store.call(call_id)
                if call is None:
                    return
            await self._listener.call_ended(call, post_call)
            await self._store.record_notified(call_id, at=_now())
        except Exception:
            log.exception("call %s: not followed up; taken up again at the next start", call_id)

    async def _conclusion(
        self, call: CallDetail, agent: AgentSpec | None, post_call: PostCall
    ) -> Conclusion:
        """Judged by the agent's model or the service's; offline without one, or when it
        fails. A call in which nobody said anything has nothing to judge."""
        model = self._service_model if agent is None or agent.llm is None else agent.llm
        said = any(turn.text.strip() for turn in call.turns)
        if model is None or self._judge is None or not said:
            return conclude(call, post_call)
        try:
            judged = await self._judge.judge(call, post_call, model)
        except JudgementError as failed:
            log.warning("call %s: post-call results drawn offline: %s", call.call_id, failed)
            return conclude(call, post_call)
        return conclude(call, post_call, judged)


def _now() -> datetime:
    return datetime.now(UTC)
