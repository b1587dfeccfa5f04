"""Small helpers shared by the generators: record assembly and exact number formatting."""

from __future__ import annotations

from fractions import Fraction
from typing import Any


def trace(prompt: str, steps: list[tuple[str, str]], answer: str, meta: dict[str, Any]) -> dict[str, Any]:
    """A native record; `steps` are (type, content) pairs numbered from 0."""
    return {
        "trace_version": "1.0",
        "prompt": prompt,
        "steps": [{"i": n, "type": kind, "content": text} for n, (kind, text) in enumerate(steps)],
        "final_answer": answer,
        "meta": meta,
    }


def fmt(value: Fraction | int) -> str:
    """Exact decimal text of a terminating fraction, without trailing zeros ("12.5", "34")."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole, rest = divmod(value.numerator, value.denominator)
    digits = ""
    # Terminating decimals only; 12 places is far beyond anything the generators produce.
    for _ in range(12):
        rest *= 10
        digit, rest = divmod(rest, value.denominator)
        digits += str(digit)
        if rest == 0:
            break
    if rest:
        raise ValueError(f"{value} has no terminating decimal form")
    return f"{sign}{whole}.{digits}"


def money(cents: int) -> str:
    """$12, $12.50 — money keeps two decimals when it has any."""
    whole, rest = divmod(cents, 100)
    return f"${whole}" if rest == 0 else f"${whole}.{rest:02d}"
