"""What is drawn from a call once it is over: a summary, the facts its agent's schema asks for
and whether the call succeeded.

This is the offline way, without a language model: the summary is extractive (the caller's
first request and the agent's last answer, in their own words), the facts are the variables the
call's workflow collected, and success means every required fact was collected in a call that
ended normally. Plain Python: it takes the call as recorded and the agent's post-call section.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from voicebus_analytics.views import CallDetail, Turn
from voicebus_contracts.agents import PostCall

SUMMARY_SIDE_CHARS = 300
"""Each side's words in the summary are cut to this many characters (an ellipsis marks a cut)."""
FAILED_ENDS = frozenset({"gateway error", "gateway replica lost", "gateway stopped"})
"""The reasons the gateway gives when it, not a party to the call, ended it."""

_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})


@dataclass(frozen=True)
class Conclusion:
    """The post-call results kept on the call record."""

    summary: str | None
    """The caller's first request and the agent's last answer; None if neither said anything."""
    extraction: dict[str, Any] | None
    """Each property of the agent's extraction schema, null where it was not collected (or
    did not fit the schema); None when the agent has no schema."""
    succeeded: bool | None
    """None when the agent says neither what success is nor what to extract."""
    success_reason: str | None


def conclude(call: CallDetail, post_call: PostCall) -> Conclusion:
    """The post-call results of `call`, for an agent whose post-call section is `post_call`."""
    schema = post_call.extraction
    extraction = None if schema is None else extract(schema, call.variables)
    succeeded, reason = _evaluate(call, post_call, extraction)
    return Conclusion(
        summary=summarize(call.turns),
        extraction=extraction,
        succeeded=succeeded,
        success_reason=reason,
    )


def summarize(turns: Sequence[Turn]) -> str | None:
    """The caller's first request and the agent's last answer, each cut to SUMMARY_SIDE_CHARS."""
    asked = next((t.text for t in turns if t.role == "user" and t.text.strip()), None)
    answered = next((t.text for t in reversed(turns) if t.role == "agent" and t.text.strip()), None)
    sides = [
        f"{who}: {_clip(text)}"
        for who, text in (("Caller", asked), ("Agent", answered))
        if text is not None
    ]
    return "\n".join(sides) or None


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_SIDE_CHARS else text[: SUMMARY_SIDE_CHARS - 1] + "…"


def extract(schema: Mapping[str, Any], variables: Mapping[str, str]) -> dict[str, Any]:
    """Each property of `schema` from the workflow variable of the same name, coerced to the
    property's type; null if it was not collected or does not fit (type, enum)."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    return {
        name: None if name not in variables else _coerce(variables[name], spec)
        for name, spec in properties.items()
    }


def _coerce(value: str, spec: Any) -> Any:
    """`value` as the JSON type `spec` declares, or None if it is not one."""
    spec = spec if isinstance(spec, Mapping) else {}
    declared = spec.get("type", "string")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), "string")
    coerced = _as(declared, value.strip())
    if coerced is None or ("enum" in spec and coerced not in spec["enum"]):
        return None
    return coerced


def _as(json_type: str, value: str) -> Any:
    match json_type:
        case "string":
            return value or None
        case "boolean":
            folded = value.lower()
            return True if folded in _TRUE else False if folded in _FALSE else None
        case "number" | "integer":
            try:
                number = float(value)
            except ValueError:
                return None
            if not math.isfinite(number):
                return None
            if json_type == "number":
                return number
            return int(number) if number.is_integer() else None
        case "array" | "object":
            try:
                parsed = json.loads(value)
            except ValueError:
                return None
            return parsed if isinstance(parsed, list if json_type == "array" else dict) else None
        case _:
            return None


def _evaluate(
    call: CallDetail, post_call: PostCall, extraction: Mapping[str, Any] | None
) -> tuple[bool | None, str | None]:
    if post_call.success is None and extraction is None:
        return None, None
    required = [] if post_call.extraction is None else post_call.extraction.get("required", [])
    missing = [name for name in required if (extraction or {}).get(name) is None]
    failures = []
    if missing:
        failures.append(f"not collected: {', '.join(missing)}")
    if call.end_reason is None or call.end_reason in FAILED_ENDS:
        failures.append(f"the call ended abnormally ({call.end_reason or 'no reason'})")
    # Offline, the agent's success criterion in words is not read: only the facts and the end.
    offline = "" if post_call.success is None else " (judged offline, not against `success`)"
    if failures:
        return False, "; ".join(failures) + offline
    return True, f"every required fact was collected, the call ended ({call.end_reason}){offline}"
