"""Post-call judgement by a language model: any OpenAI-compatible chat-completions endpoint,
through the openai SDK, asked once per call (not streamed) for a JSON object.

The model reads the call (its transcript, the tools its agent called, the variables its workflow
collected, why it ended) and answers a summary, the facts of the agent's extraction schema and,
when the agent says what success is, whether the call achieved it and why. This module only asks
and reads the answer as JSON; `post_call.conclude` checks it part by part.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from openai import AsyncOpenAI, OpenAIError
from openai.types.chat import ChatCompletionMessageParam

from voicebus_analytics.ports import JudgementError
from voicebus_analytics.views import CallDetail
from voicebus_contracts.agents import SECRET_ENV_PREFIX, LanguageModel, PostCall

ROLES = {"user": "Caller", "agent": "Agent"}


class ModelJudge:
    """A CallJudge over OpenAI-compatible endpoints, one client per endpoint.

    An agent's model is called with the key its `api_key_secret` names (analytics'
    VOICEBUS_SECRET_<name>, read when used); the service's key (`service_api_key`) goes to the
    service's endpoint (`service_base_url`) only, never to an endpoint an agent names.
    """

    def __init__(
        self,
        *,
        service_base_url: str | None = None,
        service_api_key: str | None = None,
        timeout_s: float = 60.0,
        secrets: Mapping[str, str] = os.environ,
    ) -> None:
        self._service_base_url = service_base_url
        self._service_api_key = service_api_key
        self._timeout_s = timeout_s
        self._secrets = secrets
        self._clients: dict[tuple[str | None, str | None], AsyncOpenAI] = {}

    async def judge(
        self, call: CallDetail, post_call: PostCall, model: LanguageModel
    ) -> dict[str, Any]:
        client = self._client_for(model)
        try:
            completion = await client.chat.completions.create(
                model=model.model,
                temperature=model.temperature,
                messages=messages(call, post_call),
                response_format={"type": "json_object"},
            )
        except OpenAIError as error:
            raise JudgementError(f"model {model.model} failed: {error}") from error
        content = completion.choices[0].message.content if completion.choices else None
        try:
            answer = json.loads(content or "")
        except ValueError:
            raise JudgementError(f"model {model.model} answered no JSON: {content!r}") from None
        if not isinstance(answer, dict):
            raise JudgementError(f"model {model.model} answered no JSON object: {content!r}")
        return answer

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()

    def _client_for(self, model: LanguageModel) -> AsyncOpenAI:
        key = self._key_for(model)
        if model.base_url is None and key is None:
            raise JudgementError(
                f"model {model.model} is on OpenAI's endpoint without a key (OPENAI_API_KEY "
                "for analytics' model, an api_key_secret for an agent's)"
            )
        endpoint = (model.base_url, model.api_key_secret)
        client = self._clients.get(endpoint)
        if client is None:
            # Local OpenAI-compatible servers take any key; OpenAI's own requires one.
            client = self._clients[endpoint] = AsyncOpenAI(
                base_url=model.base_url,
                api_key=key or "unused",
                timeout=self._timeout_s,
                max_retries=1,
            )
        return client

    def _key_for(self, model: LanguageModel) -> str | None:
        if model.api_key_secret is not None:
            return self._secrets.get(SECRET_ENV_PREFIX + model.api_key_secret)
        if model.base_url != self._service_base_url:
            return None
        return self._service_api_key


def messages(call: CallDetail, post_call: PostCall) -> list[ChatCompletionMessageParam]:
    """What the model is asked about `call`: the task (the answer's keys, the agent's schema and
    success criterion) and the call itself."""
    keys = [
        '- "summary": two or three sentences: what the caller wanted, and how the call ended.',
    ]
    if post_call.extraction is not None:
        keys.append(
            '- "extraction": an object of the facts the call established, null for each it did '
            f"not, fitting this JSON schema: {json.dumps(post_call.extraction)}"
        )
    if post_call.success is not None:
        keys += [
            '- "succeeded": true or false: whether the call achieved this: ' + post_call.success,
            '- "reason": one sentence saying why.',
        ]
    task = "\n".join(
        [
            "You review a phone call between a caller and a voice agent, after it ended. "
            "Answer with one JSON object and nothing else, with these keys:",
            *keys,
        ]
    )
    return [
        {"role": "system", "content": task},
        {"role": "user", "content": account(call)},
    ]


def account(call: CallDetail) -> str:
    """The call as the model reads it: who said what, the tools called, what was collected."""
    said = [
        f"{ROLES[turn.role]}: {turn.text.strip()}"
        + (" (the caller cut this off)" if turn.interrupted else "")
        for turn in call.turns
        if turn.text.strip()
    ]
    parts = ["Transcript:", *(said or ["(nobody said anything)"])]
    if call.tool_calls:
        parts.append("Tools the agent called:")
        parts += [
            f"- {tool.name}({tool.arguments or ''}) -> "
            + ("(no answer)" if tool.result is None else tool.result)
            + (" (failed)" if tool.failed else "")
            for tool in call.tool_calls
        ]
    if call.variables:
        parts.append(f"What the agent's workflow collected: {json.dumps(call.variables)}")
    parts.append(f"The call ended: {call.end_reason or 'no reason given'}")
    return "\n".join(parts)
