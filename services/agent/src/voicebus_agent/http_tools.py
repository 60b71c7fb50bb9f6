"""An agent's HTTP tools: endpoints the model may call, their answers read back to it."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from voicebus_agent.llm import tool_error
from voicebus_agent.ports import ToolCall
from voicebus_contracts.agents import SECRET_ENV_PREFIX, SECRET_REFERENCE, HttpTool

log = logging.getLogger(__name__)

MAX_RESULT_CHARS = 8_000
"""What of a tool's answer the model reads; the rest is cut (a model's context is precious)."""


class MissingSecretError(Exception):
    def __init__(self, variable: str) -> None:
        super().__init__(f"{variable} is not set in the agent service's environment")


def resolve_secrets(headers: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
    """`headers` with each `{{secret:NAME}}` replaced by the variable
    VOICEBUS_SECRET_NAME of `secrets`."""

    def secret(match: re.Match[str]) -> str:
        variable = SECRET_ENV_PREFIX + match.group(1)
        if variable not in secrets:
            raise MissingSecretError(variable)
        return secrets[variable]

    return {key: re.sub(SECRET_REFERENCE, secret, value) for key, value in headers.items()}


class HttpTools:
    """Toolbox of HTTP tools, called with `client`; secrets come from `secrets` (by default,
    the process environment) each time a tool runs."""

    def __init__(
        self,
        tools: Sequence[HttpTool],
        *,
        client: httpx.AsyncClient,
        secrets: Mapping[str, str] = os.environ,
    ) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._client = client
        self._secrets = secrets

    def definitions(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                },
            }
            for tool in self._tools.values()
        ]

    async def run(self, call: ToolCall, *, call_id: str, reply_id: str) -> str:
        tool = self._tools.get(call.name)
        if tool is None:
            return tool_error(f"there is no tool named {call.name!r}")
        try:
            arguments = json.loads(call.arguments or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("the arguments must be a JSON object")
            headers = resolve_secrets(tool.headers, self._secrets)
        except (ValueError, MissingSecretError) as refused:
            log.warning("call %s: tool %s not called: %s", call_id, tool.name, refused)
            return tool_error(f"{tool.name} not called: {refused}")
        query = tool.method == "GET"
        try:
            response = await self._client.request(
                tool.method,
                tool.url,
                params=arguments if query else None,
                json=None if query else arguments,
                headers=headers,
                timeout=tool.timeout_s,
            )
        except httpx.TimeoutException:
            log.warning("call %s: tool %s timed out", call_id, tool.name)
            return tool_error(f"{tool.name} did not answer within {tool.timeout_s:g} s")
        except httpx.HTTPError as failed:
            log.warning("call %s: tool %s failed: %s", call_id, tool.name, failed)
            return tool_error(f"{tool.name} failed: {failed}")
        if response.is_error:
            log.warning(
                "call %s: tool %s answered HTTP %d", call_id, tool.name, response.status_code
            )
            return tool_error(
                f"{tool.name} answered HTTP {response.status_code}: {response.text[:500]}"
            )
        return response.text[:MAX_RESULT_CHARS]
