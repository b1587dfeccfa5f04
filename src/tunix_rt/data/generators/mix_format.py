"""reasoning-mix families: formatting robustness (number words, noise, odd case) and strings."""

from __future__ import annotations

import random

from tunix_rt.data.generators.mix_arithmetic import Item, add_steps, mul_steps, pick, sub_steps

ONES = [
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
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
OP_WORDS = {"+": "plus", "-": "minus", "*": "times"}
WORDS = [
    "apple",
    "river",
    "planet",
    "garden",
    "window",
    "silver",
    "pencil",
    "rocket",
    "banana",
    "forest",
    "candle",
    "mirror",
    "yellow",
    "orange",
    "tunnel",
    "button",
    "letter",
    "summer",
    "winter",
    "butter",
    "paper",
    "stone",
    "cloud",
    "tiger",
    "horse",
    "lemon",
    "music",
    "table",
    "chair",
    "bread",
    "grape",
    "night",
    "light",
    "sugar",
    "pepper",
    "cookie",
    "basket",
    "bottle",
    "little",
    "puzzle",
    "banner",
    "moon",
    "star",
    "sea",
    "book",
    "tree",
]


def number_words(n: int) -> str:
    """English words for 0..99 ("forty-two")."""
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + (f"-{ONES[ones]}" if ones else "")


def _compute(a: int, b: int, op: str) -> tuple[list[str], int]:
    if op == "+":
        return add_steps(a, b), a + b
    if op == "-":
        return sub_steps(a, b), a - b
    return mul_steps(a, b), a * b


def _odd_case(rng: random.Random, text: str) -> str:
    style = rng.randrange(3)
    if style == 0:
        return text.upper()
    if style == 1:
        return text.lower()
    return "".join(ch.upper() if k % 2 else ch.lower() for k, ch in enumerate(text))


def formatting(rng: random.Random) -> Item:
    op = rng.choice("+-*")
    a, b = rng.randint(2, 60), rng.randint(2, 30) if op != "*" else rng.randint(2, 12)
    if op == "-" and a < b:
        a, b = b, a
    steps, value = _compute(a, b, op)
    sym = {"*": "×"}.get(op, op)
    style = rng.randrange(4)
    if style == 0:
        n, prompt = pick(
            rng,
            ["What is {a} {w} {b}?", "Compute {a} {w} {b}.", "how much is {a} {w} {b}"],
            a=number_words(a),
            b=number_words(b),
            w=OP_WORDS[op],
        )
        steps = [f"{number_words(a)} {OP_WORDS[op]} {number_words(b)} means {a} {sym} {b}", *steps]
        task = "number_words"
    elif style == 1:
        n, prompt = pick(
            rng,
            ["What is {a} {s} {b}???", "Quick!!! {a} {s} {b} = ?!", "...{a} {s} {b}...?"],
            a=a,
            b=b,
            s=sym,
        )
        steps = [f"Ignore the extra punctuation: {a} {sym} {b}", *steps]
        task = "punctuation"
    elif style == 2:
        n, prompt = pick(
            rng,
            [
                "What is {a} {s} {b}? Answer with just the number.",
                "{a} {s} {b} = ? Reply with only the number.",
                "Give only the number: {a} {s} {b}",
            ],
            a=a,
            b=b,
            s=sym,
        )
        task = "just_the_number"
    else:
        n, prompt = pick(
            rng,
            ["what is {a} {w} {b}?", "calculate {a} {w} {b}", "find {a} {w} {b}"],
            a=a,
            b=b,
            w=OP_WORDS[op],
        )
        prompt = _odd_case(rng, prompt)
        steps = [f"{a} {OP_WORDS[op]} {b} means {a} {sym} {b}", *steps]
        task = "odd_case"
    return Item(task, n, prompt, steps, str(value), {"a": a, "b": b, "op": op})


def strings(rng: random.Random) -> Item:
    word = rng.choice(WORDS)
    kind = rng.randrange(4)
    if kind == 0:
        n, prompt = pick(
            rng, ["Reverse the word '{w}'.", "Write '{w}' backwards.", "Spell {w} in reverse."], w=word
        )
        steps = [
            f"Letters: {' '.join(word)}",
            f"Backwards: {' '.join(reversed(word))}",
            f"Joined: {word[::-1]}",
        ]
        return Item("reverse", n, prompt, steps, word[::-1], {"kind": "reverse", "text": word})
    if kind == 1:
        letter = rng.choice(sorted(set(word)))
        n, prompt = pick(
            rng,
            [
                "How many times does the letter '{c}' appear in '{w}'?",
                "Count the letter {c} in the word {w}.",
            ],
            c=letter,
            w=word,
        )
        positions = [str(k + 1) for k, ch in enumerate(word) if ch == letter]
        steps = [
            f"Letters: {' '.join(word)}",
            f"'{letter}' at positions {', '.join(positions)}",
            f"Count: {len(positions)}",
        ]
        return Item(
            "count_letter",
            n,
            prompt,
            steps,
            str(len(positions)),
            {"kind": "count", "text": word, "letter": letter},
        )
    if kind == 2:
        n, prompt = pick(
            rng, ["How many letters are in the word '{w}'?", "What is the length of '{w}'?"], w=word
        )
        steps = [f"Letters: {' '.join(word)}", f"Count: {len(word)}"]
        return Item("length", n, prompt, steps, str(len(word)), {"kind": "length", "text": word})
    chosen = rng.sample(WORDS, rng.randint(3, 5))
    n, prompt = pick(
        rng,
        ["Which word comes first alphabetically: {ws}?", "Sort alphabetically and give the first word: {ws}"],
        ws=", ".join(chosen),
    )
    ordered = sorted(chosen)
    steps = [f"In order: {', '.join(ordered)}", f"First: {ordered[0]}"]
    return Item("first_alpha", n, prompt, steps, ordered[0], {"kind": "first_alpha", "words": chosen})
