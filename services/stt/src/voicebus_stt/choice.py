"""Which transcriber hears a call: the provider its agent chose, where this worker offers it."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from voicebus_runtime.agents import AgentDirectory
from voicebus_stt.ports import UtteranceTranscriber

log = logging.getLogger(__name__)

CALLS_REMEMBERED = 10_000
"""Calls whose agent is kept; the oldest are forgotten first (their end may never come)."""


class TranscriberChoice:
    """The worker's transcribers by provider, and each call's choice among them.

    A call's agent (from its CallStarted and the agent directory) may name a provider; a call
    whose agent names none, names one this worker does not offer, or that started before this
    worker listened, is heard by the default provider.
    """

    def __init__(
        self,
        *,
        default: str,
        transcribers: Mapping[str, UtteranceTranscriber],
        agents: AgentDirectory | None = None,
    ) -> None:
        if default not in transcribers:
            raise ValueError(f"no transcriber for the default provider {default!r}")
        self._default = default
        self._transcribers = dict(transcribers)
        self._agents = agents or AgentDirectory()
        self._provider_of: dict[str, str] = {}

    @property
    def providers(self) -> list[str]:
        return sorted(self._transcribers)

    def started(self, call_id: str, agent_id: str) -> None:
        agent = self._agents.get(agent_id)
        wanted = None if agent is None else agent.stt.provider
        if wanted is None or wanted == self._default:
            return
        if wanted not in self._transcribers:
            log.warning(
                "call %s: agent %s wants STT provider %s, which this worker does not offer "
                "(it offers %s); using %s",
                call_id,
                agent_id,
                wanted,
                ", ".join(self.providers),
                self._default,
            )
            return
        self._provider_of[call_id] = wanted
        if len(self._provider_of) > CALLS_REMEMBERED:
            del self._provider_of[next(iter(self._provider_of))]

    def ended(self, call_id: str) -> None:
        self._provider_of.pop(call_id, None)

    def of(self, call_id: str) -> UtteranceTranscriber:
        return self._transcribers[self._provider_of.get(call_id, self._default)]

    def close(self) -> None:
        for transcriber in self._transcribers.values():
            transcriber.close()
