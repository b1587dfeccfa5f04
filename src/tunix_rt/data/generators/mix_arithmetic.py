"""reasoning-mix families: integer and decimal arithmetic.

Every family returns an Item whose steps compute the answer in short, regular lines
("47 + 30 = 77") that a small from-scratch model can learn digit by digit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Item:
    task_type: str
    phrasing: int
    prompt: str
    steps: list[str]
    answer: str
    inputs: dict[str, Any]


def pick(rng: random.Random, templates: list[str], **values: Any) -> tuple[int, str]:
    """Choose a phrasing; returns (phrasing id, prompt)."""
    n = rng.randrange(len(templates))
    return n, templates[n].format(**values)


def modest(rng: random.Random) -> int:
    """Mostly 2-digit numbers, some 1- and 3-digit ones."""
    digits = rng.choices([1, 2, 3], weights=[2, 5, 3])[0]
    return rng.randint(10 ** (digits - 1) if digits > 1 else 2, 10**digits - 1)


def add_steps(a: int, b: int) -> list[str]:
    tens = b - b % 10
    if tens == 0 or b % 10 == 0:
        return [f"{a} + {b} = {a + b}"]
    return [f"{a} + {tens} = {a + tens}", f"{a + tens} + {b % 10} = {a + b}"]


def sub_steps(a: int, b: int) -> list[str]:
    tens = b - b % 10
    if tens == 0 or b % 10 == 0:
        return [f"{a} - {b} = {a - b}"]
    return [f"{a} - {tens} = {a - tens}", f"{a - tens} - {b % 10} = {a - b}"]


def mul_steps(a: int, b: int) -> list[str]:
    """Partial products over the digits of the smaller factor."""
    if a < b:
        a, b = b, a
    if b < 10:
        if a < 10 or a % 10 == 0:
            return [f"{a} × {b} = {a * b}"]
        tens = a - a % 10
        return [
            f"{tens} × {b} = {tens * b}",
            f"{a % 10} × {b} = {a % 10 * b}",
            f"{tens * b} + {a % 10 * b} = {a * b}",
        ]
    tens = b - b % 10
    steps = [f"{a} × {tens} = {a * tens}"]
    if b % 10:
        steps += [f"{a} × {b % 10} = {a * (b % 10)}", f"{a * tens} + {a * (b % 10)} = {a * b}"]
    return steps


def addition(rng: random.Random) -> Item:
    a, b = modest(rng), modest(rng)
    n, prompt = pick(
        rng,
        [
            "What is {a} + {b}?",
            "Add {a} and {b}.",
            "Calculate {a} plus {b}.",
            "Find the sum of {a} and {b}.",
            "{a} + {b} = ?",
        ],
        a=a,
        b=b,
    )
    return Item("add", n, prompt, add_steps(a, b), str(a + b), {"a": a, "b": b, "op": "+"})


def subtraction(rng: random.Random) -> Item:
    a, b = sorted((modest(rng), modest(rng)), reverse=True)
    n, prompt = pick(
        rng,
        [
            "What is {a} - {b}?",
            "Subtract {b} from {a}.",
            "Find the difference between {a} and {b}.",
            "Take {b} away from {a}.",
            "{a} - {b} = ?",
        ],
        a=a,
        b=b,
    )
    return Item("sub", n, prompt, sub_steps(a, b), str(a - b), {"a": a, "b": b, "op": "-"})


def multiplication(rng: random.Random) -> Item:
    a = rng.randint(2, 99)
    b = rng.randint(2, 12) if rng.random() < 0.6 else rng.randint(11, 40)
    n, prompt = pick(
        rng,
        [
            "What is {a} × {b}?",
            "Multiply {a} by {b}.",
            "Calculate {a} times {b}.",
            "Find the product of {a} and {b}.",
            "What is {a} * {b}?",
        ],
        a=a,
        b=b,
    )
    return Item("mul", n, prompt, mul_steps(a, b), str(a * b), {"a": a, "b": b, "op": "*"})


def division(rng: random.Random) -> Item:
    b, q = rng.randint(2, 12), rng.randint(2, 60)
    a = b * q
    n, prompt = pick(
        rng,
        [
            "What is {a} ÷ {b}?",
            "Divide {a} by {b}.",
            "How many times does {b} go into {a}?",
            "Calculate {a} divided by {b}.",
            "What is {a} / {b}?",
        ],
        a=a,
        b=b,
    )
    if q < 10:
        steps = [f"{b} × {q} = {a}", f"So {a} ÷ {b} = {q}"]
    else:
        big = q - q % 10
        steps = [f"{b} × {big} = {b * big}", f"{a} - {b * big} = {a - b * big}"]
        if q % 10:
            steps.append(f"{b} × {q % 10} = {a - b * big}")
        steps.append(f"{big} + {q % 10} = {q}, so {a} ÷ {b} = {q}")
    return Item("div", n, prompt, steps, str(q), {"a": a, "b": b, "op": "/"})


def _dec(tenths: int) -> str:
    return str(Decimal(tenths) / 10)


def decimals(rng: random.Random) -> Item:
    op = rng.choice("+-*")
    x, y = rng.randint(1, 199), rng.randint(1, 99)
    if op == "*":
        k = rng.randint(2, 9)
        a, b = _dec(x), str(k)
        steps = [f"{a} is {x} tenths", f"{x} × {k} = {x * k} tenths", f"{x * k} tenths = {_dec(x * k)}"]
        answer = _dec(x * k)
    else:
        if op == "-" and x < y:
            x, y = y, x
        a, b = _dec(x), _dec(y)
        r = x + y if op == "+" else x - y
        steps = [f"In tenths: {x} {op} {y} = {r}", f"{r} tenths = {_dec(r)}"]
        answer = _dec(r)
    n, prompt = pick(
        rng,
        ["What is {a} {op} {b}?", "Calculate {a} {op} {b}.", "Work out {a} {op} {b}."],
        a=a,
        b=b,
        op="×" if op == "*" else op,
    )
    return Item(f"decimal_{op}", n, prompt, steps, answer, {"a": a, "b": b, "op": op})


def powers(rng: random.Random) -> Item:
    exp = rng.choice([2, 2, 3, 3, 4])
    base = rng.randint(2, {2: 25, 3: 12, 4: 7}[exp])
    words = {2: "squared", 3: "cubed", 4: "to the power of 4"}
    n, prompt = pick(
        rng,
        ["What is {b}^{e}?", "Calculate {b} to the power of {e}.", "What is {b} {w}?", "Evaluate {b}^{e}."],
        b=base,
        e=exp,
        w=words[exp],
    )
    steps = [f"{base}^{exp} = " + " × ".join([str(base)] * exp)]
    value = base
    for _ in range(exp - 1):
        steps.append(f"{value} × {base} = {value * base}")
        value *= base
    return Item("power", n, prompt, steps, str(value), {"base": base, "exp": exp})


def square_roots(rng: random.Random) -> Item:
    r = rng.randint(2, 40)
    n, prompt = pick(
        rng,
        [
            "What is the square root of {n}?",
            "Find √{n}.",
            "What is √{n}?",
            "Which whole number multiplied by itself gives {n}?",
        ],
        n=r * r,
    )
    steps = [f"{r} × {r} = {r * r}", f"So √{r * r} = {r}"]
    return Item("sqrt", n, prompt, steps, str(r), {"n": r * r})


def factorials(rng: random.Random) -> Item:
    k = rng.randint(2, 8)
    n, prompt = pick(
        rng,
        [
            "What is {k}!?",
            "Calculate {k} factorial.",
            "Find the value of {k}!.",
            "What is the factorial of {k}?",
        ],
        k=k,
    )
    steps, value = [], 1
    for m in range(2, k + 1):
        steps.append(f"{value} × {m} = {value * m}")
        value *= m
    return Item("factorial", n, prompt, steps, str(value), {"n": k})


def order_of_operations(rng: random.Random) -> Item:
    a, b, c = rng.randint(2, 20), rng.randint(2, 12), rng.randint(2, 12)
    form = rng.randrange(5)
    if form == 0:
        expr, steps, value = (
            f"{a} + {b} × {c}",
            [f"{b} × {c} = {b * c}", f"{a} + {b * c} = {a + b * c}"],
            a + b * c,
        )
    elif form == 1:
        expr, steps, value = (
            f"({a} + {b}) × {c}",
            [f"{a} + {b} = {a + b}", f"{a + b} × {c} = {(a + b) * c}"],
            (a + b) * c,
        )
    elif form == 2:
        a = max(a, 2)
        big = b * c + a
        expr, steps, value = f"{big} - {b} × {c}", [f"{b} × {c} = {b * c}", f"{big} - {b * c} = {a}"], a
    elif form == 3:
        prod = b * c
        expr, steps, value = f"{a} + {prod} ÷ {c}", [f"{prod} ÷ {c} = {b}", f"{a} + {b} = {a + b}"], a + b
    else:
        c = min(c, a * b - 1)  # keep the result positive: the prompt does not ask for negatives
        expr = f"{a} × {b} - {c}"
        steps, value = [f"{a} × {b} = {a * b}", f"{a * b} - {c} = {a * b - c}"], a * b - c
    n, prompt = pick(
        rng,
        ["Evaluate: {x}", "What is {x}?", "Compute {x}.", "Calculate {x} using the order of operations."],
        x=expr,
    )
    return Item(f"form{form}", n, prompt, steps, str(value), {"expr": expr})
