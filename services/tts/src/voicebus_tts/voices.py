"""Which voice speaks a call: the provider and voice its agent chose, where this worker offers
the provider; the service's own otherwise."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from voicebus_runtime.agents import AgentDirectory
from voicebus_tts.ports import SpeechSynthesizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Voice:
    provider: str
    name: str
    """The provider's name for the voice."""
    synthesizer: SpeechSynthesizer
    language: str = "en"
    """What the voice speaks: numbers, dates and the like are written out for it."""


class VoiceChoice:
    """The worker's synthesizers by provider, each with its default voice, and each agent's
    choice among them (read from the agent directory when a reply is spoken, so an agent's
    change applies to its next sentence)."""

    def __init__(
        self,
        *,
        default: str,
        synthesizers: Mapping[str, SpeechSynthesizer],
        voices: Mapping[str, str],
        agents: AgentDirectory | None = None,
        language: str = "en",
    ) -> None:
        if default not in synthesizers:
            raise ValueError(f"no synthesizer for the default provider {default!r}")
        self._default = default
        self._synthesizers = dict(synthesizers)
        self._voices = dict(voices)
        self._agents = agents or AgentDirectory()
        self._warned: set[tuple[str, str]] = set()
        self._language = language
        """The language of agents that name none (their STT language, when they do)."""

    @property
    def providers(self) -> list[str]:
        return sorted(self._synthesizers)

    def of(self, agent_id: str) -> Voice:
        agent = self._agents.get(agent_id)
        wanted = None if agent is None else agent.tts
        provider = (wanted.provider if wanted else None) or self._default
        if provider not in self._synthesizers:
            if (agent_id, provider) not in self._warned:  # once per agent, not per sentence
                self._warned.add((agent_id, provider))
                log.warning(
                    "agent %s wants TTS provider %s, which this worker does not offer (it "
                    "offers %s; a cloud provider needs its key): speaking with %s",
                    agent_id,
                    provider,
                    ", ".join(self.providers),
                    self._default,
                )
            provider = self._default
        # The agent's voice belongs to the provider it named (or, naming none, the default's).
        own = wanted is not None and (wanted.provider or self._default) == provider
        name = (wanted.voice if own and wanted else None) or self._voices[provider]
        language = (agent.stt.language if agent else None) or self._language
        return Voice(
            provider=provider,
            name=name,
            synthesizer=self._synthesizers[provider],
            language=language,
        )
