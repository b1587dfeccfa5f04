"""An independent check of "held out by problem": recomputes a problem's identity from text only.

Deliberately shares no code with the generators or with tunix_rt.data.heldout_problems: it reads
the numbers in a prompt (digits, and English number words up to ninety-nine read as digits) and
the final answer, and calls two items the same problem when both agree. It keeps every number,
including the 1 of "one", so it is at least as fine as the identity the builds exclude by.
"""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction

_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_DECADES = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_WORD_VALUE = {word: n for n, word in enumerate(_UNITS)} | _DECADES
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z]+(?:-[a-z]+)*")


def _word_number(token: str) -> int | None:
    """'forty-seven' -> 47, 'twelve' -> 12, 'six-sided' -> 6 (a number word leading a compound)."""
    parts = token.split("-")
    if parts[0] not in _WORD_VALUE:
        return None
    value = _WORD_VALUE[parts[0]]
    if len(parts) > 1 and parts[0] in _DECADES and parts[1] in _UNITS[1:10]:
        value += _UNITS.index(parts[1])
    return value


def prompt_numbers(prompt: str) -> tuple[Fraction, ...]:
    found: list[Fraction] = []
    for token in _TOKEN.findall(prompt.lower()):
        if token[0].isdigit():
            found.append(Fraction(token))
        else:
            value = _word_number(token)
            if value is not None:
                found.append(Fraction(value))
    return tuple(sorted(found))


def answer_form(answer: str) -> str:
    text = answer.strip().lower().replace("$", "").replace(",", "").rstrip(".")
    try:
        return str(Fraction(text))
    except ValueError:
        return " ".join(text.split())


def identity(prompt: str, answer: str) -> tuple[tuple[Fraction, ...], str]:
    return prompt_numbers(prompt), answer_form(answer)


def same_problems(eval_items: list[dict], traces: list[tuple[str, str]]) -> list[str]:
    """Ids of eval items (prompt, expected_answer) whose identity some (prompt, answer) trace shares."""
    trained = Counter(identity(p, a) for p, a in traces)
    return [item["id"] for item in eval_items if identity(item["prompt"], item["expected_answer"]) in trained]
