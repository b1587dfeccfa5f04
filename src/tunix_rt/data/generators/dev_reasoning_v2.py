"""dev-reasoning-v2: the original's 550-trace composition, regenerated with its defects fixed.

Composition (as the original): 385 reasoning traces from 6 templates, 110 synthetic, 35
golden-style, 20 edge cases. Fixed: subtraction steps compute the difference with borrowing and
never go negative; every step's arithmetic is real and agrees with the answer; the logic prompts
vary (and read correctly); word counts vary; no prompt occurs twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from tunix_rt.data.generators.common import fmt, money, trace

DATASET = "dev-reasoning-v2"
GENERATOR = "tunix_rt.data.generators.dev_reasoning_v2"
SIZE = 550
REASONING_TEMPLATES = 6
COUNTS = {"reasoning": 385, "synthetic": 110, "golden_style": 35, "edge_case": 20}

WORDS = [
    "reason",
    "model",
    "python",
    "garden",
    "silver",
    "planet",
    "window",
    "bridge",
    "candle",
    "forest",
    "rocket",
    "marble",
    "pencil",
    "butter",
    "castle",
    "dragon",
    "island",
    "jacket",
    "kitten",
    "ladder",
    "mirror",
    "number",
    "orange",
    "pepper",
    "quartz",
    "rabbit",
    "saddle",
    "tunnel",
    "velvet",
    "wander",
    "yellow",
    "zipper",
    "anchor",
    "basket",
    "cotton",
    "dinner",
]
FRUITS = [
    "apple",
    "banana",
    "cherry",
    "date",
    "elderberry",
    "fig",
    "grape",
    "lemon",
    "mango",
    "peach",
    "plum",
    "kiwi",
    "melon",
    "lime",
    "pear",
]
# (member, group singular, group plural, super singular, super plural)
TAXONOMY = [
    ("goldfish", "fish", "fish", "animal", "animals"),
    ("poodle", "dog", "dogs", "mammal", "mammals"),
    ("sparrow", "bird", "birds", "animal", "animals"),
    ("oak", "tree", "trees", "plant", "plants"),
    ("rose", "flower", "flowers", "plant", "plants"),
    ("square", "rectangle", "rectangles", "polygon", "polygons"),
    ("violin", "string instrument", "string instruments", "instrument", "instruments"),
    ("hammer", "tool", "tools", "object", "objects"),
    ("salmon", "fish", "fish", "swimmer", "swimmers"),
]
# For "no A are B" questions: (group plural, group singular, member, other singular, other plural)
DISJOINT = [
    ("cats", "cat", "Tom", "fish", "fish"),
    ("triangles", "triangle", "shape T", "circle", "circles"),
    ("birds", "bird", "Tweety", "mammal", "mammals"),
    ("metals", "metal", "this spoon", "liquid", "liquids"),
    ("squares", "square", "tile Q", "circle", "circles"),
    ("insects", "insect", "this ant", "fish", "fish"),
    ("even numbers", "even number", "12", "odd number", "odd numbers"),
    ("cars", "car", "this sedan", "boat", "boats"),
    ("rocks", "rock", "this pebble", "plant", "plants"),
]


def generate(seed: int = 42, size: int = SIZE) -> list[dict[str, Any]]:
    if size != SIZE:
        raise ValueError(f"{DATASET} has a fixed size of {SIZE}")
    rng = random.Random(seed)
    seen: set[str] = set()
    records: list[dict[str, Any]] = []

    def add(category: str, task_type: str, index: int, make: Callable[[random.Random], tuple]) -> None:
        # Regenerate on a repeated prompt so the set never holds the same question twice.
        for _ in range(1000):
            prompt, steps, answer, inputs = make(rng)
            if prompt not in seen:
                break
        else:
            raise RuntimeError(f"{task_type}: cannot find a new prompt")
        seen.add(prompt)
        meta = {
            "dataset": DATASET,
            "generator": GENERATOR,
            "seed": seed,
            "category": category,
            "task_type": task_type,
            "index": index,
            "inputs": inputs,
        }
        records.append(trace(prompt, steps, answer, meta))

    reasoning = [
        _train_distance,
        _percent_of,
        _cost_per_item,
        _add_tens_ones,
        _subtract_borrow,
        _multiply_partials,
    ]
    for n in range(COUNTS["reasoning"]):
        make = reasoning[n % REASONING_TEMPLATES]
        add("reasoning", make.__name__.lstrip("_"), n, make)
    synthetic = [_arithmetic, _string_reverse, _string_sort, _logic]
    for n in range(COUNTS["synthetic"]):
        make = synthetic[n % len(synthetic)]
        add("synthetic", make.__name__.lstrip("_"), n, make)
    golden = [_text_repeat, _word_count, _uppercase]
    for n in range(COUNTS["golden_style"]):
        make = golden[n % len(golden)]
        add("golden_style", make.__name__.lstrip("_"), n, make)
    for n, (case_type, make) in enumerate(_edge_cases()):
        add("edge_case", case_type, n, lambda _rng, make=make: make())
    rng.shuffle(records)
    return records


# --- reasoning templates --------------------------------------------------------------------


def _train_distance(rng: random.Random):
    speed, hours = rng.randint(40, 150), rng.randint(2, 8)
    tens, ones = speed - speed % 10, speed % 10
    steps = [
        ("setup", "Use the formula: distance = speed × time"),
        ("given", f"Given: speed = {speed} km/h, time = {hours} hours"),
        ("partial", f"{tens} × {hours} = {tens * hours} and {ones} × {hours} = {ones * hours}"),
        ("calculation", f"Distance = {tens * hours} + {ones * hours} = {speed * hours} km"),
        ("answer", f"The train travels {speed * hours} km"),
    ]
    prompt = f"A train travels at {speed} km/h for {hours} hours. How far does it travel?"
    return prompt, steps, f"{speed * hours} km", {"speed": speed, "hours": hours}


def _percent_of(rng: random.Random):
    percent, base = rng.randint(2, 95), rng.randint(20, 900)
    product = percent * base
    steps = [
        ("setup", "To find a percentage, multiply the base by the percent, then divide by 100"),
        ("multiply", f"{base} × {percent} = {product}"),
        ("divide", f"{product} ÷ 100 = {fmt(Fraction(product, 100))}"),
    ]
    return (
        f"What is {percent}% of {base}?",
        steps,
        fmt(Fraction(product, 100)),
        {"percent": percent, "base": base},
    )


def _cost_per_item(rng: random.Random):
    items, unit_cents = rng.randint(2, 9), rng.randrange(200, 6000, 25)
    total = items * unit_cents
    steps = [
        ("setup", "Cost per item = total cost ÷ number of items"),
        ("calculation", f"{money(total)} ÷ {items} = {money(unit_cents)}"),
        ("check", f"Check: {items} × {money(unit_cents)} = {money(total)}"),
        ("answer", f"Each item costs {money(unit_cents)}"),
    ]
    prompt = f"If {items} items cost {money(total)}, what is the cost per item?"
    return prompt, steps, money(unit_cents), {"items": items, "total_cents": total}


def _add_tens_ones(rng: random.Random):
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    ta, oa, tb, ob = a - a % 10, a % 10, b - b % 10, b % 10
    steps = [
        ("decompose", f"Break down: {a} = {ta} + {oa}, {b} = {tb} + {ob}"),
        ("add_tens", f"Add tens: {ta} + {tb} = {ta + tb}"),
        ("add_ones", f"Add ones: {oa} + {ob} = {oa + ob}"),
        ("combine", f"Combine: {ta + tb} + {oa + ob} = {a + b}"),
    ]
    return f"Calculate {a} + {b} step by step.", steps, str(a + b), {"a": a, "b": b, "op": "+"}


def subtraction_steps(a: int, b: int) -> list[tuple[str, str]]:
    """Column subtraction of two-digit numbers (a >= b), borrowing when the ones digit is short."""
    ta, oa, tb, ob = a // 10, a % 10, b // 10, b % 10
    steps = [("setup", f"Subtract {b} from {a}, ones first")]
    if oa < ob:
        steps.append(
            ("ones", f"Ones: {oa} is less than {ob}, so borrow 1 ten: {oa + 10} - {ob} = {oa + 10 - ob}")
        )
        steps.append(
            ("tens", f"Tens: {ta} - 1 = {ta - 1} after borrowing, then {ta - 1} - {tb} = {ta - 1 - tb}")
        )
    else:
        steps.append(("ones", f"Ones: {oa} - {ob} = {oa - ob}"))
        steps.append(("tens", f"Tens: {ta} - {tb} = {ta - tb}"))
    steps.append(("result", f"Result: {a - b}"))
    return steps


def _subtract_borrow(rng: random.Random):
    a = rng.randint(20, 99)
    b = rng.randint(10, a)
    return (
        f"Calculate {a} - {b} showing your work.",
        subtraction_steps(a, b),
        str(a - b),
        {"a": a, "b": b, "op": "-"},
    )


def _multiply_partials(rng: random.Random):
    a, b = rng.randint(11, 99), rng.randint(11, 99)
    ones, tens = b % 10, b - b % 10
    steps = [
        ("setup", f"Break {b} into {tens} + {ones}"),
        ("partial1", f"{a} × {ones} (ones) = {a * ones}"),
        ("partial2", f"{a} × {tens} (tens) = {a * tens}"),
        ("sum", f"Add partials: {a * ones} + {a * tens} = {a * b}"),
    ]
    return f"Multiply {a} × {b} step by step.", steps, str(a * b), {"a": a, "b": b, "op": "*"}


# --- synthetic ------------------------------------------------------------------------------


def _arithmetic(rng: random.Random):
    op = rng.choice("+-*")
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    if op == "-" and a < b:
        a, b = b, a  # the prompt does not ask for a negative result, so none is produced
    if op == "+":
        steps = [
            ("tens", f"Tens: {a - a % 10} + {b - b % 10} = {a - a % 10 + b - b % 10}"),
            ("ones", f"Ones: {a % 10} + {b % 10} = {a % 10 + b % 10}"),
            ("result", f"Result: {a - a % 10 + b - b % 10} + {a % 10 + b % 10} = {a + b}"),
        ]
        answer = a + b
    elif op == "-":
        steps = [
            ("count_up", f"Count up from {b} to {a}: {b} + {a - b} = {a}"),
            ("result", f"Result: {a} - {b} = {a - b}"),
        ]
        answer = a - b
    else:
        steps = [
            ("ones", f"{a} * {b % 10} = {a * (b % 10)}"),
            ("tens", f"{a} * {b - b % 10} = {a * (b - b % 10)}"),
            ("result", f"Result: {a * (b % 10)} + {a * (b - b % 10)} = {a * b}"),
        ]
        answer = a * b
    return f"Calculate: {a} {op} {b}", steps, str(answer), {"a": a, "b": b, "op": op}


def _string_reverse(rng: random.Random):
    word = rng.choice(WORDS)
    steps = [
        ("letters", f"Letters of '{word}': {', '.join(word)}"),
        ("reverse", f"From last to first: {', '.join(reversed(word))}"),
        ("result", f"Reversed: '{word[::-1]}'"),
    ]
    return f"Reverse the string: '{word}'", steps, word[::-1], {"text": word}


def _string_sort(rng: random.Random):
    letters = "".join(rng.sample("ABCDEFGHIJKLMNOPQRSTUVWXYZ", rng.randint(5, 8)))
    ordered = "".join(sorted(letters))
    steps = [
        ("letters", f"Letters: {', '.join(letters)}"),
        ("order", f"In alphabetical order: {', '.join(ordered)}"),
        ("result", f"Sorted: {ordered}"),
    ]
    return f"Sort these characters alphabetically: {letters}", steps, ordered, {"text": letters}


def _logic(rng: random.Random):
    if rng.random() < 0.6:
        member, group, groups, sup, sups = rng.choice(TAXONOMY)
        prompt = rng.choice(
            [
                f"If all {groups} are {sups}, and this is a {member} (which is a {group}), is it a {sup}?",
                f"All {groups} are {sups}. A {member} is a {group}. Is a {member} a {sup}?",
            ]
        )
        steps = [
            ("premise", f"Given: all {groups} are {sups}"),
            ("fact", f"A {member} is a {group}"),
            ("deduction", f"So the {member} is a {sup}"),
        ]
        return prompt, steps, "Yes", {"rule": "all", "member": member, "group": group, "target": sup}
    groups, group, member, other, others = rng.choice(DISJOINT)
    prompt = rng.choice(
        [
            f"If no {groups} are {others}, and {member} is a {group}, is {member} a {other}?",
            f"No {groups} are {others}. {member[0].upper() + member[1:]} is a {group}. Is {member} a {other}?",
        ]
    )
    steps = [
        ("premise", f"Given: no {groups} are {others}"),
        ("fact", f"{member} is a {group}"),
        ("deduction", f"So {member} cannot be a {other}"),
    ]
    return prompt, steps, "No", {"rule": "none", "member": member, "group": group, "target": other}


# --- golden-style ---------------------------------------------------------------------------


def _text_repeat(rng: random.Random):
    word, times = rng.choice(FRUITS), rng.randint(2, 5)
    out = " ".join([word] * times)
    steps = [("task", f"Write '{word}' {times} times, separated by spaces"), ("output", out)]
    return f"Repeat '{word}' {times} times", steps, out, {"text": word, "times": times}


SENTENCE_FILLERS = [
    "the",
    "red",
    "is",
    "and",
    "a",
    "green",
    "on",
    "table",
    "near",
    "big",
    "old",
    "my",
    "basket",
]


def _word_count(rng: random.Random):
    target, count = rng.choice(FRUITS), rng.randint(1, 4)
    words = [rng.choice(SENTENCE_FILLERS) for _ in range(rng.randint(5, 9))]
    for _ in range(count):
        words.insert(rng.randint(0, len(words)), target)
    sentence = " ".join(words).capitalize()
    positions = [n + 1 for n, w in enumerate(sentence.lower().split()) if w == target]
    steps = [
        ("split", f"The sentence has {len(words)} words"),
        ("search", f"'{target}' is at word position(s) {', '.join(map(str, positions))}"),
        ("count", f"Found {len(positions)} occurrence(s)"),
    ]
    prompt = f"How many times does '{target}' appear in: \"{sentence}\""
    return prompt, steps, str(len(positions)), {"target": target, "sentence": sentence}


def _uppercase(rng: random.Random):
    word = rng.choice(FRUITS + WORDS)
    steps = [("transform", f"Change each letter of '{word}' to its capital form"), ("result", word.upper())]
    return f"Convert '{word}' to uppercase", steps, word.upper(), {"text": word}


# --- edge cases (fixed content: they test shapes, not arithmetic variety) -------------------


def _edge_cases() -> list[tuple[str, Callable[[], tuple]]]:
    long_prompt = ("Read the note carefully. " * 60) + "What is 3 + 4?"
    cases: list[tuple[str, tuple]] = [
        ("minimal_steps", ("What is 1 + 1?", [("answer", "1 + 1 = 2")], "2", {})),
        ("minimal_steps", ("What is 9 - 4?", [("answer", "9 - 4 = 5")], "5", {})),
        (
            "long_prompt",
            (long_prompt, [("focus", "The question is at the end: 3 + 4"), ("calc", "3 + 4 = 7")], "7", {}),
        ),
        (
            "long_prompt",
            (
                ("Background: " + "numbers are useful. " * 80) + "What is 6 × 5?",
                [("focus", "The question is at the end: 6 × 5"), ("calc", "6 × 5 = 30")],
                "30",
                {},
            ),
        ),
        (
            "special_chars",
            (
                "What is the result of 'hello' + \"world\" with <special> & chars?",
                [("parse", "Concatenate 'hello' and 'world'"), ("result", "Result: helloworld")],
                "helloworld",
                {},
            ),
        ),
        (
            "special_chars",
            (
                "Remove the symbols from: a#b$c%d",
                [("parse", "Keep letters: a, b, c, d"), ("result", "Result: abcd")],
                "abcd",
                {},
            ),
        ),
        (
            "unicode",
            (
                "Reverse the string: 'café'",
                [("letters", "Letters: c, a, f, é"), ("result", "Reversed: 'éfac'")],
                "éfac",
                {},
            ),
        ),
        ("unicode", ("Wie viel ist 7 × 8? Antworte mit einer Zahl.", [("calc", "7 × 8 = 56")], "56", {})),
        (
            "punctuation",
            (
                "What is... 2 + 2???",
                [("parse", "Ignore the extra punctuation: 2 + 2"), ("calc", "2 + 2 = 4")],
                "4",
                {},
            ),
        ),
        (
            "punctuation",
            (
                "Quick!!! What's 10 - 3?!",
                [("parse", "Ignore the extra punctuation: 10 - 3"), ("calc", "10 - 3 = 7")],
                "7",
                {},
            ),
        ),
        (
            "many_steps",
            (
                "Count from 1 to 5",
                [*(("count", str(n)) for n in range(1, 6)), ("summary", "Counted from 1 to 5")],
                "1, 2, 3, 4, 5",
                {},
            ),
        ),
        (
            "many_steps",
            (
                "Add 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 one number at a time",
                [("add", f"{sum(range(1, n))} + {n} = {sum(range(1, n + 1))}") for n in range(2, 9)],
                "36",
                {},
            ),
        ),
        (
            "numbers_only",
            (
                "12345",
                [
                    ("read", "The prompt is the number 12345 with no question"),
                    ("echo", "Echo it back: 12345"),
                ],
                "12345",
                {},
            ),
        ),
        (
            "numbers_only",
            ("7 7 7 = ?", [("read", "Three sevens added: 7 + 7 = 14"), ("calc", "14 + 7 = 21")], "21", {}),
        ),
        (
            "whitespace_answer",
            (
                "Add spaces between each letter of 'abc'",
                [("process", "Put a space between letters"), ("result", "a b c")],
                "a b c",
                {},
            ),
        ),
        (
            "whitespace_answer",
            (
                "   What   is   6 × 7 ?   ",
                [("parse", "Ignore the extra spaces: 6 × 7"), ("calc", "6 × 7 = 42")],
                "42",
                {},
            ),
        ),
        (
            "newlines",
            (
                "Format this as a list: apple, banana, cherry",
                [
                    ("format", "Put each item on its own numbered line"),
                    ("output", "1. apple\n2. banana\n3. cherry"),
                ],
                "1. apple\n2. banana\n3. cherry",
                {},
            ),
        ),
        (
            "newlines",
            (
                "Add these numbers:\n4\n5\n6",
                [("read", "The numbers are 4, 5 and 6"), ("calc", "4 + 5 = 9, 9 + 6 = 15")],
                "15",
                {},
            ),
        ),
        ("minimal_prompt", ("2+2?", [("calc", "2 + 2 = 4")], "4", {})),
        ("minimal_prompt", ("5*3", [("calc", "5 × 3 = 15")], "15", {})),
    ]
    return [(case_type, lambda value=value: value) for case_type, value in cases]
