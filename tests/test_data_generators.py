"""Bundled generators: determinism, composition, and every answer recomputed independently.

The reference functions below recompute answers from meta["inputs"] with plain Python; they do
not call any generator helper, so a bug in a generator cannot hide behind itself.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections import Counter
from decimal import Decimal
from fractions import Fraction

import pytest

from tunix_rt.data.build import build_dataset
from tunix_rt.data.generators import dev_reasoning_v2, reasoning_mix
from tunix_rt.data.loader import load_traces
from tunix_rt.data.schema import ReasoningTrace


@pytest.fixture(scope="session")
def mix_default() -> list[dict]:
    return reasoning_mix.generate()


@pytest.fixture(scope="session")
def dev() -> list[dict]:
    return dev_reasoning_v2.generate()


def _is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, math.isqrt(n) + 1))


def _weekday(start: str, days: int) -> str:
    monday = datetime.date(2024, 1, 1)  # a Monday
    names = [(monday + datetime.timedelta(days=k)).strftime("%A") for k in range(7)]
    return (monday + datetime.timedelta(days=names.index(start) + days)).strftime("%A")


def _frac(f: Fraction) -> str:
    return f"{f.numerator}/{f.denominator}"


def _arith(a, b, op) -> str:
    a, b = Decimal(str(a)), Decimal(str(b))
    value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]
    return format(value.normalize(), "f")


def _expr(expr: str) -> str:
    assert re.fullmatch(r"[0-9 +\-×÷()]+", expr)
    value = eval(expr.replace("×", "*").replace("÷", "//"))  # safe: digits and operators only
    return str(value)


SMALL = {
    "hours": 60,
    "minutes": 60,
    "days": 24,
    "weeks": 7,
    "years": 12,
    "meters": 100,
    "kilometers": 1000,
    "centimeters": 10,
    "feet": 12,
    "yards": 3,
    "kilograms": 1000,
    "pounds": 16,
    "liters": 1000,
    "gallons": 4,
    "quarts": 2,
    "pints": 2,
    "tons": 1000,
}
BIG_OF = {
    "minutes": "hours",
    "seconds": "minutes",
    "hours": "days",
    "days": "weeks",
    "months": "years",
    "centimeters": "meters",
    "meters": "kilometers",
    "millimeters": "centimeters",
    "inches": "feet",
    "feet": "yards",
    "grams": "kilograms",
    "ounces": "pounds",
    "milliliters": "liters",
    "quarts": "gallons",
    "pints": "quarts",
    "cups": "pints",
    "kilograms": "tons",
}
POLYGON_SIDES = {"pentagon": 5, "hexagon": 6, "octagon": 8, "decagon": 10}


def reference_answer(category: str, task: str, x: dict) -> str:
    if category in ("addition", "subtraction", "multiplication", "division", "decimals", "formatting"):
        return _arith(x["a"], x["b"], x["op"])
    if category == "powers":
        return str(x["base"] ** x["exp"])
    if category == "square_roots":
        return str(math.isqrt(x["n"]))
    if category == "factorials":
        return str(math.factorial(x["n"]))
    if category == "order_of_operations":
        return _expr(x["expr"])
    if category == "percentages":
        return str(x["n"] * x["p"] // 100) if x["kind"] == "of" else str(100 * x["a"] // x["w"])
    if category == "discounts":
        sign = -1 if x["kind"] == "discount" else 1
        return str(x["price"] + sign * x["price"] * x["p"] // 100)
    if category == "costs":
        return {
            "total": lambda: x["each"] * x["count"],
            "unit": lambda: x["total"] // x["count"],
            "change": lambda: x["paid"] - x["each"] * x["count"],
        }[x["kind"]]().__str__()
    if category == "sharing":
        return str(x["total"] // x["k"] if x["kind"] == "share" else x["total"] % x["k"])
    if category == "ages":
        return str(
            {
                "older": x["age"] + x["d"],
                "younger": x["age"] - x["d"],
                "future": x["age"] + x["d"],
                "times": x["age"] * x["d"],
            }[x["kind"]]
        )
    if category == "work_rates":
        return str(
            {
                "total": lambda: x["r"] * x["h"],
                "time": lambda: x["t"] // x["r"],
                "combined": lambda: (x["r"] + x["s"]) * x["h"],
            }[x["kind"]]()
        )
    if category == "distance_speed_time":
        return str(
            {
                "distance": lambda: x["speed"] * x["time"],
                "speed": lambda: x["distance"] // x["time"],
                "time": lambda: x["distance"] // x["speed"],
            }[x["kind"]]()
        )
    if category == "unit_conversion":
        if x["from"] in SMALL and BIG_OF.get(x["to"]) == x["from"]:
            return str(x["value"] * SMALL[x["from"]])
        assert BIG_OF[x["from"]] == x["to"]
        return str(x["value"] // SMALL[x["to"]])
    if category == "perimeter":
        s = x["sides"]
        return str(
            {"rectangle": 2 * sum(s), "square": 4 * s[0], "triangle": sum(s), "regular": s[0] * s[-1]}[
                x["shape"]
            ]
        )
    if category == "area":
        d = x["dims"]
        return str(
            {"rectangle": d[0] * d[-1], "square": d[0] ** 2, "triangle": d[0] * d[-1] // 2}[x["shape"]]
        )
    if category == "volume":
        return str(math.prod(x["dims"]) if x["shape"] == "box" else x["dims"][0] ** 3)
    if category == "angles":
        total = {"triangle": 180, "complement": 90, "supplement": 180, "point": 360}[x["kind"]]
        return str(total - sum(x["known"]))
    if category == "polygons":
        n = x["n"]
        return str({"sides": n, "angle_sum": (n - 2) * 180, "interior": (n - 2) * 180 // n}[x["kind"]])
    if category == "primes":
        return "Yes" if _is_prime(x["n"]) else "No"
    if category == "next_prime":
        m = x["n"] + 1
        while not _is_prime(m):
            m += 1
        return str(m)
    if category == "gcd_lcm":
        return str(math.gcd(x["a"], x["b"]) if x["kind"] == "gcd" else math.lcm(x["a"], x["b"]))
    if category == "divisibility":
        return "Yes" if x["n"] % x["k"] == 0 else "No"
    if category == "remainders":
        return str(x["n"] % x["k"])
    if category == "sequences":
        if x["kind"] == "nth":
            return str(x["first"] + (x["k"] - 1) * x["d"])
        t = x["terms"]
        if t[2] - t[1] == t[1] - t[0]:
            return str(t[-1] + t[1] - t[0])
        return str(t[-1] * t[1] // t[0])
    if category == "calendar":
        return _weekday(x["start"], x["days"])
    if category == "statistics":
        v = x["values"]
        if x["kind"] == "mean":
            assert sum(v) % len(v) == 0
            return str(sum(v) // len(v))
        return str(sorted(v)[len(v) // 2] if x["kind"] == "median" else max(v) - min(v))
    if category == "probability":
        return _frac(Fraction(x["favorable"], x["total"]))
    if category == "linear_equations":
        return str(Fraction(x["c"] - x["b"], x["a"]))
    if category == "strings":
        if x["kind"] == "reverse":
            return x["text"][::-1]
        if x["kind"] == "count":
            return str(x["text"].count(x["letter"]))
        if x["kind"] == "length":
            return str(len(x["text"]))
        return min(x["words"])
    raise AssertionError(f"no reference for {category}")


def test_mix_every_answer_recomputed(mix_default):
    families = Counter(r["meta"]["category"] for r in mix_default)
    assert len(families) >= 20
    for record in mix_default:
        meta = record["meta"]
        expected = reference_answer(meta["category"], meta["task_type"], meta["inputs"])
        assert record["final_answer"] == expected, record
        assert expected in record["steps"][-1]["content"], record


def test_mix_shape_and_uniqueness(mix_default):
    assert len(mix_default) == reasoning_mix.DEFAULT_SIZE
    prompts = [reasoning_mix.normalise_prompt(r["prompt"]) for r in mix_default]
    assert len(set(prompts)) == len(prompts)
    assert [r["meta"]["index"] for r in mix_default] == list(range(len(mix_default)))
    for r in mix_default[:2000]:
        ReasoningTrace.model_validate(r)
        assert {"category", "task_type", "phrasing", "seed", "index", "inputs"} <= set(r["meta"])
    # Small-model friendly: short answers, short texts.
    assert sum(len(r["final_answer"]) <= 6 for r in mix_default) / len(mix_default) > 0.95
    longest = max(len(r["prompt"]) + sum(len(s["content"]) + 4 for s in r["steps"]) for r in mix_default)
    assert longest < 700


def test_mix_phrasings_vary_within_families(mix_default):
    phrasings: dict[str, set[int]] = {}
    for r in mix_default:
        phrasings.setdefault(r["meta"]["category"], set()).add(r["meta"]["phrasing"])
    assert all(len(p) >= 2 for p in phrasings.values()), phrasings


def test_mix_deterministic_and_seeded():
    a = json.dumps(reasoning_mix.generate(7, 300))
    assert a == json.dumps(reasoning_mix.generate(7, 300))
    assert a != json.dumps(reasoning_mix.generate(8, 300))


def test_build_bytes_identical(tmp_path):
    one = build_dataset("reasoning-mix", tmp_path / "a", size=1500)
    two = build_dataset("reasoning-mix", tmp_path / "b", size=1500)
    assert one.path.read_bytes() == two.path.read_bytes()
    assert one.manifest["sha256"] == two.manifest["sha256"]


def test_dev_composition(dev):
    meta = [r["meta"] for r in dev]
    assert len(dev) == 550
    assert Counter(m["category"] for m in meta) == {
        "reasoning": 385,
        "synthetic": 110,
        "golden_style": 35,
        "edge_case": 20,
    }
    reasoning = Counter(m["task_type"] for m in meta if m["category"] == "reasoning")
    assert len(reasoning) == 6 and min(reasoning.values()) >= 64
    assert set(Counter(m["task_type"] for m in meta if m["category"] == "synthetic")) == {
        "arithmetic",
        "string_reverse",
        "string_sort",
        "logic",
    }
    assert set(Counter(m["task_type"] for m in meta if m["category"] == "golden_style")) == {
        "text_repeat",
        "word_count",
        "uppercase",
    }
    assert len({m["task_type"] for m in meta if m["category"] == "edge_case"}) >= 8
    assert len({r["prompt"] for r in dev}) == 550


def test_dev_defects_fixed(dev):
    for r in dev:
        m, x, answer = r["meta"], r["meta"]["inputs"], r["final_answer"]
        text = " ".join(s["content"] for s in r["steps"])
        assert "a fis)" not in r["prompt"] and not answer.startswith("-")
        if m["task_type"] in ("subtract_borrow", "add_tens_ones", "multiply_partials", "arithmetic"):
            assert answer == _arith(x["a"], x["b"], x["op"])
            assert answer in r["steps"][-1]["content"]
        if m["task_type"] == "subtract_borrow":
            assert x["a"] >= x["b"]
            if x["a"] % 10 < x["b"] % 10:
                assert "borrow" in text
        if m["task_type"] == "percent_of":
            assert answer == format((Decimal(x["percent"]) * x["base"] / 100).normalize(), "f")
        if m["task_type"] == "train_distance":
            assert answer == f"{x['speed'] * x['hours']} km"
        if m["task_type"] == "cost_per_item":
            assert x["total_cents"] % x["items"] == 0
        if m["task_type"] == "word_count":
            assert answer == str(x["sentence"].lower().split().count(x["target"]))
        if m["task_type"] in ("string_reverse",):
            assert answer == x["text"][::-1]
        if m["task_type"] == "string_sort":
            assert answer == "".join(sorted(x["text"]))
    word_counts = {r["final_answer"] for r in dev if r["meta"]["task_type"] == "word_count"}
    assert len(word_counts) >= 3
    assert {r["final_answer"] for r in dev if r["meta"]["task_type"] == "logic"} == {"Yes", "No"}


def test_dev_build_manifest(tmp_path):
    result = build_dataset("dev-reasoning-v2", tmp_path / "d")
    loaded = load_traces(result.path)
    assert len(loaded.traces) == 550 and loaded.duplicates == 0
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["sha256"] == loaded.sha256
    assert manifest["count"] == 550 and manifest["seed"] == 42 and manifest["key"] == "dev-reasoning-v2"
    assert manifest["categories"]["reasoning"] == 385
    assert set(manifest["stats"]) == {"steps", "prompt_chars_mean", "answer_chars_mean"}
