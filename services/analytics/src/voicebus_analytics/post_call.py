"""What is drawn from a call once it is over: a summary, the facts its agent's schema asks for
and whether the call succeeded.

A language model may judge each part (`follow_up` asks it, when the call's agent or analytics
has one); what it answers is taken part by part where it fits, and the rest is drawn the offline
way: the summary is extractive (the caller's first request and the agent's last answer, in their
own words), the facts are the variables the call's workflow collected, and success means every
required fact was collected in a call that ended normally. Plain Python: it takes the call as
recorded, the agent's post-call section and the model's answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from voicebus_analytics.views import CallDetail, Turn
from voicebus_contracts.agents import PostCall
from voicebus_runtime.redaction import redact

SUMMARY_SIDE_CHARS = 300
"""Each side's words in the summary are cut to this many characters (an ellipsis marks a cut)."""
JUDGED_TEXT_CHARS = 2_000
"""The model's summary and reason are cut to this many characters."""
FAILED_ENDS = frozenset({"gateway error", "gateway replica lost", "gateway stopped"})
"""The reasons the gateway gives when it, not a party to the call, ended it."""

_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})


@dataclass(frozen=True)
class Conclusion:
    """The post-call results kept on the call record."""

    summary: str | None
    """The model's, or the caller's first request and the agent's last answer; None if neither
    said anything."""
    extraction: dict[str, Any] | None
    """Each property of the agent's extraction schema, null where neither the model nor the
    workflow gave a value that fits it; None when the agent has no schema."""
    succeeded: bool | None
    """None when the agent says neither what success is nor what to extract."""
    success_reason: str | None

    def redacted(self) -> Conclusion:
        """These results with personal data in their texts replaced: a model may have written
        them from the workflow's variables, which are kept as collected. The extraction is
        what the agent asked to collect: kept as drawn."""
        return replace(
            self,
            summary=None if self.summary is None else redact(self.summary),
            success_reason=None if self.success_reason is None else redact(self.success_reason),
        )


def conclude(
    call: CallDetail, post_call: PostCall, judged: Mapping[str, Any] | None = None
) -> Conclusion:
    """The post-call results of `call`, for an agent whose post-call section is `post_call`.

    `judged` is a language model's answer (a JSON object): its `summary` (a text), its
    `extraction` (each property that fits the schema; the rest from the workflow) and, when the
    agent says what success is, its `succeeded` (a boolean) and `reason` are taken; what is
    missing or does not fit is drawn offline.
    """
    judged = judged or {}
    schema = post_call.extraction
    extraction = (
        None if schema is None else extract(schema, call.variables, judged.get("extraction"))
    )
    verdict = judged.get("succeeded")
    succeeded: bool | None
    if post_call.success is not None and isinstance(verdict, bool):
        succeeded, reason = verdict, _judged_text(judged.get("reason"))
    else:
        succeeded, reason = _evaluate(call, post_call, extraction)
    return Conclusion(
        summary=_judged_text(judged.get("summary")) or summarize(call.turns),
        extraction=extraction,
        succeeded=succeeded,
        success_reason=reason,
    )


def _judged_text(value: object) -> str | None:
    """`value` if it is a text with something in it, cut to JUDGED_TEXT_CHARS."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    return text if len(text) <= JUDGED_TEXT_CHARS else text[: JUDGED_TEXT_CHARS - 1] + "…"


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


def extract(
    schema: Mapping[str, Any], variables: Mapping[str, str], judged: object = None
) -> dict[str, Any]:
    """Each property of `schema`: the model's value (`judged`, an object of them) where it fits
    the property, else the workflow variable of the same name fitted to it; null if neither
    fits (type, enum)."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    drawn: Mapping[str, Any] = judged if isinstance(judged, Mapping) else {}
    extracted = {}
    for name, spec in properties.items():
        value = fit(drawn.get(name), spec)
        if value is None and name in variables:
            value = fit(variables[name], spec)
        extracted[name] = value
    return extracted


def fit(value: Any, spec: Any) -> Any:
    """`value` as the JSON type the property `spec` declares (a text read as one), or None if
    it is not one, or not one of the property's `enum`."""
    spec = spec if isinstance(spec, Mapping) else {}
    declared = spec.get("type", "string")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), "string")
    fitted = _as(declared, value.strip()) if isinstance(value, str) else _typed(declared, value)
    if fitted is None or ("enum" in spec and fitted not in spec["enum"]):
        return None
    return fitted


def _typed(json_type: str, value: Any) -> Any:
    """`value` (from JSON, not a text) if it is of `json_type`, else None."""
    match json_type:
        case "boolean":
            return value if isinstance(value, bool) else None
        case "number" | "integer":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            if not math.isfinite(value):
                return None
            if json_type == "number" or isinstance(value, int):
                return value
            return int(value) if value.is_integer() else None
        case "array":
            return value if isinstance(value, list) else None
        case "object":
            return value if isinstance(value, dict) else None
        case _:
            return None


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
