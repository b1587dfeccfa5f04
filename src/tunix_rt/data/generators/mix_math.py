"""reasoning-mix families: geometry, number theory, sequences, calendar, statistics, probability,
linear equations."""

from __future__ import annotations

import random

from tunix_rt.data.generators.mix_arithmetic import Item, mul_steps, pick


def perimeter(rng: random.Random) -> Item:
    shape = rng.randrange(4)
    if shape == 0:
        length, width = rng.randint(2, 40), rng.randint(2, 30)
        n, prompt = pick(
            rng,
            [
                "What is the perimeter of a rectangle {l} cm long and {w} cm wide?",
                "A rectangle measures {l} m by {w} m. Find its perimeter.",
                "Find the perimeter of a {l} by {w} rectangle.",
            ],
            l=length,
            w=width,
        )
        steps = [f"{length} + {width} = {length + width}", f"2 × {length + width} = {2 * (length + width)}"]
        return Item(
            "rectangle",
            n,
            prompt,
            steps,
            str(2 * (length + width)),
            {"shape": "rectangle", "sides": [length, width]},
        )
    if shape == 1:
        side = rng.randint(2, 50)
        n, prompt = pick(
            rng,
            [
                "What is the perimeter of a square with side {s} cm?",
                "A square has sides of {s} m. What is its perimeter?",
            ],
            s=side,
        )
        return Item(
            "square",
            n,
            prompt,
            [f"4 × {side} = {4 * side}"],
            str(4 * side),
            {"shape": "square", "sides": [side]},
        )
    if shape == 2:
        a, b, c = sorted(rng.randint(3, 30) for _ in range(3))
        if a + b <= c:
            c = a + b - 1
        n, prompt = pick(
            rng,
            [
                "A triangle has sides {a} cm, {b} cm and {c} cm. What is its perimeter?",
                "Find the perimeter of a triangle with sides {a}, {b} and {c}.",
            ],
            a=a,
            b=b,
            c=c,
        )
        steps = [f"{a} + {b} = {a + b}", f"{a + b} + {c} = {a + b + c}"]
        return Item("triangle", n, prompt, steps, str(a + b + c), {"shape": "triangle", "sides": [a, b, c]})
    sides, name = rng.choice([(5, "pentagon"), (6, "hexagon"), (8, "octagon"), (10, "decagon")])
    side = rng.randint(2, 20)
    n, prompt = pick(
        rng,
        [
            "Each side of a regular {p} is {s} cm. What is its perimeter?",
            "What is the perimeter of a regular {p} with side length {s}?",
        ],
        p=name,
        s=side,
    )
    steps = [f"{_article(name)} {name} has {sides} sides", f"{sides} × {side} = {sides * side}"]
    return Item(
        "regular_polygon", n, prompt, steps, str(sides * side), {"shape": "regular", "sides": [sides, side]}
    )


def area(rng: random.Random) -> Item:
    shape = rng.randrange(3)
    if shape == 0:
        length, width = rng.randint(2, 30), rng.randint(2, 20)
        n, prompt = pick(
            rng,
            [
                "What is the area of a rectangle {l} cm by {w} cm?",
                "A room is {l} m long and {w} m wide. What is its floor area?",
                "Find the area of a {l} by {w} rectangle.",
            ],
            l=length,
            w=width,
        )
        return Item(
            "rectangle",
            n,
            prompt,
            ["area = length × width", *mul_steps(length, width)],
            str(length * width),
            {"shape": "rectangle", "dims": [length, width]},
        )
    if shape == 1:
        side = rng.randint(2, 30)
        n, prompt = pick(
            rng,
            [
                "What is the area of a square with side {s} cm?",
                "A square tile has sides of {s} inches. What is its area?",
            ],
            s=side,
        )
        return Item(
            "square",
            n,
            prompt,
            ["area = side × side", *mul_steps(side, side)],
            str(side * side),
            {"shape": "square", "dims": [side]},
        )
    base, height = rng.randint(2, 30), rng.randint(1, 15) * 2
    n, prompt = pick(
        rng,
        [
            "A triangle has base {b} cm and height {h} cm. What is its area?",
            "Find the area of a triangle with base {b} and height {h}.",
        ],
        b=base,
        h=height,
    )
    steps = [
        "area = base × height ÷ 2",
        *mul_steps(base, height),
        f"{base * height} ÷ 2 = {base * height // 2}",
    ]
    return Item(
        "triangle", n, prompt, steps, str(base * height // 2), {"shape": "triangle", "dims": [base, height]}
    )


def volume(rng: random.Random) -> Item:
    if rng.random() < 0.6:
        a, b, c = rng.randint(2, 12), rng.randint(2, 10), rng.randint(2, 10)
        n, prompt = pick(
            rng,
            [
                "A box is {a} cm long, {b} cm wide and {c} cm tall. What is its volume?",
                "Find the volume of a {a} by {b} by {c} box.",
                "What is the volume of a rectangular prism with sides {a}, {b} and {c}?",
            ],
            a=a,
            b=b,
            c=c,
        )
        steps = [f"{a} × {b} = {a * b}", *mul_steps(a * b, c)]
        return Item("box", n, prompt, steps, str(a * b * c), {"shape": "box", "dims": [a, b, c]})
    s = rng.randint(2, 12)
    n, prompt = pick(
        rng,
        ["What is the volume of a cube with edge {s} cm?", "A cube has sides of {s} m. Find its volume."],
        s=s,
    )
    return Item(
        "cube",
        n,
        prompt,
        [f"{s} × {s} = {s * s}", f"{s * s} × {s} = {s**3}"],
        str(s**3),
        {"shape": "cube", "dims": [s]},
    )


def angles(rng: random.Random) -> Item:
    kind = rng.randrange(4)
    if kind == 0:
        a, b = rng.randint(20, 100), rng.randint(20, 60)
        n, prompt = pick(
            rng,
            [
                "Two angles of a triangle are {a}° and {b}°. What is the third angle?",
                "A triangle has angles of {a} and {b} degrees. Find the third angle in degrees.",
            ],
            a=a,
            b=b,
        )
        steps = [
            "The angles of a triangle add up to 180°",
            f"{a} + {b} = {a + b}",
            f"180 - {a + b} = {180 - a - b}",
        ]
        return Item("triangle", n, prompt, steps, str(180 - a - b), {"kind": "triangle", "known": [a, b]})
    if kind == 1:
        a = rng.randint(5, 85)
        n, prompt = pick(
            rng,
            ["What is the complement of a {a}° angle?", "Find the angle that adds to {a}° to make 90°."],
            a=a,
        )
        return Item(
            "complement",
            n,
            prompt,
            [f"90 - {a} = {90 - a}"],
            str(90 - a),
            {"kind": "complement", "known": [a]},
        )
    if kind == 2:
        a = rng.randint(5, 175)
        n, prompt = pick(
            rng,
            [
                "What is the supplement of a {a}° angle?",
                "Two angles on a straight line: one is {a}°. What is the other?",
            ],
            a=a,
        )
        return Item(
            "supplement",
            n,
            prompt,
            [f"180 - {a} = {180 - a}"],
            str(180 - a),
            {"kind": "supplement", "known": [a]},
        )
    a, b = rng.randint(30, 150), rng.randint(30, 150)
    n, prompt = pick(
        rng,
        [
            "Three angles meet at a point. Two are {a}° and {b}°. What is the third?",
            "Angles around a point: {a}°, {b}° and x. Find x.",
        ],
        a=a,
        b=b,
    )
    steps = ["Angles around a point add up to 360°", f"{a} + {b} = {a + b}", f"360 - {a + b} = {360 - a - b}"]
    return Item("around_point", n, prompt, steps, str(360 - a - b), {"kind": "point", "known": [a, b]})


def _article(word: str) -> str:
    return "An" if word[0] in "aeiou" else "A"


POLYGONS = {
    3: "triangle",
    4: "quadrilateral",
    5: "pentagon",
    6: "hexagon",
    7: "heptagon",
    8: "octagon",
    9: "nonagon",
    10: "decagon",
    12: "dodecagon",
}


def polygons(rng: random.Random) -> Item:
    sides = rng.choice(list(POLYGONS))
    name = POLYGONS[sides]
    kind = rng.randrange(3)
    if kind == 0:
        n, prompt = pick(rng, ["How many sides does a {p} have?", "A {p} has how many sides?"], p=name)
        return Item(
            "sides",
            n,
            prompt,
            [f"{_article(name)} {name} is a polygon with {sides} sides"],
            str(sides),
            {"kind": "sides", "n": sides},
        )
    total = (sides - 2) * 180
    if kind == 1 or 360 % sides:
        n, prompt = pick(
            rng,
            [
                "What is the sum of the interior angles of a {p}?",
                "The interior angles of a {p} add up to how many degrees?",
            ],
            p=name,
        )
        steps = [
            f"{_article(name)} {name} has {sides} sides",
            f"({sides} - 2) × 180 = {sides - 2} × 180 = {total}",
        ]
        return Item("angle_sum", n, prompt, steps, str(total), {"kind": "angle_sum", "n": sides})
    n, prompt = pick(
        rng,
        [
            "What is each interior angle of a regular {p}, in degrees?",
            "Find one interior angle of a regular {p}.",
        ],
        p=name,
    )
    steps = [
        f"{_article(name)} {name} has {sides} sides",
        f"({sides} - 2) × 180 = {total}",
        f"{total} ÷ {sides} = {total // sides}",
    ]
    return Item("interior_angle", n, prompt, steps, str(total // sides), {"kind": "interior", "n": sides})


def _smallest_factor(n: int) -> int | None:
    d = 2
    while d * d <= n:
        if n % d == 0:
            return d
        d += 1
    return None


def _primes_up_to_root(n: int) -> list[int]:
    return [p for p in range(2, int(n**0.5) + 1) if _smallest_factor(p) is None]


def primes(rng: random.Random) -> Item:
    want_prime = rng.random() < 0.5
    while True:
        k = rng.randint(4, 200)
        if (_smallest_factor(k) is None) == want_prime:
            break
    n, prompt = pick(
        rng,
        ["Is {k} a prime number?", "Is {k} prime? Answer Yes or No.", "Determine whether {k} is prime."],
        k=k,
    )
    factor = _smallest_factor(k)
    if factor is not None:
        steps = [f"{k} ÷ {factor} = {k // factor}", f"{k} has the factor {factor}, so it is not prime: No"]
        return Item("is_prime", n, prompt, steps, "No", {"kind": "is_prime", "n": k})
    checks = _primes_up_to_root(k)
    steps = [
        f"Check primes up to √{k}: {', '.join(map(str, checks))}",
        f"None of them divides {k}, so it is prime: Yes",
    ]
    return Item("is_prime", n, prompt, steps, "Yes", {"kind": "is_prime", "n": k})


def next_prime(rng: random.Random) -> Item:
    k = rng.randint(1, 150)
    n, prompt = pick(
        rng, ["What is the next prime number after {k}?", "Find the smallest prime greater than {k}."], k=k
    )
    steps, m = [], k + 1
    while m < 2 or _smallest_factor(m) is not None:
        if m < 2:
            steps.append(f"{m} is not prime")
        else:
            f = _smallest_factor(m)
            steps.append(f"{m} = {f} × {m // f}, not prime")
        m += 1
    steps.append(f"{m} is prime")
    return Item("next_prime", n, prompt, steps, str(m), {"kind": "next_prime", "n": k})


def gcd_lcm(rng: random.Random) -> Item:
    g = rng.randint(1, 12)
    a, b = g * rng.randint(1, 12), g * rng.randint(1, 12)
    if a == b:
        b += g
    a, b = max(a, b), min(a, b)
    steps, x, y = [], a, b
    while y:
        steps.append(f"{x} = {x // y} × {y} + {x % y}")
        x, y = y, x % y
    gcd = x
    if rng.random() < 0.5:
        n, prompt = pick(
            rng,
            [
                "What is the greatest common divisor of {a} and {b}?",
                "Find the GCD of {a} and {b}.",
                "What is the highest common factor of {a} and {b}?",
            ],
            a=a,
            b=b,
        )
        steps.append(f"The GCD is {gcd}")
        return Item("gcd", n, prompt, steps, str(gcd), {"kind": "gcd", "a": a, "b": b})
    lcm = a * b // gcd
    n, prompt = pick(
        rng, ["What is the least common multiple of {a} and {b}?", "Find the LCM of {a} and {b}."], a=a, b=b
    )
    steps += [f"GCD = {gcd}", f"{a} × {b} ÷ {gcd} = {lcm}"]
    return Item("lcm", n, prompt, steps, str(lcm), {"kind": "lcm", "a": a, "b": b})


def divisibility(rng: random.Random) -> Item:
    k = rng.randint(2, 12)
    m = k * rng.randint(2, 40) + (0 if rng.random() < 0.5 else rng.randint(1, k - 1))
    q, r = divmod(m, k)
    n, prompt = pick(
        rng,
        ["Is {m} divisible by {k}?", "Can {m} be divided evenly by {k}?", "Does {k} divide {m} exactly?"],
        m=m,
        k=k,
    )
    verdict = "Yes" if r == 0 else "No"
    steps = [
        f"{k} × {q} = {k * q}",
        f"{m} - {k * q} = {r}",
        f"The remainder is {r}, so the answer is {verdict}",
    ]
    return Item("divisible", n, prompt, steps, verdict, {"kind": "divisible", "n": m, "k": k})


def remainders(rng: random.Random) -> Item:
    k = rng.randint(2, 12)
    m = k * rng.randint(1, 40) + rng.randint(0, k - 1)
    q, r = divmod(m, k)
    n, prompt = pick(
        rng,
        [
            "What is the remainder when {m} is divided by {k}?",
            "What is {m} mod {k}?",
            "Find the remainder of {m} ÷ {k}.",
        ],
        m=m,
        k=k,
    )
    steps = [f"{k} × {q} = {k * q}", f"{m} - {k * q} = {r}"]
    return Item("remainder", n, prompt, steps, str(r), {"kind": "remainder", "n": m, "k": k})


# Arithmetic and geometric "what comes next" share their phrasings.
NEXT_TERM_PHRASINGS = [
    "What comes next: {s}, ...?",
    "Find the next number in the sequence {s}.",
    "Continue the pattern: {s}, ?",
]


def sequences(rng: random.Random) -> Item:
    kind = rng.randrange(3)
    if kind == 0:
        start, d = rng.randint(1, 50), rng.randint(2, 15)
        terms = [start + d * j for j in range(4)]
        n, prompt = pick(
            rng,
            NEXT_TERM_PHRASINGS,
            s=", ".join(map(str, terms)),
        )
        steps = [
            f"{terms[1]} - {terms[0]} = {d}, so each term adds {d}",
            f"{terms[-1]} + {d} = {terms[-1] + d}",
        ]
        return Item("arithmetic_next", n, prompt, steps, str(terms[-1] + d), {"kind": "next", "terms": terms})
    if kind == 1:
        start, ratio = rng.randint(1, 6), rng.choice([2, 2, 3, 3, 4, 5])
        terms = [start * ratio**j for j in range(4)]
        n, prompt = pick(
            rng,
            NEXT_TERM_PHRASINGS,
            s=", ".join(map(str, terms)),
        )
        steps = [
            f"{terms[1]} ÷ {terms[0]} = {ratio}, so each term is multiplied by {ratio}",
            f"{terms[-1]} × {ratio} = {terms[-1] * ratio}",
        ]
        return Item(
            "geometric_next", n, prompt, steps, str(terms[-1] * ratio), {"kind": "next", "terms": terms}
        )
    first, d, k = rng.randint(1, 20), rng.randint(2, 9), rng.randint(5, 20)
    n, prompt = pick(
        rng,
        [
            "An arithmetic sequence starts at {a} and adds {d} each time. What is term number {k}?",
            "The first term is {a} and the common difference is {d}. Find the {k}th term.",
        ],
        a=first,
        d=d,
        k=k,
    )
    steps = [
        f"term {k} = {first} + ({k} - 1) × {d}",
        f"{k - 1} × {d} = {(k - 1) * d}",
        f"{first} + {(k - 1) * d} = {first + (k - 1) * d}",
    ]
    return Item(
        "nth_term",
        n,
        prompt,
        steps,
        str(first + (k - 1) * d),
        {"kind": "nth", "first": first, "d": d, "k": k},
    )


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def calendar(rng: random.Random) -> Item:
    start, days = rng.randrange(7), rng.randint(1, 100)
    forward = rng.random() < 0.7
    q, r = divmod(days, 7)
    if forward:
        n, prompt = pick(
            rng,
            [
                "Today is {d}. What day of the week will it be in {n} days?",
                "If it is {d} today, what day is it {n} days from now?",
                "Starting on a {d}, which weekday comes {n} days later?",
            ],
            d=DAYS[start],
            n=days,
        )
        end = DAYS[(start + r) % 7]
        steps = [f"{days} = 7 × {q} + {r}", f"{DAYS[start]} + {r} days = {end}"]
    else:
        n, prompt = pick(
            rng,
            [
                "Today is {d}. What day of the week was it {n} days ago?",
                "If it is {d} today, what day was it {n} days earlier?",
            ],
            d=DAYS[start],
            n=days,
        )
        end = DAYS[(start - r) % 7]
        steps = [f"{days} = 7 × {q} + {r}", f"{DAYS[start]} - {r} days = {end}"]
    return Item("weekday", n, prompt, steps, end, {"start": DAYS[start], "days": days if forward else -days})


def statistics(rng: random.Random) -> Item:
    kind = rng.randrange(3)
    count = rng.choice([3, 4, 5])
    values = [rng.randint(1, 60) for _ in range(count)]
    listed = ", ".join(map(str, values))
    if kind == 0:
        fix = (-sum(values)) % count  # nudge the last value so the mean is a whole number
        values[-1] += fix
        listed = ", ".join(map(str, values))
        total = sum(values)
        n, prompt = pick(
            rng,
            [
                "What is the average of {v}?",
                "Find the mean of {v}.",
                "What is the mean of these numbers: {v}?",
            ],
            v=listed,
        )
        steps, running = [], values[0]
        for v in values[1:]:
            steps.append(f"{running} + {v} = {running + v}")
            running += v
        steps.append(f"{total} ÷ {count} = {total // count}")
        return Item("mean", n, prompt, steps, str(total // count), {"kind": "mean", "values": values})
    if kind == 1:
        if count % 2 == 0:
            values.append(rng.randint(1, 60))
            listed = ", ".join(map(str, values))
        ordered = sorted(values)
        mid = ordered[len(ordered) // 2]
        n, prompt = pick(
            rng, ["What is the median of {v}?", "Find the median of these numbers: {v}."], v=listed
        )
        steps = [f"Sorted: {', '.join(map(str, ordered))}", f"The middle value is {mid}"]
        return Item("median", n, prompt, steps, str(mid), {"kind": "median", "values": values})
    lo, hi = min(values), max(values)
    n, prompt = pick(rng, ["What is the range of {v}?", "Find the range of the numbers {v}."], v=listed)
    steps = [f"Largest {hi}, smallest {lo}", f"{hi} - {lo} = {hi - lo}"]
    return Item("range", n, prompt, steps, str(hi - lo), {"kind": "range", "values": values})


COLORS = ["red", "blue", "green", "yellow", "white", "black"]


def _simplify(num: int, den: int) -> tuple[int, int]:
    a, b = num, den
    while b:
        a, b = b, a % b
    return num // a, den // a


def probability(rng: random.Random) -> Item:
    if rng.random() < 0.7:
        c1, c2 = rng.sample(COLORS, 2)
        x, y = rng.randint(1, 12), rng.randint(1, 12)
        total = x + y
        n, prompt = pick(
            rng,
            [
                "A bag has {x} {c1} and {y} {c2} marbles. What is the probability of drawing a {c1} one?",
                "There are {x} {c1} balls and {y} {c2} balls in a box. If you pick one at random, "
                "what is the chance it is {c1}?",
            ],
            x=x,
            y=y,
            c1=c1,
            c2=c2,
        )
        num, den = _simplify(x, total)
        steps = [f"Total: {x} + {y} = {total}", f"P({c1}) = {x}/{total}"]
        if (num, den) != (x, total):
            steps.append(f"{x}/{total} = {num}/{den}")
        return Item("marbles", n, prompt, steps, f"{num}/{den}", {"favorable": x, "total": total})
    k = rng.randint(1, 5)
    n, prompt = pick(
        rng,
        [
            "A fair six-sided die is rolled. What is the probability of getting more than {k}?",
            "What is the probability of rolling a number greater than {k} on a standard die?",
        ],
        k=k,
    )
    fav = 6 - k
    num, den = _simplify(fav, 6)
    steps = [f"Outcomes above {k}: {', '.join(str(v) for v in range(k + 1, 7))} ({fav} of 6)", f"P = {fav}/6"]
    if (num, den) != (fav, 6):
        steps.append(f"{fav}/6 = {num}/{den}")
    return Item("die", n, prompt, steps, f"{num}/{den}", {"favorable": fav, "total": 6})


def linear_equations(rng: random.Random) -> Item:
    a, x, b = rng.randint(2, 9), rng.randint(1, 20), rng.randint(1, 40)
    c = a * x + b
    if rng.random() < 0.75:
        n, prompt = pick(
            rng,
            [
                "Solve for x: {a}x + {b} = {c}",
                "Find x if {a}x + {b} = {c}.",
                "If {a} times a number plus {b} equals {c}, what is the number?",
                "Solve {a}x + {b} = {c}.",
            ],
            a=a,
            b=b,
            c=c,
        )
        steps = [f"{a}x = {c} - {b} = {c - b}", f"x = {c - b} ÷ {a} = {x}"]
        return Item("ax_plus_b", n, prompt, steps, str(x), {"a": a, "b": b, "c": c})
    c = a * x - b
    if c <= 0:
        b = rng.randint(1, a * x - 1) if a * x > 1 else 0
        c = a * x - b
    n, prompt = pick(rng, ["Solve for x: {a}x - {b} = {c}", "Find x if {a}x - {b} = {c}."], a=a, b=b, c=c)
    steps = [f"{a}x = {c} + {b} = {c + b}", f"x = {c + b} ÷ {a} = {x}"]
    return Item("ax_minus_b", n, prompt, steps, str(x), {"a": a, "b": -b, "c": c})
