"""What makes two items the same problem, whatever their family and phrasing.

A problem is identified by the numbers its prompt states and its answer: "What is 84 × 2?",
"A cyclist travels at 84 km/h for 2 hours. How far does it go?" and "eighty-four times two" are
all ({2, 84}, "168"). Numbers are read from digits ("84", "8.4", "$20", "15%", "9th") and from
English number words up to ninety-nine ("forty-seven", "six-sided"). The number 1 is left out
whatever its spelling: "one" is mostly a pronoun ("One of the cups costs $20"), and leaving it
out only makes more items count as the same problem, never fewer. The answer is compared
case-blind, without "$", thousands commas or a final full stop, and as an exact number when it
is one ("17.10" = "17.1", "4/8" = "1/2").

Training builds leave out every item whose identity is that of a bundled held-out item, so
"held out" means this identity, not only the prompt text.
"""

from __future__ import annotations

import re
from fractions import Fraction

from tunix_rt.data.generators.mix_format import ONES, TENS

ProblemIdentity = tuple[tuple[Fraction, ...], str]

# The English number words the generators write (one list for writing them and reading them back).
_ONES = ONES
_TENS = TENS[2:]
NUMBER_WORDS: dict[str, int] = {word: n for n, word in enumerate(_ONES)} | {
    word: 10 * (n + 2) for n, word in enumerate(_TENS)
}
_COMPOUND = {f"{tens}-{_ONES[unit]}": NUMBER_WORDS[tens] + unit for tens in _TENS for unit in range(1, 10)}
# Longest alternatives first, so "forty-seven" is one number and not "forty" then "seven".
_WORDS_RE = "|".join(sorted([*NUMBER_WORDS, *_COMPOUND], key=len, reverse=True))
_NUMBER = re.compile(rf"(\d+(?:\.\d+)?)|\b({_WORDS_RE})\b", re.IGNORECASE)
_IGNORED = Fraction(1)


def prompt_numbers(prompt: str) -> tuple[Fraction, ...]:
    """The numbers stated in `prompt`, sorted, without 1s."""
    values = []
    for digits, words in _NUMBER.findall(prompt):
        word = words.lower()
        value = Fraction(digits) if digits else Fraction(_COMPOUND.get(word, NUMBER_WORDS.get(word, 0)))
        if value != _IGNORED:
            values.append(value)
    return tuple(sorted(values))


def normalise_answer(answer: str) -> str:
    text = answer.strip().lower().replace("$", "").replace(",", "").removesuffix(".").strip()
    try:
        return str(Fraction(text))
    except (ValueError, ZeroDivisionError):
        return " ".join(text.split())


def problem_identity(prompt: str, answer: str) -> ProblemIdentity:
    """(numbers in the prompt, normalised answer): equal for the same problem in any phrasing."""
    return prompt_numbers(prompt), normalise_answer(answer)
