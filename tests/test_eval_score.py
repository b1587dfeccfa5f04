"""Answer extraction and matching rules: the table the judge is held to."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunix_rt.eval.score import extract_answer, match, normalize, score, words_to_digits

EXTRACT = [
    ("1. Add 2 and 2.\nAnswer: 4", "4"),
    ("Answer: 3\nAnswer: 5", "3"),  # the first Answer: line is the answer; later ones are not
    ("answer: paris", "paris"),
    ("Answer:   42  \n\nQuestion: next one", "42"),  # only the answer line, not the ramble below
    ("Final Answer: 7", "7"),
    ("no answer here", None),
    ("Answer:   \n", None),  # an empty answer line is no answer
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), EXTRACT)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


MATCHES = [
    # (answer, expected, rule)
    ("42", "42", "exact"),
    ("Paris", "paris", "normalized_text"),
    ("  PARIS. ", "Paris", "normalized_text"),
    ("**42**", "42", "normalized_text"),
    ("'nosaer'", "nosaer", "normalized_text"),
    ("$31.5", "31.5", "normalized_text"),
    ("1,000", "1000", "normalized_text"),
    ("$1,234.50", "1234.5", "numeric"),
    ("12.0", "12", "math_verify"),
    ("12.00", "12", "math_verify"),
    ("0.5", "1/2", "math_verify"),
    ("1/2", "0.5", "math_verify"),
    ("007", "7", "math_verify"),
    ("-3", "-3.0", "math_verify"),
    ("31.50", "$31.5", "numeric"),
    ("120 km", "120", "numeric_with_units"),
    ("180 degrees", "180", "numeric_with_units"),
    ("120", "120 km", "numeric_with_units"),
    ("x = 7", "7", "numeric_with_units"),
    ("5 - 3 = 2", "2", "numeric_with_units"),
    ("The answer is 63.", "63", "numeric_with_units"),
    ("$12 dollars", "12", "numeric_with_units"),
    ("20%", "20", "numeric_with_units"),
    ("ten", "10", "number_words"),
    ("Ten.", "10", "number_words"),
    ("twenty-one", "21", "number_words"),
    ("twenty one apples", "21", "number_words"),
    ("one hundred and five", "105", "number_words"),
    ("7", "seven", "number_words"),
    ("c, b, a", "a, b, c", "unordered_list"),
    ("3, 1, 2", "1, 2, 3", "unordered_list"),
    ("[banana, apple]", "apple, banana", "unordered_list"),
    ("blue and red", "red, blue", "unordered_list"),
    ("2.0, 1", "1, 2", "unordered_list"),
    ("6", "6 or six", "alternative"),
    ("six", "6 or six", "alternative"),
    ("Friday", "Fri or Friday", "alternative"),
    ("a, b, c", "a, b, c", "exact"),
    ("1/216", "1/216", "exact"),
]


@pytest.mark.parametrize(("answer", "expected", "rule"), MATCHES)
def test_matches(answer: str, expected: str, rule: str) -> None:
    assert match(answer, expected) == rule


MISMATCHES = [
    ("12", "120"),
    ("120", "12"),
    ("1", "-1"),
    ("-1", "1"),
    ("12.5", "12"),
    ("13 apples", "3"),
    ("6 or 7", "6"),  # a hedge is not credited
    ("between 100 and 120", "120"),
    ("Parisian", "Paris"),
    ("The capital is Paris", "Paris"),  # text answers must be the answer, not contain it
    ("a, b", "a, b, c"),
    ("a, b, c, d", "a, b, c"),
    ("a, a, b", "a, b, b"),
    ("1/216", "1/2"),
    ("0.33", "1/3"),
    ("3-digit", "30"),
    ("eleven", "1"),
    ("one two", "12"),
    ("seven", "6 or six"),
    ("", "0"),
    ("100,200", "100, 200"),  # a thousands separator, so not the list
    ("nosaer", "reason"),
]


@pytest.mark.parametrize(("answer", "expected"), MISMATCHES)
def test_mismatches(answer: str, expected: str) -> None:
    assert match(answer, expected) == "mismatch"


def test_score_records_answer_and_rule() -> None:
    s = score("1. 60 * 2.5 = 150\nAnswer: 150 km", "150")
    assert (s.answer, s.correct, s.rule) == ("150 km", True, "numeric_with_units")
    s = score("1. 60 * 2.5 = 150", "150")
    assert (s.answer, s.correct, s.rule) == (None, False, "no_answer_line")
    s = score("Answer: 151", "150")
    assert (s.answer, s.correct, s.rule) == ("151", False, "mismatch")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Hello   World!  ", "hello world"),
        ("€1,234,567.", "1234567"),
        ("1, 2, 3", "1, 2, 3"),
        ('"quoted"', "quoted"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one and two", "1 and 2"),
        ("one two three", "1 2 3"),
        ("two thousand three hundred and forty-five", "2345"),
        ("three hundred thousand", "300000"),
        ("ninety nine bottles", "99 bottles"),
    ],
)
def test_words_to_digits(text: str, expected: str) -> None:
    assert words_to_digits(text) == expected


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_every_integer_matches_itself_and_not_its_neighbour(n: int) -> None:
    assert score(f"Answer: {n}", str(n)).correct
    assert score(f"Answer: {n:,}", str(n)).correct
    assert not score(f"Answer: {n + 1}", str(n)).correct
    assert not score(f"Answer: {n}0", str(n)).correct or n == 0
