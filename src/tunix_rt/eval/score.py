r"""Answer extraction and matching: one recorded rule per decision.

The original judge compared raw generations to the expected answer character for character, so
every checkpoint scored 0. Here the model's answer is read from its first ``Answer:`` line and is
compared to the expected answer by the rules below, tried in order; the first that decides is
recorded (``Score.rule``), so every credit can be audited in predictions.jsonl. A rule never credits
an answer that a careful human grader would mark wrong; when in doubt the answer is wrong.
docs/scoring.md has the same rules with more examples.

Extraction
    The answer is the rest of the FIRST line of the completion that starts with ``Answer:``
    (case-insensitive; leading whitespace, markdown ``*#>-`` and ``Final`` allowed before it).
    Anything after that line is not the model's answer: a model without EOS often goes on to
    invent the next ``Question: ... Answer: ...``. An ``Answer:`` with nothing after it on its
    line takes the next non-empty line. No such line, or nothing after it, gives
    ``answer=None``, ``correct=False``, rule ``no_answer_line``; format compliance counts these.

Case
    An expected answer with a capital letter that does not start a word (``REASONING``, ``iPhone``,
    ``USA``) is about case: every comparison below then keeps case, so ``reasoning`` is wrong.
    Otherwise case is ignored (``paris`` = ``Paris``, ``new york`` = ``New York``).

Normalisation (``normalize``), used by every rule after ``exact`` except ``math_verify``
    lower case (unless the expected answer is about case); whitespace collapsed; wrapping quotes,
    backticks, ``*`` (markdown bold) and brackets stripped; trailing punctuation ``. , ; : ! ?``
    stripped; currency symbols ``$ € £ ¥`` removed; thousands separators removed (``1,000`` ->
    ``1000``, only a comma between a digit and exactly three digits, so ``1, 2, 3`` is untouched).

Units (checked before rules 2-6)
    When both sides hold exactly one number and both name a unit after it (or a currency sign),
    the units must be the same (spelling variants and plurals are one unit: ``km`` = ``kilometres``,
    ``day`` = ``days``, ``$`` = ``dollars``, ``km/h`` = ``kilometres per hour``) or no rule credits
    the pair: ``7 weeks`` is not ``7 days``, ``120 miles`` is not ``120 km``, ``$12`` is not ``€12``.
    Units are never converted (``1 week`` is not ``7 days``). A bare number is credited for a
    number with a unit (``120`` = ``120 km``, both ways); words before the number are not a unit.

Rules, in order
    1. ``exact``              answer == expected after stripping surrounding whitespace.
    2. ``normalized_text``    normalize(answer) == normalize(expected).
    3. ``math_verify``        both sides are one plain mathematical value in a small safe grammar
                              (a leading sign, then ``a/b`` or up to three factors among numbers,
                              ``\pi``, ``\sqrt{n}`` and ``\frac{..}{..}`` of those, optionally in
                              ``\boxed{}`` or ``$..$``; no operators, commas or spaces): math-verify
                              decides, and its verdict is final either way. ``12.0`` = ``12``,
                              ``1/2`` = ``0.5`` = ``\frac{1}{2}``, ``2\sqrt{2}`` = ``\sqrt{8}``, but
                              ``0.33`` != ``1/3`` and ``0.333333`` != ``1/3`` (decimals agree to 10
                              places or not at all). Expressions (``5-3``, ``2^3``), percentages and
                              lists are outside the grammar: an unevaluated expression is never
                              credited, and nothing math-verify is given can make sympy run long,
                              so its signal-based timeouts (main thread only) stay off.
    4. ``numeric``            both are whole numbers after normalisation and equal as exact
                              fractions (what reaches here is outside rule 3's grammar, e.g. has a
                              currency sign or 16+ digits: ``$1,234.50`` = ``1234.5``).
    5. ``numeric_with_units`` each side holds exactly one number (after taking the right-hand side
                              of its last ``=``), with any words or units around it, the numbers are
                              equal and the units agree: ``120 km`` = ``120``, ``180 degrees`` =
                              ``180``, ``x = 7`` = ``7``. Two numbers on one side never match
                              (``6 or 7``); lists (``,`` / ``;``) and an expected answer holding
                              ``or`` are left to rules 7 and 8.
    6. ``number_words``       rules 2-5 again after number words become digits on both sides:
                              ``ten`` = ``10``, ``twenty-one`` = ``21``, ``one hundred and five`` =
                              ``105``.
    7. ``ordered_list``       the expected answer is a bracketed tuple, ``(a, b)`` or ``[a, b]``:
                              the answer holds the same items in the same order, each compared by
                              rules 2-6: ``(2,3)`` = ``(2, 3)``, ``(3, 2)`` != ``(2, 3)``.
       ``unordered_list``     any other list (``,`` or ``;`` separated, last item may follow
                              ``and``, ``{}`` for a set) of two or more items: the answer holds the
                              same items, as many times each, in any order, each compared by rules
                              2-6: ``c, b, a`` = ``a, b, c``, ``{3, 2}`` = ``{2, 3}``.
    8. ``alternative``        the expected answer reads ``A or B``: the answer matches any one
                              alternative by rules 1-7. (Only the expected side splits: an answer
                              that hedges, ``6 or 7``, is not credited.)
    9. ``mismatch``           nothing matched.

Numbers are found with word boundaries, so ``12`` never matches ``120`` and ``1`` never matches
``-1`` (a ``-`` directly before a digit and not after a letter or digit is a sign).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from itertools import pairwise
from typing import Any

NO_ANSWER = "no_answer_line"
MISMATCH = "mismatch"
MATH_VERIFY = "math_verify"

# "Answer:" opening a line; markdown markers and "Final" may come before it.
_ANSWER_RE = re.compile(r"^[ \t*#>-]*(?:final[ \t]+)?answer[ \t*]*:\**", re.IGNORECASE | re.MULTILINE)
_CURRENCY_RE = re.compile(r"[$€£¥]")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_WRAP_CHARS = "\"'`*()[]{}<> "
_TRAILING_PUNCT = ".,;:!?"
# A sign counts only when it does not follow a letter, digit or dot ("5-3" is two numbers, 5 and 3).
_NUMBER = r"(?<![\w.])[-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:/\d+(?:\.\d+)?)?(?!\d)"
_NUMBER_RE = re.compile(_NUMBER)
_WHOLE_NUMBER_RE = re.compile(rf"^{_NUMBER}$")
_OR_RE = re.compile(r"\s+or\s+", re.IGNORECASE)
_LIST_SEP_RE = re.compile(r"[,;]")


@dataclass(frozen=True)
class Score:
    answer: str | None
    correct: bool
    rule: str


def extract_answer(text: str) -> str | None:
    """The rest of the first line opening with `Answer:`; None when absent or empty."""
    found = _ANSWER_RE.search(text or "")
    if found is None:
        return None
    answer = text[found.end() :].strip().splitlines()
    answer_line = answer[0].strip() if answer else ""
    return answer_line or None


def about_case(expected: str) -> bool:
    """Whether expected has a capital that does not start a word ('REASONING', 'iPhone', 'USA')."""
    return any(ch.isupper() and prev.isalpha() for prev, ch in pairwise(expected))


def normalize(text: str, fold: bool = True) -> str:
    """Lower case (when fold), collapse whitespace, drop wrappers, trailing punctuation, currency, thousands commas."""
    text = " ".join((text.lower() if fold else text).split())
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


def _right_of_equals(text: str) -> str:
    return text.rsplit("=", 1)[1] if "=" in text else text


def single_number(text: str) -> Fraction | None:
    """The one number in text (right of its last '='), with any words around it; None if 0 or 2+."""
    found = _NUMBER_RE.findall(_right_of_equals(text))
    if len(found) != 1:
        return None
    return parse_number(found[0])


# --- units -----------------------------------------------------------------------------------
# Spellings of one unit; anything not listed is its own unit (after a plural "s" is dropped).
_UNIT_ALIASES = {
    "$": "dollar", "€": "euro", "£": "pound", "¥": "yen", "%": "percent", "°": "degree",
    "usd": "dollar", "eur": "euro", "gbp": "pound", "jpy": "yen", "cents": "cent",
    "deg": "degree", "km": "kilometre", "kilometer": "kilometre", "kilometers": "kilometre",
    "m": "metre", "meter": "metre", "meters": "metre", "cm": "centimetre", "centimeter": "centimetre",
    "centimeters": "centimetre", "mm": "millimetre", "millimeter": "millimetre",
    "millimeters": "millimetre", "mi": "mile", "ft": "foot", "feet": "foot", "inches": "inch",
    "kg": "kilogram", "kgs": "kilogram", "g": "gram", "grams": "gram", "lb": "pound", "lbs": "pound",
    "l": "litre", "liter": "litre", "liters": "litre", "ml": "millilitre", "milliliter": "millilitre",
    "milliliters": "millilitre", "h": "hour", "hr": "hour", "hrs": "hour", "min": "minute",
    "mins": "minute", "s": "second", "sec": "second", "secs": "second", "mph": "mile hour",
    "kph": "kilometre hour", "kmh": "kilometre hour",
}  # fmt: skip
_UNIT_FILLER = {"per", "a", "an", "the", "of", "in"}
_UNIT_TOKEN_RE = re.compile(r"[^\W\d_]+|%|°")


def _canonical_unit(token: str) -> list[str]:
    if token in _UNIT_ALIASES:
        return _UNIT_ALIASES[token].split()
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        token = token[:-1]  # "days" -> "day", "miles" -> "mile"
    return [_UNIT_ALIASES.get(token, token)]


def units(text: str, fold: bool = True) -> tuple[str, ...] | None:
    """The unit named with text's one number ('120 km/h' -> ('kilometre', 'hour')); None without
    exactly one number, () for a bare number. Currency signs count as units; words before the
    number do not ('the answer is 7')."""
    text = _THOUSANDS_RE.sub("", _right_of_equals(text.lower() if fold else text))
    found = list(_NUMBER_RE.finditer(text))
    if len(found) != 1:
        return None
    names = [_UNIT_ALIASES[sign] for sign in _CURRENCY_RE.findall(text)]
    for token in _UNIT_TOKEN_RE.findall(text[found[0].end() :]):
        if token not in _UNIT_FILLER:
            names.extend(_canonical_unit(token))
    return tuple(dict.fromkeys(names))  # "$12 dollars" names one unit once


def units_conflict(answer: str, expected: str, fold: bool = True) -> bool:
    """Both sides name a unit for their one number, and not the same one ('7 weeks' vs '7 days')."""
    unit_a, unit_e = units(answer, fold), units(expected, fold)
    return bool(unit_a) and bool(unit_e) and unit_a != unit_e


# --- math-verify -----------------------------------------------------------------------------
# The grammar math-verify is given: a leading sign, then a/b or up to three factors among numbers
# (at most 15 digits a part), \pi, \sqrt{number} and \frac{..}{..} of those, optionally in \boxed{};
# no operators, no commas, no spaces. No input in it can make sympy work for
# long (a tower like 9^9^9 cannot be written), which is why its signal-based timeouts can stay
# off: they fail outside the main thread, and the dashboard scores in worker threads.
_MATH_NUMBER = r"(?<![\d.])(?:\d{1,15}(?:\.\d{1,15})?|\.\d{1,15})(?![\d.])"
_MATH_ATOM = rf"(?:{_MATH_NUMBER}|\\pi|\\sqrt\{{{_MATH_NUMBER}\}})"
_MATH_FRAC_ARG = rf"{_MATH_ATOM}{{1,2}}"
_MATH_TERM = rf"(?:{_MATH_ATOM}|\\[dt]?frac\{{{_MATH_FRAC_ARG}\}}\{{{_MATH_FRAC_ARG}\}}){{1,3}}"
_MATH_SCALAR = rf"[-+]?(?:{_MATH_NUMBER}/{_MATH_NUMBER}|{_MATH_TERM})"
_MATH_SCALAR_RE = re.compile(rf"{_MATH_SCALAR}|\\boxed\{{{_MATH_SCALAR}\}}")
_MATH_MAX_CHARS = 80
_MATH_FLOAT_ROUNDING = 10  # decimals must agree to 10 places: 0.333333 is not 1/3


def math_form(text: str) -> str | None:
    """text as a scalar in math-verify's safe grammar (thousands commas, $..$, ** and a trailing
    '.' removed), or None when it is anything else."""
    text = text.strip().strip("*`").strip()
    if len(text) > 1 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$")
    elif text.startswith("\\(") and text.endswith("\\)"):
        text = text[2:-2]
    text = _THOUSANDS_RE.sub("", text.strip()).rstrip(".").strip()
    if len(text) > _MATH_MAX_CHARS or not _MATH_SCALAR_RE.fullmatch(text):
        return None
    return text


class _QuietTimeoutWarning(logging.Filter):
    """math-verify warns once that its timeout is off; here the grammar bounds the work instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


@lru_cache(maxsize=1)
def _math_verify() -> tuple[Any, Any]:
    # Imported on first use: sympy takes a second or two to import and most commands never score.
    from math_verify import parse, verify

    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_QuietTimeoutWarning())
    return parse, verify


def math_verify_equal(answer: str, expected: str) -> bool | None:
    """math-verify's verdict when both sides are in the safe grammar and parse; else None."""
    form_a, form_e = math_form(answer), math_form(expected)
    if form_a is None or form_e is None:
        return None
    parse, verify = _math_verify()
    gold = parse(f"${form_e}$", parsing_timeout=None)
    pred = parse(f"${form_a}$", parsing_timeout=None)
    if not gold or not pred:
        return None
    return bool(verify(gold, pred, float_rounding=_MATH_FLOAT_ROUNDING, timeout_seconds=None))


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
_WORD_RE = re.compile(r"[a-z]+(?:-[a-z]+)*|[^a-z]+", re.IGNORECASE)


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
    'one two' stays two numbers. Other words keep their case.
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

    for token in _WORD_RE.findall(text):
        parts = token.lower().split("-")
        if all(part in _NUMBER_WORDS for part in parts):
            for part in parts:
                if not _can_follow(run[-1] if run else None, part):
                    flush()
                    out.append(" ")
                held.clear()
                run.append(part)
        elif run and (token.isspace() or (token.lower() == "and" and run[-1] in _SCALES)):
            held.append(token)
        else:
            flush()
            out.append(token)
    flush()
    return " ".join("".join(out).split())


# --- matching --------------------------------------------------------------------------------
def _match_basic(answer: str, expected: str, fold: bool) -> str | None:
    """Rules 2-5 after the units check; the rule name or None."""
    if units_conflict(answer, expected, fold):
        return None
    norm_a, norm_e = normalize(answer, fold), normalize(expected, fold)
    if norm_a == norm_e:
        return "normalized_text"
    verdict = math_verify_equal(answer, expected)
    if verdict is not None:
        return MATH_VERIFY if verdict else None  # its "no" is final: no hand rule overrides it
    num_a, num_e = parse_number(norm_a), parse_number(norm_e)
    if num_a is not None and num_e is not None:
        return "numeric" if num_a == num_e else None
    if _OR_RE.search(norm_e) or _LIST_SEP_RE.search(norm_a + norm_e):
        # "6 or six" is the alternative rule's to judge, and a list is the list rules' ("b, 2" holds
        # one number but is not "a, 2"), not a number with units.
        return None
    unit_a, unit_e = single_number(norm_a), single_number(norm_e)
    if unit_a is not None and unit_e is not None and unit_a == unit_e:
        return "numeric_with_units"
    return None


def _match_item(answer: str, expected: str, fold: bool) -> str | None:
    """Rules 2-6 on two strings."""
    rule = _match_basic(answer, expected, fold)
    if rule:
        return rule
    if _match_basic(words_to_digits(answer), words_to_digits(expected), fold):
        return "number_words"
    return None


_BRACKETS = {"(": ")", "[": "]"}


def _is_tuple(expected: str) -> bool:
    """A bracketed expected answer, '(2, 3)' or '[a, b]': an ordered tuple, not a set."""
    text = expected.strip().strip("*`").strip()
    return len(text) > 1 and _BRACKETS.get(text[0]) == text[-1]


def _split_list(text: str, fold: bool) -> list[str]:
    text = normalize(text, fold)
    items = re.split(r"\s*[,;]\s*(?:and\s+)?|\s+and\s+", text)
    return [item for item in (normalize(i, fold) for i in items) if item]


def _is_list(expected: str, fold: bool) -> bool:
    norm = normalize(expected, fold)
    return bool(re.search(r"[,;]", norm)) and len(_split_list(expected, fold)) >= 2


def _match_ordered(got: list[str], want: list[str], fold: bool) -> bool:
    return len(got) == len(want) and all(_match_item(g, w, fold) for g, w in zip(got, want, strict=True))


def _match_unordered(got: list[str], want: list[str], fold: bool) -> bool:
    if len(want) != len(got):
        return False
    if Counter(want) == Counter(got):
        return True
    remaining = list(got)
    for item in want:  # greedy pairing is enough: items that match each other are equal values
        hit = next((g for g in remaining if _match_item(g, item, fold)), None)
        if hit is None:
            return False
        remaining.remove(hit)
    return True


def _match_list(answer: str, expected: str, fold: bool) -> str | None:
    """Rule 7: 'ordered_list' for a bracketed tuple, 'unordered_list' for any other list."""
    if not _is_list(expected, fold):
        return None
    got, want = _split_list(answer, fold), _split_list(expected, fold)
    if _is_tuple(expected):
        return "ordered_list" if _match_ordered(got, want, fold) else None
    return "unordered_list" if _match_unordered(got, want, fold) else None


def _match_all(answer: str, expected: str) -> str | None:
    """Rules 1-7; the rule name or None."""
    if answer.strip() == expected.strip():
        return "exact"
    fold = not about_case(expected)
    return _match_item(answer, expected, fold) or _match_list(answer, expected, fold)


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
