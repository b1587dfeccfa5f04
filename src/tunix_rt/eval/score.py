"""Answer extraction and matching: one recorded rule per decision.

The original judge compared raw generations to the expected answer character for character, so
every checkpoint scored 0. Here the model's answer is the text after its last ``Answer:`` and is
compared to the expected answer by the rules below, tried in order; the first that matches decides
and its name is recorded (``Score.rule``), so every credit can be audited in predictions.jsonl.

Extraction
    The answer is the text after the last ``Answer:`` (case-insensitive), up to the end of that
    line (a model without EOS often rambles on below it). No such line, or an empty one, gives
    ``answer=None``, ``correct=False``, rule ``no_answer_line``; format compliance counts these.

Normalisation (``normalize``), used by every rule after ``exact``
    lower case; whitespace collapsed; wrapping quotes, backticks, ``*`` (markdown bold) and
    brackets stripped; trailing punctuation ``. , ; : ! ?`` stripped; currency symbols
    ``$ € £ ¥`` removed; thousands separators removed (``1,000`` -> ``1000``, only a comma between
    a digit and exactly three digits, so the list ``1, 2, 3`` is untouched).

Rules, in order
    1. ``exact``              answer == expected after stripping surrounding whitespace.
    2. ``normalized_text``    normalize(answer) == normalize(expected).
    3. ``numeric``            both are whole numbers after normalisation and equal as exact
                              fractions: ``12`` = ``12.0`` = ``12.00``, ``1/2`` = ``0.5``.
    4. ``numeric_with_units`` each side holds exactly one number (after taking the right-hand side
                              of its last ``=``), with any words or units around it, and the numbers
                              are equal: ``120 km`` = ``120``, ``180 degrees`` = ``180``,
                              ``x = 7`` = ``7``. Two numbers on one side never match (``6 or 7``);
                              an expected answer holding ``or`` is left to rule 7.
    5. ``number_words``       rules 2-4 again after number words become digits on both sides:
                              ``ten`` = ``10``, ``twenty-one`` = ``21``, ``one hundred and five`` =
                              ``105``.
    6. ``unordered_list``     the expected answer is a list (``,`` or ``;`` separated, last item
                              may follow ``and``) of two or more items and the answer holds the same
                              items in any order, each compared by rules 2-5: ``c, b, a`` = ``a, b, c``.
    7. ``alternative``        the expected answer reads ``A or B``: the answer matches any one
                              alternative by rules 1-6. (Only the expected side splits: an answer
                              that hedges, ``6 or 7``, is not credited.)
    8. ``mismatch``           nothing matched.

Numbers are found with word boundaries, so ``12`` never matches ``120`` and ``1`` never matches
``-1`` (a ``-`` directly before a digit and not after a letter or digit is a sign).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

NO_ANSWER = "no_answer_line"
MISMATCH = "mismatch"

_ANSWER_RE = re.compile(r"answer\s*:", re.IGNORECASE)
_CURRENCY_RE = re.compile(r"[$€£¥]")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_WRAP_CHARS = "\"'`*()[]{}<> "
_TRAILING_PUNCT = ".,;:!?"
# A sign counts only when it does not follow a letter, digit or dot ("5-3" is two numbers, 5 and 3).
_NUMBER = r"(?<![\w.])[-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:/\d+(?:\.\d+)?)?(?!\d)"
_NUMBER_RE = re.compile(_NUMBER)
_WHOLE_NUMBER_RE = re.compile(rf"^{_NUMBER}$")
_OR_RE = re.compile(r"\s+or\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Score:
    answer: str | None
    correct: bool
    rule: str


def extract_answer(text: str) -> str | None:
    """The text after the last `Answer:` up to the end of its line; None when absent or empty."""
    matches = list(_ANSWER_RE.finditer(text or ""))
    if not matches:
        return None
    answer = text[matches[-1].end() :].strip().splitlines()
    answer_line = answer[0].strip() if answer else ""
    return answer_line or None


def normalize(text: str) -> str:
    """Lower case, collapse whitespace, drop wrappers, trailing punctuation, currency, thousands commas."""
    text = " ".join(text.lower().split())
    text = _CURRENCY_RE.sub("", text)
    text = _THOUSANDS_RE.sub("", text)
    previous = None
    # Wrappers and trailing punctuation nest ("**42.**", "'paris'."), so strip until stable.
    while previous != text:
        previous = text
        text = text.strip(_WRAP_CHARS).rstrip(_TRAILING_PUNCT)
    return " ".join(text.split())


def parse_number(text: str) -> Fraction | None:
    """An exact value for a whole-string number ('12', '-0.5', '1/2'), else None."""
    text = text.strip()
    if not _WHOLE_NUMBER_RE.match(text):
        return None
    try:
        if "/" in text:
            num, den = text.split("/")
            return Fraction(num) / Fraction(den)
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def single_number(text: str) -> Fraction | None:
    """The one number in text (right of its last '='), with any words around it; None if 0 or 2+."""
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    found = _NUMBER_RE.findall(text)
    if len(found) != 1:
        return None
    return parse_number(found[0])


# --- number words ----------------------------------------------------------------------------
_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORDS = set(_UNITS) | set(_TENS) | set(_SCALES)
_WORD_RE = re.compile(r"[a-z]+(?:-[a-z]+)*|[^a-z]+")


def _can_follow(previous: str | None, word: str) -> bool:
    """Whether word continues the number begun by previous ('twenty' 'one' yes, 'one' 'two' no)."""
    if previous is None:
        return True
    if word in _UNITS:
        return (previous in _TENS and 0 < _UNITS[word] < 10) or previous in _SCALES
    if word in _TENS:
        return previous in _SCALES
    if word == "hundred":
        return previous in _UNITS or previous in _TENS
    return previous not in _SCALES or previous == "hundred"  # thousand / million / billion


def _words_value(words: list[str]) -> int:
    total, current = 0, 0
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        else:  # thousand / million / billion close a group
            total += max(current, 1) * _SCALES[word]
            current = 0
    return total + current


def words_to_digits(text: str) -> str:
    """Replace English number words with digits: 'twenty-one apples' -> '21 apples'.

    Words join into one number only where English does ('one hundred and five' = 105), so
    'one two' stays two numbers.
    """
    out: list[str] = []
    run: list[str] = []
    held: list[str] = []  # whitespace / "and" seen inside a run, given back if the run ends there

    def flush() -> None:
        if run:
            out.append(str(_words_value(run)))
            run.clear()
        out.extend(held)
        held.clear()

    for token in _WORD_RE.findall(text.lower()):
        parts = token.split("-")
        if all(part in _NUMBER_WORDS for part in parts):
            for part in parts:
                if not _can_follow(run[-1] if run else None, part):
                    flush()
                    out.append(" ")
                held.clear()
                run.append(part)
        elif run and (token.isspace() or (token == "and" and run[-1] in _SCALES)):
            held.append(token)
        else:
            flush()
            out.append(token)
    flush()
    return " ".join("".join(out).split())


# --- matching --------------------------------------------------------------------------------
def _match_basic(answer: str, expected: str) -> str | None:
    """Rules 2-4 on two strings; the rule name or None."""
    norm_a, norm_e = normalize(answer), normalize(expected)
    if norm_a == norm_e:
        return "normalized_text"
    num_a, num_e = parse_number(norm_a), parse_number(norm_e)
    if num_a is not None and num_e is not None:
        return "numeric" if num_a == num_e else None
    if _OR_RE.search(norm_e):
        return None  # "6 or six" is the alternative rule's to judge, not a number with units
    unit_a, unit_e = single_number(norm_a), single_number(norm_e)
    if unit_a is not None and unit_e is not None and unit_a == unit_e:
        return "numeric_with_units"
    return None


def _match_item(answer: str, expected: str) -> str | None:
    """Rules 2-5 on two strings."""
    rule = _match_basic(answer, expected)
    if rule:
        return rule
    if _match_basic(words_to_digits(answer), words_to_digits(expected)):
        return "number_words"
    return None


def _split_list(text: str) -> list[str]:
    text = normalize(text)
    items = re.split(r"\s*[,;]\s*(?:and\s+)?|\s+and\s+", text)
    return [item for item in (normalize(i) for i in items) if item]


def _is_list(expected: str) -> bool:
    norm = normalize(expected)
    return bool(re.search(r"[,;]", norm)) and len(_split_list(expected)) >= 2


def _match_unordered(answer: str, expected: str) -> bool:
    if not _is_list(expected):
        return False
    want, got = _split_list(expected), _split_list(answer)
    if len(want) != len(got):
        return False
    if Counter(want) == Counter(got):
        return True
    remaining = list(got)
    for item in want:  # greedy pairing is enough: items that match each other are equal values
        hit = next((g for g in remaining if _match_item(g, item)), None)
        if hit is None:
            return False
        remaining.remove(hit)
    return True


def _match_all(answer: str, expected: str) -> str | None:
    """Rules 1-6; the rule name or None."""
    if answer.strip() == expected.strip():
        return "exact"
    rule = _match_item(answer, expected)
    if rule:
        return rule
    if _match_unordered(answer, expected):
        return "unordered_list"
    return None


def match(answer: str, expected: str) -> str:
    """The name of the first rule under which answer equals expected, else 'mismatch'."""
    rule = _match_all(answer, expected)
    if rule:
        return rule
    alternatives = [a for a in _OR_RE.split(expected.strip()) if a.strip()]
    if len(alternatives) > 1 and any(_match_all(answer, alt) for alt in alternatives):
        return "alternative"
    return MISMATCH


def score(prediction_text: str, expected: str) -> Score:
    """Extract the answer from a generation and judge it against the expected answer."""
    answer = extract_answer(prediction_text)
    if answer is None:
        return Score(answer=None, correct=False, rule=NO_ANSWER)
    rule = match(answer, expected)
    return Score(answer=answer, correct=rule != MISMATCH, rule=rule)
