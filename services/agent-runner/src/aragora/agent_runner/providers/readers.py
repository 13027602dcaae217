"""Lenient readers of values in model answers: JSON objects in prose, texts, numbers.

Model text is untrusted: these only read values out of it, bound their lengths and clamp
numbers (confidence to [0, 1], severity to [0, 10]).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

DEFAULT_CONFIDENCE = 0.5
DEFAULT_SEVERITY = 5.0
MAX_SEVERITY = 10.0
_MAX_ITEM = 500
_MAX_ITEMS = 10
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_SEVERITY_WORDS = {"none": 0.0, "low": 2.0, "minor": 2.0, "medium": 5.0, "moderate": 5.0}
_SEVERITY_WORDS |= {"high": 8.0, "major": 8.0, "severe": 9.0, "critical": 10.0, "fatal": 10.0}
_MAX_TEXT = 2000
_MAX_SCAN = 20_000


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in ``text``: fenced blocks first, then any ``{`` in the prose.

    Top-level objects only (a bare array of objects yields each of them); a source that
    does not decode is retried once without trailing commas. Only the first
    :data:`_MAX_SCAN` characters are read.
    """
    text = text[:_MAX_SCAN]  # bounds the work on a huge or hostile answer
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    fenced = [m.group(1) for m in _FENCE.finditer(text)]
    for source in [*fenced, text]:
        for candidate in (source, _TRAILING_COMMA.sub(r"\1", source)):
            before = len(found)
            start = candidate.find("{")
            while start != -1:
                try:
                    value, end = decoder.raw_decode(candidate, start)
                except json.JSONDecodeError:
                    start = candidate.find("{", start + 1)
                    continue
                if isinstance(value, dict):
                    found.append(value)
                start = candidate.find("{", end)
            if len(found) > before:
                break
    return found


def norm_keys(obj: dict[str, Any]) -> dict[str, Any]:
    """Keys case-folded, with spaces and hyphens as underscores."""
    return {
        str(k).strip().casefold().replace(" ", "_").replace("-", "_"): v for k, v in obj.items()
    }


def first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The value of the first of ``keys`` present and not null, else None."""
    return next((obj[k] for k in keys if k in obj and obj[k] is not None), None)


def text_value(raw: object, limit: int = _MAX_TEXT) -> str:
    """A bounded, stripped string from a string or a list of strings ("" otherwise)."""
    if isinstance(raw, str):
        return raw.strip()[:limit]
    if isinstance(raw, list):
        return "; ".join(s for s in (text_value(x, limit) for x in raw) if s)[:limit]
    return ""


def items(raw: object) -> list[str]:
    """A list of short strings from a string, a number or a list of them."""
    values = raw if isinstance(raw, list) else [raw]
    found = [
        text_value(v if isinstance(v, str) else str(v), _MAX_ITEM)
        for v in values
        if isinstance(v, str | int | float) and not isinstance(v, bool)
    ]
    return [i for i in found if i][:_MAX_ITEMS]


def number(raw: object, percent_scale: float) -> float | None:
    """A finite number from a JSON value: ``7``, ``"7"``, ``"7/10"``, ``"70%"``."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        text = raw.strip().casefold()
        try:
            if text.endswith("%"):
                return float(text[:-1]) / 100 * percent_scale
            if "/" in text:
                num, den = (float(p) for p in text.split("/", 1))
                return num / den * percent_scale if den else None
            raw = float(text)
        except ValueError:
            return None
    if isinstance(raw, int | float) and math.isfinite(raw):
        return float(raw)
    return None


def confidence(raw: object) -> float:
    """Confidence clamped to [0, 1]; 0.5 when missing or not a number."""
    value = number(raw, 1.0)
    return DEFAULT_CONFIDENCE if value is None else min(1.0, max(0.0, value))


def severity(raw: object) -> float:
    """Severity on the 0-10 scale, clamped to [0, 10]; words like ``high`` map onto it.

    ``"7/10"`` and ``"70%"`` are read as fractions of 10. A bare number is taken as given
    (0.7 is a mild 0.7/10, not 7): the scale is 0-10, never 0-1. Missing: 5.
    """
    if isinstance(raw, str) and raw.strip().casefold() in _SEVERITY_WORDS:
        return _SEVERITY_WORDS[raw.strip().casefold()]
    value = number(raw, MAX_SEVERITY)
    return DEFAULT_SEVERITY if value is None else min(MAX_SEVERITY, max(0.0, value))
