"""Phrases that repeat (greetings, fillers, goodbyes) synthesized once: their speech is kept
by provider, voice and text, and spoken again from memory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from voicebus_tts.lru import Lru
from voicebus_tts.ports import PcmChunk, Sentence, SpeechSynthesizer

log = logging.getLogger(__name__)

PhraseKey = tuple[str, str, str]
"""(provider, voice, text)."""


class PhraseCache:
    """A synthesizer's sentences of up to `max_chars`, kept whole once fully synthesized (one
    closed early is not kept), the least recently spoken forgotten first."""

    def __init__(
        self,
        synthesizer: SpeechSynthesizer,
        *,
        provider: str,
        phrases: Lru[PhraseKey, tuple[PcmChunk, ...]],
        max_chars: int,
    ) -> None:
        self._synthesizer = synthesizer
        self._provider = provider
        self._phrases = phrases
        self._max_chars = max_chars

    async def synthesize(self, sentence: Sentence, *, voice: str) -> AsyncIterator[PcmChunk]:
        key = (self._provider, voice, sentence.text)
        kept = self._phrases.get(key)
        if kept is not None:
            log.debug("phrase of %d chars spoken from the cache", len(sentence.text))
            for chunk in kept:
                yield chunk
            return
        chunks: list[PcmChunk] = []
        async for chunk in self._synthesizer.synthesize(sentence, voice=voice):
            chunks.append(chunk)
            yield chunk
        if len(sentence.text) <= self._max_chars:
            self._phrases.put(key, tuple(chunks))
